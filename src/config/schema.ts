import { z } from "zod";
import { parseDuration } from "./duration.js";
import { DURATION_HINT, DURATION_PATTERN, PORT_SPEC_PATTERN, parsePortSpec } from "./patterns.js";

/**
 * The shape of `firebreak.yaml`. This file is the single source of truth for the configuration:
 * the loader validates against it, `firebreak schema` prints it as JSON Schema, and every other
 * module reads the parsed `FirebreakConfig` type.
 *
 * Names that later become SQL identifiers, firewall rule names or shell words are restricted to a
 * safe alphabet here, at the edge, so that no zone or role name can ever become syntax.
 */

/** Zones, resources, roles, policies, groups: lowercase DNS-label style, 1–63 characters. */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;
/** User names: letters, digits and `._@-`, starting with a letter or digit, at most 128 characters. */
export const USER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

export const nameSchema = z
  .string()
  .regex(
    NAME_PATTERN,
    "a name of 1-63 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit",
  );
export const userNameSchema = z
  .string()
  .regex(USER_PATTERN, "a user name of 1-128 letters, digits, '.', '_', '@' or '-'");
export const groupNameSchema = nameSchema;

/** `group:NAME` or `user:NAME`. */
export const principalRefSchema = z
  .string()
  .regex(
    /^(group:[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?|user:[A-Za-z0-9][A-Za-z0-9._@-]{0,127})$/,
    "a principal reference such as 'group:sre' or 'user:alice'",
  );
export type PrincipalRef = z.infer<typeof principalRefSchema>;

/** `env:NAME` or `file:/absolute/path`; secrets are never written in the file itself. */
export const secretRefSchema = z
  .string()
  .regex(
    /^(env:[A-Za-z_][A-Za-z0-9_]*|file:\/.+)$/,
    "a secret reference 'env:NAME' or 'file:/absolute/path'",
  );
export type SecretRef = z.infer<typeof secretRefSchema>;

/** `90s`, `15m`, `1h`, `7d`; parsed to milliseconds. */
export const durationSchema = z
  .string()
  .regex(DURATION_PATTERN, DURATION_HINT)
  .transform((text) => parseDuration(text));

const cidrSchema = z
  .string()
  .regex(
    /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\/(3[0-2]|[12]?\d)$|^[0-9a-fA-F:]+\/(12[0-8]|1[01]\d|[1-9]?\d)$/,
    "an IPv4 or IPv6 CIDR such as '10.20.0.0/24'",
  );

/** `tcp/5432`, `udp/53`, `tcp/8000-8100`. */
export const portSpecSchema = z
  .string()
  .regex(PORT_SPEC_PATTERN, "a port such as 'tcp/5432', 'udp/53' or 'tcp/8000-8100'")
  // A malformed spec is the regex's to report; one issue per mistake.
  .refine(
    (spec) => !PORT_SPEC_PATTERN.test(spec) || parsePortSpec(spec) !== null,
    "ports from 1 to 65535, a range written low-high",
  );

const ADDRESS = /^([A-Za-z0-9.-]{1,253}|\[[0-9a-fA-F:]+\]):([1-9][0-9]{0,4})$/;

/** `host:port` where host is an IPv4 address, a bracketed IPv6 address or a DNS name. */
const addressSchema = z
  .string()
  .regex(ADDRESS, "an address such as '10.30.0.5:5432'")
  .refine((address) => Number(ADDRESS.exec(address)?.[2] ?? 0) <= 65_535, "a port from 1 to 65535");

/** A CEL expression over `principal`, `request`, `signals` and `now`; compiled by the policy module. */
export const celSchema = z
  .string()
  .min(1, "a CEL expression")
  .max(4096, "a CEL expression of at most 4096 characters");

const labelsSchema = z.record(
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/, "a label key"),
  z.string().max(63, "a label value of at most 63 characters"),
);

export const zoneSchema = z.strictObject({
  description: z.string().max(500).optional(),
  labels: labelsSchema.optional(),
  cidrs: z.array(cidrSchema).optional(),
  enforcement: z
    .enum(["monitor", "enforce"])
    .default("monitor")
    .describe("'monitor' records what would be blocked; 'enforce' blocks everything not allowed"),
});

export const flowSchema = z.strictObject({
  from: nameSchema,
  to: nameSchema,
  ports: z.array(portSpecSchema).min(1, "at least one port"),
  description: z.string().max(500).optional(),
});

export const RESOURCE_TYPES = ["log", "postgres", "mariadb", "ssh", "http"] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

/** A role on a resource: connector-specific settings such as `grants` (database roles) or `principals` (SSH). */
const resourceRoleSchema = z.strictObject({
  grants: z.array(z.string().min(1).max(63)).optional(),
  principals: z.array(z.string().min(1).max(63)).optional(),
  privileges: z.array(z.string().min(1).max(200)).optional(),
  allowForwarding: z.boolean().optional(),
  description: z.string().max(500).optional(),
});

export const resourceSchema = z.strictObject({
  zone: nameSchema,
  type: z.enum(RESOURCE_TYPES),
  description: z.string().max(500).optional(),
  address: addressSchema.optional(),
  connection: z
    .record(
      z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,62}$/),
      z.union([secretRefSchema, z.string().max(1000)]),
    )
    .optional(),
  /**
   * Prefix of every account Firebreak creates on this target (default `fb_`). The reconciler treats
   * every account with the prefix as Firebreak's, so two Firebreak installations sharing a target
   * need different prefixes.
   */
  namePrefix: z
    .string()
    .regex(
      /^[a-z][a-z0-9]{0,7}_$/,
      "a prefix of 1-8 lowercase letters or digits followed by '_', such as 'fb_'",
    )
    .optional(),
  /** PostgreSQL: what happens to objects a grant's login role created, at revoke (default: drop them). */
  ownedObjects: z.enum(["drop", "reassign"]).optional(),
  /** PostgreSQL: the role that receives those objects when `ownedObjects` is `reassign`. */
  reassignTo: z.string().min(1).max(63).optional(),
  roles: z
    .record(nameSchema, resourceRoleSchema)
    .refine((roles) => Object.keys(roles).length > 0, "at least one role"),
});

export const standingBindingSchema = z
  .strictObject({
    group: groupNameSchema.optional(),
    user: userNameSchema.optional(),
    zone: nameSchema.optional(),
    resource: nameSchema.optional(),
    role: nameSchema,
  })
  .refine((b) => (b.group === undefined) !== (b.user === undefined), "exactly one of 'group' or 'user'")
  .refine(
    (b) => (b.zone === undefined) !== (b.resource === undefined),
    "exactly one of 'zone' or 'resource'",
  );

export const FACTOR_KINDS = ["totp", "webauthn"] as const;
export type FactorKind = (typeof FACTOR_KINDS)[number];

export const approvalStepSchema = z.strictObject({
  from: z.union([principalRefSchema, z.array(principalRefSchema).min(1)]),
  count: z.number().int().min(1).max(20).default(1),
});

export const breakGlassPolicySchema = z.strictObject({
  name: nameSchema,
  description: z.string().max(500).optional(),
  zone: nameSchema,
  /** Restricts the policy to these resources of the zone; absent means the zone and all its resources. */
  resources: z
    .array(nameSchema)
    .optional()
    .describe(
      "Restricts the policy to these resources of the zone; absent means the zone and all its resources",
    ),
  roles: z.array(nameSchema).min(1, "at least one role").describe("Roles this policy may grant"),
  eligible: z
    .array(principalRefSchema)
    .min(1, "at least one eligible principal")
    .describe("Who may ask: 'group:NAME' or 'user:NAME'"),
  duration: z
    .strictObject({ default: durationSchema, max: durationSchema })
    .describe("How long a grant lasts when not asked otherwise, and at most"),
  factors: z
    .array(z.enum(FACTOR_KINDS))
    .optional()
    .describe("Activation needs a fresh use of any one of these factors"),
  factorFreshness: durationSchema.optional().describe("How recent the factor must be (default 5m)"),
  approverFactors: z
    .array(z.enum(FACTOR_KINDS))
    .optional()
    .describe("Approvers must also present a fresh use of any one of these factors"),
  approvals: z
    .array(approvalStepSchema)
    .optional()
    .describe("Approvals needed, each step from other principals than the requester"),
  justification: z
    .strictObject({
      minLength: z.number().int().min(0).max(10_000).default(0),
      ticket: z.string().min(1).max(500).optional(),
    })
    .optional(),
  sourceZones: z.array(nameSchema).optional().describe("The request must come from one of these zones"),
  when: celSchema
    .optional()
    .describe("CEL condition over principal, request, signals and now that must hold to ask at all"),
  autoApprove: z
    .strictObject({ when: celSchema })
    .optional()
    .describe("Approve without approvers when this CEL condition holds; the use is still reviewed"),
  review: z
    .strictObject({
      within: durationSchema,
      blockWhenOverdue: z.boolean().default(false),
      by: z.array(principalRefSchema).optional(),
    })
    .optional(),
  pendingExpiry: durationSchema.optional().describe("A request not approved or activated within this lapses"),
});

const notifySchema = z.strictObject({
  type: z.enum(["slack", "webhook"]),
  url: z.union([secretRefSchema, z.url()]),
  secret: secretRefSchema.optional(),
});

export const SINK_TYPES = ["syslog", "file", "splunk-hec", "webhook"] as const;
export type SinkType = (typeof SINK_TYPES)[number];
export const SINK_FORMATS = ["rfc5424", "cef", "ocsf", "json"] as const;
export type SinkFormat = (typeof SINK_FORMATS)[number];
/** Event severities, lowest first; sinks filter on a minimum. */
export const SEVERITIES = ["info", "low", "medium", "high", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];
/** RFC 5424 facility names, in code order (`audit` is 13, "log audit"). */
export const SYSLOG_FACILITIES = [
  "kern",
  "user",
  "mail",
  "daemon",
  "auth",
  "syslog",
  "lpr",
  "news",
  "uucp",
  "cron",
  "authpriv",
  "ftp",
  "ntp",
  "audit",
  "alert",
  "clock",
  "local0",
  "local1",
  "local2",
  "local3",
  "local4",
  "local5",
  "local6",
  "local7",
] as const;

/** Short delays for delivery timing: `250ms`, `2s`, `5m`, `1h`; parsed to milliseconds. */
const delaySchema = z
  .string()
  .regex(/^[1-9][0-9]{0,5}(ms|s|m|h)$/, "a delay such as '500ms', '2s' or '5m'")
  .transform((text) => (text.endsWith("ms") ? Number(text.slice(0, -2)) : parseDuration(text)));

const SIZE_UNITS = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;
/** `10MiB`, `500KB`, `1GB`; parsed to bytes. */
const sizeSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,9}(B|KB|MB|GB|KiB|MiB|GiB)$/, "a size such as '500KB', '10MiB' or '1GB'")
  .transform((text) => {
    const match = /^([0-9]+)([A-Za-z]+)$/.exec(text) as RegExpExecArray;
    return Number(match[1]) * SIZE_UNITS[match[2] as keyof typeof SIZE_UNITS];
  });

/** How an audit sink retries; every key optional, the audit-wide settings filling the gaps. */
const deliverySchema = z.strictObject({
  maxAttempts: z
    .number()
    .int()
    .min(1)
    .max(100)
    .optional()
    .describe(
      "Failed attempts before an event goes to the dead-letter list and an alert is raised (default 8)",
    ),
  initialBackoff: delaySchema
    .optional()
    .describe("Wait after the first failure (default 1s); doubles each time"),
  maxBackoff: delaySchema.optional().describe("The longest wait between attempts (default 5m)"),
  batchSize: z.number().int().min(1).max(5000).optional().describe("Events per delivery (default 500)"),
  timeout: delaySchema
    .optional()
    .describe("How long one delivery may take before it counts as failed (default 10s)"),
});

const sinkSchema = z
  .strictObject({
    name: nameSchema,
    type: z.enum(SINK_TYPES),
    url: z.union([secretRefSchema, z.string().min(1).max(2000)]).optional(),
    path: z.string().min(1).max(4096).optional(),
    format: z.enum(SINK_FORMATS).optional(),
    token: secretRefSchema.optional(),
    secret: secretRefSchema.optional(),
    filter: z
      .strictObject({
        types: z
          .array(
            z
              .string()
              .regex(
                /^[a-z*][a-z0-9_*-]*(\.[a-z*][a-z0-9_*-]*)*$/,
                "an event type such as 'grant.activated', or a pattern such as 'grant.*'",
              ),
          )
          .min(1)
          .optional()
          .describe("Only these event types ('*' matches within a part: 'grant.*', '*.denied')"),
        zones: z.array(nameSchema).min(1).optional().describe("Only events in these zones"),
        minSeverity: z.enum(SEVERITIES).optional().describe("Only events at least this severe"),
      })
      .optional(),
    rotate: z
      .strictObject({
        size: sizeSchema.describe("Start a new file when the current one would grow past this"),
        keep: z.number().int().min(1).max(1000).default(5).describe("Rotated files kept (name.1 is newest)"),
      })
      .optional(),
    tls: z
      .strictObject({
        ca: secretRefSchema.optional().describe("PEM certificate(s) to trust instead of the system's"),
        cert: secretRefSchema.optional().describe("PEM client certificate, for mutual TLS"),
        key: secretRefSchema.optional().describe("PEM client key, for mutual TLS"),
        serverName: z
          .string()
          .min(1)
          .max(253)
          .optional()
          .describe("Name expected in the server's certificate"),
      })
      .optional(),
    facility: z.enum(SYSLOG_FACILITIES).optional().describe("Syslog facility (default authpriv)"),
    appName: z
      .string()
      .regex(/^[!-~]{1,48}$/, "1-48 printable ASCII characters")
      .optional()
      .describe("Syslog APP-NAME (default firebreak)"),
    hostname: z
      .string()
      .regex(/^[!-~]{1,255}$/, "1-255 printable ASCII characters")
      .optional()
      .describe("Syslog HOSTNAME (default this machine's name)"),
    maxMessageBytes: z
      .number()
      .int()
      .min(480)
      .max(1_048_576)
      .optional()
      .describe("Syslog: longer messages are truncated (default 8192 over UDP, unlimited over TCP)"),
    index: z.string().min(1).max(200).optional().describe("Splunk index"),
    sourcetype: z.string().min(1).max(200).optional().describe("Splunk sourcetype (default firebreak:audit)"),
    startAt: z
      .enum(["oldest", "newest"])
      .optional()
      .describe("Where a new sink starts: the whole log ('oldest', default) or events from now on"),
    delivery: deliverySchema.optional(),
  })
  .superRefine((sink, context) => {
    const need = (key: "url" | "path" | "token" | "secret", what: string) => {
      if (sink[key] === undefined) context.addIssue({ code: "custom", path: [key], message: what });
    };
    const literalUrl = sink.url !== undefined && !/^(env:|file:\/)/.test(sink.url) ? sink.url : undefined;
    switch (sink.type) {
      case "file":
        need("path", "a 'path' for a file sink");
        break;
      case "syslog":
        need("url", "a 'url' such as 'tcp+tls://siem.internal:6514' for a syslog sink");
        if (
          literalUrl !== undefined &&
          !/^(udp|tcp|tls|tcp\+tls):\/\/[^/?#]+:[0-9]{1,5}\/?$/.test(literalUrl)
        )
          context.addIssue({
            code: "custom",
            path: ["url"],
            message: "a syslog address 'udp://', 'tcp://' or 'tcp+tls://' with host and port",
          });
        break;
      case "splunk-hec":
        need("url", "a 'url' such as 'https://splunk.internal:8088' for a Splunk HEC sink");
        need("token", "a 'token' (a secret reference) for a Splunk HEC sink");
        break;
      case "webhook":
        need("url", "a 'url' such as 'https://soar.internal/firebreak' for a webhook sink");
        need("secret", "a 'secret' (a secret reference to a 'whsec_…' key) for a webhook sink");
        break;
    }
    if ((sink.type === "splunk-hec" || sink.type === "webhook") && literalUrl !== undefined) {
      if (!/^https?:\/\/[^\s]+$/.test(literalUrl))
        context.addIssue({ code: "custom", path: ["url"], message: "an http:// or https:// URL" });
    }
    if (sink.rotate !== undefined && sink.type !== "file")
      context.addIssue({ code: "custom", path: ["rotate"], message: "'rotate' only on a file sink" });
  });

/** http is only allowed to the local machine (a provider run for development or tests). */
function isHttpsOrLoopback(text: string): boolean {
  try {
    const url = new URL(text);
    if (url.protocol === "https:") return true;
    return url.protocol === "http:" && ["127.0.0.1", "[::1]", "localhost"].includes(url.hostname);
  } catch {
    return false;
  }
}

export const oidcSchema = z.strictObject({
  issuer: z
    .url()
    .refine(isHttpsOrLoopback, "an https URL (http only for 127.0.0.1, [::1] or localhost)")
    .describe("The provider's issuer identifier; its discovery document is read from there"),
  clientId: z.string().min(1).max(500),
  clientSecret: secretRefSchema
    .optional()
    .describe("Absent for a public client (PKCE only); the device flow usually needs a confidential client"),
  clientAuthMethod: z.enum(["client_secret_basic", "client_secret_post"]).default("client_secret_basic"),
  /** Where the provider sends the browser back; default `<server.publicUrl>/v1/auth/oidc/callback`. */
  redirectUrl: z
    .url()
    .refine(isHttpsOrLoopback, "an https URL (http only for 127.0.0.1, [::1] or localhost)")
    .optional()
    .describe("Default: <server.publicUrl>/v1/auth/oidc/callback; register it with the provider"),
  scopes: z
    .array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,200}$/, "a scope token"))
    .max(50)
    .refine((scopes) => scopes.includes("openid"), "the scopes must include 'openid'")
    .default(["openid", "profile", "email"]),
  usernameClaim: z
    .string()
    .min(1)
    .max(200)
    .default("preferred_username")
    .describe("The claim whose value becomes the Firebreak user name at first sign-in"),
  groupsClaim: z
    .string()
    .min(1)
    .max(200)
    .default("groups")
    .describe("The claim listing the user's groups; a dotted path such as 'realm_access.roles' is followed"),
  groupMap: z
    .record(z.string().min(1).max(256), z.union([groupNameSchema, z.array(groupNameSchema).max(50)]))
    .optional()
    .describe(
      "Provider group -> Firebreak group(s); unmapped groups are kept only when they are valid names",
    ),
  allowedGroups: z
    .array(groupNameSchema)
    .optional()
    .describe("Only members of one of these (Firebreak) groups may sign in"),
});
export type OidcConfig = z.output<typeof oidcSchema>;

export const configSchema = z.strictObject({
  version: z.literal(1).describe("Configuration format version; always 1"),
  /** Principals who may administer Firebreak (users, tokens, revoke any grant, read all audit). */
  administrators: z.array(principalRefSchema).optional(),
  /** Principals who may read every request, grant and audit event, and review break-glass uses. */
  auditors: z.array(principalRefSchema).optional(),
  /**
   * Principals (usually one service user per agent) that may read the desired network state and
   * report what they applied: `firebreak agent` runs with such a user's token, not an administrator's.
   */
  agents: z
    .array(principalRefSchema)
    .optional()
    .describe("Principals that may follow the desired network state as enforcement agents"),
  directory: z
    .strictObject({
      users: z.record(
        userNameSchema,
        z.strictObject({
          groups: z.array(groupNameSchema).default([]),
          email: z.string().max(320).optional(),
          name: z.string().max(200).optional(),
        }),
      ),
    })
    .optional(),
  zones: z
    .record(nameSchema, zoneSchema)
    .refine((zones) => Object.keys(zones).length > 0, "at least one zone")
    .describe("Segments of infrastructure, by name"),
  flows: z
    .array(flowSchema)
    .optional()
    .describe("Standing allowed network paths between zones; everything else is denied"),
  resources: z
    .record(nameSchema, resourceSchema)
    .optional()
    .describe("Databases, host groups and services inside zones, by name"),
  standing: z.array(standingBindingSchema).optional().describe("Permanent least-privilege role grants"),
  breakGlass: z
    .array(breakGlassPolicySchema)
    .optional()
    .describe("Rules, written ahead of time, under which a principal may elevate in a zone"),
  identity: z
    .strictObject({
      oidc: oidcSchema.optional().describe("Sign-in through an OpenID Connect provider (see src/identity)"),
      sessionLifetime: durationSchema
        .refine((ms) => ms >= 60_000 && ms <= 30 * 86_400_000, "a duration from 1m to 30d")
        .optional()
        .describe("How long a console or CLI sign-in session lasts (default 12h, at most 30d)"),
      /** How a user's first factor is protected when only their sign-in vouches for it (src/factors/NOTES.md). */
      factorEnrolment: z
        .strictObject({
          settle: durationSchema
            .refine((ms) => ms >= 5 * 60_000 && ms <= 30 * 86_400_000, "a duration from 5m to 30d")
            .optional()
            .describe(
              "How long a first factor enrolled with only a sign-in waits before it counts (default 24h)",
            ),
          requireCode: z
            .boolean()
            .optional()
            .describe("A first factor needs an administrator's enrolment code ('firebreak mfa reset USER')"),
        })
        .optional(),
      /** WebAuthn relying party: the console's host name and the origins it is served from. */
      webauthn: z
        .strictObject({
          rpId: z.string().min(1).max(253).default("localhost"),
          rpName: z.string().min(1).max(100).default("Firebreak"),
          origins: z.array(z.url()).min(1).default(["http://localhost:8080"]),
        })
        .optional(),
    })
    .optional(),
  /** How the server is reached. */
  server: z
    .strictObject({
      /** The address people use for the console, for links in notifications and audit events. */
      publicUrl: z.url().optional(),
      /** When set, `GET /metrics` requires `Authorization: Bearer <this token>`. */
      metricsToken: secretRefSchema.optional(),
      /**
       * Proxies whose X-Forwarded-For is believed (CIDRs). From anyone else the header is ignored and
       * the connection's own address decides the source zone.
       */
      trustedProxies: z
        .array(z.string().regex(/^[0-9a-fA-F:.]+(\/[0-9]{1,3})?$/, "an IP address or CIDR"))
        .optional(),
    })
    .optional(),
  signals: z
    .strictObject({
      alertmanager: z
        .strictObject({ token: secretRefSchema, zoneLabel: z.string().min(1).default("zone") })
        .optional(),
      pagerduty: z
        .strictObject({
          secret: secretRefSchema,
          services: z.record(z.string().min(1), nameSchema).optional(),
          tolerance: durationSchema
            .optional()
            .describe("How far an event's occurred_at may be from the server's clock (default 30m)"),
        })
        .optional(),
      generic: z
        .strictObject({
          secret: secretRefSchema,
          tolerance: durationSchema
            .optional()
            .describe("How far x-firebreak-timestamp may be from the server's clock (default 5m)"),
        })
        .optional(),
    })
    .optional(),
  notify: z.array(notifySchema).optional(),
  audit: z
    .strictObject({
      signingKey: secretRefSchema
        .optional()
        .describe("Ed25519 private key (PEM) that signs checkpoints of the chain's head"),
      checkpoint: z
        .strictObject({
          interval: durationSchema
            .optional()
            .describe("How often the head is signed when it moved (default 5m)"),
        })
        .optional(),
      anchor: z
        .strictObject({
          file: z
            .string()
            .regex(/^\//, "an absolute path, outside the data directory")
            .max(4096)
            .describe(
              "Where the newest signed checkpoint is written (atomically) after each checkpoint, for 'audit verify --anchor' and the start-up check; keep it outside the data directory",
            ),
        })
        .optional()
        .describe("Anchor the chain's head outside the database (needs signingKey)"),
      delivery: deliverySchema.optional().describe("Retry settings for every sink; a sink may override them"),
      sinks: z.array(sinkSchema).optional(),
    })
    .optional(),
});

export type FirebreakConfig = z.output<typeof configSchema>;
export type ZoneConfig = z.output<typeof zoneSchema>;
export type FlowConfig = z.output<typeof flowSchema>;
export type ResourceConfig = z.output<typeof resourceSchema>;
export type StandingBinding = z.output<typeof standingBindingSchema>;
export type BreakGlassPolicy = z.output<typeof breakGlassPolicySchema>;
export type ApprovalStep = z.output<typeof approvalStepSchema>;
export type AuditSinkConfig = z.output<typeof sinkSchema>;
export type AuditDeliveryConfig = z.output<typeof deliverySchema>;

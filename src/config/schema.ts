import { z } from "zod";
import { drillsSchema } from "../drills/drill.settings.js";
import { emergencySettingsSchema } from "../emergency/emergency.settings.js";
import { gatewaySettingsSchema } from "../gateway/gateway.settings.js";
import { plannedResourceTypes, resourceSettings, signalSettings, sinkSettings } from "../plugins/settings.js";
import type { ResourceSettings, SinkSettings } from "../plugins/settings-contract.js";
import {
  addressSchema,
  alternatives,
  celSchema,
  cidrSchema,
  delaySchema,
  durationSchema,
  groupNameSchema,
  kindsLabel,
  nameSchema,
  portSpecSchema,
  principalRefSchema,
  SEVERITIES,
  secretRefSchema,
  userNameSchema,
} from "./primitives.js";

/**
 * The shape of `firebreak.yaml`. This file is the single source of truth for the configuration:
 * the loader validates against it, `firebreak schema` prints it as JSON Schema, and every other
 * module reads the parsed `FirebreakConfig` type.
 *
 * What a resource, sink or signal source of one kind says is that plug-in's to declare, in its own
 * settings file; the sections here are built from the registries in `plugins/settings.ts` as
 * discriminated unions on `type`. The value types (names, references, durations) are in
 * `primitives.ts`, re-exported here for the modules that read them from this file.
 */

export { SYSLOG_FACILITIES } from "../audit/sinks/syslog.settings.js";
export {
  addressSchema,
  celSchema,
  durationSchema,
  groupNameSchema,
  NAME_PATTERN,
  nameSchema,
  type PrincipalRef,
  portSpecSchema,
  principalRefSchema,
  SEVERITIES,
  type SecretRef,
  type Severity,
  secretRefSchema,
  USER_PATTERN,
  userNameSchema,
} from "./primitives.js";

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

export type ResourceType = keyof typeof resourceSettings;
/** The resource types this build implements, in the order `validate` lists them. */
export const RESOURCE_TYPES = Object.keys(resourceSettings) as ResourceType[];

const atLeastOneRole = (roles: Record<string, unknown>) => Object.keys(roles).length > 0;

/** A resource of one type: the keys every resource has, then the connector's own, then its roles. */
function resourceBranch<Type extends string, Settings extends ResourceSettings>(
  type: Type,
  settings: Settings,
) {
  return z.strictObject({
    zone: nameSchema,
    type: z.literal(type),
    description: z.string().max(500).optional(),
    address: addressSchema.optional(),
    connection: z
      .record(
        z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,62}$/),
        z.union([secretRefSchema, z.string().max(1000)]),
      )
      .optional(),
    ...(settings.resource as Settings["resource"]),
    roles: z
      .record(
        nameSchema,
        z.strictObject({
          ...(settings.role as Settings["role"]),
          description: z.string().max(500).optional(),
        }),
      )
      .refine(atLeastOneRole, "at least one role"),
  });
}

type ResourceBranches = {
  [Type in ResourceType]: ReturnType<typeof resourceBranch<Type, (typeof resourceSettings)[Type]>>;
};
type ResourceBranch = ResourceBranches[ResourceType];

/** Planned types are refused at their `type`, which names the types this build has. */
const plannedResourceBranches = new Set<z.ZodType>(
  Object.entries(plannedResourceTypes).map(([type, what]) =>
    z.looseObject({ type: z.literal(type) }).superRefine((_resource, context) =>
      context.addIssue({
        code: "custom",
        path: ["type"],
        message: `a resource type this build implements (${RESOURCE_TYPES.join(", ")}); '${type}' (${what}) has no connector yet`,
      }),
    ),
  ),
);
/** Whether `schema` is the branch of a planned resource type, which the JSON Schema marks as refused. */
export const isPlannedResourceBranch = (schema: unknown) => plannedResourceBranches.has(schema as z.ZodType);

export const resourceSchema = z.discriminatedUnion("type", [
  ...RESOURCE_TYPES.map((type) => resourceBranch(type, resourceSettings[type])),
  ...plannedResourceBranches,
] as unknown as [ResourceBranch, ...ResourceBranch[]]);
kindsLabel.add(resourceSchema, {
  describe: (kinds) => `a resource of type ${alternatives(kinds.map((kind) => `'${kind}'`))}`,
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
  requireGateway: z
    .boolean()
    .optional()
    .describe(
      "Grants of this policy reach PostgreSQL resources only through the gateway (gateway.postgres): no database password is shown",
    ),
});

const notifySchema = z.strictObject({
  type: z.enum(["slack", "webhook"]),
  url: z.union([secretRefSchema, z.url()]),
  secret: secretRefSchema.optional(),
});

export type SinkType = keyof typeof sinkSettings;
/** The audit sink types, in the order `validate` lists them. */
export const SINK_TYPES = Object.keys(sinkSettings) as [SinkType, ...SinkType[]];
export const SINK_FORMATS = ["rfc5424", "cef", "ocsf", "json"] as const;
export type SinkFormat = (typeof SINK_FORMATS)[number];

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

/** A sink of one type: the keys every sink has, with the sink's own after `format`. */
function sinkBranch<Type extends string, Settings extends SinkSettings>(type: Type, settings: Settings) {
  return z.strictObject({
    name: nameSchema,
    type: z.literal(type),
    format: z.enum(SINK_FORMATS).optional(),
    ...(settings.sink as Settings["sink"]),
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
    appName: z
      .string()
      .regex(/^[!-~]{1,48}$/, "1-48 printable ASCII characters")
      .optional()
      .describe("APP-NAME in syslog headers, in every format that has one (default firebreak)"),
    startAt: z
      .enum(["oldest", "newest"])
      .optional()
      .describe("Where a new sink starts: the whole log ('oldest', default) or events from now on"),
    delivery: deliverySchema.optional(),
  });
}

type SinkBranches = {
  [Type in SinkType]: ReturnType<typeof sinkBranch<Type, (typeof sinkSettings)[Type]>>;
};
type SinkBranch = SinkBranches[SinkType];

const sinkSchema = z.discriminatedUnion(
  "type",
  SINK_TYPES.map((type) => sinkBranch(type, sinkSettings[type])) as [SinkBranch, ...SinkBranch[]],
);
kindsLabel.add(sinkSchema, { describe: (kinds) => `a ${alternatives(kinds)} sink` });

type SignalSections = {
  [Kind in keyof typeof signalSettings]: z.ZodOptional<(typeof signalSettings)[Kind]["schema"]>;
};

/** `signals`: one section per signal source, each the source's own settings. */
const signalsSchema = z.strictObject(
  Object.fromEntries(
    Object.entries(signalSettings).map(([kind, settings]) => [kind, settings.schema.optional()]),
  ) as SignalSections,
);

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
  signals: signalsSchema.optional(),
  gateway: gatewaySettingsSchema.optional(),
  emergency: emergencySettingsSchema.optional(),
  drills: drillsSchema.optional(),
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
/** A resource as configured; narrow it on `type` (or with `resourceOfType`) to read a connector's own keys. */
export type ResourceConfig = z.output<typeof resourceSchema>;
export type ResourceConfigOf<Type extends ResourceType> = Extract<ResourceConfig, { type: Type }>;
export type ResourceRoleConfigOf<Type extends ResourceType> = ResourceConfigOf<Type>["roles"][string];
export type StandingBinding = z.output<typeof standingBindingSchema>;
export type BreakGlassPolicy = z.output<typeof breakGlassPolicySchema>;
export type ApprovalStep = z.output<typeof approvalStepSchema>;
/** A sink as configured; narrow it on `type` (or with `sinkOfType`) to read a sink's own keys. */
export type AuditSinkConfig = z.output<typeof sinkSchema>;
export type AuditSinkConfigOf<Type extends SinkType> = Extract<AuditSinkConfig, { type: Type }>;
export type AuditDeliveryConfig = z.output<typeof deliverySchema>;

/**
 * `resource` as the `type` connector's settings, for a connector at its boundary. A resource of
 * another type reaching a connector is a wiring mistake, refused rather than read as something else.
 */
export function resourceOfType<Type extends ResourceType>(
  resource: ResourceConfig,
  type: Type,
): ResourceConfigOf<Type> {
  if (resource.type !== type)
    throw new TypeError(`a '${resource.type}' resource given to the '${type}' connector`);
  return resource as ResourceConfigOf<Type>;
}

/** `sink` as the `type` sink's settings; see `resourceOfType`. */
export function sinkOfType<Type extends SinkType>(
  sink: AuditSinkConfig,
  type: Type,
): AuditSinkConfigOf<Type> {
  if (sink.type !== type) throw new TypeError(`a '${sink.type}' sink given to the '${type}' sink`);
  return sink as AuditSinkConfigOf<Type>;
}

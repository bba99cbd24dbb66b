import { z } from "zod";
import { parseDuration } from "./duration.js";

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
  .regex(/^[1-9][0-9]{0,5}(s|m|h|d)$/, "a duration such as '90s', '15m', '1h' or '7d'")
  .transform((text) => parseDuration(text));

const cidrSchema = z
  .string()
  .regex(
    /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\/(3[0-2]|[12]?\d)$|^[0-9a-fA-F:]+\/(12[0-8]|1[01]\d|[1-9]?\d)$/,
    "an IPv4 or IPv6 CIDR such as '10.20.0.0/24'",
  );

const PORT_SPEC = /^(tcp|udp)\/([1-9][0-9]{0,4})(-([1-9][0-9]{0,4}))?$/;

/** `tcp/5432`, `udp/53`, `tcp/8000-8100`. */
export const portSpecSchema = z
  .string()
  .regex(PORT_SPEC, "a port such as 'tcp/5432', 'udp/53' or 'tcp/8000-8100'")
  .refine((spec) => {
    const match = PORT_SPEC.exec(spec);
    // A malformed spec is the regex's to report; one issue per mistake.
    if (match === null) return true;
    const low = Number(match[2]);
    const high = match[4] === undefined ? low : Number(match[4]);
    return high <= 65_535 && low <= high;
  }, "ports from 1 to 65535, a range written low-high");

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

const sinkSchema = z.strictObject({
  name: nameSchema,
  type: z.enum(["syslog", "file", "splunk-hec", "webhook"]),
  url: z.union([secretRefSchema, z.string().min(1).max(2000)]).optional(),
  path: z.string().min(1).max(4096).optional(),
  format: z.enum(["rfc5424", "cef", "ocsf", "json"]).optional(),
  token: secretRefSchema.optional(),
  secret: secretRefSchema.optional(),
});

export const configSchema = z.strictObject({
  version: z.literal(1).describe("Configuration format version; always 1"),
  /** Principals who may administer Firebreak (users, tokens, revoke any grant, read all audit). */
  administrators: z.array(principalRefSchema).optional(),
  /** Principals who may read every request, grant and audit event, and review break-glass uses. */
  auditors: z.array(principalRefSchema).optional(),
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
      oidc: z
        .strictObject({
          issuer: z.url(),
          clientId: z.string().min(1),
          clientSecret: secretRefSchema.optional(),
          groupsClaim: z.string().min(1).default("groups"),
        })
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
        })
        .optional(),
      generic: z.strictObject({ secret: secretRefSchema }).optional(),
    })
    .optional(),
  notify: z.array(notifySchema).optional(),
  audit: z
    .strictObject({
      signingKey: secretRefSchema.optional(),
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

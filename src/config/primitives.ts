import { z } from "zod";
import { parseDuration } from "./duration.js";
import {
  DURATION_HINT,
  DURATION_PATTERN,
  NAME_PATTERN,
  PORT_SPEC_PATTERN,
  parsePortSpec,
} from "./patterns.js";

/**
 * The value types the configuration is written in (names, references, durations, addresses), apart
 * from the schema that assembles them: plug-ins' settings files build on these, and the schema is
 * built from the plug-ins, so both import this file and neither imports the other.
 *
 * Names that later become SQL identifiers, firewall rule names or shell words are restricted to a
 * safe alphabet here, at the edge, so that no zone or role name can ever become syntax.
 */

export { NAME_PATTERN };
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

export const cidrSchema = z
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
export const addressSchema = z
  .string()
  .regex(ADDRESS, "an address such as '10.30.0.5:5432'")
  .refine((address) => Number(ADDRESS.exec(address)?.[2] ?? 0) <= 65_535, "a port from 1 to 65535");

/** A CEL expression over `principal`, `request`, `signals` and `now`; compiled by the policy module. */
export const celSchema = z
  .string()
  .min(1, "a CEL expression")
  .max(4096, "a CEL expression of at most 4096 characters");

/** Event severities, lowest first; sinks filter on a minimum. */
export const SEVERITIES = ["info", "low", "medium", "high", "critical"] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Short delays for delivery timing: `250ms`, `2s`, `5m`, `1h`; parsed to milliseconds. */
export const delaySchema = z
  .string()
  .regex(/^[1-9][0-9]{0,5}(ms|s|m|h)$/, "a delay such as '500ms', '2s' or '5m'")
  .transform((text) => (text.endsWith("ms") ? Number(text.slice(0, -2)) : parseDuration(text)));

const SIZE_UNITS = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 } as const;
/** `10MiB`, `500KB`, `1GB`; parsed to bytes. */
export const sizeSchema = z
  .string()
  .regex(/^[1-9][0-9]{0,9}(B|KB|MB|GB|KiB|MiB|GiB)$/, "a size such as '500KB', '10MiB' or '1GB'")
  .transform((text) => {
    const match = /^([0-9]+)([A-Za-z]+)$/.exec(text) as RegExpExecArray;
    return Number(match[1]) * SIZE_UNITS[match[2] as keyof typeof SIZE_UNITS];
  });

/**
 * What a plug-in says when one of its required settings is left out, in its own words ("a 'path'
 * for a file sink"); the loader reports it instead of the generic "missing required key". Kept in a
 * registry of its own so it stays out of the published JSON Schema.
 */
export const whenMissing = z.registry<{ expected: string }>();

/** `schema`, required, with the phrase the loader uses when it is missing. */
export function required<Schema extends z.ZodType>(schema: Schema, expected: string): Schema {
  // A copy, so that a shared schema (secretRefSchema) carries the phrase only where it is meant.
  const copy = schema.clone() as Schema;
  whenMissing.add(copy, { expected });
  return copy;
}

/**
 * Prefix of every account a connector creates on a target (default `fb_`). The reconciler treats
 * every account with the prefix as Firebreak's, so two Firebreak installations sharing a target
 * need different prefixes.
 */
export const namePrefixSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9]{0,7}_$/,
    "a prefix of 1-8 lowercase letters or digits followed by '_', such as 'fb_'",
  );

/**
 * How a discriminated union names its kinds in "only on …" messages, for a key one kind has and
 * another does not (`rotate` on a syslog sink: "expected 'rotate' only on a file sink").
 */
export const kindsLabel = z.registry<{ describe(kinds: readonly string[]): string }>();

/** `a`, `a or b`, `a, b or c`. */
export function alternatives(words: readonly string[]): string {
  return words.length <= 1 ? (words[0] ?? "") : `${words.slice(0, -1).join(", ")} or ${words.at(-1)}`;
}

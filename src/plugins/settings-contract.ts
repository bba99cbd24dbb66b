import type { z } from "zod";

/**
 * The contract of a plug-in's settings: what it reads from `firebreak.yaml` and what it checks when
 * the file is loaded. The configuration schema is built from these, so this file and every
 * `*.settings.ts` import only zod and the configuration's value types (never `config/schema.ts`,
 * never an implementation): `validate` loads no driver and the schema has no import cycle.
 */

/** A position in the configuration document: `["resources", "pg", "roles", "admin", "grants", 0]`. */
export type ConfigPath = readonly (string | number)[];

/**
 * What a plug-in's load-time check reports through. Checks read the raw document (every access
 * defensive), so their findings are reported together with the schema's, each at its position.
 */
export interface SettingsReport {
  error(path: ConfigPath, message: string): void;
  warn(path: ConfigPath, message: string): void;
  /** Refuses `value` at `path` when it names no zone of the configuration. */
  zone(path: ConfigPath, value: unknown): void;
}

/** A mapping from the raw document, before the schema shaped it. */
export type RawSettings = Readonly<Record<string, unknown>>;

/**
 * A connector's settings: the keys it adds to a resource of its type (beside `zone`, `type`,
 * `description`, `address`, `connection` and `roles`, which every resource has), the keys of its
 * roles, and the checks a schema cannot express. Every role key is optional: a role may be named
 * before it maps to anything.
 */
export interface ResourceSettings {
  readonly resource: z.ZodRawShape;
  readonly role: z.ZodRawShape;
  /**
   * The connector creates accounts named with the resource's `namePrefix` and its reconciler claims
   * every account under that prefix: two resources sharing a target and a prefix are refused.
   */
  readonly prefixedAccounts?: boolean;
  /** Load-time checks of one resource of this type at `path`. */
  check?(resource: RawSettings, path: ConfigPath, report: SettingsReport): void;
}

/** A sink's settings: the keys it adds to a sink of its type, beside the ones every sink has. */
export interface SinkSettings {
  readonly sink: z.ZodRawShape;
}

/** A signal source's settings: its section under `signals`, and its load-time checks. */
export interface SignalSettings {
  readonly schema: z.ZodObject;
  check?(settings: RawSettings, path: ConfigPath, report: SettingsReport): void;
}

/**
 * An enforcer's settings: the options `firebreak serve --enforcer KIND` passes it (from flags, not
 * from the file), validated before it starts.
 */
export interface EnforcerSettings {
  readonly options: z.ZodObject;
}

import { z } from "zod";

/** The server itself: health, readiness, configuration reload, incidents declared by hand. */

export const healthReply = z.object({ status: z.literal("ok") });

export const readyReply = z.object({
  /** `not-current`: this replica cannot confirm it has applied every committed change (`reason` says why). */
  status: z.enum(["ready", "starting", "not-current"]),
  database: z.literal("ok"),
  reason: z.string().optional(),
});

const namedChanges = z.object({
  added: z.array(z.string()),
  removed: z.array(z.string()),
  changed: z.array(z.string()),
});
const countedChanges = z.object({ added: z.number(), removed: z.number() });

/** What a new configuration changes (src/config/diff.ts `ConfigChangeSummary`). */
export const configChangeSummarySchema = z.object({
  zones: namedChanges,
  resources: namedChanges,
  /** Break-glass policies, by name. */
  policies: namedChanges,
  flows: countedChanges,
  standing: countedChanges,
  users: namedChanges,
  /** Top-level sections that differ in a way the counts above do not show. */
  otherSections: z.array(z.string()),
  unchanged: z.boolean(),
});
export type ConfigChangeSummary = z.infer<typeof configChangeSummarySchema>;

export const reloadReply = z.object({
  changed: z.boolean(),
  digest: z.string(),
  summary: configChangeSummarySchema,
});

export const incidentBody = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, "an incident id of letters, digits and ._:-"),
  zone: z.string().min(1).max(63),
  severity: z.number().int().min(1).max(5).default(3),
  title: z.string().max(500).default(""),
  status: z.enum(["open", "resolved"]).default("open"),
});

export const incidentReply = z.object({ id: z.string(), zone: z.string(), status: z.string() });

/** What a signal webhook did with a delivery. */
export const signalReply = z.object({
  applied: z.number(),
  ignored: z.number(),
  /** Events older than what their incident last applied, so not applied. */
  superseded: z.number(),
});

/** `GET /metrics`: the Prometheus text format, not JSON. */
export const metricsReply = z.string();

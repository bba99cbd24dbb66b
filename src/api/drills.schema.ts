import { z } from "zod";

/** Drills and readiness (issue 16): `/v1/drills`, `/v1/drills/{name}/run`, `/v1/readiness`. */

export const drillStepSchema = z.object({
  name: z.string(),
  outcome: z.enum(["passed", "failed", "skipped"]),
  ms: z.number(),
  detail: z.record(z.string(), z.unknown()),
  message: z.string().nullable(),
});
export type DrillStepView = z.infer<typeof drillStepSchema>;

export const drillRunSchema = z.object({
  id: z.string(),
  drill: z.string(),
  zone: z.string(),
  trigger: z.enum(["schedule", "manual"]),
  actor: z.string(),
  grantId: z.string().nullable(),
  outcome: z.enum(["running", "passed", "failed", "skipped", "abandoned"]),
  failedStep: z.string().nullable(),
  steps: z.array(drillStepSchema),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
});
export type DrillRunView = z.infer<typeof drillRunSchema>;

export const drillStatusSchema = z.object({
  name: z.string(),
  policy: z.string(),
  zone: z.string(),
  resource: z.string(),
  role: z.string(),
  schedule: z.string(),
  nextRunAt: z.string().nullable(),
  overdue: z.boolean(),
  lastPassedAt: z.string().nullable(),
  last: drillRunSchema.nullable(),
});
export type DrillStatusView = z.infer<typeof drillStatusSchema>;

export const drillsReply = z.object({ drills: z.array(drillStatusSchema) });
export const drillRunReply = z.object({ run: drillRunSchema });

/**
 * One line of `POST /v1/drills/{name}/run` asked with `Accept: application/x-ndjson`: a `step` as
 * each one ends, then the `run` (the same document the JSON reply holds), or an `error` when the
 * run broke off after streaming began (before that, the error is an ordinary HTTP error reply).
 */
export const drillRunStreamLine = z.union([
  z.strictObject({ step: drillStepSchema }),
  z.strictObject({ run: drillRunSchema }),
  z.strictObject({ error: z.object({ code: z.string(), message: z.string(), requestId: z.string() }) }),
]);
export type DrillRunStreamLine = z.infer<typeof drillRunStreamLine>;
export const drillNameParams = z.object({ name: z.string().min(1).max(63) });

const blockerSchema = z.object({ code: z.string(), message: z.string() });

export const policyReadinessSchema = z.object({
  policy: z.string(),
  zone: z.string(),
  roles: z.array(z.string()),
  ready: z.boolean(),
  readyUsers: z.array(z.string()),
  eligible: z.array(z.object({ user: z.string(), ready: z.boolean(), blockers: z.array(blockerSchema) })),
  blockers: z.array(blockerSchema),
  unknown: z.array(z.string()),
});
export type PolicyReadinessView = z.infer<typeof policyReadinessSchema>;

export const readinessReply = z.object({ policies: z.array(policyReadinessSchema) });

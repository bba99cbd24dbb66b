import { Cron } from "croner";
import { z } from "zod";
import { durationSchema, NAME_PATTERN, nameSchema, principalRefSchema } from "../config/primitives.js";

/** Whether croner reads `pattern` (five or six fields, or a nickname such as `@weekly`). */
function cronProblem(pattern: string): string | null {
  try {
    new Cron(pattern, { paused: true, timezone: "UTC" });
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : "not a cron expression";
  }
}

/**
 * `drills[]`: a scheduled run of a break-glass policy's whole path against one resource, by
 * `system:drill` (src/drills/NOTES.md). Exactly one of `every` and `cron` says when.
 */
export const drillSchema = z
  .strictObject({
    name: nameSchema.describe("The drill's name, unique among drills"),
    policy: nameSchema.describe("The break-glass policy whose path is drilled"),
    resource: nameSchema.describe("The resource (in the policy's zone) the drill's credential is issued on"),
    role: nameSchema.describe("The role the drill's credential has (one of the policy's roles)"),
    every: durationSchema
      .refine((ms) => ms >= 60_000, "at least 1m")
      .optional()
      .describe("Run at this interval (such as 7d)"),
    cron: z
      .string()
      .min(1)
      .max(200)
      .superRefine((pattern, context) => {
        const problem = cronProblem(pattern);
        if (problem) context.addIssue({ code: "custom", message: `expected a cron expression: ${problem}` });
      })
      .optional()
      .describe("Run at the times of this cron expression, in UTC (such as '0 3 * * 1')"),
    notify: z
      .array(principalRefSchema)
      .default([])
      .describe("Who is told when the drill fails or is overdue: 'group:NAME' or 'user:NAME'"),
    duringIncident: z
      .enum(["wait", "skip"])
      .default("wait")
      .describe("While a real incident is open in the zone: wait until it is resolved, or skip this run"),
    grantFor: durationSchema
      .refine((ms) => ms >= 60_000 && ms <= 3_600_000, "a duration from 1m to 1h")
      .optional()
      .describe("How long the drill's grant lasts at most if the drill dies mid-way (default 5m)"),
    deliveryTimeout: durationSchema
      .refine((ms) => ms >= 1_000 && ms <= 600_000, "a duration from 1s to 10m")
      .optional()
      .describe("How long the drill waits for every audit sink to receive its events (default 30s)"),
  })
  .refine((drill) => (drill.every === undefined) !== (drill.cron === undefined), {
    message: "a drill needs exactly one of 'every' (an interval) and 'cron' (a cron expression)",
  });
export type DrillSettings = z.output<typeof drillSchema>;

export const drillsSchema = z
  .array(drillSchema)
  .describe("Scheduled break-glass drills: the whole path run against a real target by system:drill");

/** Default lifetime of a drill's grant: the backstop when the drill's process dies mid-way. */
export const DEFAULT_DRILL_GRANT_MS = 5 * 60_000;
/** Default wait for every audit sink to confirm the drill's events. */
export const DEFAULT_DELIVERY_TIMEOUT_MS = 30_000;

/**
 * The next time a drill is due after `after` (epoch ms): `every` after the last run, or the cron
 * expression's next time (UTC). Null when a cron expression has no further time.
 */
export function nextDrillTime(drill: Pick<DrillSettings, "every" | "cron">, after: number): number | null {
  if (drill.every !== undefined) return after + drill.every;
  if (drill.cron === undefined) return null;
  const next = new Cron(drill.cron, { paused: true, timezone: "UTC" }).nextRun(new Date(after));
  return next ? next.getTime() : null;
}

/**
 * How long after its due time a drill without a success counts as overdue: one more period (the
 * interval, or the gap between the cron expression's next two times), so a single failed or
 * skipped run is a failure alert, and a second missed one an overdue alert.
 */
export function drillPeriodMs(drill: Pick<DrillSettings, "every" | "cron">, at: number): number {
  if (drill.every !== undefined) return drill.every;
  const first = nextDrillTime(drill, at);
  const second = first === null ? null : nextDrillTime(drill, first);
  return first !== null && second !== null ? second - first : 86_400_000;
}

type Segment = string | number;
type RawObject = Record<string, unknown>;
const isRaw = (value: unknown): value is RawObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const text = (value: unknown) => (typeof value === "string" ? value : undefined);

/**
 * What the schema cannot see: a drill names an existing break-glass policy, a resource the policy
 * covers, a role of both, and a name no other drill has. Reported at each drill's key by
 * `config/load.ts`, like every other reference.
 */
export function drillReferenceProblems(raw: RawObject): { path: Segment[]; message: string }[] {
  const problems: { path: Segment[]; message: string }[] = [];
  if (!Array.isArray(raw.drills)) return problems;
  const policies = new Map<string, RawObject>();
  for (const policy of Array.isArray(raw.breakGlass) ? raw.breakGlass : [])
    if (isRaw(policy) && text(policy.name)) policies.set(text(policy.name) as string, policy);
  const resources = isRaw(raw.resources) ? raw.resources : {};
  const names = new Set<string>();
  raw.drills.forEach((drill, index) => {
    if (!isRaw(drill)) return;
    const path: Segment[] = ["drills", index];
    const name = text(drill.name);
    if (name !== undefined) {
      if (names.has(name))
        problems.push({ path: [...path, "name"], message: `drill name '${name}' is used twice` });
      names.add(name);
    }
    const policyName = text(drill.policy);
    const resourceName = text(drill.resource);
    const role = text(drill.role);
    if (policyName === undefined || !NAME_PATTERN.test(policyName)) return;
    const policy = policies.get(policyName);
    if (!policy) {
      problems.push({
        path: [...path, "policy"],
        message: `unknown break-glass policy '${policyName}'; policies are: ${[...policies.keys()].join(", ") || "none"}`,
      });
      return;
    }
    if (resourceName === undefined || !NAME_PATTERN.test(resourceName)) return;
    const resource = resources[resourceName];
    if (!isRaw(resource)) {
      problems.push({ path: [...path, "resource"], message: `unknown resource '${resourceName}'` });
      return;
    }
    if (resource.zone !== policy.zone) {
      problems.push({
        path: [...path, "resource"],
        message: `resource '${resourceName}' is in zone '${String(resource.zone)}', not in policy '${policyName}''s zone '${String(policy.zone)}'`,
      });
      return;
    }
    const covered = Array.isArray(policy.resources) ? policy.resources : null;
    if (covered && !covered.includes(resourceName))
      problems.push({
        path: [...path, "resource"],
        message: `policy '${policyName}' does not cover resource '${resourceName}' (it names ${covered.join(", ")})`,
      });
    if (role === undefined || !NAME_PATTERN.test(role)) return;
    const policyRoles = Array.isArray(policy.roles) ? policy.roles : [];
    if (!policyRoles.includes(role))
      problems.push({
        path: [...path, "role"],
        message: `policy '${policyName}' does not grant role '${role}' (it grants ${policyRoles.join(", ")})`,
      });
    else if (!isRaw(resource.roles) || !(role in resource.roles))
      problems.push({ path: [...path, "role"], message: `resource '${resourceName}' has no role '${role}'` });
  });
  return problems;
}

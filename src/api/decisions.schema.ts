import { z } from "zod";
import { nameSchema } from "../config/primitives.js";
import { durationText } from "./common.schema.js";

/**
 * Decisions: `POST /v1/decisions` (explain) and `GET /v1/access` (the enforcement check). The
 * explanation is the policy engine's `Explanation` (src/policy/engine.ts) field for field, so
 * `firebreak explain` prints the same thing online and offline.
 */

export const decisionBody = z
  .strictObject({
    user: z.string().min(1).max(128).optional(),
    zone: nameSchema.optional(),
    resource: nameSchema.optional(),
    role: nameSchema,
    duration: durationText.optional(),
    reason: z.string().max(2000).default(""),
    ticket: z.string().max(200).nullish(),
    sourceZone: z.string().max(63).nullish(),
  })
  .refine(
    (b) => (b.zone === undefined) !== (b.resource === undefined),
    "exactly one of 'zone' or 'resource'",
  );

const reasonValue = z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(z.string())]);

/** One unmet condition: machine-readable (`code`, `expected`, `actual`) and in words (`message`). */
export const reasonSchema = z.object({
  code: z.string(),
  policy: z.string().optional(),
  /** For CONDITION_* reasons: which condition (`when` or `autoApprove.when`). */
  field: z.string().optional(),
  message: z.string(),
  expected: reasonValue.optional(),
  actual: reasonValue.optional(),
});
export type Reason = z.infer<typeof reasonSchema>;

const targetSchema = z.object({ zone: z.string(), resource: z.string().nullable() });

const approvalRequirement = z.object({ from: z.array(z.string()), count: z.number() });

const reviewRequirement = z.object({
  withinMs: z.number(),
  blockWhenOverdue: z.boolean(),
  /** Who may review; null means anyone other than the requester who may review in general. */
  by: z.array(z.string()).nullable(),
});

const standingBinding = z.object({
  group: z.string().optional(),
  user: z.string().optional(),
  zone: z.string().optional(),
  resource: z.string().optional(),
  role: z.string(),
});

/** What a break-glass outcome commits the lifecycle to. */
const breakGlassTerms = {
  policy: z.string(),
  target: targetSchema,
  role: z.string(),
  durationMs: z.number(),
  /** Any one of these, fresh within `factorFreshnessMs`, is needed at activation; empty means none. */
  factors: z.array(z.string()),
  factorFreshnessMs: z.number(),
  pendingExpiryMs: z.number(),
  review: reviewRequirement,
};

export const decisionSchema = z.union([
  z.object({
    outcome: z.literal("allow"),
    via: z.literal("standing"),
    target: targetSchema,
    role: z.string(),
    binding: standingBinding,
  }),
  z.object({ outcome: z.literal("allow"), via: z.enum(["auto-approve", "policy"]), ...breakGlassTerms }),
  z.object({
    outcome: z.literal("needs-approval"),
    ...breakGlassTerms,
    approvals: z.array(approvalRequirement),
  }),
  z.object({ outcome: z.literal("deny"), reasons: z.array(reasonSchema) }),
]);
export type Decision = z.infer<typeof decisionSchema>;

export const policyRequirementsSchema = z.object({
  eligible: z.array(z.string()),
  roles: z.array(z.string()),
  resources: z.array(z.string()).nullable(),
  approvals: z.array(approvalRequirement),
  factors: z.array(z.string()),
  factorFreshnessMs: z.number(),
  duration: z.object({ defaultMs: z.number(), maxMs: z.number() }),
  justification: z.object({ minLength: z.number(), ticketPattern: z.string().nullable() }),
  sourceZones: z.array(z.string()).nullable(),
  condition: z.string().nullable(),
  autoApproveCondition: z.string().nullable(),
  review: reviewRequirement,
});
export type PolicyRequirements = z.infer<typeof policyRequirementsSchema>;

export const policyExplanationSchema = z.object({
  policy: z.string(),
  /** True when the policy covers the requested target and role. */
  applies: z.boolean(),
  /** Every unmet condition when it applies; otherwise why it does not apply. */
  unmet: z.array(reasonSchema),
  requires: policyRequirementsSchema,
});

export const explanationSchema = z.object({
  decision: decisionSchema,
  target: targetSchema.nullable(),
  /** Standing bindings that would give this role on this target, and whether the principal holds them. */
  standing: z.array(z.object({ binding: standingBinding, holds: z.boolean() })),
  /** Every break-glass policy of the target's zone, in configuration order. */
  policies: z.array(policyExplanationSchema),
});
export type Explanation = z.infer<typeof explanationSchema>;

export const decisionReply = z.object({ user: z.string(), explanation: explanationSchema });
export type DecisionReply = z.infer<typeof decisionReply>;

export const accessQuery = z
  .object({
    user: z.string().min(1).max(128),
    zone: nameSchema.optional(),
    resource: nameSchema.optional(),
    role: nameSchema,
  })
  .refine(
    (q) => (q.zone === undefined) !== (q.resource === undefined),
    "exactly one of 'zone' or 'resource'",
  );

export const accessReply = z.object({
  user: z.string(),
  zone: z.string().nullable(),
  resource: z.string().nullable(),
  role: z.string(),
  allowed: z.boolean(),
});

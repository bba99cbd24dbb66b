import { z } from "zod";
import type { GrantEffect, GrantRecord } from "./grant.repo.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export const grantViewSchema = z.object({
  id: z.string(),
  requestId: z.string(),
  user: z.string(),
  zone: z.string(),
  resource: z.string().nullable(),
  role: z.string(),
  policy: z.string().nullable(),
  /** The zone the requester came from: where the grant's network path starts. */
  sourceZone: z.string().nullable(),
  state: z.string(),
  startsAt: z.string(),
  endsAt: z.string(),
  secondsLeft: z.number(),
  closedAt: z.string().nullable(),
  closeReason: z.string().nullable(),
  closedBy: z.string().nullable(),
  factor: z.object({ kind: z.string(), at: z.string() }).nullable(),
  revocation: z.object({ status: z.string(), attempts: z.number(), nextAttemptAt: z.string().nullable() }),
  review: z.object({
    state: z.string(),
    dueAt: z.string().nullable(),
    overdue: z.boolean(),
    reviewer: z.string().nullable(),
    notes: z.string().nullable(),
    reviewedAt: z.string().nullable(),
  }),
  effects: z.array(
    z.object({
      resource: z.string(),
      connector: z.string(),
      state: z.string(),
      /** Where the access leads (`host:port`): a network path's destination or a login's server. */
      address: z.string().nullable(),
    }),
  ),
});
export type GrantView = z.infer<typeof grantViewSchema>;

export function toGrantView(grant: GrantRecord, effects: GrantEffect[], now: number): GrantView {
  return {
    id: grant.id,
    requestId: grant.requestId,
    user: grant.user,
    zone: grant.zone,
    resource: grant.resource,
    role: grant.role,
    policy: grant.policy,
    sourceZone: grant.sourceZone,
    state: grant.state,
    startsAt: new Date(grant.startsAt).toISOString(),
    endsAt: new Date(grant.endsAt).toISOString(),
    secondsLeft: grant.state === "active" ? Math.max(0, Math.ceil((grant.endsAt - now) / 1000)) : 0,
    closedAt: iso(grant.closedAt),
    closeReason: grant.closeReason,
    closedBy: grant.closedBy,
    factor:
      grant.factorKind && grant.factorAt !== null
        ? { kind: grant.factorKind, at: new Date(grant.factorAt).toISOString() }
        : null,
    revocation: {
      // While the grant is open, what it issued is still in place: its revocation is scheduled for
      // the end. `not-needed` is said only of a grant that issued nothing to take away.
      status:
        grant.state === "active" && effects.some((e) => e.state !== "closed")
          ? "scheduled"
          : grant.revocationStatus,
      attempts: grant.revocationAttempts,
      nextAttemptAt: iso(grant.revocationNextAt),
    },
    review: {
      state: grant.reviewState,
      dueAt: iso(grant.reviewDueAt),
      overdue: grant.reviewState === "due" && grant.reviewDueAt !== null && grant.reviewDueAt <= now,
      reviewer: grant.reviewer,
      notes: grant.reviewNotes,
      reviewedAt: iso(grant.reviewedAt),
    },
    effects: effects.map((e) => ({
      resource: e.resource,
      connector: e.connector,
      state: e.state,
      address: addressOf(e.detail),
    })),
  };
}

/** The `host:port` an effect's detail names, if any (no secret is ever part of it). */
function addressOf(detail: Record<string, unknown>): string | null {
  if (typeof detail.to === "string") return detail.to;
  if (typeof detail.host === "string" && typeof detail.port === "number") {
    return detail.host.includes(":") ? `[${detail.host}]:${detail.port}` : `${detail.host}:${detail.port}`;
  }
  return null;
}

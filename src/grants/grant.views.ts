import type { GrantView } from "../api/grants.schema.js";
import type { GrantEffect, GrantRecord } from "./grant.repo.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export { type GrantView, grantViewSchema } from "../api/grants.schema.js";

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

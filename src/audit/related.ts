import type { Executor } from "../db/types.js";
import { findGrant } from "../grants/grant.repo.js";
import { findRequest, listApprovals } from "../requests/request.repo.js";
import { needsRelated, type RelatedContext, subjectIds } from "./analyst-view.js";
import type { AuditEvent } from "./chain.js";

/** Grants looked up recently; a grant's request, approvals and factor no longer change once it exists. */
const CACHE_SIZE = 2000;

/**
 * Looks up the request behind a grant for events whose services recorded only the grant id
 * (credential.issued, flow.opened, revocation.verified, …), so every delivered message carries
 * the purpose, ticket, approvers, factor, signals and source without a second lookup by the analyst.
 */
export function createRelatedLookup(db: Executor) {
  const cache = new Map<string, RelatedContext | null>();

  async function load(grantId: string): Promise<RelatedContext | null> {
    const grant = await findGrant(db, grantId);
    if (!grant) return null;
    const request = await findRequest(db, grant.requestId);
    if (!request) return null;
    const approvals = await listApprovals(db, request.id);
    return {
      request: request.id,
      user: request.requester,
      role: request.role,
      policy: request.policy,
      purpose: request.reason,
      ticket: request.ticket,
      approvers: approvals
        .filter((approval) => approval.decision === "approve")
        .map((approval) => approval.approver),
      factors:
        grant.factorKind === null
          ? []
          : [
              grant.factorAt === null
                ? grant.factorKind
                : `${grant.factorKind}@${new Date(grant.factorAt).toISOString()}`,
            ],
      signals: request.signals,
      sourceZone: request.sourceZone,
      clientAddress: request.clientAddress,
    };
  }

  return async function related(event: AuditEvent): Promise<RelatedContext | null> {
    if (!needsRelated(event)) return null;
    const grantId = subjectIds(event).grant as string;
    if (cache.has(grantId)) return cache.get(grantId) ?? null;
    const found = await load(grantId);
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(grantId, found);
    return found;
  };
}
export type RelatedLookup = ReturnType<typeof createRelatedLookup>;

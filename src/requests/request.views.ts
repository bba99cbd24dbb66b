import type { RequestView } from "../api/requests.schema.js";
import { formatDuration } from "../config/duration.js";
import type { ApprovalProgress } from "../policy/approvals.js";
import type { ApprovalRecord, RequestRecord } from "./request.repo.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export { type RequestView, requestViewSchema } from "../api/requests.schema.js";

export function nextStep(request: RequestRecord, progress: ApprovalProgress | null): string {
  switch (request.state) {
    case "pending": {
      const waiting = (progress?.steps ?? [])
        .filter((s) => s.remaining > 0)
        .map((s) => `${s.remaining} approval${s.remaining === 1 ? "" : "s"} from ${s.from.join(" or ")}`);
      return `waiting for ${waiting.join(" and ") || "approval"}`;
    }
    case "approved":
      return request.factors.kinds.length > 0
        ? `ready: the requester activates it with a fresh ${request.factors.kinds.join(" or ")} factor`
        : "ready: the requester activates it ('firebreak activate')";
    case "active":
      return "active: see the grant";
    case "denied":
      return "denied: final";
    case "lapsed":
      return "lapsed: nothing happened before its pending expiry; ask again";
    case "cancelled":
      return "cancelled";
    default:
      return `${request.state}: the grant is closed`;
  }
}

export function toRequestView(
  request: RequestRecord,
  approvals: ApprovalRecord[],
  progress: ApprovalProgress | null,
  grantId: string | null,
  suggestedApprovers: string[] = [],
): RequestView {
  return {
    id: request.id,
    state: request.state,
    requester: request.requester,
    zone: request.zone,
    resource: request.resource,
    role: request.role,
    policy: request.policy,
    duration: formatDuration(request.durationMs),
    durationSeconds: Math.round(request.durationMs / 1000),
    reason: request.reason,
    ticket: request.ticket,
    sourceZone: request.sourceZone,
    clientAddress: request.clientAddress,
    autoApproved: request.autoApproved,
    createdAt: new Date(request.createdAt).toISOString(),
    lapsesAt: iso(request.lapsesAt),
    closedReason: request.closedReason,
    requires: {
      approvals: (
        progress?.steps ?? request.approvalSteps.map((s) => ({ ...s, have: [], remaining: s.count }))
      ).map((s) => ({
        from: [...s.from],
        count: s.count,
        have: [...s.have],
        remaining: s.remaining,
      })),
      factors: request.factors.kinds,
    },
    approvals: approvals.map((a) => ({
      approver: a.approver,
      decision: a.decision,
      comment: a.comment,
      at: new Date(a.createdAt).toISOString(),
    })),
    grantId,
    suggestedApprovers: request.state === "pending" ? suggestedApprovers : [],
    next: nextStep(request, progress),
  };
}

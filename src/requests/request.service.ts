import type { FirebreakConfig } from "../config/schema.js";
import type { InTransaction, UnitOfWork } from "../db/transaction.js";
import type { Db, RequestState } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import { type PresentedFactor, pickFreshFactor, unfreshReason } from "../factors/freshness.js";
import { countBlockingOverdueReviews, hasActiveGrant } from "../grants/grant.repo.js";
import { approvalProgress, canApprove } from "../policy/approvals.js";
import { type CompiledPolicy, decide } from "../policy/engine.js";
import { approverZones, canSeeRequest } from "../policy/visibility.js";
import type { Clock } from "../shared/clock.js";
import { newId } from "../shared/ids.js";
import type { SignalService } from "../signals/signal.service.js";
import type { Principal } from "../users/user.service.js";
import {
  findRequest,
  insertApproval,
  insertRequest,
  listApprovals,
  listApprovalsByRequest,
  listRequests,
  type RequestRecord,
  transitionRequest,
} from "./request.repo.js";

const MAX_REASON = 2000;
const MAX_TICKET = 200;
const MAX_COMMENT = 2000;

export interface CreateRequestInput {
  zone?: string;
  resource?: string;
  role: string;
  durationMs?: number;
  reason: string;
  ticket?: string | null;
}

/** The audit context every request event carries, so an analyst needs no second lookup. */
export function requestContext(request: RequestRecord, extra: Record<string, unknown> = {}) {
  return {
    request: request.id,
    requester: request.requester,
    role: request.role,
    policy: request.policy,
    purpose: request.reason,
    ticket: request.ticket,
    durationSeconds: Math.round(request.durationMs / 1000),
    sourceZone: request.sourceZone,
    clientAddress: request.clientAddress,
    signals: request.signals,
    ...extra,
  };
}

export function createRequestService(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  current: () => { config: FirebreakConfig; policy: CompiledPolicy };
  signals: Pick<SignalService, "snapshot">;
  sourceZoneOf: (address: string | null) => string | null;
  /** Told how long each decision took (signals, overdue reviews, policy), for the latency metric. */
  onDecision?: (outcome: string, seconds: number) => void;
}) {
  /**
   * Who may see a request: its requester, its possible approvers, administrators and auditors.
   * The same rule decides what `/v1/events` streams (policy/visibility.ts).
   */
  function canSee(principal: Principal, request: RequestRecord): boolean {
    return canSeeRequest(principal, request);
  }

  /** Loads a request the caller may see; any other id is NOT_FOUND, so existence never leaks. */
  async function load(
    principal: Principal,
    id: string,
    executor = deps.db as Parameters<typeof findRequest>[0],
  ) {
    const request = await findRequest(executor, id);
    if (!request || !canSee(principal, request)) throw new FirebreakError("NOT_FOUND", "no such request");
    return request;
  }

  /** Each request's approvals and how far they go, read in one query for all of them. */
  async function approvalsViews(requests: readonly RequestRecord[]) {
    const byRequest = await listApprovalsByRequest(
      deps.db,
      requests.map((r) => r.id),
    );
    return requests.map((request) => {
      const approvals = byRequest.get(request.id) ?? [];
      const progress = approvalProgress(
        request.approvalSteps,
        approvals.filter((a) => a.decision === "approve"),
        request.requester,
      );
      return { approvals, progress };
    });
  }

  async function lapseIfDue(unit: UnitOfWork, request: RequestRecord): Promise<boolean> {
    if (request.lapsesAt === null || request.lapsesAt > unit.now) return false;
    if (
      !(await transitionRequest(unit.tx, request.id, ["pending", "approved"], "lapsed", unit.now, {
        lapsesAt: null,
        closedReason: "pending expiry reached",
      }))
    ) {
      return false;
    }
    await unit.audit({
      type: "request.lapsed",
      actor: "system:firebreak",
      zone: request.zone,
      resource: request.resource,
      subject: request.id,
      context: requestContext(request, { state: request.state }),
    });
    return true;
  }

  return {
    canSee,
    load,
    approvalsViews,
    lapseIfDue,

    /**
     * Creates a request after asking policy. A denial is audited (`decision.denied`) and refused
     * with POLICY_DENIED and every unmet condition; otherwise the request is pending, or approved
     * at once when policy auto-approves or needs no approval.
     */
    async create(principal: Principal, input: CreateRequestInput, clientAddress: string | null) {
      assert(
        input.reason.length <= MAX_REASON,
        "VALIDATION_FAILED",
        `the reason is longer than ${MAX_REASON} characters`,
      );
      assert(
        !input.ticket || input.ticket.length <= MAX_TICKET,
        "VALIDATION_FAILED",
        `the ticket is longer than ${MAX_TICKET} characters`,
      );
      const { config, policy } = deps.current();
      const zone = input.resource ? config.resources?.[input.resource]?.zone : input.zone;
      if (
        !zone ||
        !Object.hasOwn(config.zones, zone) ||
        (input.resource && !Object.hasOwn(config.resources ?? {}, input.resource))
      ) {
        throw new FirebreakError(
          "NOT_FOUND",
          input.resource ? `no resource '${input.resource}'` : `no zone '${input.zone}'`,
        );
      }
      const now = deps.clock.now();
      const decisionStarted = performance.now();
      const sourceZone = deps.sourceZoneOf(clientAddress);
      const signals = await deps.signals.snapshot(zone, sourceZone, now);
      const blockingOverdueReviews = await countBlockingOverdueReviews(deps.db, principal.name, now);
      const decision = decide(policy, {
        principal: { name: principal.name, groups: principal.groups },
        target: input.resource ? { resource: input.resource } : { zone },
        role: input.role,
        durationMs: input.durationMs,
        reason: input.reason,
        ticket: input.ticket ?? null,
        sourceZone,
        signals,
        blockingOverdueReviews,
        now,
      });
      deps.onDecision?.(decision.outcome, (performance.now() - decisionStarted) / 1000);

      const base = {
        requester: principal.name,
        zone,
        resource: input.resource ?? null,
        role: input.role,
        reason: input.reason,
        ticket: input.ticket ?? null,
        sourceZone,
        clientAddress,
        signals: signals as unknown as Record<string, unknown>,
      };

      if (decision.outcome === "deny") {
        await deps.inTransaction((unit) =>
          unit.audit({
            type: "decision.denied",
            actor: principal.name,
            zone,
            resource: input.resource ?? null,
            context: { ...base, purpose: input.reason, reasons: decision.reasons },
          }),
        );
        throw new FirebreakError("POLICY_DENIED", "policy does not allow this request", {
          reasons: decision.reasons,
        });
      }
      if (decision.outcome === "allow" && decision.via === "standing") {
        throw new FirebreakError(
          "CONFLICT",
          `${principal.name} already holds role '${input.role}' there through a standing binding`,
          {
            reasons: [{ code: "STANDING_ACCESS", message: "a standing binding already grants this role" }],
          },
        );
      }
      if (await hasActiveGrant(deps.db, principal.name, zone, input.role)) {
        throw new FirebreakError(
          "DUPLICATE_GRANT",
          `${principal.name} already has an active grant of '${input.role}' in ${zone}`,
        );
      }

      const approved = decision.outcome === "allow";
      const request: RequestRecord = {
        id: newId("req", now),
        ...base,
        policy: decision.policy,
        durationMs: decision.durationMs,
        state: approved ? "approved" : "pending",
        approvalSteps:
          decision.outcome === "needs-approval"
            ? decision.approvals.map((a) => ({ from: [...a.from], count: a.count }))
            : [],
        factors: { kinds: [...decision.factors], freshnessMs: decision.factorFreshnessMs },
        review: { withinMs: decision.review.withinMs, blockWhenOverdue: decision.review.blockWhenOverdue },
        autoApproved: decision.outcome === "allow" && decision.via === "auto-approve",
        createdAt: now,
        updatedAt: now,
        lapsesAt: now + decision.pendingExpiryMs,
        closedReason: null,
      };
      await deps.inTransaction(async (unit) => {
        await insertRequest(unit.tx, request);
        await unit.audit({
          type: "request.created",
          actor: principal.name,
          zone,
          resource: request.resource,
          subject: request.id,
          context: requestContext(request, {
            requires: request.approvalSteps,
            factors: request.factors.kinds,
          }),
        });
        if (approved) {
          await unit.audit({
            type: "request.approved",
            actor: "system:policy",
            zone,
            resource: request.resource,
            subject: request.id,
            context: requestContext(request, {
              approvers: [],
              autoApproved: request.autoApproved,
              basis: request.autoApproved
                ? "autoApprove condition held on these signals"
                : "policy requires no approval",
            }),
          });
        }
      });
      return request;
    },

    async list(principal: Principal, filter: { state?: RequestState; mine?: boolean; limit?: number }) {
      const limit = Math.min(Math.max(filter.limit ?? 100, 1), 500);
      if (filter.mine)
        return listRequests(deps.db, { state: filter.state, requester: principal.name, limit });
      if (principal.isAdmin || principal.isAuditor)
        return listRequests(deps.db, { state: filter.state, limit });
      // Others see their own requests and those they could approve.
      const candidates = await listRequests(deps.db, {
        state: filter.state,
        zones: approverZones(deps.current().config, principal),
        orRequester: principal.name,
        limit,
      });
      return candidates.filter((r) => canSee(principal, r));
    },

    async approve(
      principal: Principal,
      id: string,
      comment: string | null,
      /** The approver's recent factor presentations, newest first. */
      factors: readonly PresentedFactor[] = [],
    ) {
      assert(
        !comment || comment.length <= MAX_COMMENT,
        "VALIDATION_FAILED",
        `the comment is longer than ${MAX_COMMENT} characters`,
      );
      const result = await deps.inTransaction(async (unit) => {
        const request = await load(principal, id, unit.tx);
        // The lapse commits; the refusal is raised after the transaction, not inside it.
        if (await lapseIfDue(unit, request)) return null;
        const check = canApprove(request.approvalSteps, principal, request.requester);
        if (!check.ok) {
          throw new FirebreakError(
            check.code,
            check.code === "SELF_APPROVAL"
              ? "nobody approves their own request"
              : "you are not an approver for this request",
          );
        }
        assert(request.state === "pending", "INVALID_STATE", `the request is ${request.state}, not pending`);
        const approverFactors =
          deps.current().config.breakGlass?.find((p) => p.name === request.policy)?.approverFactors ?? [];
        if (approverFactors.length > 0) {
          const freshness = request.factors.freshnessMs;
          assert(
            pickFreshFactor(factors, approverFactors, freshness, unit.now),
            "FACTOR_REQUIRED",
            `approving needs a fresh ${approverFactors.join(" or ")} factor${unfreshReason(factors, approverFactors, freshness, unit.now)}`,
            { factors: approverFactors },
          );
        }
        const existing = await listApprovals(unit.tx, id);
        assert(
          !existing.some((a) => a.approver === principal.name),
          "ALREADY_DECIDED",
          "you have already approved this request",
        );
        await insertApproval(unit.tx, {
          id: newId("apv", unit.now),
          requestId: id,
          approver: principal.name,
          groups: principal.groups,
          decision: "approve",
          comment,
          createdAt: unit.now,
        });
        const approvals = [
          ...existing,
          { approver: principal.name, groups: principal.groups, decision: "approve" as const },
        ];
        const progress = approvalProgress(
          request.approvalSteps,
          approvals.filter((a) => a.decision === "approve"),
          request.requester,
        );
        const approvers = approvals.map((a) => a.approver);
        if (progress.satisfied) {
          const moved = await transitionRequest(unit.tx, id, ["pending"], "approved", unit.now);
          assert(moved, "INVALID_STATE", "the request changed state while being approved");
          await unit.audit({
            type: "request.approved",
            actor: principal.name,
            zone: request.zone,
            resource: request.resource,
            subject: id,
            context: requestContext(request, { approvers, comment }),
          });
        } else {
          await unit.audit({
            type: "approval.recorded",
            actor: principal.name,
            zone: request.zone,
            resource: request.resource,
            subject: id,
            context: requestContext(request, {
              approvers,
              comment,
              remaining: progress.steps.filter((s) => s.remaining > 0),
            }),
          });
        }
        return {
          request: { ...request, state: progress.satisfied ? ("approved" as const) : request.state },
          progress,
        };
      });
      if (!result) throw new FirebreakError("INVALID_STATE", "the request lapsed before it was approved");
      return result;
    },

    /** Denial is final. Only someone who could approve (or an administrator) may deny. */
    async deny(principal: Principal, id: string, reason: string) {
      assert(
        reason.trim().length > 0 && reason.length <= MAX_COMMENT,
        "VALIDATION_FAILED",
        "a reason of 1-2000 characters is required",
      );
      return deps.inTransaction(async (unit) => {
        const request = await load(principal, id, unit.tx);
        const check = canApprove(request.approvalSteps, principal, request.requester);
        if (!check.ok && !principal.isAdmin) {
          throw new FirebreakError(
            check.code,
            check.code === "SELF_APPROVAL"
              ? "cancel your own request instead of denying it"
              : "you are not an approver for this request",
          );
        }
        assert(request.state === "pending", "INVALID_STATE", `the request is ${request.state}, not pending`);
        const existing = await listApprovals(unit.tx, id);
        assert(
          !existing.some((a) => a.approver === principal.name),
          "ALREADY_DECIDED",
          "you have already decided on this request",
        );
        await insertApproval(unit.tx, {
          id: newId("apv", unit.now),
          requestId: id,
          approver: principal.name,
          groups: principal.groups,
          decision: "deny",
          comment: reason,
          createdAt: unit.now,
        });
        const moved = await transitionRequest(unit.tx, id, ["pending"], "denied", unit.now, {
          lapsesAt: null,
          closedReason: reason,
        });
        assert(moved, "INVALID_STATE", "the request changed state while being denied");
        await unit.audit({
          type: "request.denied",
          actor: principal.name,
          zone: request.zone,
          resource: request.resource,
          subject: id,
          context: requestContext(request, { denialReason: reason }),
        });
        return { ...request, state: "denied" as const, closedReason: reason };
      });
    },

    async cancel(principal: Principal, id: string) {
      return deps.inTransaction(async (unit) => {
        const request = await load(principal, id, unit.tx);
        assert(
          principal.name === request.requester || principal.isAdmin,
          "FORBIDDEN",
          "only the requester or an administrator can cancel",
        );
        assert(
          request.state === "pending" || request.state === "approved",
          "INVALID_STATE",
          `the request is ${request.state}; only pending or approved requests can be cancelled`,
        );
        const moved = await transitionRequest(unit.tx, id, ["pending", "approved"], "cancelled", unit.now, {
          lapsesAt: null,
          closedReason: "cancelled",
        });
        assert(moved, "INVALID_STATE", "the request changed state while being cancelled");
        await unit.audit({
          type: "request.cancelled",
          actor: principal.name,
          zone: request.zone,
          resource: request.resource,
          subject: id,
          context: requestContext(request),
        });
        return { ...request, state: "cancelled" as const };
      });
    },
  };
}
export type RequestService = ReturnType<typeof createRequestService>;

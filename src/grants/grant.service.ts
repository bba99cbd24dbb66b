import type { FirebreakConfig } from "../config/schema.js";
import { violatesKey } from "../db/conflicts.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db, GrantState, ReviewState, Tx } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import { type PresentedFactor, pickFreshFactor, unfreshReason } from "../factors/freshness.js";
import { autoApprovalLapse, type CompiledPolicy, type Reason, resourcesForGrant } from "../policy/engine.js";
import { canReviewGrant, canSeeGrant, reviewerZones } from "../policy/visibility.js";
import { findRequest, listApprovals, transitionRequest } from "../requests/request.repo.js";
import { type RequestService, requestContext } from "../requests/request.service.js";
import type { SecretBox } from "../secrets/secret-box.js";
import type { Clock } from "../shared/clock.js";
import { newId } from "../shared/ids.js";
import type { SignalService } from "../signals/signal.service.js";
import type { Principal } from "../users/user.service.js";
import { createCredentialDelivery, secretAad } from "./delivery.js";
import { type EffectRunner, PATH_CONNECTOR_PREFIX, type TargetFinding } from "./effects.js";
import {
  closeGrant,
  findGrant,
  type GrantRecord,
  hasActiveGrant,
  insertEffect,
  insertGrant,
  listEffects,
  listEffectsByGrant,
  listGrants,
  recordReview,
  updateEffect,
} from "./grant.repo.js";
import { createRevocation } from "./revocation.js";

const MAX_NOTES = 4000;

export interface GrantListener {
  activated(grant: GrantRecord): void;
  closed(grant: GrantRecord): void;
  /** A revocation failed and has a retry time: the scheduler should wake for it. */
  retryScheduled(): void;
}

export function createGrantService(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  current: () => { config: FirebreakConfig; policy: CompiledPolicy };
  effects: EffectRunner;
  enforcerKind: string;
  box: Pick<SecretBox, "seal" | "open">;
  requests: Pick<RequestService, "load" | "lapseIfDue">;
  signals: Pick<SignalService, "snapshot">;
  listener: GrantListener;
  /** Open gateway sessions, cut and counted before a revocation is verified (revocation.ts). */
  gatewaySessions?: { cutGrant(grantId: string, reason: string): Promise<number> };
  /**
   * For resources reached through a protocol gateway (gateway/credentials.ts): keeps the issued
   * secret inside Firebreak and gives the grant a gateway token to show instead.
   */
  gatewayCredentials?: {
    covers(config: FirebreakConfig, policy: string | null, resource: string): boolean;
    bind(
      tx: Tx,
      now: number,
      config: FirebreakConfig,
      grant: { id: string },
      resource: string,
      issued: { detail: Record<string, unknown>; secret: string },
    ): Promise<{ detail: Record<string, unknown>; secret: string }>;
  };
}) {
  // The same rules decide what `/v1/events` streams (policy/visibility.ts).
  function canSee(principal: Principal, grant: GrantRecord): boolean {
    return canSeeGrant(principal, grant, deps.current().config);
  }

  /** Reviewers are named by the policy, or else administrators and auditors; never the requester. */
  function canReview(principal: Principal, grant: GrantRecord): boolean {
    return canReviewGrant(principal, grant, deps.current().config);
  }

  // Revocation and delivery keep their own invariants in their own files (NOTES.md); this service
  // is their only caller, so it builds them from its own dependencies.
  const revocation = createRevocation({
    db: deps.db,
    inTransaction: deps.inTransaction,
    effects: deps.effects,
    listener: deps.listener,
    gatewaySessions: deps.gatewaySessions,
  });
  const delivery = createCredentialDelivery({
    db: deps.db,
    inTransaction: deps.inTransaction,
    box: deps.box,
    canSee,
  });

  async function load(principal: Principal, id: string) {
    const grant = await findGrant(deps.db, id);
    if (!grant || !canSee(principal, grant)) throw new FirebreakError("NOT_FOUND", "no such grant");
    return grant;
  }

  /** Raises one `alert.raised` per resource whose target contradicts its settings. */
  async function alertMisconfigured(actor: string, findings: readonly TargetFinding[], context = {}) {
    if (findings.length === 0) return;
    await deps.inTransaction(async (unit) => {
      for (const finding of findings)
        await unit.audit({
          type: "alert.raised",
          actor,
          zone: finding.zone,
          resource: finding.resource,
          context: { alert: "resource-misconfigured", problems: finding.problems, ...context },
        });
    });
  }

  /**
   * Issues what the grant's resources need. Intent rows were written with the grant; each is
   * completed here, after the connector answered. A crash in between leaves an `intent` row that
   * `finishUnfinished` completes or undoes at the next start.
   */
  async function issueEffects(grant: GrantRecord) {
    for (const effect of await listEffects(deps.db, grant.id)) {
      if (effect.state !== "intent") continue;
      try {
        const applied = await deps.effects.apply(effect, grant);
        await deps.inTransaction(async (unit) => {
          let detail: Record<string, unknown> = { ...applied.detail, externalId: applied.externalId };
          let secret = applied.secret;
          const config = deps.current().config;
          // A gateway resource's password stays here; the user is shown a gateway token instead.
          if (secret !== null && deps.gatewayCredentials?.covers(config, grant.policy, effect.resource))
            ({ detail, secret } = await deps.gatewayCredentials.bind(
              unit.tx,
              unit.now,
              config,
              grant,
              effect.resource,
              {
                detail,
                secret,
              },
            ));
          await updateEffect(unit.tx, effect.id, {
            state: "issued",
            detail,
            secretEnc: secret === null ? null : deps.box.seal(secret, secretAad(effect.id)),
            now: unit.now,
          });
          await unit.audit({
            type: applied.auditType,
            actor: "system:firebreak",
            zone: grant.zone,
            resource: effect.resource,
            subject: grant.id,
            context: { grant: grant.id, user: grant.user, role: grant.role, ...applied.auditContext },
          });
        });
      } catch (error) {
        const message = error instanceof FirebreakError ? error.message : "the connector failed";
        await deps.inTransaction(async (unit) => {
          await updateEffect(unit.tx, effect.id, { state: "failed", now: unit.now });
          await unit.audit({
            type: "alert.raised",
            actor: "system:firebreak",
            zone: grant.zone,
            resource: effect.resource,
            subject: grant.id,
            context: { alert: "issuance-failed", grant: grant.id, message },
          });
        });
        await close(grant.id, "revoked", "system:firebreak", `issuance failed: ${message}`);
        throw new FirebreakError(
          "CONNECTOR_FAILED",
          `could not issue access on ${effect.resource}: ${message}`,
        );
      }
    }
  }

  /**
   * Closes active grants (expiry or revoke): every state change and its audit event in one
   * transaction for the whole batch, then access is taken away. Grants no longer active (another
   * writer closed them) are skipped, so expiry and revoke racing close each grant exactly once.
   */
  async function closeMany(
    ids: readonly string[],
    state: "expired" | "revoked",
    actor: string,
    reason: string,
  ) {
    const closed = await deps.inTransaction(async (unit) => {
      const done: GrantRecord[] = [];
      for (const id of ids) {
        const grant = await findGrant(unit.tx, id);
        if (grant?.state !== "active") continue;
        const effects = await listEffects(unit.tx, id);
        const needsRevocation = effects.some((e) => e.state !== "closed");
        const revocationStatus = needsRevocation ? ("pending" as const) : ("not-needed" as const);
        if (
          !(await closeGrant(unit.tx, id, {
            state,
            now: unit.now,
            reason,
            closedBy: actor,
            revocationStatus,
          }))
        )
          continue;
        await transitionRequest(unit.tx, grant.requestId, ["active"], state, unit.now, {
          closedReason: reason,
        });
        const request = await findRequest(unit.tx, grant.requestId);
        await unit.audit({
          type: state === "expired" ? "grant.expired" : "grant.revoked",
          actor,
          zone: grant.zone,
          resource: grant.resource,
          subject: id,
          context: {
            grant: id,
            user: grant.user,
            role: grant.role,
            reason,
            endsAt: new Date(grant.endsAt).toISOString(),
            ...(request ? requestContext(request) : {}),
          },
        });
        done.push({
          ...grant,
          state,
          closedAt: unit.now,
          closeReason: reason,
          closedBy: actor,
          revocationStatus,
          reviewDueAt: grant.reviewDueAt === null ? null : grant.reviewDueAt - grant.endsAt + unit.now,
        });
      }
      return done;
    });
    for (const grant of closed) deps.listener.closed(grant);
    // A grant that issued nothing keeps `not-needed`; the rest are taken away and verified.
    await revocation.revokeMany(closed.filter((g) => g.revocationStatus === "pending"));
    return closed;
  }

  async function close(id: string, state: "expired" | "revoked", actor: string, reason: string) {
    const [closed] = await closeMany([id], state, actor, reason);
    return closed ?? null;
  }

  return {
    canSee,
    load,
    close,
    closeMany,
    revokeEffects: revocation.revokeEffects,
    revokeMany: revocation.revokeMany,
    retryDueRevocations: revocation.retryDue,
    issueEffects,

    /**
     * Asks every resource's target whether its settings hold there (a PostgreSQL `reassignTo` role
     * that does not exist would make every revocation fail): each that does not is raised as an
     * alert, and activations on it are refused until it is fixed. At start and after a reload.
     */
    async checkTargets(actor: string): Promise<TargetFinding[]> {
      const findings = await deps.effects.checkTargets(Object.keys(deps.current().config.resources ?? {}));
      await alertMisconfigured(actor, findings);
      return findings;
    },

    /**
     * Activation: the requester, an approved request, a fresh factor when policy names factors, and
     * for an auto-approved request its autoApprove condition still true on the signals of now.
     */
    async activate(
      principal: Principal,
      requestId: string,
      /** The requester's recent factor presentations, newest first. */
      factors: readonly PresentedFactor[],
      publicKey: string | null = null,
    ) {
      // Before anything is created: a grant on a resource whose target contradicts its settings
      // could be opened but never closed again. Asked outside the transaction (it is a network call).
      const asked = await deps.requests.load(principal, requestId, deps.db);
      // Only for an activation that could go ahead: anyone else gets the refusal below as before.
      const misconfigured =
        asked.state === "approved" && asked.requester === principal.name
          ? await deps.effects.checkTargets(
              resourcesForGrant(deps.current().policy, asked.zone, asked.resource, asked.role),
            )
          : [];
      if (misconfigured.length > 0) {
        await alertMisconfigured(principal.name, misconfigured, { request: requestId });
        throw new FirebreakError(
          "RESOURCE_MISCONFIGURED",
          `activation refused: ${misconfigured.flatMap((f) => f.problems).join("; ")}`,
          { resources: misconfigured.map((f) => f.resource) },
        );
      }
      let lapse = null as Reason | null;
      const prepared = await deps.inTransaction(async (unit) => {
        const request = await deps.requests.load(principal, requestId, unit.tx);
        assert(
          request.requester === principal.name,
          "FORBIDDEN",
          "only the requester can activate a request",
        );
        // The lapse commits; the refusal is raised after the transaction, not inside it.
        if (await deps.requests.lapseIfDue(unit, request)) return null;
        assert(
          request.state === "approved",
          "INVALID_STATE",
          `the request is ${request.state}; only an approved request can be activated`,
        );
        const { kinds, freshnessMs } = request.factors;
        const factor = kinds.length > 0 ? pickFreshFactor(factors, kinds, freshnessMs, unit.now) : null;
        if (kinds.length > 0) {
          assert(
            factor,
            "FACTOR_REQUIRED",
            `activation needs a fresh ${kinds.join(" or ")} factor (within ${Math.round(freshnessMs / 60000)}m)${unfreshReason(factors, kinds, freshnessMs, unit.now)}`,
            { factors: kinds },
          );
        }
        assert(
          !(await hasActiveGrant(unit.tx, request.requester, request.zone, request.role)),
          "DUPLICATE_GRANT",
          `${request.requester} already has an active grant of '${request.role}' in ${request.zone}`,
        );
        if (request.autoApproved) {
          // Nobody approved it but the signals: if they have changed (the incident was resolved),
          // the approval has lapsed. The refusal is audited and commits; the request stays approved.
          const signals = await deps.signals.snapshot(request.zone, request.sourceZone, unit.now, unit.tx);
          lapse = autoApprovalLapse(deps.current().policy, {
            policy: request.policy ?? "",
            principal,
            target: { zone: request.zone, resource: request.resource },
            role: request.role,
            durationMs: request.durationMs,
            reason: request.reason,
            ticket: request.ticket,
            sourceZone: request.sourceZone,
            signals,
            now: unit.now,
          });
          if (lapse !== null) {
            await unit.audit({
              type: "decision.denied",
              actor: principal.name,
              zone: request.zone,
              resource: request.resource,
              subject: request.id,
              context: requestContext(request, {
                stage: "activation",
                reasons: [lapse],
                activationSignals: signals,
              }),
            });
            return null;
          }
        }
        const config = deps.current().config;
        const grant: GrantRecord = {
          id: newId("grt", unit.now),
          requestId,
          user: request.requester,
          zone: request.zone,
          resource: request.resource,
          role: request.role,
          policy: request.policy,
          sourceZone: request.sourceZone,
          clientAddress: request.clientAddress,
          state: "active",
          startsAt: unit.now,
          endsAt: unit.now + request.durationMs,
          closedAt: null,
          closeReason: null,
          closedBy: null,
          factorKind: factor?.kind ?? null,
          factorAt: factor?.at ?? null,
          revocationStatus: "not-needed",
          revocationAttempts: 0,
          revocationNextAt: null,
          reviewState: request.review ? "due" : "none",
          reviewDueAt: request.review ? unit.now + request.durationMs + request.review.withinMs : null,
          reviewBlock: request.review?.blockWhenOverdue ?? false,
          reviewer: null,
          reviewNotes: null,
          reviewedAt: null,
          reviewAlertedAt: null,
        };
        try {
          await insertGrant(unit.tx, grant);
        } catch (error) {
          // Another activation (this request on another replica, or another of the user's) took
          // the active key between the check above and this insert.
          if (violatesKey(error, "request_id"))
            throw new FirebreakError("INVALID_STATE", "the request was activated by a concurrent call");
          if (violatesKey(error, "active_key"))
            throw new FirebreakError(
              "DUPLICATE_GRANT",
              `${request.requester} already has an active grant of '${request.role}' in ${request.zone}`,
            );
          throw error;
        }
        const moved = await transitionRequest(unit.tx, requestId, ["approved"], "active", unit.now, {
          lapsesAt: null,
        });
        assert(moved, "INVALID_STATE", "the request changed state while being activated");
        // Intent first: what the connectors are about to create is on record before they touch a target.
        const resources = resourcesForGrant(
          deps.current().policy,
          request.zone,
          request.resource,
          request.role,
        );
        for (const name of resources) {
          const resource = config.resources?.[name];
          if (!resource) continue;
          const intent = {
            grantId: grant.id,
            resource: name,
            state: "intent" as const,
            // The SSH connector signs this key; kept with the intent so a restart can finish issuing.
            detail: publicKey && resource.type === "ssh" ? { publicKey } : {},
            secretEnc: null,
            deliveredAt: null,
            createdAt: unit.now,
            updatedAt: unit.now,
          };
          if (resource.type === "ssh") {
            assert(
              publicKey,
              "VALIDATION_FAILED",
              `${name} issues SSH certificates: activate with your public key (--ssh-key)`,
            );
          }
          await insertEffect(unit.tx, { ...intent, id: newId("eff", unit.now), connector: resource.type });
          // A resource with an address also gets its network path for the grant's window.
          if (resource.address) {
            await insertEffect(unit.tx, {
              ...intent,
              detail: {},
              id: newId("eff", unit.now),
              connector: `${PATH_CONNECTOR_PREFIX}${deps.enforcerKind}`,
            });
          }
        }
        const approvals = await listApprovals(unit.tx, requestId);
        await unit.audit({
          type: "grant.activated",
          actor: principal.name,
          zone: grant.zone,
          resource: grant.resource,
          subject: grant.id,
          context: requestContext(request, {
            grant: grant.id,
            startsAt: new Date(grant.startsAt).toISOString(),
            endsAt: new Date(grant.endsAt).toISOString(),
            approvers: approvals.filter((a) => a.decision === "approve").map((a) => a.approver),
            autoApproved: request.autoApproved,
            factors: factor ? [{ kind: factor.kind, at: new Date(factor.at).toISOString() }] : [],
            resources,
          }),
        });
        return grant;
      });
      if (lapse !== null) {
        throw new FirebreakError(
          "AUTO_APPROVAL_LAPSED",
          "the condition that auto-approved this request no longer holds; ask again",
          { reasons: [lapse] },
        );
      }
      if (!prepared) throw new FirebreakError("INVALID_STATE", "the request lapsed before it was activated");
      deps.listener.activated(prepared);
      await issueEffects(prepared);
      return prepared;
    },

    async revoke(principal: Principal, id: string, reason: string) {
      assert(
        reason.trim().length > 0 && reason.length <= MAX_NOTES,
        "VALIDATION_FAILED",
        "a reason of 1-4000 characters is required",
      );
      const grant = await load(principal, id);
      assert(
        principal.isAdmin || principal.name === grant.user,
        "FORBIDDEN",
        "only the grant's owner or an administrator can revoke it",
      );
      assert(grant.state === "active", "INVALID_STATE", `the grant is ${grant.state}, not active`);
      const closed = await close(id, "revoked", principal.name, reason);
      assert(closed, "INVALID_STATE", "the grant was closed while being revoked");
      return (await findGrant(deps.db, id)) ?? closed;
    },

    async review(principal: Principal, id: string, verdict: "accepted" | "flagged", notes: string) {
      assert(
        notes.trim().length > 0 && notes.length <= MAX_NOTES,
        "VALIDATION_FAILED",
        "notes of 1-4000 characters are required",
      );
      const grant = await load(principal, id);
      if (!canReview(principal, grant))
        throw new FirebreakError(
          "REVIEW_NOT_ALLOWED",
          "you may not review this grant (reviewers are never the requester or one of its approvers)",
        );
      return deps.inTransaction(async (unit) => {
        const approvals = await listApprovals(unit.tx, grant.requestId);
        if (approvals.some((a) => a.approver === principal.name)) {
          throw new FirebreakError(
            "REVIEW_NOT_ALLOWED",
            "an approver of this request may not review its use",
          );
        }
        assert(
          grant.reviewState === "due",
          "INVALID_STATE",
          grant.reviewState === "none"
            ? "this grant needs no review"
            : `this grant was already reviewed (${grant.reviewState})`,
        );
        // A review judges a use that is over: while the grant is open, what it will be used for
        // is not yet known, and an early "accepted" would vouch for the rest of the window.
        assert(
          grant.state !== "active",
          "INVALID_STATE",
          "the grant is still active; it can be reviewed once it has ended (expired or revoked)",
        );
        const ok = await recordReview(unit.tx, id, {
          state: verdict,
          reviewer: principal.name,
          notes,
          now: unit.now,
        });
        assert(ok, "INVALID_STATE", "the grant was reviewed by someone else meanwhile");
        await unit.audit({
          type: "review.completed",
          actor: principal.name,
          zone: grant.zone,
          resource: grant.resource,
          subject: id,
          context: {
            grant: id,
            user: grant.user,
            role: grant.role,
            verdict,
            notes,
            overdue: grant.reviewDueAt !== null && unit.now > grant.reviewDueAt,
          },
        });
        return {
          ...grant,
          reviewState: verdict as ReviewState,
          reviewer: principal.name,
          reviewNotes: notes,
          reviewedAt: unit.now,
        };
      });
    },

    async list(
      principal: Principal,
      filter: { state?: GrantState; mine?: boolean; reviewDue?: boolean; overdue?: boolean; limit?: number },
    ) {
      const limit = Math.min(Math.max(filter.limit ?? 100, 1), 500);
      const now = deps.clock.now();
      const query = {
        state: filter.state,
        reviewState: filter.reviewDue || filter.overdue ? ("due" as const) : undefined,
        reviewDueBefore: filter.overdue ? now : undefined,
        // A review waits for the use to end: an open grant is not yet something to review.
        ended: filter.reviewDue || filter.overdue ? true : undefined,
        limit,
      };
      if (filter.mine) return listGrants(deps.db, { ...query, user: principal.name });
      if (principal.isAdmin || principal.isAuditor) return listGrants(deps.db, query);
      const zones = reviewerZones(deps.current().config, principal);
      const rows = await listGrants(deps.db, { ...query, zones, orUser: principal.name });
      return rows.filter((g) => canSee(principal, g));
    },

    effects: (grantId: string) => listEffects(deps.db, grantId),
    effectsOf: (grantIds: readonly string[]) => listEffectsByGrant(deps.db, grantIds),
    deliverCredential: delivery.deliverCredential,
  };
}
export type GrantService = ReturnType<typeof createGrantService>;
/** The record the service answers with, named for routes (which never import the repository). */
export type { GrantRecord };

import type { InTransaction, UnitOfWork } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import { inParallel } from "../shared/parallel.js";
import type { EffectRunner } from "./effects.js";
import {
  CLOSER_GRACE_MS,
  claimRevocation,
  type GrantEffect,
  type GrantRecord,
  listEffects,
  listRevocationsDue,
  setRevocation,
  updateEffect,
} from "./grant.repo.js";

/** Retry delays for closing and verifying: 1s, 2s, 4s … capped at 5 minutes. */
export const MAX_RETRY_DELAY_MS = 5 * 60_000;
/** How many grants' access is taken away at once; bounded so a burst cannot exhaust target connections. */
const REVOKE_CONCURRENCY = 16;

/** How long to wait before the next attempt after `attempts` failed ones (1 for the first failure). */
export function retryDelayMs(attempts: number): number {
  return Math.min(1000 * 2 ** Math.min(attempts - 1, 20), MAX_RETRY_DELAY_MS);
}

type Undone = { effect: GrantEffect; undone: Awaited<ReturnType<EffectRunner["undo"]>> };
type Outcome = { grant: GrantRecord; effects: GrantEffect[]; done: Undone[]; error: unknown };

/**
 * The second half of closing a grant: taking its access away on the targets and proving it is gone.
 * The grant's state already says it is closed; this moves its revocation from `pending` (or
 * `failed`) to `verified`, or to `failed` with the next attempt's time and an alert.
 */
export function createRevocation(deps: {
  db: Db;
  inTransaction: InTransaction;
  effects: Pick<EffectRunner, "undo">;
  /** Told when a revocation failed and has a retry time, so the scheduler wakes for it. */
  listener: { retryScheduled(): void };
  /**
   * The protocol gateways' open sessions (gateway/session.service.ts): cut before the targets are
   * touched; resolves to how many are still held. A revocation is verified only at 0.
   */
  gatewaySessions?: { cutGrant(grantId: string, reason: string): Promise<number> };
}) {
  /** Takes one grant's effects away on the targets; writes nothing. */
  async function undoAll(grant: GrantRecord): Promise<Outcome> {
    // Intent and failed rows too: the target may hold what their connector call created before the
    // answer was lost, and revoking what is not there succeeds.
    const effects = (await listEffects(deps.db, grant.id)).filter((e) => e.state !== "closed");
    const done: Undone[] = [];
    try {
      if (deps.gatewaySessions) {
        const why = grant.closeReason ? `${grant.state}: ${grant.closeReason}` : grant.state;
        const left = await deps.gatewaySessions.cutGrant(grant.id, `grant ${grant.id} was ${why}`);
        assert(left === 0, "CONNECTOR_FAILED", `the gateway still holds ${left} session(s) of the grant`);
      }
      for (const effect of effects) {
        const undone = await deps.effects.undo(effect, grant);
        assert(
          undone.verified,
          "CONNECTOR_FAILED",
          `access on ${effect.resource} still works after revoking it`,
        );
        done.push({ effect, undone });
      }
      return { grant, effects, done, error: null };
    } catch (error) {
      return { grant, effects, done, error: error ?? new Error("failed") };
    }
  }

  /** Records one grant's outcome: what was undone, then verified — or the failure and when to retry. */
  async function recordOutcome(unit: UnitOfWork, { grant, effects, done, error }: Outcome) {
    for (const { effect, undone } of done) {
      await updateEffect(unit.tx, effect.id, { state: "closed", now: unit.now });
      await unit.audit({
        type: undone.auditType,
        actor: "system:firebreak",
        zone: grant.zone,
        resource: effect.resource,
        subject: grant.id,
        context: { grant: grant.id, user: grant.user, role: grant.role, ...undone.auditContext },
      });
    }
    const attempts = grant.revocationAttempts + 1;
    if (!error) {
      await setRevocation(unit.tx, grant.id, { status: "verified", attempts, nextAt: null });
      if (effects.length > 0) {
        await unit.audit({
          type: "revocation.verified",
          actor: "system:firebreak",
          zone: grant.zone,
          resource: grant.resource,
          subject: grant.id,
          context: {
            grant: grant.id,
            user: grant.user,
            role: grant.role,
            resources: effects.map((e) => e.resource),
          },
        });
      }
      return;
    }
    const delay = retryDelayMs(attempts);
    // A connector's own message says what failed without secrets; anything else may quote a driver.
    const message = error instanceof FirebreakError ? error.message : "the connector failed";
    await setRevocation(unit.tx, grant.id, { status: "failed", attempts, nextAt: unit.now + delay });
    await unit.audit({
      type: "alert.raised",
      actor: "system:firebreak",
      zone: grant.zone,
      resource: grant.resource,
      subject: grant.id,
      context: {
        alert: "revocation-failed",
        grant: grant.id,
        user: grant.user,
        attempts,
        retryInSeconds: Math.round(delay / 1000),
        message,
      },
    });
  }

  /**
   * Takes issued access away and proves it is gone, for several grants side by side; the outcomes
   * are recorded together in one transaction. A failure leaves the grant `failed` with a next
   * attempt time and an alert; the scheduler retries with backoff until it works. Resolves to
   * whether each grant's revocation was verified, in the order given.
   */
  async function revokeMany(grants: readonly GrantRecord[]): Promise<boolean[]> {
    if (grants.length === 0) return [];
    const outcomes = await inParallel(grants, REVOKE_CONCURRENCY, undoAll);
    await deps.inTransaction(async (unit) => {
      for (const outcome of outcomes) await recordOutcome(unit, outcome);
    });
    if (outcomes.some((o) => o.error)) deps.listener.retryScheduled();
    return outcomes.map((o) => !o.error);
  }

  return {
    revokeMany,
    /**
     * Retries the revocations that are due: a failed attempt whose time came, or a close whose
     * closer did not record an outcome within its grace period. Each is claimed first (its next
     * time moved a grace period on, compare-and-set on the time read), so of several replicas'
     * passes one takes it; a claimant that dies is relieved when that grace period ends.
     */
    async retryDue(now: number, limit: number): Promise<boolean[]> {
      const claimed: GrantRecord[] = [];
      for (const grant of await listRevocationsDue(deps.db, now, limit)) {
        if (grant.revocationNextAt === null) continue;
        if (await claimRevocation(deps.db, grant.id, grant.revocationNextAt, now + CLOSER_GRACE_MS))
          claimed.push(grant);
      }
      return revokeMany(claimed);
    },
    async revokeEffects(grant: GrantRecord): Promise<boolean> {
      const [ok] = await revokeMany([grant]);
      return ok ?? false;
    },
  };
}
export type Revocation = ReturnType<typeof createRevocation>;

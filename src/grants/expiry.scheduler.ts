import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { listLapsing, nextLapse, takeReminders } from "../requests/request.repo.js";
import { type RequestService, requestContext } from "../requests/request.service.js";
import type { Clock } from "../shared/clock.js";
import {
  findGrant,
  listDueGrants,
  listOverdueReviews,
  listUnfinishedEffects,
  markReviewAlerted,
  nextGrantDue,
} from "./grant.repo.js";
import type { GrantService } from "./grant.service.js";

const BATCH = 200;
/** Even with nothing due, look again this often: another process may have added work. */
const MAX_SLEEP_MS = 5_000;

/**
 * Acts on time: expires grants, lapses requests, reminds approvers, retries revocations, raises
 * overdue-review alerts. Each pass reads only what is due, through indexes on the due times, so
 * its cost grows with what is due rather than with what exists. Between passes it sleeps until
 * the next due time.
 */
export function createExpiryScheduler(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  grants: Pick<GrantService, "closeMany" | "revokeEffects" | "retryDueRevocations" | "issueEffects">;
  requests: Pick<RequestService, "lapseIfDue">;
  onError: (error: unknown) => void;
}) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<number> | null = null;
  let stopped = true;

  /** One pass over everything due now; returns how many items it acted on. */
  async function runDue(): Promise<number> {
    let acted = 0;
    const now = deps.clock.now();
    for (;;) {
      const due = await listDueGrants(deps.db, now, BATCH);
      // One transaction closes the batch; the grant service then takes access away side by side.
      const closed = await deps.grants.closeMany(
        due.map((g) => g.id),
        "expired",
        "system:scheduler",
        "the grant's window ended",
      );
      acted += closed.length;
      if (due.length < BATCH) break;
    }
    for (;;) {
      const lapsing = await listLapsing(deps.db, now, BATCH);
      for (const request of lapsing)
        if (await deps.inTransaction((unit) => deps.requests.lapseIfDue(unit, request))) acted++;
      if (lapsing.length < BATCH) break;
    }
    await deps.inTransaction(async (unit) => {
      for (const request of await takeReminders(unit.tx, now, BATCH)) {
        await unit.audit({
          type: "request.reminder",
          actor: "system:scheduler",
          zone: request.zone,
          resource: request.resource,
          subject: request.id,
          context: {
            ...requestContext(request),
            requires: request.approvalSteps,
            lapsesAt: new Date(request.lapsesAt ?? now).toISOString(),
          },
        });
        acted++;
      }
    });
    acted += (await deps.grants.retryDueRevocations(now, BATCH)).length;
    for (const grant of await listOverdueReviews(deps.db, now, BATCH)) {
      const claimed = await deps.inTransaction(async (unit) => {
        // Another replica's pass may have alerted it since this one listed it.
        if (!(await markReviewAlerted(unit.tx, grant.id, unit.now))) return false;
        await unit.audit({
          type: "alert.raised",
          actor: "system:scheduler",
          zone: grant.zone,
          resource: grant.resource,
          subject: grant.id,
          context: {
            alert: "review-overdue",
            grant: grant.id,
            user: grant.user,
            role: grant.role,
            dueAt: new Date(grant.reviewDueAt ?? 0).toISOString(),
            blocksNextRequest: grant.reviewBlock,
          },
        });
        return true;
      });
      if (claimed) acted++;
    }
    return acted;
  }

  /**
   * Completes what a crash interrupted: effects recorded as intent are issued when their grant is
   * still active, and revoked when it is not. Run once at start, before serving.
   */
  async function finishUnfinished(): Promise<number> {
    let finished = 0;
    const grantIds = new Set((await listUnfinishedEffects(deps.db)).map((e) => e.grantId));
    for (const id of grantIds) {
      const grant = await findGrant(deps.db, id);
      if (!grant) continue;
      if (grant.state === "active") {
        // Still in its window: finish issuing. Past it: the expiry pass that runs next closes the
        // grant and takes the effects away, so its revocation status is recorded as it should be.
        if (grant.endsAt > deps.clock.now()) await deps.grants.issueEffects(grant).catch(deps.onError);
        else continue;
      } else {
        await deps.grants.revokeEffects(grant);
      }
      finished++;
    }
    return finished;
  }

  async function pass() {
    if (running) return running;
    running = runDue()
      .catch((error) => {
        deps.onError(error);
        return 0;
      })
      .finally(() => {
        running = null;
      });
    return running;
  }

  async function schedule() {
    if (stopped) return;
    const next = Math.min(
      ...[await nextGrantDue(deps.db), await nextLapse(deps.db)].map((t) => t ?? Number.POSITIVE_INFINITY),
    );
    const delay = Math.max(0, Math.min(next - deps.clock.now(), MAX_SLEEP_MS));
    timer = setTimeout(async () => {
      await pass();
      await schedule().catch(deps.onError);
    }, delay);
  }

  return {
    runDue: pass,
    finishUnfinished,
    /** Starts the loop; the first pass finishes everything that fell due while the server was down. */
    async start() {
      stopped = false;
      await finishUnfinished();
      await pass();
      await schedule();
    },
    /** Wakes the loop early, e.g. after a grant with a short window was created. */
    poke() {
      if (stopped) return;
      if (timer) clearTimeout(timer);
      schedule().catch(deps.onError);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

import { type AuditEventInput, appendAuditEvents } from "../audit/audit.repo.js";
import type { AuditEvent } from "../audit/chain.js";
import { FirebreakError } from "../errors.js";
import type { Clock } from "../shared/clock.js";
import type { EventBus } from "../shared/events.js";
import { isRetryableConflict, uniqueViolation } from "./conflicts.js";
import type { Db, Tx } from "./types.js";

/** Attempts of a transaction the database rolled back for a serialization failure or deadlock. */
const RETRIES = 3;

export interface UnitOfWork {
  tx: Tx;
  now: number;
  /**
   * Records an audit event for this transaction. Events are appended when `work` has finished,
   * just before commit, so the chain's head row is always the last lock taken (no deadlock with
   * row locks taken later in `work`) and is held as briefly as possible.
   */
  audit(event: AuditEventInput): Promise<void>;
}

/**
 * Runs `work` in one database transaction with its audit events, then publishes the events once the
 * transaction has committed. Every state change in the program goes through here.
 */
export function createTransactionRunner(deps: { db: Db; clock: Clock; bus: EventBus }) {
  return async function inTransaction<T>(work: (unit: UnitOfWork) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await once(work);
      } catch (error) {
        // Rolled back whole by the database so another could commit: safe to run again.
        if (isRetryableConflict(error) && attempt < RETRIES) continue;
        if (isRetryableConflict(error))
          throw new FirebreakError("CONFLICT", "the change collided with concurrent changes; try again");
        // A unique key another transaction took first: the work did not name a refusal of its own.
        if (uniqueViolation(error))
          throw new FirebreakError("CONFLICT", "a concurrent change took the same key first; try again");
        throw error;
      }
    }
  };

  async function once<T>(work: (unit: UnitOfWork) => Promise<T>): Promise<T> {
    const appended: AuditEvent[] = [];
    const now = deps.clock.now();
    const result = await deps.db.transaction().execute(async (tx) => {
      const pending: AuditEventInput[] = [];
      const unit: UnitOfWork = {
        tx,
        now,
        async audit(event) {
          pending.push(event);
        },
      };
      const value = await work(unit);
      // One head bump for all of them: a batch of many events costs a few statements, not 3 each.
      appended.push(...(await appendAuditEvents(tx, pending, now)));
      return value;
    });
    deps.bus.publish(appended);
    return result;
  }
}
export type InTransaction = ReturnType<typeof createTransactionRunner>;

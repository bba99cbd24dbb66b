import { type AuditEventInput, appendAuditEvent } from "../audit/audit.repo.js";
import type { AuditEvent } from "../audit/chain.js";
import type { Clock } from "../shared/clock.js";
import type { EventBus } from "../shared/events.js";
import type { Db, Tx } from "./types.js";

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
      for (const event of pending) appended.push(await appendAuditEvent(tx, event, now));
      return value;
    });
    deps.bus.publish(appended);
    return result;
  };
}
export type InTransaction = ReturnType<typeof createTransactionRunner>;

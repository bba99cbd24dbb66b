import type { Executor } from "../db/types.js";

/**
 * Records that a signed delivery was applied; false when its receipt was recorded before (a
 * replay). On PostgreSQL a concurrent insert of the same receipt waits for the first to commit and
 * then inserts nothing, so of two identical deliveries exactly one is applied.
 */
export async function recordReceipt(
  db: Executor,
  receipt: { source: string; receipt: string; receivedAt: number; expiresAt: number },
): Promise<boolean> {
  const result = await db
    .insertInto("signal_receipts")
    .values({
      source: receipt.source,
      receipt: receipt.receipt,
      received_at: receipt.receivedAt,
      expires_at: receipt.expiresAt,
    })
    .onConflict((conflict) => conflict.columns(["source", "receipt"]).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}

/** Forgets receipts whose deliveries could no longer pass the time window; returns how many. */
export async function deleteExpiredReceipts(db: Executor, now: number): Promise<number> {
  const result = await db.deleteFrom("signal_receipts").where("expires_at", "<", now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

import type { Executor } from "../db/types.js";

/** Stored requests counted by state. */
export async function countRequestsByState(db: Executor): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom("requests")
    .select(["state", (eb) => eb.fn.countAll().as("count")])
    .groupBy("state")
    .execute();
  return new Map(rows.map((row) => [row.state, Number(row.count)]));
}

/** Active grants counted by zone. */
export async function countActiveGrantsByZone(db: Executor): Promise<{ zone: string; count: number }[]> {
  const rows = await db
    .selectFrom("grants")
    .select(["zone", (eb) => eb.fn.countAll().as("count")])
    .where("state", "=", "active")
    .groupBy("zone")
    .execute();
  return rows.map((row) => ({ zone: row.zone, count: Number(row.count) }));
}

/** Closed grants whose revocation could not yet be verified. */
export async function countFailingRevocations(db: Executor): Promise<number> {
  const row = await db
    .selectFrom("grants")
    .select((eb) => eb.fn.countAll().as("count"))
    .where("revocation_status", "=", "failed")
    .executeTakeFirst();
  return Number(row?.count ?? 0);
}

/** When a request was made and whether policy approved it, for the time-to-approve histogram. */
export async function findRequestTiming(
  db: Executor,
  id: string,
): Promise<{ createdAt: number; autoApproved: boolean } | null> {
  const row = await db
    .selectFrom("requests")
    .select(["created_at", "auto_approved"])
    .where("id", "=", id)
    .executeTakeFirst();
  return row ? { createdAt: Number(row.created_at), autoApproved: Number(row.auto_approved) === 1 } : null;
}

/** When a grant was closed (null while it runs), for the time-to-revoke histogram. */
export async function findGrantClosedAt(db: Executor, id: string): Promise<number | null> {
  const row = await db.selectFrom("grants").select("closed_at").where("id", "=", id).executeTakeFirst();
  return row?.closed_at == null ? null : Number(row.closed_at);
}

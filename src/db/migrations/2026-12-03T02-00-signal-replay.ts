import { type Kysely, sql } from "kysely";

// Signal replay (issue 19): every incident remembers the sender's time of the last event applied
// to it, so an older event (a replay, or a late delivery) cannot undo a newer one; and each signed
// delivery's id is kept until its timestamp can no longer pass the window, so the same delivery is
// refused a second time, across restarts and by every process on the database. Frozen once landed.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable("incidents")
    .addColumn("last_event_at", "bigint", (c) => c.notNull().defaultTo(0))
    .execute();
  // Incidents recorded before this migration have no sender time: the server's time of their last
  // change is the best that is known.
  await db.updateTable("incidents").set({ last_event_at: sql`coalesce(resolved_at, opened_at)` }).execute();

  await db.schema
    .createTable("signal_receipts")
    // Text, not varchar: the payload schemas are the only limits (see the input-limits migration).
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("receipt", "text", (c) => c.notNull())
    .addColumn("received_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("signal_receipts_pk", ["source", "receipt"])
    .execute();
  await db.schema.createIndex("signal_receipts_expiry").on("signal_receipts").column("expires_at").execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("signal_receipts").execute();
  await db.schema.alterTable("incidents").dropColumn("last_event_at").execute();
}

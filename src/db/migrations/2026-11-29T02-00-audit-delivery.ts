import type { Kysely } from "kysely";

// Audit delivery: where each sink stands in the chain, and the events it gave up on. The chain
// itself is the outbox (see src/audit/NOTES.md), so nothing here is written by request
// transactions. Frozen once landed.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("audit_sink_state")
    .addColumn("sink", "varchar(63)", (c) => c.primaryKey())
    .addColumn("delivered_seq", "bigint", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("next_attempt_at", "bigint")
    .addColumn("last_error", "text")
    .addColumn("last_error_at", "bigint")
    .addColumn("last_delivered_at", "bigint")
    .addColumn("delivered_total", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("error_total", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("failing", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("lease_owner", "varchar(64)")
    .addColumn("lease_until", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("audit_dead_letters")
    .addColumn("sink", "varchar(63)", (c) => c.notNull())
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("event_id", "varchar(64)", (c) => c.notNull())
    .addColumn("attempts", "integer", (c) => c.notNull())
    .addColumn("last_error", "text", (c) => c.notNull())
    .addColumn("state", "varchar(16)", (c) => c.notNull())
    .addColumn("dead_at", "bigint", (c) => c.notNull())
    .addColumn("replayed_at", "bigint")
    .addPrimaryKeyConstraint("audit_dead_letters_pk", ["sink", "seq"])
    .execute();
  await db.schema
    .createIndex("audit_dead_letters_state")
    .on("audit_dead_letters")
    .columns(["sink", "state", "seq"])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("audit_dead_letters").execute();
  await db.schema.dropTable("audit_sink_state").execute();
}

import { type Kysely, PostgresAdapter, sql } from "kysely";

// Several replicas on one database (issue 13, src/replicas/NOTES.md): a heartbeat row per serving
// process, and on PostgreSQL a notification on every append to the audit chain, the wake-up of
// every other replica's change feed (the chain's seq stays the source of truth). Frozen once landed.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("replicas")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("hostname", "text", (c) => c.notNull())
    .addColumn("pid", "integer", (c) => c.notNull())
    .addColumn("version", "text", (c) => c.notNull())
    .addColumn("config_digest", "text", (c) => c.notNull())
    .addColumn("address", "text")
    .addColumn("started_at", "bigint", (c) => c.notNull())
    .addColumn("heartbeat_at", "bigint", (c) => c.notNull())
    .addColumn("seen_seq", "bigint", (c) => c.notNull())
    .addColumn("current", "integer", (c) => c.notNull())
    .addColumn("not_current_reason", "text")
    .addColumn("stopped_at", "bigint")
    .execute();
  if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
  // Only a change of seq is news: the hash update of the same append and lockHead's no-op update
  // are not. NOTIFY is delivered at commit and never for a rolled-back transaction.
  await sql`
    create or replace function firebreak_audit_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('firebreak_audit', new.seq::text);
      return null;
    end $$`.execute(db);
  await sql`
    create trigger audit_head_notify after update on audit_head
    for each row when (new.seq <> old.seq) execute function firebreak_audit_notify()`.execute(db);
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function down(db: Kysely<any>): Promise<void> {
  if (db.getExecutor().adapter instanceof PostgresAdapter) {
    await sql`drop trigger if exists audit_head_notify on audit_head`.execute(db);
    await sql`drop function if exists firebreak_audit_notify()`.execute(db);
  }
  await db.schema.dropTable("replicas").execute();
}

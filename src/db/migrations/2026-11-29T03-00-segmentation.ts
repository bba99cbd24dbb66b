import type { Kysely } from "kysely";

// Frozen once landed. Network enforcement agents and what each last reported applying, so the
// server knows after a restart which agents exist and whether they confirmed a path closed.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("enforcement_agents")
    .addColumn("name", "varchar(63)", (c) => c.primaryKey())
    .addColumn("enforcer", "varchar(32)", (c) => c.notNull())
    .addColumn("first_seen_at", "bigint", (c) => c.notNull())
    .addColumn("last_seen_at", "bigint", (c) => c.notNull())
    .addColumn("grace_ms", "bigint", (c) => c.notNull())
    .addColumn("status", "varchar(16)", (c) => c.notNull())
    .addColumn("applied_digest", "varchar(64)")
    .addColumn("applied_at", "bigint")
    .addColumn("report_json", "text", (c) => c.notNull())
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("enforcement_agents").execute();
}

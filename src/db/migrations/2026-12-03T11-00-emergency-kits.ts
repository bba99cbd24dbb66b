import type { Kysely } from "kysely";

// Emergency kits (issue 17): one row per kit made, with what was created on the target (safe to
// store: the account name and where it is, never the password, which exists only sealed in the
// kit file), and one row per recorded opening imported from a journal, so an opening is imported
// once. Text, not varchar. Frozen once landed.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("emergency_kits")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("zone", "text", (c) => c.notNull())
    .addColumn("resource", "text", (c) => c.notNull())
    .addColumn("role", "text", (c) => c.notNull())
    .addColumn("external_id", "text", (c) => c.notNull())
    .addColumn("detail_json", "text", (c) => c.notNull())
    .addColumn("journal_key", "text", (c) => c.notNull())
    .addColumn("kit_json", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("ends_at", "bigint", (c) => c.notNull())
    .addColumn("closed_at", "bigint")
    .addColumn("close_reason", "text")
    .execute();
  await db.schema
    .createIndex("emergency_kits_zone_state")
    .on("emergency_kits")
    .columns(["zone", "state"])
    .execute();
  await db.schema
    .createTable("emergency_openings")
    .addColumn("kit_id", "text", (c) => c.notNull())
    .addColumn("signature", "text", (c) => c.notNull())
    .addColumn("opener", "text", (c) => c.notNull())
    .addColumn("opened_at", "bigint", (c) => c.notNull())
    .addColumn("grant_id", "text", (c) => c.notNull())
    .addColumn("imported_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("emergency_openings_pk", ["kit_id", "signature"])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("emergency_openings").execute();
  await db.schema.dropTable("emergency_kits").execute();
}

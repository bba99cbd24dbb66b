import type { Kysely } from "kysely";

// Frozen once landed: later changes get a new dated migration. Written against Kysely<any> so it
// never depends on the current shape of the application's types.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("users")
    .addColumn("name", "varchar(128)", (c) => c.primaryKey())
    .addColumn("groups_json", "text", (c) => c.notNull())
    .addColumn("source", "varchar(16)", (c) => c.notNull())
    .addColumn("is_admin", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("api_tokens")
    .addColumn("id", "varchar(64)", (c) => c.primaryKey())
    .addColumn("user_name", "varchar(128)", (c) => c.notNull())
    .addColumn("secret_hash", "varchar(128)", (c) => c.notNull())
    .addColumn("label", "varchar(200)", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint")
    .addColumn("revoked_at", "bigint")
    .execute();
  await db.schema.createIndex("api_tokens_user").on("api_tokens").column("user_name").execute();

  await db.schema
    .createTable("requests")
    .addColumn("id", "varchar(64)", (c) => c.primaryKey())
    .addColumn("requester", "varchar(128)", (c) => c.notNull())
    .addColumn("zone", "varchar(63)", (c) => c.notNull())
    .addColumn("resource", "varchar(63)")
    .addColumn("role", "varchar(63)", (c) => c.notNull())
    .addColumn("policy", "varchar(63)")
    .addColumn("duration_ms", "bigint", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("ticket", "varchar(200)")
    .addColumn("state", "varchar(16)", (c) => c.notNull())
    .addColumn("source_zone", "varchar(63)")
    .addColumn("client_address", "varchar(64)")
    .addColumn("approvals_json", "text", (c) => c.notNull())
    .addColumn("signals_json", "text", (c) => c.notNull())
    .addColumn("auto_approved", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .addColumn("lapses_at", "bigint")
    .addColumn("closed_reason", "text")
    .execute();
  await db.schema.createIndex("requests_lapses_at").on("requests").column("lapses_at").execute();
  await db.schema
    .createIndex("requests_requester")
    .on("requests")
    .columns(["requester", "created_at"])
    .execute();
  await db.schema.createIndex("requests_state").on("requests").columns(["state", "created_at"]).execute();

  await db.schema
    .createTable("approvals")
    .addColumn("id", "varchar(64)", (c) => c.primaryKey())
    .addColumn("request_id", "varchar(64)", (c) => c.notNull())
    .addColumn("approver", "varchar(128)", (c) => c.notNull())
    .addColumn("decision", "varchar(16)", (c) => c.notNull())
    .addColumn("groups_json", "text", (c) => c.notNull())
    .addColumn("comment", "text")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addUniqueConstraint("approvals_one_per_person", ["request_id", "approver"])
    .execute();

  await db.schema
    .createTable("grants")
    .addColumn("id", "varchar(64)", (c) => c.primaryKey())
    .addColumn("request_id", "varchar(64)", (c) => c.notNull().unique())
    .addColumn("user_name", "varchar(128)", (c) => c.notNull())
    .addColumn("zone", "varchar(63)", (c) => c.notNull())
    .addColumn("resource", "varchar(63)")
    .addColumn("role", "varchar(63)", (c) => c.notNull())
    .addColumn("policy", "varchar(63)")
    .addColumn("source_zone", "varchar(63)")
    .addColumn("client_address", "varchar(64)")
    .addColumn("state", "varchar(16)", (c) => c.notNull())
    .addColumn("starts_at", "bigint", (c) => c.notNull())
    .addColumn("ends_at", "bigint", (c) => c.notNull())
    .addColumn("due_at", "bigint")
    .addColumn("closed_at", "bigint")
    .addColumn("close_reason", "text")
    .addColumn("closed_by", "varchar(128)")
    .addColumn("factor_kind", "varchar(32)")
    .addColumn("factor_at", "bigint")
    .addColumn("revocation_status", "varchar(16)", (c) => c.notNull())
    .addColumn("review_state", "varchar(16)", (c) => c.notNull())
    .addColumn("review_due_at", "bigint")
    .addColumn("review_block", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("reviewer", "varchar(128)")
    .addColumn("review_notes", "text")
    .addColumn("reviewed_at", "bigint")
    .addColumn("review_alerted_at", "bigint")
    .addColumn("revocation_attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("revocation_next_at", "bigint")
    .addColumn("active_key", "varchar(300)", (c) => c.unique())
    .execute();
  await db.schema.createIndex("grants_due_at").on("grants").column("due_at").execute();
  await db.schema.createIndex("grants_user").on("grants").columns(["user_name", "starts_at"]).execute();
  await db.schema
    .createIndex("grants_review")
    .on("grants")
    .columns(["review_state", "review_due_at"])
    .execute();

  await db.schema
    .createTable("grant_effects")
    .addColumn("id", "varchar(64)", (c) => c.primaryKey())
    .addColumn("grant_id", "varchar(64)", (c) => c.notNull())
    .addColumn("resource", "varchar(63)", (c) => c.notNull())
    .addColumn("connector", "varchar(32)", (c) => c.notNull())
    .addColumn("state", "varchar(16)", (c) => c.notNull())
    .addColumn("detail_json", "text", (c) => c.notNull())
    .addColumn("secret_enc", "text")
    .addColumn("delivered_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("grant_effects_grant").on("grant_effects").column("grant_id").execute();

  // Key material Firebreak holds (per-zone SSH certificate authorities), encrypted under the master key.
  await db.schema
    .createTable("key_material")
    .addColumn("kind", "varchar(32)", (c) => c.notNull())
    .addColumn("scope", "varchar(63)", (c) => c.notNull())
    .addColumn("public_key", "text", (c) => c.notNull())
    .addColumn("private_enc", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("key_material_pk", ["kind", "scope"])
    .execute();

  await db.schema
    .createTable("incidents")
    .addColumn("id", "varchar(64)", (c) => c.primaryKey())
    .addColumn("source", "varchar(32)", (c) => c.notNull())
    .addColumn("external_id", "varchar(200)", (c) => c.notNull())
    .addColumn("zone", "varchar(63)", (c) => c.notNull())
    .addColumn("severity", "integer", (c) => c.notNull())
    .addColumn("title", "varchar(500)", (c) => c.notNull())
    .addColumn("opened_at", "bigint", (c) => c.notNull())
    .addColumn("resolved_at", "bigint")
    .addUniqueConstraint("incidents_source_external", ["source", "external_id"])
    .execute();
  await db.schema.createIndex("incidents_zone").on("incidents").columns(["zone", "resolved_at"]).execute();

  await db.schema
    .createTable("audit_events")
    .addColumn("seq", "bigint", (c) => c.primaryKey())
    .addColumn("id", "varchar(64)", (c) => c.notNull().unique())
    .addColumn("time", "bigint", (c) => c.notNull())
    .addColumn("type", "varchar(64)", (c) => c.notNull())
    .addColumn("actor", "varchar(128)", (c) => c.notNull())
    .addColumn("zone", "varchar(63)")
    .addColumn("resource", "varchar(63)")
    .addColumn("subject", "varchar(64)")
    .addColumn("context_json", "text", (c) => c.notNull())
    .addColumn("prev_hash", "varchar(64)", (c) => c.notNull())
    .addColumn("hash", "varchar(64)", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("audit_events_subject").on("audit_events").column("subject").execute();

  await db.schema
    .createTable("audit_head")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("hash", "varchar(64)", (c) => c.notNull())
    .execute();
  await db
    .insertInto("audit_head")
    .values({ id: 1, seq: 0, hash: "0".repeat(64) })
    .execute();

  await db.schema
    .createTable("config_state")
    .addColumn("id", "integer", (c) => c.primaryKey())
    .addColumn("digest", "varchar(64)", (c) => c.notNull())
    .addColumn("summary_json", "text", (c) => c.notNull())
    .addColumn("applied_at", "bigint", (c) => c.notNull())
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    "key_material",
    "config_state",
    "audit_head",
    "audit_events",
    "incidents",
    "grant_effects",
    "grants",
    "approvals",
    "requests",
    "api_tokens",
    "users",
  ]) {
    await db.schema.dropTable(table).execute();
  }
}

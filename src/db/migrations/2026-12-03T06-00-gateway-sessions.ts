import type { Kysely } from "kysely";

// Gateway sessions (issue 12): one row per session a protocol gateway (PostgreSQL, SSH) carried for
// a grant, its transcript as records hash-chained within the session, and the credential the
// gateway holds for a grant on a gateway resource (the just-in-time role's password, sealed, and
// the SCRAM verifier of the token the user was shown). Frozen once landed.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("gateway_sessions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("grant_id", "text", (c) => c.notNull())
    .addColumn("protocol", "text", (c) => c.notNull())
    .addColumn("resource", "text", (c) => c.notNull())
    .addColumn("user_name", "text", (c) => c.notNull())
    .addColumn("client_address", "text")
    .addColumn("started_at", "bigint", (c) => c.notNull())
    .addColumn("ended_at", "bigint")
    .addColumn("end_reason", "text")
    .addColumn("record_count", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("digest", "text")
    .execute();
  await db.schema.createIndex("gateway_sessions_grant").on("gateway_sessions").column("grant_id").execute();

  await db.schema
    .createTable("gateway_records")
    .addColumn("session_id", "text", (c) => c.notNull())
    .addColumn("seq", "integer", (c) => c.notNull())
    .addColumn("time", "bigint", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("payload_json", "text", (c) => c.notNull())
    .addColumn("prev_hash", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("gateway_records_pk", ["session_id", "seq"])
    .execute();

  await db.schema
    .createTable("gateway_credentials")
    .addColumn("grant_id", "text", (c) => c.notNull())
    .addColumn("resource", "text", (c) => c.notNull())
    .addColumn("login", "text", (c) => c.notNull())
    .addColumn("password_enc", "text", (c) => c.notNull())
    .addColumn("scram_salt", "text", (c) => c.notNull())
    .addColumn("scram_iterations", "integer", (c) => c.notNull())
    .addColumn("stored_key", "text", (c) => c.notNull())
    .addColumn("server_key", "text", (c) => c.notNull())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("gateway_credentials_pk", ["grant_id", "resource"])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("gateway_credentials").execute();
  await db.schema.dropTable("gateway_records").execute();
  await db.schema.dropTable("gateway_sessions").execute();
}

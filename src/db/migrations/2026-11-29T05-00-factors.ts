import type { Kysely } from "kysely";

// Authentication factors (TOTP, WebAuthn) and the record of each time one was presented, which is
// what "fresh within 5 minutes" is judged against. Frozen once landed.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("mfa_factors")
    .addColumn("id", "varchar(64)", (c) => c.primaryKey())
    .addColumn("user_name", "varchar(128)", (c) => c.notNull())
    .addColumn("kind", "varchar(16)", (c) => c.notNull())
    .addColumn("label", "varchar(200)", (c) => c.notNull())
    .addColumn("secret_enc", "text")
    .addColumn("credential_id", "varchar(1024)", (c) => c.unique())
    .addColumn("public_key", "text")
    .addColumn("counter", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("transports_json", "text", (c) => c.notNull().defaultTo("[]"))
    .addColumn("last_step", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("confirmed_at", "bigint")
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("mfa_factors_user").on("mfa_factors").columns(["user_name", "kind"]).execute();

  await db.schema
    .createTable("factor_presentations")
    .addColumn("id", "varchar(64)", (c) => c.primaryKey())
    .addColumn("user_name", "varchar(128)", (c) => c.notNull())
    .addColumn("kind", "varchar(16)", (c) => c.notNull())
    .addColumn("factor_id", "varchar(64)")
    .addColumn("ok", "integer", (c) => c.notNull())
    .addColumn("presented_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("factor_presentations_user")
    .on("factor_presentations")
    .columns(["user_name", "presented_at"])
    .execute();

  await db.schema
    .createTable("webauthn_challenges")
    .addColumn("id", "varchar(64)", (c) => c.primaryKey())
    .addColumn("user_name", "varchar(128)", (c) => c.notNull())
    .addColumn("purpose", "varchar(16)", (c) => c.notNull())
    .addColumn("challenge", "varchar(256)", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("webauthn_challenges_user")
    .on("webauthn_challenges")
    .columns(["user_name", "purpose"])
    .execute();

  // Certificates revoked before their end, per zone: the key revocation list hosts read is built
  // from this set, so it survives restarts.
  await db.schema
    .createTable("ssh_revocations")
    .addColumn("zone", "varchar(63)", (c) => c.notNull())
    .addColumn("serial", "varchar(32)", (c) => c.notNull())
    .addColumn("key_id", "varchar(128)")
    .addColumn("valid_before", "bigint")
    .addPrimaryKeyConstraint("ssh_revocations_pk", ["zone", "serial"])
    .execute();

  // When approvers are reminded of a pending request, before it lapses; null once reminded.
  await db.schema.alterTable("requests").addColumn("remind_at", "bigint").execute();
  await db.schema.createIndex("requests_remind_at").on("requests").column("remind_at").execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("requests_remind_at").execute();
  await db.schema.alterTable("requests").dropColumn("remind_at").execute();
  for (const table of ["ssh_revocations", "webauthn_challenges", "factor_presentations", "mfa_factors"])
    await db.schema.dropTable(table).execute();
}

import { type Kysely, sql } from "kysely";

// Factor hardening (issue 19): how each factor's enrolment was authorized and from when it counts,
// administrators' one-time enrolment codes, and a per-user failure counter that makes the
// attempt limit atomic. Frozen once landed.

/** The settle period a factor enrolled with only a sign-in waits (the default of the setting). */
const DEFAULT_SETTLE_MS = 24 * 3_600_000;

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  // `sign-in` (no existing factor, no code), `factor` (a fresh existing factor) or `enrolment-code`.
  await db.schema
    .alterTable("mfa_factors")
    .addColumn("authorized_by", "varchar(16)", (c) => c.notNull().defaultTo("sign-in"))
    .execute();
  await db.schema.alterTable("mfa_factors").addColumn("settles_at", "bigint").execute();
  // Factors enrolled before this migration were enrolled with a sign-in alone: they settle one
  // default period after their confirmation, so anything older than a day keeps working.
  await db
    .updateTable("mfa_factors")
    .set({ settles_at: sql`confirmed_at + ${DEFAULT_SETTLE_MS}` })
    .where("confirmed_at", "is not", null)
    .execute();

  await db.schema.alterTable("webauthn_challenges").addColumn("authorized_by", "varchar(16)").execute();

  await db.schema
    .createTable("mfa_enrolment_codes")
    .addColumn("user_name", "varchar(128)", (c) => c.primaryKey())
    .addColumn("code_hash", "varchar(64)", (c) => c.notNull())
    .addColumn("issued_by", "varchar(128)", (c) => c.notNull())
    .addColumn("issued_at", "bigint", (c) => c.notNull())
    .addColumn("expires_at", "bigint", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("factor_attempts")
    .addColumn("user_name", "varchar(128)", (c) => c.primaryKey())
    .addColumn("window_started_at", "bigint", (c) => c.notNull())
    .addColumn("failures", "integer", (c) => c.notNull())
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("factor_attempts").execute();
  await db.schema.dropTable("mfa_enrolment_codes").execute();
  await db.schema.alterTable("webauthn_challenges").dropColumn("authorized_by").execute();
  await db.schema.alterTable("mfa_factors").dropColumn("settles_at").execute();
  await db.schema.alterTable("mfa_factors").dropColumn("authorized_by").execute();
}

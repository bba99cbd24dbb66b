import type { Kysely } from "kysely";

// Frozen once landed: later changes get a new dated migration.
//
// OIDC sign-in: which account at which identity provider each OIDC user was created for. The
// Firebreak user name is bound to (issuer, subject) at first sign-in, so a later change of the
// username claim at the provider can never move someone onto another user's name.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("user_identities")
    .addColumn("issuer", "varchar(500)", (c) => c.notNull())
    .addColumn("subject", "varchar(255)", (c) => c.notNull())
    .addColumn("user_name", "varchar(128)", (c) => c.notNull().unique())
    .addColumn("created_at", "bigint", (c) => c.notNull())
    .addColumn("last_sign_in_at", "bigint", (c) => c.notNull())
    .addPrimaryKeyConstraint("user_identities_pk", ["issuer", "subject"])
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("user_identities").execute();
}

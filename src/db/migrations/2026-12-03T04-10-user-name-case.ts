import { type Kysely, sql } from "kysely";

// One spelling per user name (issue 19): `alice` and `Alice` were two principals that people read
// as one, so one could approve the other's request. The services refuse a name that differs only
// in case from an existing one; this index makes that hold under concurrent sign-ins and on every
// replica. User names are ASCII, so `lower` agrees on SQLite and PostgreSQL. A database that
// already holds such a pair is not migrated: which of the two is the real person is for an
// administrator to decide, and the error names them. Frozen once landed.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ folded: string; names: string }>`
    select lower(name) as folded, min(name) || ', ' || max(name) as names from users
    group by lower(name) having count(*) > 1 order by 1`.execute(db);
  if (rows.length > 0) {
    throw new Error(
      `user names that differ only in case: ${rows.map((row) => row.names).join("; ")}; delete or rename one of each pair (table users) before upgrading`,
    );
  }
  await db.schema
    .createIndex("users_name_folded")
    .on("users")
    .unique()
    .expression(sql`lower(name)`)
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: see up()
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex("users_name_folded").execute();
}

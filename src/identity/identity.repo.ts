import type { Executor } from "../db/types.js";

/** The OIDC account a Firebreak user was created for. */
export interface UserIdentity {
  issuer: string;
  subject: string;
  userName: string;
  createdAt: number;
  lastSignInAt: number;
}

export async function findIdentity(
  db: Executor,
  issuer: string,
  subject: string,
): Promise<UserIdentity | null> {
  const row = await db
    .selectFrom("user_identities")
    .selectAll()
    .where("issuer", "=", issuer)
    .where("subject", "=", subject)
    .executeTakeFirst();
  return row
    ? {
        issuer: row.issuer,
        subject: row.subject,
        userName: row.user_name,
        createdAt: row.created_at,
        lastSignInAt: row.last_sign_in_at,
      }
    : null;
}

export async function insertIdentity(db: Executor, identity: UserIdentity): Promise<void> {
  await db
    .insertInto("user_identities")
    .values({
      issuer: identity.issuer,
      subject: identity.subject,
      user_name: identity.userName,
      created_at: identity.createdAt,
      last_sign_in_at: identity.lastSignInAt,
    })
    .execute();
}

export async function touchIdentity(
  db: Executor,
  issuer: string,
  subject: string,
  now: number,
): Promise<void> {
  await db
    .updateTable("user_identities")
    .set({ last_sign_in_at: now })
    .where("issuer", "=", issuer)
    .where("subject", "=", subject)
    .execute();
}

import { sql } from "kysely";
import type { Executor } from "../db/types.js";

export interface StoredUser {
  name: string;
  groups: string[];
  source: "local" | "bootstrap" | "oidc";
  isAdmin: boolean;
  createdAt: number;
}

export async function findUser(db: Executor, name: string): Promise<StoredUser | null> {
  const row = await db.selectFrom("users").selectAll().where("name", "=", name).executeTakeFirst();
  return row
    ? {
        name: row.name,
        groups: JSON.parse(row.groups_json) as string[],
        source: row.source,
        isAdmin: row.is_admin === 1,
        createdAt: row.created_at,
      }
    : null;
}

/**
 * Stored users whose name is `name` but for letter case (`Alice` for `alice`), the exact one
 * included. User names are ASCII, so `lower` agrees on SQLite and PostgreSQL; the
 * `users_name_folded` index keeps at most one spelling of each name.
 */
export async function findUsersIgnoringCase(db: Executor, name: string): Promise<StoredUser[]> {
  const rows = await db
    .selectFrom("users")
    .selectAll()
    .where(sql<string>`lower(${sql.ref("name")})`, "=", name.toLowerCase())
    .execute();
  return rows.map((row) => ({
    name: row.name,
    groups: JSON.parse(row.groups_json) as string[],
    source: row.source,
    isAdmin: row.is_admin === 1,
    createdAt: row.created_at,
  }));
}

export async function listUsers(db: Executor): Promise<StoredUser[]> {
  const rows = await db.selectFrom("users").selectAll().orderBy("name").execute();
  return rows.map((row) => ({
    name: row.name,
    groups: JSON.parse(row.groups_json) as string[],
    source: row.source,
    isAdmin: row.is_admin === 1,
    createdAt: row.created_at,
  }));
}

export async function insertUser(db: Executor, user: StoredUser): Promise<void> {
  await db
    .insertInto("users")
    .values({
      name: user.name,
      groups_json: JSON.stringify(user.groups),
      source: user.source,
      is_admin: user.isAdmin ? 1 : 0,
      created_at: user.createdAt,
    })
    .execute();
}

export async function countAdmins(db: Executor): Promise<number> {
  const row = await db
    .selectFrom("users")
    .select((eb) => eb.fn.countAll<number>().as("count"))
    .where("is_admin", "=", 1)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export interface StoredToken {
  id: string;
  userName: string;
  secretHash: string;
  expiresAt: number | null;
  revokedAt: number | null;
}

export async function insertToken(
  db: Executor,
  token: StoredToken & { label: string; createdAt: number },
): Promise<void> {
  await db
    .insertInto("api_tokens")
    .values({
      id: token.id,
      user_name: token.userName,
      secret_hash: token.secretHash,
      label: token.label,
      created_at: token.createdAt,
      expires_at: token.expiresAt,
      revoked_at: token.revokedAt,
    })
    .execute();
}

export async function findToken(db: Executor, id: string): Promise<StoredToken | null> {
  const row = await db.selectFrom("api_tokens").selectAll().where("id", "=", id).executeTakeFirst();
  return row
    ? {
        id: row.id,
        userName: row.user_name,
        secretHash: row.secret_hash,
        expiresAt: row.expires_at,
        revokedAt: row.revoked_at,
      }
    : null;
}

/** Replaces a user's stored groups (OIDC users: what the provider reported at the last sign-in). */
export async function updateUserGroups(db: Executor, name: string, groups: string[]): Promise<void> {
  await db
    .updateTable("users")
    .set({ groups_json: JSON.stringify(groups) })
    .where("name", "=", name)
    .execute();
}

/** Revokes one token; true when it was live (not already revoked). */
export async function revokeToken(db: Executor, id: string, now: number): Promise<boolean> {
  const result = await db
    .updateTable("api_tokens")
    .set({ revoked_at: now })
    .where("id", "=", id)
    .where("revoked_at", "is", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Revokes every live token of a user (neither revoked nor expired); returns the ids revoked. */
export async function revokeTokensOfUser(db: Executor, userName: string, now: number): Promise<string[]> {
  const revoked = await db
    .updateTable("api_tokens")
    .set({ revoked_at: now })
    .where("user_name", "=", userName)
    .where("revoked_at", "is", null)
    .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
    .returning("id")
    .execute();
  return revoked.map((row) => row.id).sort();
}

import type { Executor, MfaFactorsTable } from "../db/types.js";

export type FactorRow = MfaFactorsTable;

export async function listFactors(
  db: Executor,
  user: string,
  kind?: "totp" | "webauthn",
): Promise<FactorRow[]> {
  let query = db.selectFrom("mfa_factors").selectAll().where("user_name", "=", user);
  if (kind) query = query.where("kind", "=", kind);
  return query.orderBy("created_at").execute();
}

export async function insertFactor(db: Executor, row: FactorRow): Promise<void> {
  await db.insertInto("mfa_factors").values(row).execute();
}

export async function deleteUnconfirmed(
  db: Executor,
  user: string,
  kind: "totp" | "webauthn",
): Promise<void> {
  await db
    .deleteFrom("mfa_factors")
    .where("user_name", "=", user)
    .where("kind", "=", kind)
    .where("confirmed_at", "is", null)
    .execute();
}

/**
 * Accepts a TOTP time step only if it is newer than the last one accepted: the compare-and-set
 * makes a replayed code fail even when two requests race with the same code.
 */
export async function advanceStep(
  db: Executor,
  factorId: string,
  step: number,
  now: number,
): Promise<boolean> {
  const result = await db
    .updateTable("mfa_factors")
    .set((eb) => ({ last_step: step, confirmed_at: eb.fn.coalesce("confirmed_at", eb.val(now)) }))
    .where("id", "=", factorId)
    .where("last_step", "<", step)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function updateCounter(db: Executor, factorId: string, counter: number): Promise<void> {
  await db.updateTable("mfa_factors").set({ counter }).where("id", "=", factorId).execute();
}

export async function recordPresentation(
  db: Executor,
  row: {
    id: string;
    user_name: string;
    kind: string;
    factor_id: string | null;
    ok: number;
    presented_at: number;
  },
): Promise<void> {
  await db.insertInto("factor_presentations").values(row).execute();
}

/** The newest successful presentation of any of `kinds` at or after `since`. */
export async function latestPresentation(
  db: Executor,
  user: string,
  kinds: readonly string[],
  since: number,
) {
  if (kinds.length === 0) return undefined;
  return db
    .selectFrom("factor_presentations")
    .selectAll()
    .where("user_name", "=", user)
    .where("ok", "=", 1)
    .where("kind", "in", kinds)
    .where("presented_at", ">=", since)
    .orderBy("presented_at", "desc")
    .executeTakeFirst();
}

export async function countFailures(db: Executor, user: string, since: number): Promise<number> {
  const row = await db
    .selectFrom("factor_presentations")
    .select((eb) => eb.fn.countAll<number>().as("count"))
    .where("user_name", "=", user)
    .where("ok", "=", 0)
    .where("presented_at", ">=", since)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

export async function saveChallenge(
  db: Executor,
  row: {
    id: string;
    user_name: string;
    purpose: "register" | "assert";
    challenge: string;
    expires_at: number;
  },
): Promise<void> {
  await db
    .deleteFrom("webauthn_challenges")
    .where("user_name", "=", row.user_name)
    .where("purpose", "=", row.purpose)
    .execute();
  await db.insertInto("webauthn_challenges").values(row).execute();
}

/** Takes the user's pending challenge (one use: it is deleted as it is read). */
export async function takeChallenge(db: Executor, user: string, purpose: "register" | "assert", now: number) {
  const row = await db
    .selectFrom("webauthn_challenges")
    .selectAll()
    .where("user_name", "=", user)
    .where("purpose", "=", purpose)
    .executeTakeFirst();
  if (!row) return null;
  await db.deleteFrom("webauthn_challenges").where("id", "=", row.id).execute();
  return row.expires_at > now ? row.challenge : null;
}

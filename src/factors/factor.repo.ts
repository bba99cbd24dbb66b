import type { Executor, FactorAuthorization, MfaFactorsTable } from "../db/types.js";

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

/** Removes every factor of `user`, confirmed or not, and returns what was removed. */
export async function deleteFactors(db: Executor, user: string) {
  const removed = await db
    .selectFrom("mfa_factors")
    .select(["id", "kind"])
    .where("user_name", "=", user)
    .orderBy("created_at")
    .execute();
  await db.deleteFrom("mfa_factors").where("user_name", "=", user).execute();
  await db.deleteFrom("webauthn_challenges").where("user_name", "=", user).execute();
  return removed;
}

/**
 * Accepts a TOTP time step only if it is newer than the last one accepted: the compare-and-set
 * makes a replayed code fail even when two requests race with the same code. The code that
 * confirms a pending factor also fixes when the factor settles.
 */
export async function advanceStep(
  db: Executor,
  factorId: string,
  step: number,
  now: number,
  settlesAt: number,
): Promise<boolean> {
  const result = await db
    .updateTable("mfa_factors")
    .set((eb) => ({
      last_step: step,
      confirmed_at: eb.fn.coalesce("confirmed_at", eb.val(now)),
      settles_at: eb.fn.coalesce("settles_at", eb.val(settlesAt)),
    }))
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

/**
 * Successful presentations of any of `kinds` at or after `since`, newest first, with what their
 * factor's enrolment allows. Only factors that still exist and are confirmed appear, so a reset
 * takes every earlier presentation with it.
 */
export async function recentPresentations(
  db: Executor,
  user: string,
  kinds: readonly string[],
  since: number,
) {
  if (kinds.length === 0) return [];
  return db
    .selectFrom("factor_presentations as p")
    .innerJoin("mfa_factors as f", "f.id", "p.factor_id")
    .select([
      "p.kind",
      "p.presented_at",
      "f.id as factor_id",
      "f.confirmed_at",
      "f.settles_at",
      "f.authorized_by",
    ])
    .where("p.user_name", "=", user)
    .where("f.user_name", "=", user)
    .where("p.ok", "=", 1)
    .where("p.kind", "in", kinds)
    .where("p.presented_at", ">=", since)
    .where("f.confirmed_at", "is not", null)
    .orderBy("p.presented_at", "desc")
    .limit(100)
    .execute();
}

/**
 * Takes one attempt from the user's allowance before a secret is checked: the conditional
 * increment is a single statement, so however many attempts arrive at once, no more than `max`
 * per window get past it (row locks serialise it on PostgreSQL, the one writer on SQLite). Returns
 * the window the attempt was counted in, or null when the allowance is spent.
 */
export async function reserveAttempt(
  db: Executor,
  user: string,
  now: number,
  windowMs: number,
  max: number,
): Promise<number | null> {
  await db
    .insertInto("factor_attempts")
    .values({ user_name: user, window_started_at: now, failures: 0 })
    .onConflict((oc) => oc.column("user_name").doNothing())
    .execute();
  const expiredBefore = now - windowMs;
  const row = await db
    .updateTable("factor_attempts")
    .set((eb) => ({
      failures: eb
        .case()
        .when("window_started_at", "<=", expiredBefore)
        .then(eb.val(1))
        .else(eb("failures", "+", 1))
        .end(),
      window_started_at: eb
        .case()
        .when("window_started_at", "<=", expiredBefore)
        .then(eb.val(now))
        .else(eb.ref("window_started_at"))
        .end(),
    }))
    .where("user_name", "=", user)
    .where((eb) => eb.or([eb("window_started_at", "<=", expiredBefore), eb("failures", "<", max)]))
    .returning("window_started_at")
    .executeTakeFirst();
  return row ? Number(row.window_started_at) : null;
}

/** Gives back an attempt that turned out not to be a failure (a right code, nothing to check). */
export async function releaseAttempt(db: Executor, user: string, window: number): Promise<void> {
  await db
    .updateTable("factor_attempts")
    .set((eb) => ({ failures: eb("failures", "-", 1) }))
    .where("user_name", "=", user)
    .where("window_started_at", "=", window)
    .where("failures", ">", 0)
    .execute();
}

/** Replaces the user's enrolment code (only its hash is stored). */
export async function saveEnrolmentCode(
  db: Executor,
  row: { user_name: string; code_hash: string; issued_by: string; issued_at: number; expires_at: number },
): Promise<void> {
  await db.deleteFrom("mfa_enrolment_codes").where("user_name", "=", row.user_name).execute();
  await db.insertInto("mfa_enrolment_codes").values(row).execute();
}

export async function findEnrolmentCode(db: Executor, user: string) {
  return db.selectFrom("mfa_enrolment_codes").selectAll().where("user_name", "=", user).executeTakeFirst();
}

/** Uses up the code: only one of several racing uses deletes it, and only that one counts. */
export async function consumeEnrolmentCode(db: Executor, user: string, codeHash: string): Promise<boolean> {
  const result = await db
    .deleteFrom("mfa_enrolment_codes")
    .where("user_name", "=", user)
    .where("code_hash", "=", codeHash)
    .executeTakeFirst();
  return Number(result.numDeletedRows) === 1;
}

export async function saveChallenge(
  db: Executor,
  row: {
    id: string;
    user_name: string;
    purpose: "register" | "assert";
    challenge: string;
    expires_at: number;
    authorized_by: FactorAuthorization | null;
  },
): Promise<void> {
  await db
    .deleteFrom("webauthn_challenges")
    .where("user_name", "=", row.user_name)
    .where("purpose", "=", row.purpose)
    .execute();
  await db.insertInto("webauthn_challenges").values(row).execute();
}

/**
 * Takes the user's pending challenge (one use: it is deleted as it is read; of two racing takes,
 * only the one whose delete removed the row gets it).
 */
export async function takeChallenge(db: Executor, user: string, purpose: "register" | "assert", now: number) {
  const row = await db
    .selectFrom("webauthn_challenges")
    .selectAll()
    .where("user_name", "=", user)
    .where("purpose", "=", purpose)
    .executeTakeFirst();
  if (!row) return null;
  const deleted = await db.deleteFrom("webauthn_challenges").where("id", "=", row.id).executeTakeFirst();
  if (Number(deleted.numDeletedRows) !== 1 || row.expires_at <= now) return null;
  return { challenge: row.challenge, authorizedBy: row.authorized_by };
}

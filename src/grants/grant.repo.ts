import { sql } from "kysely";
import type {
  Executor,
  GrantEffectsTable,
  GrantState,
  GrantsTable,
  ReviewState,
  RevocationStatus,
} from "../db/types.js";

export interface GrantRecord {
  id: string;
  requestId: string;
  user: string;
  zone: string;
  resource: string | null;
  role: string;
  policy: string | null;
  sourceZone: string | null;
  clientAddress: string | null;
  state: GrantState;
  startsAt: number;
  endsAt: number;
  closedAt: number | null;
  closeReason: string | null;
  closedBy: string | null;
  factorKind: string | null;
  factorAt: number | null;
  revocationStatus: RevocationStatus;
  revocationAttempts: number;
  revocationNextAt: number | null;
  reviewState: ReviewState;
  reviewDueAt: number | null;
  reviewBlock: boolean;
  reviewer: string | null;
  reviewNotes: string | null;
  reviewedAt: number | null;
  reviewAlertedAt: number | null;
}

export interface GrantEffect {
  id: string;
  grantId: string;
  resource: string;
  connector: string;
  state: GrantEffectsTable["state"];
  detail: Record<string, unknown>;
  /** The issued secret, sealed under the master key; null when there is none or once delivered. */
  secretEnc: string | null;
  deliveredAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** An effect row's connector for network paths: `path:<enforcer kind>`. */
export const PATH_CONNECTOR_PREFIX = "path:";

/** How long the process that closed a grant has to record its revocation before the scheduler retries it. */
export const CLOSER_GRACE_MS = 30_000;

/**
 * The key that is unique among live grants: one active grant per user, zone and role. The
 * separator is a control character no name may contain; not NUL, which PostgreSQL text refuses.
 */
export function activeKey(user: string, zone: string, role: string): string {
  return `${user}\u001f${zone}\u001f${role}`;
}

function toRecord(row: GrantsTable): GrantRecord {
  return {
    id: row.id,
    requestId: row.request_id,
    user: row.user_name,
    zone: row.zone,
    resource: row.resource,
    role: row.role,
    policy: row.policy,
    sourceZone: row.source_zone,
    clientAddress: row.client_address,
    state: row.state,
    startsAt: row.starts_at,
    endsAt: row.ends_at,
    closedAt: row.closed_at,
    closeReason: row.close_reason,
    closedBy: row.closed_by,
    factorKind: row.factor_kind,
    factorAt: row.factor_at,
    revocationStatus: row.revocation_status,
    revocationAttempts: row.revocation_attempts,
    revocationNextAt: row.revocation_next_at,
    reviewState: row.review_state,
    reviewDueAt: row.review_due_at,
    reviewBlock: row.review_block === 1,
    reviewer: row.reviewer,
    reviewNotes: row.review_notes,
    reviewedAt: row.reviewed_at,
    reviewAlertedAt: row.review_alerted_at,
  };
}

export async function insertGrant(db: Executor, grant: GrantRecord): Promise<void> {
  await db
    .insertInto("grants")
    .values({
      id: grant.id,
      request_id: grant.requestId,
      user_name: grant.user,
      zone: grant.zone,
      resource: grant.resource,
      role: grant.role,
      policy: grant.policy,
      source_zone: grant.sourceZone,
      client_address: grant.clientAddress,
      state: grant.state,
      starts_at: grant.startsAt,
      ends_at: grant.endsAt,
      due_at: grant.state === "active" ? grant.endsAt : null,
      closed_at: grant.closedAt,
      close_reason: grant.closeReason,
      closed_by: grant.closedBy,
      factor_kind: grant.factorKind,
      factor_at: grant.factorAt,
      revocation_status: grant.revocationStatus,
      revocation_attempts: grant.revocationAttempts,
      revocation_next_at: grant.revocationNextAt,
      review_state: grant.reviewState,
      review_due_at: grant.reviewDueAt,
      review_block: grant.reviewBlock ? 1 : 0,
      reviewer: grant.reviewer,
      review_notes: grant.reviewNotes,
      reviewed_at: grant.reviewedAt,
      review_alerted_at: grant.reviewAlertedAt,
      active_key: grant.state === "active" ? activeKey(grant.user, grant.zone, grant.role) : null,
    })
    .execute();
}

export async function findGrant(db: Executor, id: string): Promise<GrantRecord | null> {
  const row = await db.selectFrom("grants").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? toRecord(row) : null;
}

export async function hasActiveGrant(
  db: Executor,
  user: string,
  zone: string,
  role: string,
): Promise<boolean> {
  const row = await db
    .selectFrom("grants")
    .select("id")
    .where("active_key", "=", activeKey(user, zone, role))
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * Closes an active grant. Returns false when it was no longer active (another writer closed it),
 * so expiry and revoke racing each other close it exactly once.
 */
export async function closeGrant(
  db: Executor,
  id: string,
  change: {
    state: "expired" | "revoked";
    now: number;
    reason: string;
    closedBy: string;
    revocationStatus: RevocationStatus;
  },
): Promise<boolean> {
  const result = await db
    .updateTable("grants")
    .set({
      state: change.state,
      due_at: null,
      active_key: null,
      closed_at: change.now,
      close_reason: change.reason,
      closed_by: change.closedBy,
      revocation_status: change.revocationStatus,
      // The review is due a fixed time after the use ended, not after the window it was granted
      // for: a grant revoked early is reviewed that much earlier.
      review_due_at: sql<number | null>`review_due_at - ends_at + ${change.now}`,
      // The closer takes access away right after this commits; the scheduler only steps in if it has
      // not recorded an outcome by then (a crash), so the two never revoke the same grant at once.
      revocation_next_at: change.revocationStatus === "pending" ? change.now + CLOSER_GRACE_MS : null,
    })
    .where("id", "=", id)
    .where("state", "=", "active")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function setRevocation(
  db: Executor,
  id: string,
  change: { status: RevocationStatus; attempts: number; nextAt: number | null },
): Promise<void> {
  await db
    .updateTable("grants")
    .set({
      revocation_status: change.status,
      revocation_attempts: change.attempts,
      revocation_next_at: change.nextAt,
    })
    .where("id", "=", id)
    .execute();
}

/**
 * Takes a due revocation for one attempt: moves its next time on to `until`, only if it is still
 * the `expected` time that was read. Of several passes that read it due, one gets true.
 */
export async function claimRevocation(
  db: Executor,
  id: string,
  expected: number,
  until: number,
): Promise<boolean> {
  const result = await db
    .updateTable("grants")
    .set({ revocation_next_at: until })
    .where("id", "=", id)
    .where("revocation_next_at", "=", expected)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function recordReview(
  db: Executor,
  id: string,
  review: { state: "accepted" | "flagged"; reviewer: string; notes: string; now: number },
): Promise<boolean> {
  const result = await db
    .updateTable("grants")
    .set({
      review_state: review.state,
      reviewer: review.reviewer,
      review_notes: review.notes,
      reviewed_at: review.now,
    })
    .where("id", "=", id)
    .where("review_state", "=", "due")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Claims an overdue review's alert: false when another replica's pass took it first. */
export async function markReviewAlerted(db: Executor, id: string, now: number): Promise<boolean> {
  const result = await db
    .updateTable("grants")
    .set({ review_alerted_at: now })
    .where("id", "=", id)
    .where("review_alerted_at", "is", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export interface GrantFilter {
  user?: string;
  state?: GrantState;
  reviewState?: ReviewState;
  /** Only reviews due before this time (overdue when it is now). */
  reviewDueBefore?: number;
  /** Only grants that have ended (what a review can judge). */
  ended?: boolean;
  zones?: string[];
  orUser?: string;
  limit: number;
}

export async function listGrants(db: Executor, filter: GrantFilter): Promise<GrantRecord[]> {
  let query = db.selectFrom("grants").selectAll();
  if (filter.user) query = query.where("user_name", "=", filter.user);
  if (filter.state) query = query.where("state", "=", filter.state);
  if (filter.reviewState) query = query.where("review_state", "=", filter.reviewState);
  if (filter.reviewDueBefore !== undefined) query = query.where("review_due_at", "<", filter.reviewDueBefore);
  if (filter.ended) query = query.where("state", "!=", "active");
  if (filter.zones) {
    const zones = filter.zones;
    const orUser = filter.orUser;
    query = query.where((eb) => {
      const parts = [];
      if (zones.length > 0) parts.push(eb("zone", "in", zones));
      if (orUser) parts.push(eb("user_name", "=", orUser));
      return parts.length > 0 ? eb.or(parts) : eb.val(false);
    });
  }
  const rows = await query.orderBy("starts_at", "desc").orderBy("id", "desc").limit(filter.limit).execute();
  return rows.map(toRecord);
}

export async function listActiveGrants(db: Executor): Promise<GrantRecord[]> {
  const rows = await db.selectFrom("grants").selectAll().where("state", "=", "active").execute();
  return rows.map(toRecord);
}

/** Active grants whose end has passed; the index on due_at makes this cost what is due. */
export async function listDueGrants(db: Executor, now: number, limit: number): Promise<GrantRecord[]> {
  const rows = await db
    .selectFrom("grants")
    .selectAll()
    .where("due_at", "<=", now)
    .orderBy("due_at")
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

export async function listRevocationsDue(db: Executor, now: number, limit: number): Promise<GrantRecord[]> {
  const rows = await db
    .selectFrom("grants")
    .selectAll()
    .where("revocation_next_at", "<=", now)
    .orderBy("revocation_next_at")
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

/** Overdue reviews not yet alerted on. */
export async function listOverdueReviews(db: Executor, now: number, limit: number): Promise<GrantRecord[]> {
  const rows = await db
    .selectFrom("grants")
    .selectAll()
    .where("review_state", "=", "due")
    .where("review_due_at", "<=", now)
    .where("review_alerted_at", "is", null)
    .orderBy("review_due_at")
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

export async function countBlockingOverdueReviews(db: Executor, user: string, now: number): Promise<number> {
  const row = await db
    .selectFrom("grants")
    .select((eb) => eb.fn.countAll<number>().as("count"))
    .where("user_name", "=", user)
    .where("review_state", "=", "due")
    .where("review_block", "=", 1)
    .where("review_due_at", "<=", now)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}

/** The earliest time anything grant-related falls due: an expiry or a revocation retry. */
export async function nextGrantDue(db: Executor): Promise<number | null> {
  const row = await db
    .selectFrom("grants")
    .select((eb) => [eb.fn.min("due_at").as("due"), eb.fn.min("revocation_next_at").as("retry")])
    .executeTakeFirst();
  const times = [row?.due, row?.retry].filter((t) => t != null).map(Number);
  return times.length > 0 ? Math.min(...times) : null;
}

export async function insertEffect(db: Executor, effect: GrantEffect): Promise<void> {
  await db
    .insertInto("grant_effects")
    .values({
      id: effect.id,
      grant_id: effect.grantId,
      resource: effect.resource,
      connector: effect.connector,
      state: effect.state,
      detail_json: JSON.stringify(effect.detail),
      secret_enc: effect.secretEnc,
      delivered_at: effect.deliveredAt,
      created_at: effect.createdAt,
      updated_at: effect.updatedAt,
    })
    .execute();
}

export async function updateEffect(
  db: Executor,
  id: string,
  change: {
    state: GrantEffect["state"];
    detail?: Record<string, unknown>;
    secretEnc?: string | null;
    now: number;
  },
): Promise<void> {
  await db
    .updateTable("grant_effects")
    .set({
      state: change.state,
      updated_at: change.now,
      ...(change.secretEnc !== undefined ? { secret_enc: change.secretEnc } : {}),
      ...(change.detail ? { detail_json: JSON.stringify(change.detail) } : {}),
    })
    .where("id", "=", id)
    .execute();
}

/** The grant id of each request that became a grant, in one query (for list views). */
export async function grantIdsByRequest(
  db: Executor,
  requestIds: readonly string[],
): Promise<Map<string, string>> {
  if (requestIds.length === 0) return new Map();
  const rows = await db
    .selectFrom("grants")
    .select(["id", "request_id"])
    .where("request_id", "in", requestIds)
    .execute();
  return new Map(rows.map((row) => [row.request_id, row.id]));
}

/** The effects of several grants in one query (for list views). */
export async function listEffectsByGrant(
  db: Executor,
  grantIds: readonly string[],
): Promise<Map<string, GrantEffect[]>> {
  const byGrant = new Map<string, GrantEffect[]>();
  if (grantIds.length === 0) return byGrant;
  const rows = await db
    .selectFrom("grant_effects")
    .selectAll()
    .where("grant_id", "in", grantIds)
    .orderBy("id")
    .execute();
  for (const row of rows) {
    const list = byGrant.get(row.grant_id) ?? [];
    list.push(toEffect(row));
    byGrant.set(row.grant_id, list);
  }
  return byGrant;
}

export async function listEffects(db: Executor, grantId: string): Promise<GrantEffect[]> {
  const rows = await db
    .selectFrom("grant_effects")
    .selectAll()
    .where("grant_id", "=", grantId)
    .orderBy("id")
    .execute();
  return rows.map(toEffect);
}

/** Effects recorded as intent but never completed: a crash happened between the two records. */
export async function listUnfinishedEffects(db: Executor): Promise<GrantEffect[]> {
  const rows = await db.selectFrom("grant_effects").selectAll().where("state", "=", "intent").execute();
  return rows.map(toEffect);
}

function toEffect(row: GrantEffectsTable): GrantEffect {
  return {
    id: row.id,
    grantId: row.grant_id,
    resource: row.resource,
    connector: row.connector,
    state: row.state,
    detail: JSON.parse(row.detail_json) as Record<string, unknown>,
    secretEnc: row.secret_enc,
    deliveredAt: row.delivered_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * Marks the grant's secrets in `effectIds` delivered and wipes them: each is shown exactly once.
 * Returns how many it wiped; fewer than asked means another delivery took them first. Effects that
 * hold no secret (an address, a login name) stay undelivered, so they can be shown again.
 */
export async function markDelivered(
  db: Executor,
  grantId: string,
  effectIds: readonly string[],
  now: number,
): Promise<number> {
  if (effectIds.length === 0) return 0;
  const result = await db
    .updateTable("grant_effects")
    .set({ delivered_at: now, secret_enc: null })
    .where("grant_id", "=", grantId)
    .where("id", "in", [...effectIds])
    .where("delivered_at", "is", null)
    .where("secret_enc", "is not", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

/** Effects of live grants on one resource: what the reconciler must leave alone. */
export async function listLiveEffects(db: Executor, resource: string) {
  const rows = await db
    .selectFrom("grant_effects")
    .innerJoin("grants", "grants.id", "grant_effects.grant_id")
    .select(["grant_effects.detail_json", "grant_effects.grant_id", "grants.user_name"])
    .where("grant_effects.resource", "=", resource)
    .where("grants.state", "=", "active")
    .where("grant_effects.state", "in", ["intent", "issued"])
    .execute();
  return rows.map((row) => ({
    grantId: row.grant_id,
    user: row.user_name,
    externalId: (JSON.parse(row.detail_json) as { externalId?: string }).externalId ?? null,
  }));
}

/** Every effect holding a sealed secret (for re-encryption under a new master key). */
export function listSealedSecrets(db: Executor): Promise<{ id: string; secretEnc: string }[]> {
  return db
    .selectFrom("grant_effects")
    .select(["id", "secret_enc"])
    .where("secret_enc", "is not", null)
    .execute()
    .then((rows) => rows.map((row) => ({ id: row.id, secretEnc: row.secret_enc as string })));
}

/** Replaces an effect's sealed secret with the same secret sealed under another key. */
export async function resealSecret(db: Executor, id: string, secretEnc: string): Promise<void> {
  await db.updateTable("grant_effects").set({ secret_enc: secretEnc }).where("id", "=", id).execute();
}

/** The grants with these ids (any state), for a replica re-deriving what changed (src/replicas/). */
export async function findGrantsByIds(db: Executor, ids: readonly string[]): Promise<GrantRecord[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom("grants")
    .selectAll()
    .where("id", "in", [...ids])
    .execute();
  return rows.map(toRecord);
}

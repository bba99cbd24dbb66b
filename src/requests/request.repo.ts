import type { Executor, RequestState, RequestsTable } from "../db/types.js";

export interface ApprovalStepRecord {
  from: string[];
  count: number;
}

export interface RequestRecord {
  id: string;
  requester: string;
  zone: string;
  resource: string | null;
  role: string;
  policy: string | null;
  durationMs: number;
  reason: string;
  ticket: string | null;
  state: RequestState;
  sourceZone: string | null;
  clientAddress: string | null;
  approvalSteps: ApprovalStepRecord[];
  /** Factors the policy asks for at activation, and how fresh they must be. */
  factors: { kinds: string[]; freshnessMs: number };
  /** The review the policy asks for after use: the grant's review deadline comes from here. */
  review: { withinMs: number; blockWhenOverdue: boolean } | null;
  signals: Record<string, unknown>;
  autoApproved: boolean;
  createdAt: number;
  updatedAt: number;
  lapsesAt: number | null;
  closedReason: string | null;
}

export interface ApprovalRecord {
  id: string;
  requestId: string;
  approver: string;
  groups: string[];
  decision: "approve" | "deny";
  comment: string | null;
  createdAt: number;
}

function toRecord(row: RequestsTable): RequestRecord {
  const approvals = JSON.parse(row.approvals_json) as {
    steps: ApprovalStepRecord[];
    factors: RequestRecord["factors"];
    review: RequestRecord["review"];
  };
  return {
    id: row.id,
    requester: row.requester,
    zone: row.zone,
    resource: row.resource,
    role: row.role,
    policy: row.policy,
    durationMs: row.duration_ms,
    reason: row.reason,
    ticket: row.ticket,
    state: row.state,
    sourceZone: row.source_zone,
    clientAddress: row.client_address,
    approvalSteps: approvals.steps,
    factors: approvals.factors,
    review: approvals.review,
    signals: JSON.parse(row.signals_json) as Record<string, unknown>,
    autoApproved: row.auto_approved === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lapsesAt: row.lapses_at,
    closedReason: row.closed_reason,
  };
}

export async function insertRequest(db: Executor, request: RequestRecord): Promise<void> {
  await db
    .insertInto("requests")
    .values({
      id: request.id,
      requester: request.requester,
      zone: request.zone,
      resource: request.resource,
      role: request.role,
      policy: request.policy,
      duration_ms: request.durationMs,
      reason: request.reason,
      ticket: request.ticket,
      state: request.state,
      source_zone: request.sourceZone,
      client_address: request.clientAddress,
      approvals_json: JSON.stringify({
        steps: request.approvalSteps,
        factors: request.factors,
        review: request.review,
      }),
      signals_json: JSON.stringify(request.signals),
      auto_approved: request.autoApproved ? 1 : 0,
      created_at: request.createdAt,
      updated_at: request.updatedAt,
      lapses_at: request.lapsesAt,
      closed_reason: request.closedReason,
      remind_at:
        request.state === "pending" && request.lapsesAt !== null
          ? reminderTime(request.createdAt, request.lapsesAt)
          : null,
    })
    .execute();
}

export async function findRequest(db: Executor, id: string): Promise<RequestRecord | null> {
  const row = await db.selectFrom("requests").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? toRecord(row) : null;
}

/**
 * Moves a request from one of `from` to `to`. Returns false when another writer got there first,
 * so concurrent transitions (approve racing cancel, two schedulers) cannot both win.
 */
export async function transitionRequest(
  db: Executor,
  id: string,
  from: readonly RequestState[],
  to: RequestState,
  now: number,
  changes: { lapsesAt?: number | null; closedReason?: string | null } = {},
): Promise<boolean> {
  const result = await db
    .updateTable("requests")
    .set({
      state: to,
      updated_at: now,
      ...(changes.lapsesAt !== undefined ? { lapses_at: changes.lapsesAt } : {}),
      ...(changes.closedReason !== undefined ? { closed_reason: changes.closedReason } : {}),
    })
    .where("id", "=", id)
    .where("state", "in", from)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export interface RequestFilter {
  state?: RequestState;
  requester?: string;
  /** Limit to these zones (what the caller may see); undefined means all. */
  zones?: string[];
  /** Also include requests by this user whatever the zone. */
  orRequester?: string;
  limit: number;
}

export async function listRequests(db: Executor, filter: RequestFilter): Promise<RequestRecord[]> {
  let query = db.selectFrom("requests").selectAll();
  if (filter.state) query = query.where("state", "=", filter.state);
  if (filter.requester) query = query.where("requester", "=", filter.requester);
  if (filter.zones) {
    const zones = filter.zones;
    const orRequester = filter.orRequester;
    query = query.where((eb) => {
      const parts = [];
      if (zones.length > 0) parts.push(eb("zone", "in", zones));
      if (orRequester) parts.push(eb("requester", "=", orRequester));
      return parts.length > 0 ? eb.or(parts) : eb.val(false);
    });
  }
  const rows = await query.orderBy("created_at", "desc").orderBy("id", "desc").limit(filter.limit).execute();
  return rows.map(toRecord);
}

/** Requests whose lapse time has passed, oldest first; the index on lapses_at keeps this cheap. */
export async function listLapsing(db: Executor, now: number, limit: number): Promise<RequestRecord[]> {
  const rows = await db
    .selectFrom("requests")
    .selectAll()
    .where("lapses_at", "<=", now)
    .orderBy("lapses_at")
    .limit(limit)
    .execute();
  return rows.map(toRecord);
}

/** The earliest lapse or reminder due, so the scheduler knows when to wake. */
export async function nextLapse(db: Executor): Promise<number | null> {
  const row = await db
    .selectFrom("requests")
    .select((eb) => [eb.fn.min("lapses_at").as("next"), eb.fn.min("remind_at").as("remind")])
    .executeTakeFirst();
  const times = [row?.next, row?.remind].filter((t) => t != null).map(Number);
  return times.length > 0 ? Math.min(...times) : null;
}

export async function insertApproval(db: Executor, approval: ApprovalRecord): Promise<void> {
  await db
    .insertInto("approvals")
    .values({
      id: approval.id,
      request_id: approval.requestId,
      approver: approval.approver,
      groups_json: JSON.stringify(approval.groups),
      decision: approval.decision,
      comment: approval.comment,
      created_at: approval.createdAt,
    })
    .execute();
}

export async function listApprovals(db: Executor, requestId: string): Promise<ApprovalRecord[]> {
  return (await listApprovalsByRequest(db, [requestId])).get(requestId) ?? [];
}

/** The approvals of several requests in one query (for list views), in decision order per request. */
export async function listApprovalsByRequest(
  db: Executor,
  requestIds: readonly string[],
): Promise<Map<string, ApprovalRecord[]>> {
  const byRequest = new Map<string, ApprovalRecord[]>();
  if (requestIds.length === 0) return byRequest;
  const rows = await db
    .selectFrom("approvals")
    .selectAll()
    .where("request_id", "in", requestIds)
    .orderBy("created_at")
    .orderBy("id")
    .execute();
  for (const row of rows) {
    const list = byRequest.get(row.request_id) ?? [];
    list.push({
      id: row.id,
      requestId: row.request_id,
      approver: row.approver,
      groups: JSON.parse(row.groups_json) as string[],
      decision: row.decision,
      comment: row.comment,
      createdAt: row.created_at,
    });
    byRequest.set(row.request_id, list);
  }
  return byRequest;
}

/** Approvers are reminded 5 minutes before a pending request lapses, or at 80% of a shorter window. */
export function reminderTime(createdAt: number, lapsesAt: number): number {
  return lapsesAt - Math.min(5 * 60_000, Math.floor((lapsesAt - createdAt) * 0.2));
}

/** Pending requests whose reminder time has come; each is taken once, by one replica. */
export async function takeReminders(db: Executor, now: number, limit: number): Promise<RequestRecord[]> {
  const rows = await db
    .selectFrom("requests")
    .selectAll()
    .where("remind_at", "<=", now)
    .orderBy("remind_at")
    .limit(limit)
    .execute();
  if (rows.length === 0) return [];
  // The claim: only the rows this update still finds due are ours. A replica whose pass read the
  // same rows waits on them and then finds their reminder taken (PostgreSQL re-checks the WHERE).
  const taken = await db
    .updateTable("requests")
    .set({ remind_at: null })
    .where(
      "id",
      "in",
      rows.map((r) => r.id),
    )
    .where("remind_at", "<=", now)
    .returningAll()
    .execute();
  return taken.filter((r) => r.state === "pending").map(toRecord);
}

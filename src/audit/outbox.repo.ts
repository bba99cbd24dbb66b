import type { AuditDeadLettersTable, AuditSinkStateTable, Executor } from "../db/types.js";

/**
 * Delivery state per sink: a cursor into the chain (`delivered_seq`), the retry state of the event
 * after it, counters, and a lease naming the one process that delivers to the sink. The chain is
 * the outbox (see NOTES.md), so these rows change only as delivery moves, never with requests.
 */

export interface SinkState {
  sink: string;
  deliveredSeq: number;
  attempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  lastDeliveredAt: number | null;
  deliveredTotal: number;
  errorTotal: number;
  failing: boolean;
  leaseOwner: string | null;
  leaseUntil: number | null;
}

export interface DeadLetter {
  sink: string;
  seq: number;
  eventId: string;
  attempts: number;
  lastError: string;
  state: AuditDeadLettersTable["state"];
  deadAt: number;
  replayedAt: number | null;
}

function toState(row: AuditSinkStateTable): SinkState {
  return {
    sink: row.sink,
    deliveredSeq: Number(row.delivered_seq),
    attempts: Number(row.attempts),
    nextAttemptAt: row.next_attempt_at === null ? null : Number(row.next_attempt_at),
    lastError: row.last_error,
    lastErrorAt: row.last_error_at === null ? null : Number(row.last_error_at),
    lastDeliveredAt: row.last_delivered_at === null ? null : Number(row.last_delivered_at),
    deliveredTotal: Number(row.delivered_total),
    errorTotal: Number(row.error_total),
    failing: Number(row.failing) === 1,
    leaseOwner: row.lease_owner,
    leaseUntil: row.lease_until === null ? null : Number(row.lease_until),
  };
}

function toDeadLetter(row: AuditDeadLettersTable): DeadLetter {
  return {
    sink: row.sink,
    seq: Number(row.seq),
    eventId: row.event_id,
    attempts: Number(row.attempts),
    lastError: row.last_error,
    state: row.state,
    deadAt: Number(row.dead_at),
    replayedAt: row.replayed_at === null ? null : Number(row.replayed_at),
  };
}

/** Creates the sink's row, starting after `startSeq`, unless it exists; returns the row. */
export async function ensureSinkState(
  db: Executor,
  sink: string,
  startSeq: number,
  now: number,
): Promise<SinkState> {
  await db
    .insertInto("audit_sink_state")
    .values({
      sink,
      delivered_seq: startSeq,
      attempts: 0,
      next_attempt_at: null,
      last_error: null,
      last_error_at: null,
      last_delivered_at: null,
      delivered_total: 0,
      error_total: 0,
      failing: 0,
      lease_owner: null,
      lease_until: null,
      created_at: now,
      updated_at: now,
    })
    .onConflict((conflict) => conflict.column("sink").doNothing())
    .execute();
  return (await readSinkState(db, sink)) as SinkState;
}

export async function readSinkState(db: Executor, sink: string): Promise<SinkState | null> {
  const row = await db.selectFrom("audit_sink_state").selectAll().where("sink", "=", sink).executeTakeFirst();
  return row ? toState(row) : null;
}

export async function listSinkStates(db: Executor): Promise<SinkState[]> {
  const rows = await db.selectFrom("audit_sink_state").selectAll().orderBy("sink").execute();
  return rows.map(toState);
}

/**
 * Takes or renews the sink's lease for `owner` until `until`: succeeds when the lease is free,
 * expired, already `owner`'s, or held by `staleOwner` (a holder known to be dead).
 */
export async function claimLease(
  db: Executor,
  sink: string,
  owner: string,
  now: number,
  until: number,
  staleOwner?: string,
): Promise<boolean> {
  const result = await db
    .updateTable("audit_sink_state")
    .set({ lease_owner: owner, lease_until: until })
    .where("sink", "=", sink)
    .where((eb) =>
      eb.or([
        eb("lease_owner", "is", null),
        eb("lease_owner", "=", owner),
        eb("lease_until", "<", now),
        ...(staleOwner === undefined ? [] : [eb("lease_owner", "=", staleOwner)]),
      ]),
    )
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function releaseLease(db: Executor, sink: string, owner: string): Promise<void> {
  await db
    .updateTable("audit_sink_state")
    .set({ lease_owner: null, lease_until: null })
    .where("sink", "=", sink)
    .where("lease_owner", "=", owner)
    .execute();
}

/**
 * Records a successful delivery from `fromSeq` through `throughSeq` (filtered-out events
 * included). Guarded by the lease and the cursor: returns false, changing nothing, when `owner`
 * no longer holds the lease or the cursor is no longer at `fromSeq` (a replay moved it meanwhile).
 */
export async function recordDelivered(
  db: Executor,
  sink: string,
  owner: string,
  update: { fromSeq: number; throughSeq: number; count: number; now: number },
): Promise<boolean> {
  const result = await db
    .updateTable("audit_sink_state")
    .set((eb) => ({
      delivered_seq: update.throughSeq,
      attempts: 0,
      next_attempt_at: null,
      failing: 0,
      last_delivered_at: update.count > 0 ? update.now : eb.ref("last_delivered_at"),
      delivered_total: eb("delivered_total", "+", update.count),
      updated_at: update.now,
    }))
    .where("sink", "=", sink)
    .where("lease_owner", "=", owner)
    .where("delivered_seq", "=", update.fromSeq)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Records a failed attempt: the cursor moves to `throughSeq` (past what did arrive), the attempt
 * count and next attempt are set, the error is kept. Guarded by the lease like recordDelivered.
 */
export async function recordFailure(
  db: Executor,
  sink: string,
  owner: string,
  update: {
    fromSeq: number;
    throughSeq: number;
    delivered: number;
    attempts: number;
    nextAttemptAt: number | null;
    error: string;
    failing: boolean;
    now: number;
  },
): Promise<boolean> {
  const result = await db
    .updateTable("audit_sink_state")
    .set((eb) => ({
      delivered_seq: update.throughSeq,
      attempts: update.attempts,
      next_attempt_at: update.nextAttemptAt,
      last_error: update.error,
      last_error_at: update.now,
      failing: update.failing ? 1 : 0,
      delivered_total: eb("delivered_total", "+", update.delivered),
      last_delivered_at: update.delivered > 0 ? update.now : eb.ref("last_delivered_at"),
      error_total: eb("error_total", "+", 1),
      updated_at: update.now,
    }))
    .where("sink", "=", sink)
    .where("lease_owner", "=", owner)
    .where("delivered_seq", "=", update.fromSeq)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Moves the cursor back so delivery starts again after `seq` (a replay from a point in the chain). */
export async function rewindSink(db: Executor, sink: string, seq: number, now: number): Promise<boolean> {
  const result = await db
    .updateTable("audit_sink_state")
    .set({ delivered_seq: seq, attempts: 0, next_attempt_at: null, updated_at: now })
    .where("sink", "=", sink)
    .where("delivered_seq", ">", seq)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Clears a pending backoff so the next pass tries at once. */
export async function clearBackoff(db: Executor, sink: string, now: number): Promise<void> {
  await db
    .updateTable("audit_sink_state")
    .set({ next_attempt_at: null, updated_at: now })
    .where("sink", "=", sink)
    .execute();
}

export async function insertDeadLetter(
  db: Executor,
  letter: Omit<DeadLetter, "state" | "replayedAt">,
): Promise<void> {
  await db
    .insertInto("audit_dead_letters")
    .values({
      sink: letter.sink,
      seq: letter.seq,
      event_id: letter.eventId,
      attempts: letter.attempts,
      last_error: letter.lastError,
      state: "dead",
      dead_at: letter.deadAt,
      replayed_at: null,
    })
    // Dead again after a replay: the row records the latest failure.
    .onConflict((conflict) =>
      conflict.columns(["sink", "seq"]).doUpdateSet({
        attempts: letter.attempts,
        last_error: letter.lastError,
        state: "dead",
        dead_at: letter.deadAt,
        replayed_at: null,
      }),
    )
    .execute();
}

export async function listDeadLetters(
  db: Executor,
  sink: string,
  options: { state?: DeadLetter["state"]; limit?: number } = {},
): Promise<DeadLetter[]> {
  let query = db.selectFrom("audit_dead_letters").selectAll().where("sink", "=", sink);
  if (options.state) query = query.where("state", "=", options.state);
  const rows = await query
    .orderBy("seq")
    .limit(options.limit ?? 1000)
    .execute();
  return rows.map(toDeadLetter);
}

/** Dead letters per sink and state, for the status view and metrics. */
export async function countDeadLetters(
  db: Executor,
): Promise<Map<string, Record<DeadLetter["state"], number>>> {
  const rows = await db
    .selectFrom("audit_dead_letters")
    .select(["sink", "state", (eb) => eb.fn.countAll().as("count")])
    .groupBy(["sink", "state"])
    .execute();
  const counts = new Map<string, Record<DeadLetter["state"], number>>();
  for (const row of rows) {
    const entry = counts.get(row.sink) ?? { dead: 0, queued: 0, replayed: 0 };
    entry[row.state] = Number(row.count);
    counts.set(row.sink, entry);
  }
  return counts;
}

/** Queues every dead letter of `sink` for another delivery; returns how many. */
export async function queueDeadLetters(db: Executor, sink: string): Promise<number> {
  const result = await db
    .updateTable("audit_dead_letters")
    .set({ state: "queued" })
    .where("sink", "=", sink)
    .where("state", "=", "dead")
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

export async function markReplayed(
  db: Executor,
  sink: string,
  seqs: readonly number[],
  now: number,
): Promise<void> {
  if (seqs.length === 0) return;
  await db
    .updateTable("audit_dead_letters")
    .set({ state: "replayed", replayed_at: now })
    .where("sink", "=", sink)
    .where("seq", "in", [...seqs])
    .execute();
}

/** A replay that failed: the letter is dead again, with the new error. */
export async function markReplayFailed(
  db: Executor,
  sink: string,
  seq: number,
  error: string,
  now: number,
): Promise<void> {
  await db
    .updateTable("audit_dead_letters")
    .set((eb) => ({ state: "dead", last_error: error, attempts: eb("attempts", "+", 1), dead_at: now }))
    .where("sink", "=", sink)
    .where("seq", "=", seq)
    .execute();
}

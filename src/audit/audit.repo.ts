import { randomBytes } from "node:crypto";
import type { AuditEventsTable, Executor } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import { type AuditEvent, type ChainHead, canonicalJson, hashEvent, type UnreadableRecord } from "./chain.js";

export interface AuditEventInput {
  /** Dotted lowercase name: `request.created`, `grant.activated`, `alert.raised`. */
  type: string;
  /** Who caused it: a user name, or `system:<component>` for the server itself. */
  actor: string;
  zone?: string | null;
  resource?: string | null;
  /** The id of the request, grant or other object the event is about. */
  subject?: string | null;
  context?: Record<string, unknown>;
}

export interface AuditListQuery {
  /** Only events with a larger seq (a cursor: pass the last seq of the previous page). */
  afterSeq?: number;
  /** Only events with a smaller seq (paging backwards from the newest). */
  beforeSeq?: number;
  /** 1 to 1000; 100 when absent. */
  limit?: number;
  /** `desc` lists the newest first (for `audit tail`); `asc` by default. */
  order?: "asc" | "desc";
  type?: string;
  zone?: string;
  subject?: string;
  actor?: string;
}

export const MAX_LIST_LIMIT = 1000;
const DEFAULT_LIST_LIMIT = 100;
const STREAM_PAGE_SIZE = 1000;

// Column widths from the migration, checked here so both dialects refuse the same input:
// PostgreSQL would reject an over-long value while SQLite would silently keep it.
const FIELD_LIMITS = { type: 64, actor: 128, zone: 63, resource: 63, subject: 64 } as const;
const TYPE_PATTERN = /^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)+$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// The largest time a JavaScript Date (and so an ISO 8601 string) can represent.
const MAX_TIME = 8.64e15;

/**
 * Appends one event to the chain. Call it inside the transaction that makes the state change it
 * records, as that transaction's last statement: the head row stays locked until commit, so
 * appending last keeps the lock short and always taken after the caller's own row locks.
 * Given the database rather than a transaction, it opens a transaction of its own.
 */
export async function appendAuditEvent(
  executor: Executor,
  input: AuditEventInput,
  now: number,
): Promise<AuditEvent> {
  return (await appendAuditEvents(executor, [input], now))[0] as AuditEvent;
}

/** Rows per INSERT when appending many events (11 parameters a row, far below both dialects' limits). */
const APPEND_CHUNK = 200;

/**
 * Appends events to the chain in the order given, as `appendAuditEvent` does one: the same seqs,
 * hashes and rows, but with one head bump (by their count) and one head update for all of them,
 * so a transaction with many events (a gateway session's batch of statements) costs a few
 * statements instead of three per event. Every input is validated before anything is written.
 */
export async function appendAuditEvents(
  executor: Executor,
  inputs: readonly AuditEventInput[],
  now: number,
): Promise<AuditEvent[]> {
  if (inputs.length === 0) return [];
  if (!executor.isTransaction) {
    return executor.transaction().execute((tx) => appendAuditEvents(tx, inputs, now));
  }
  assert(
    Number.isSafeInteger(now) && now >= 0 && now <= MAX_TIME,
    "VALIDATION_FAILED",
    "audit time must be epoch milliseconds",
  );
  const prepared = inputs.map((input) => {
    const fields = validateInput(input);
    // Normalise the context through its canonical form so the event returned here is exactly the
    // one later read back from the database (undefined members dropped, dates as strings).
    const contextJson = encodeContext(input.context ?? {});
    const context = JSON.parse(contextJson) as Record<string, unknown>;
    assert(
      context !== null && typeof context === "object" && !Array.isArray(context),
      "VALIDATION_FAILED",
      "audit context must be an object",
    );
    return { fields, contextJson, context };
  });

  // Bumping the head first takes its row lock: concurrent appenders queue here until this
  // transaction ends, so seqs are handed out in commit order and a rollback leaves no gap.
  const head = await executor
    .updateTable("audit_head")
    .set((eb) => ({ seq: eb("seq", "+", prepared.length) }))
    .where("id", "=", 1)
    .returning(["seq", "hash"])
    .executeTakeFirstOrThrow();

  const time = new Date(now).toISOString();
  let seq = Number(head.seq) - prepared.length;
  let prevHash = head.hash;
  const events: AuditEvent[] = [];
  const rows = [];
  for (const { fields, contextJson, context } of prepared) {
    seq++;
    const unhashed = { seq, id: `evt_${randomBytes(12).toString("hex")}`, time, ...fields, context };
    const hash = hashEvent(prevHash, unhashed);
    rows.push({
      seq,
      id: unhashed.id,
      time: now,
      type: fields.type,
      actor: fields.actor,
      zone: fields.zone,
      resource: fields.resource,
      subject: fields.subject,
      context_json: contextJson,
      prev_hash: prevHash,
      hash,
    });
    events.push({ ...unhashed, prevHash, hash });
    prevHash = hash;
  }
  for (let at = 0; at < rows.length; at += APPEND_CHUNK)
    await executor
      .insertInto("audit_events")
      .values(rows.slice(at, at + APPEND_CHUNK))
      .execute();
  await executor.updateTable("audit_head").set({ hash: prevHash }).where("id", "=", 1).execute();
  return events;
}

function encodeContext(context: Record<string, unknown>): string {
  try {
    return canonicalJson(context);
  } catch (error) {
    throw new FirebreakError(
      "VALIDATION_FAILED",
      `audit context cannot be recorded: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function validateInput(input: AuditEventInput) {
  const fields = {
    type: input.type,
    actor: input.actor,
    zone: input.zone ?? null,
    resource: input.resource ?? null,
    subject: input.subject ?? null,
  };
  assert(
    typeof fields.actor === "string" && fields.actor.length > 0,
    "VALIDATION_FAILED",
    "audit event needs an actor",
  );
  for (const name of Object.keys(FIELD_LIMITS) as (keyof typeof FIELD_LIMITS)[]) {
    const value = fields[name];
    if (value === null) continue;
    assert(typeof value === "string", "VALIDATION_FAILED", `audit ${name} must be a string`);
    // Code points, as PostgreSQL's varchar(n) counts them.
    let length = 0;
    for (const _ of value) length++;
    assert(
      length <= FIELD_LIMITS[name],
      "VALIDATION_FAILED",
      `audit ${name} is longer than ${FIELD_LIMITS[name]}`,
    );
    // PostgreSQL text cannot hold NUL, and a lone surrogate would be stored as U+FFFD and then
    // no longer match its hash; untrusted text belongs in the context, where JSON escapes it.
    assert(
      !value.includes("\u0000") && !LONE_SURROGATE.test(value),
      "VALIDATION_FAILED",
      `audit ${name} holds characters that cannot be stored`,
    );
  }
  assert(TYPE_PATTERN.test(fields.type), "VALIDATION_FAILED", "audit event type must look like `noun.verb`");
  return fields;
}

/** The chain's head: the last event's seq and hash (seq 0 and the genesis hash when empty). */
export async function readHead(db: Executor): Promise<ChainHead> {
  const head = await db
    .selectFrom("audit_head")
    .select(["seq", "hash"])
    .where("id", "=", 1)
    .executeTakeFirstOrThrow();
  return { seq: Number(head.seq), hash: head.hash };
}

/**
 * Locks the head row and reads it: an UPDATE that changes nothing takes PostgreSQL's row lock and
 * SQLite's write lock, so no event lands between reading the head and appending what depends on it
 * (a checkpoint that signs it). Only inside a transaction.
 */
export async function lockHead(tx: Executor): Promise<ChainHead> {
  const head = await tx
    .updateTable("audit_head")
    .set((eb) => ({ seq: eb.ref("seq") }))
    .where("id", "=", 1)
    .returning(["seq", "hash"])
    .executeTakeFirstOrThrow();
  return { seq: Number(head.seq), hash: head.hash };
}

/** The type of the event at `seq`, or null when there is none. */
export async function eventTypeAt(db: Executor, seq: number): Promise<string | null> {
  const row = await db.selectFrom("audit_events").select("type").where("seq", "=", seq).executeTakeFirst();
  return row?.type ?? null;
}

/** One page of events in seq order, filtered; throws INTERNAL on a row that cannot be decoded. */
export async function listAuditEvents(db: Executor, query: AuditListQuery = {}): Promise<AuditEvent[]> {
  const limit = query.limit ?? DEFAULT_LIST_LIMIT;
  assert(
    Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIST_LIMIT,
    "VALIDATION_FAILED",
    `limit must be between 1 and ${MAX_LIST_LIMIT}`,
  );
  let select = db.selectFrom("audit_events").selectAll();
  if (query.afterSeq !== undefined) select = select.where("seq", ">", query.afterSeq);
  if (query.beforeSeq !== undefined) select = select.where("seq", "<", query.beforeSeq);
  if (query.type !== undefined) select = select.where("type", "=", query.type);
  if (query.zone !== undefined) select = select.where("zone", "=", query.zone);
  if (query.subject !== undefined) select = select.where("subject", "=", query.subject);
  if (query.actor !== undefined) select = select.where("actor", "=", query.actor);
  const rows = await select
    .orderBy("seq", query.order ?? "asc")
    .limit(limit)
    .execute();
  return rows.map((row) => {
    const event = decodeRow(row);
    assert(
      !("unreadable" in event),
      "INTERNAL",
      `audit event ${event.seq} cannot be read; run \`firebreak audit verify\``,
    );
    return event;
  });
}

/** The events with these seqs, in seq order; throws INTERNAL on a row that cannot be decoded. */
export async function listAuditEventsBySeq(db: Executor, seqs: readonly number[]): Promise<AuditEvent[]> {
  if (seqs.length === 0) return [];
  const rows = await db
    .selectFrom("audit_events")
    .selectAll()
    .where("seq", "in", [...seqs])
    .orderBy("seq", "asc")
    .execute();
  return rows.map((row) => {
    const event = decodeRow(row);
    assert(
      !("unreadable" in event),
      "INTERNAL",
      `audit event ${event.seq} cannot be read; run \`firebreak audit verify\``,
    );
    return event;
  });
}

/**
 * Every event after `afterSeq`, in seq order, read a page at a time so memory stays flat however
 * long the log is. Rows that cannot be decoded are yielded as UnreadableRecord for verify to report.
 */
export async function* streamAllEvents(
  db: Executor,
  options: { afterSeq?: number; pageSize?: number } = {},
): AsyncGenerator<AuditEvent | UnreadableRecord> {
  const pageSize = options.pageSize ?? STREAM_PAGE_SIZE;
  let afterSeq = options.afterSeq ?? 0;
  for (;;) {
    const rows = await db
      .selectFrom("audit_events")
      .selectAll()
      .where("seq", ">", afterSeq)
      .orderBy("seq", "asc")
      .limit(pageSize)
      .execute();
    for (const row of rows) yield decodeRow(row);
    if (rows.length < pageSize) return;
    afterSeq = Number(rows[rows.length - 1]?.seq);
  }
}

function decodeRow(row: AuditEventsTable): AuditEvent | UnreadableRecord {
  const seq = Number(row.seq);
  let context: unknown;
  try {
    context = JSON.parse(row.context_json);
  } catch {
    return { seq, unreadable: "context_json is not valid JSON" };
  }
  if (context === null || typeof context !== "object" || Array.isArray(context)) {
    return { seq, unreadable: "context_json is not a JSON object" };
  }
  const time = new Date(Number(row.time));
  if (Number.isNaN(time.getTime())) return { seq, unreadable: "time is not a valid timestamp" };
  return {
    seq,
    id: row.id,
    time: time.toISOString(),
    type: row.type,
    actor: row.actor,
    zone: row.zone,
    resource: row.resource,
    subject: row.subject,
    context: context as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

import { listAuditEvents } from "../audit/audit.repo.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import type { Clock } from "../shared/clock.js";
import { newId } from "../shared/ids.js";
import {
  endSession,
  findSession,
  type GatewaySession,
  insertRecords,
  insertSession,
  listRecords,
  listSessionsOfGrant,
  listSessionsPage,
} from "./session.repo.js";
import {
  createTranscriptVerifier,
  GENESIS_HASH,
  hashRecord,
  type TranscriptProblem,
  type TranscriptRecord,
} from "./transcript.js";

/** What a session needs to know about its grant. */
export interface SessionGrant {
  id: string;
  user: string;
  zone: string;
}

/** Flush a session's records at least this often, and at once when this many are waiting. */
const FLUSH_MS = 100;
const FLUSH_RECORDS = 200;
/** Records waiting while the database does not take them; past this the session is cut. */
const MAX_PENDING_RECORDS = 20_000;
/** The text kept in a `session.statement` event (the record keeps it whole). */
const EVENT_TEXT_LIMIT = 8 * 1024;
const PAGE = 1000;

export interface RecordOptions {
  /** Also write a `session.<kind>` audit event naming the record (for sinks and as an anchor). */
  audit?: boolean;
}

/** One live session's transcript writer. */
export interface SessionHandle {
  readonly id: string;
  readonly grantId: string;
  /** Appends a record: hashed now (in call order), written with the next flush. Returns its seq. */
  record(kind: string, payload: Record<string, unknown>, options?: RecordOptions): number;
  /** Writes what is waiting. */
  flush(): Promise<void>;
  /** Flushes and ends the session with `session.ended` (its digest); only the first call counts. */
  end(reason: string): Promise<{ records: number; digest: string }>;
}

export interface TranscriptFailure {
  session: string;
  grant: string | null;
  firstBadSeq: number;
  problem: TranscriptProblem;
  reason: string;
}

export interface TranscriptsVerdict {
  ok: boolean;
  sessions: number;
  records: number;
  /** The first failures found (at most 20). */
  failures: TranscriptFailure[];
}

function eventPayload(payload: Record<string, unknown>): Record<string, unknown> {
  const text = payload.text;
  if (typeof text === "string" && text.length > EVENT_TEXT_LIMIT)
    return { ...payload, text: text.slice(0, EVENT_TEXT_LIMIT), textTruncated: true };
  return payload;
}

/**
 * Gateway sessions and their transcripts, for every protocol gateway (PostgreSQL, SSH). A session
 * starts with `session.started`, its records are hash-chained (transcript.ts) and written in
 * batches, each batch with its `session.<kind>` audit events in one transaction, and it ends with
 * `session.ended` carrying the record count and digest. See NOTES.md.
 */
export function createGatewaySessions(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  /** Told when a session's records could not be written for too long: the gateway cuts it. */
  onRecordingFailed?: (sessionId: string, error: unknown) => void;
}) {
  async function start(input: {
    grant: SessionGrant;
    protocol: GatewaySession["protocol"];
    resource: string;
    clientAddress: string | null;
    /** More context for `session.started` (client program, TLS, target login). */
    context?: Record<string, unknown>;
  }): Promise<SessionHandle> {
    const { grant } = input;
    const session: GatewaySession = {
      id: newId("ses", deps.clock.now()),
      grantId: grant.id,
      protocol: input.protocol,
      resource: input.resource,
      user: grant.user,
      clientAddress: input.clientAddress,
      startedAt: deps.clock.now(),
      endedAt: null,
      endReason: null,
      records: 0,
      digest: null,
    };
    const base = { zone: grant.zone, resource: input.resource, subject: grant.id, actor: grant.user };
    await deps.inTransaction(async (unit) => {
      session.startedAt = unit.now;
      await insertSession(unit.tx, session);
      await unit.audit({
        ...base,
        type: "session.started",
        context: {
          session: session.id,
          grant: grant.id,
          user: grant.user,
          protocol: input.protocol,
          clientAddress: input.clientAddress,
          ...input.context,
        },
      });
    });

    let seq = 0;
    let lastHash = GENESIS_HASH;
    let pending: { record: TranscriptRecord; audit: boolean }[] = [];
    let timer: NodeJS.Timeout | null = null;
    let writing: Promise<void> = Promise.resolve();
    let ended: Promise<{ records: number; digest: string }> | null = null;
    let failedReported = false;

    async function write(batch: typeof pending, unit: Parameters<Parameters<InTransaction>[0]>[0]) {
      await insertRecords(
        unit.tx,
        batch.map((p) => p.record),
      );
      for (const { record, audit } of batch) {
        if (!audit) continue;
        await unit.audit({
          ...base,
          type: `session.${record.kind}`,
          context: {
            session: session.id,
            grant: grant.id,
            seq: record.seq,
            hash: record.hash,
            at: new Date(record.time).toISOString(),
            ...eventPayload(record.payload),
          },
        });
      }
    }

    function flushNow(): Promise<void> {
      if (timer) {
        clearTimeout(timer);
        timer = null;
      }
      writing = writing.then(async () => {
        if (pending.length === 0) return;
        const batch = pending;
        pending = [];
        try {
          await deps.inTransaction((unit) => write(batch, unit));
        } catch (error) {
          // Kept, in order, for the next flush; a database that stays away ends the session.
          pending = [...batch, ...pending];
          if (pending.length > MAX_PENDING_RECORDS && !failedReported) {
            failedReported = true;
            deps.onRecordingFailed?.(session.id, error);
          }
          if (!timer && !ended) timer = setTimeout(() => void flushNow(), FLUSH_MS * 10);
          throw error;
        }
      });
      return writing.catch(() => {});
    }

    return {
      id: session.id,
      grantId: grant.id,
      record(kind, payload, options = {}) {
        seq++;
        const time = deps.clock.now();
        const record: TranscriptRecord = {
          sessionId: session.id,
          seq,
          time,
          kind,
          payload,
          prevHash: lastHash,
          hash: "",
        };
        record.hash = hashRecord(lastHash, record);
        lastHash = record.hash;
        pending.push({ record, audit: options.audit === true });
        if (pending.length >= FLUSH_RECORDS) void flushNow();
        else if (!timer) timer = setTimeout(() => void flushNow(), FLUSH_MS);
        return seq;
      },
      flush: flushNow,
      end(reason) {
        if (ended) return ended;
        ended = (async () => {
          if (timer) clearTimeout(timer);
          timer = null;
          await writing.catch(() => {});
          const batch = pending;
          pending = [];
          const digest = lastHash;
          const records = seq;
          await deps.inTransaction(async (unit) => {
            await write(batch, unit);
            if (!(await endSession(unit.tx, session.id, { at: unit.now, reason, records, digest }))) return;
            await unit.audit({
              ...base,
              type: "session.ended",
              context: {
                session: session.id,
                grant: grant.id,
                protocol: input.protocol,
                reason,
                records,
                digest,
                durationMs: unit.now - session.startedAt,
              },
            });
          });
          return { records, digest };
        })();
        return ended;
      },
    };
  }

  /** Ends sessions a crash left open (no live connection can hold them): their records are what was written. */
  async function endOrphans(reason = "the gateway stopped before the session ended"): Promise<number> {
    let ended = 0;
    const open = await deps.db
      .selectFrom("gateway_sessions")
      .select("id")
      .where("ended_at", "is", null)
      .execute();
    for (const { id } of open) {
      const session = await findSession(deps.db, id);
      if (!session) continue;
      let last = GENESIS_HASH;
      let count = 0;
      for (;;) {
        const page = await listRecords(deps.db, id, { afterSeq: count, limit: PAGE });
        for (const record of page) if (!("unreadable" in record)) last = record.hash;
        count += page.length;
        if (page.length < PAGE) break;
      }
      await deps.inTransaction(async (unit) => {
        if (!(await endSession(unit.tx, id, { at: unit.now, reason, records: count, digest: last }))) return;
        await unit.audit({
          type: "session.ended",
          actor: session.user,
          resource: session.resource,
          subject: session.grantId,
          context: {
            session: id,
            grant: session.grantId,
            protocol: session.protocol,
            reason,
            records: count,
            digest: last,
            durationMs: unit.now - session.startedAt,
          },
        });
        ended++;
      });
    }
    return ended;
  }

  /** Every `session.<type>` event of one grant, for a session's anchors. */
  async function grantEvents(grantId: string, type: string) {
    const events = [];
    let afterSeq = 0;
    for (;;) {
      const page = await listAuditEvents(deps.db, { subject: grantId, type, afterSeq, limit: PAGE });
      events.push(...page);
      if (page.length < PAGE) break;
      afterSeq = page[page.length - 1]?.seq ?? afterSeq;
    }
    return events;
  }

  /**
   * Checks every transcript against its chain and its audit events (`firebreak audit verify`):
   * an edited, deleted or inserted record, a session row removed or added, a digest changed.
   */
  async function verify(): Promise<TranscriptsVerdict> {
    const failures: TranscriptFailure[] = [];
    const fail = (failure: TranscriptFailure) => {
      if (failures.length < 20) failures.push(failure);
    };
    let sessions = 0;
    let records = 0;
    const seen = new Set<string>();
    let afterId = "";
    for (;;) {
      const page = await listSessionsPage(deps.db, afterId, PAGE);
      for (const session of page) {
        sessions++;
        seen.add(session.id);
        const started = (await grantEvents(session.grantId, "session.started")).some(
          (e) => e.context.session === session.id,
        );
        if (!started) {
          fail({
            session: session.id,
            grant: session.grantId,
            firstBadSeq: 0,
            problem: "UNANCHORED",
            reason: "the session has no session.started audit event: it was added outside Firebreak",
          });
          continue;
        }
        const statements = new Map<number, string>();
        for (const event of await grantEvents(session.grantId, "session.statement"))
          if (event.context.session === session.id && typeof event.context.seq === "number")
            statements.set(event.context.seq, String(event.context.hash));
        const endEvent = (await grantEvents(session.grantId, "session.ended")).find(
          (e) => e.context.session === session.id,
        );
        const verifier = createTranscriptVerifier({
          statements,
          ended: endEvent
            ? { records: Number(endEvent.context.records), digest: String(endEvent.context.digest) }
            : undefined,
        });
        let broken = false;
        for (;;) {
          const recordsPage = await listRecords(deps.db, session.id, {
            afterSeq: verifier.lastSeq,
            limit: PAGE,
          });
          for (const record of recordsPage) if (verifier.push(record)) broken = true;
          if (broken || recordsPage.length < PAGE) break;
        }
        const verdict = verifier.finish();
        if (verdict.ok) {
          records += verdict.records;
          if (
            session.endedAt !== null &&
            (session.digest !== verdict.digest || session.records !== verdict.records)
          )
            fail({
              session: session.id,
              grant: session.grantId,
              firstBadSeq: verdict.records,
              problem: "DIGEST_MISMATCH",
              reason: "the session row's digest or record count was changed",
            });
        } else fail({ session: session.id, grant: session.grantId, ...verdict });
      }
      if (page.length < PAGE) break;
      afterId = page[page.length - 1]?.id ?? afterId;
    }
    // A session the chain saw start but whose row is gone.
    let afterSeq = 0;
    for (;;) {
      const page = await listAuditEvents(deps.db, { type: "session.started", afterSeq, limit: PAGE });
      for (const event of page) {
        const id = String(event.context.session);
        if (!seen.has(id))
          fail({
            session: id,
            grant: event.subject,
            firstBadSeq: 1,
            problem: "SESSION_MISSING",
            reason: "the audit chain records this session's start but its session and records are gone",
          });
      }
      if (page.length < PAGE) break;
      afterSeq = page[page.length - 1]?.seq ?? afterSeq;
    }
    return { ok: failures.length === 0, sessions, records, failures };
  }

  return {
    start,
    endOrphans,
    verify,
    list: (grantId: string) => listSessionsOfGrant(deps.db, grantId),
    find: (id: string) => findSession(deps.db, id),
    records: (sessionId: string, options?: { afterSeq?: number; limit?: number }) =>
      listRecords(deps.db, sessionId, options),
  };
}
export type GatewaySessions = ReturnType<typeof createGatewaySessions>;

/**
 * The sessions a gateway holds open right now, by grant, so that a close (expiry, revoke) can cut
 * them and revocation is verified only once none is left. In memory: a session lives in the
 * process whose socket carries it.
 */
export function createSessionHolder() {
  const byGrant = new Map<string, Map<string, (reason: string) => Promise<void> | void>>();
  return {
    /** Holds a live session; `cut` ends it (FATAL to the client, socket closed). Returns the release. */
    hold(grantId: string, sessionId: string, cut: (reason: string) => Promise<void> | void): () => void {
      let sessions = byGrant.get(grantId);
      if (!sessions) {
        sessions = new Map();
        byGrant.set(grantId, sessions);
      }
      sessions.set(sessionId, cut);
      return () => {
        const held = byGrant.get(grantId);
        held?.delete(sessionId);
        if (held?.size === 0) byGrant.delete(grantId);
      };
    },
    /** How many sessions of the grant are open here. */
    count(grantId: string): number {
      return byGrant.get(grantId)?.size ?? 0;
    },
    /** Every open session, for shutdown. */
    grants(): string[] {
      return [...byGrant.keys()];
    },
    /**
     * Cuts every session of the grant and waits (at most `waitMs`) for them to be released;
     * resolves to how many are still held (0 once they are all gone).
     */
    async cutGrant(grantId: string, reason: string, waitMs = 1000): Promise<number> {
      const sessions = byGrant.get(grantId);
      if (!sessions) return 0;
      await Promise.race([
        Promise.allSettled([...sessions.values()].map((cut) => cut(reason))),
        new Promise((resolve) => setTimeout(resolve, waitMs).unref()),
      ]);
      return byGrant.get(grantId)?.size ?? 0;
    },
  };
}
export type SessionHolder = ReturnType<typeof createSessionHolder>;

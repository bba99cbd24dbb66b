import { createHash } from "node:crypto";
import type { AuditEvent } from "../shared/audit-event.js";
import { canonicalJson } from "../shared/canonical-json.js";

// Both moved to shared/ so every layer can name an event and hash canonically; re-exported for audit.
export type { AuditEvent };
export { canonicalJson };

/**
 * The hash chain, pure: no I/O, no clock. See NOTES.md for the canonical encoding and the
 * invariants the repository keeps; changing anything here breaks every chain already written.
 */

/** prevHash of the first event (seq 1), and the head's hash while the log is empty. */
export const GENESIS_HASH = "0".repeat(64);

/** The fields an event's hash covers: everything but the hash itself. */
export type HashedFields = Omit<AuditEvent, "hash">;

/** A stored row that could not be decoded into an event (its context or time is not readable). */
export interface UnreadableRecord {
  seq: number;
  unreadable: string;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

export type VerifyProblem =
  /** A seq is missing (a row was deleted) or rows arrive out of order. */
  | "SEQ_GAP"
  /** prevHash does not name the previous event's hash: a row was inserted, reordered or rewritten. */
  | "PREV_HASH_MISMATCH"
  /** The stored hash does not match the row's contents: a field was edited. */
  | "HASH_MISMATCH"
  /** A row cannot be decoded at all. */
  | "UNREADABLE"
  /** The chain and the head row disagree: the tail was truncated, or rows were added past the head. */
  | "HEAD_MISMATCH";

export type VerifyResult =
  | { ok: true; count: number; headHash: string }
  | {
      ok: false;
      /** Events that verified before the first broken link. */
      count: number;
      firstBadSeq: number;
      problem: VerifyProblem;
      reason: string;
    };

/** SHA-256 (lowercase hex) over the UTF-8 canonical JSON of the event's fields and prevHash. */
export function hashEvent(prevHash: string, event: Omit<HashedFields, "prevHash">): string {
  const fields: HashedFields = {
    seq: event.seq,
    id: event.id,
    time: event.time,
    type: event.type,
    actor: event.actor,
    zone: event.zone,
    resource: event.resource,
    subject: event.subject,
    context: event.context,
    prevHash,
  };
  return createHash("sha256").update(canonicalJson(fields), "utf8").digest("hex");
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Parses a line into an event (its public shape; derived members are ignored), or says what is wrong with it. */
export function parseEventLine(text: string): AuditEvent | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "not valid JSON";
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) return "not a JSON object";
  const record = value as Record<string, unknown>;
  const nullableString = (key: string) => record[key] === null || typeof record[key] === "string";
  if (!Number.isSafeInteger(record.seq) || (record.seq as number) < 1) return "seq is not a positive integer";
  for (const key of ["id", "time", "type", "actor"])
    if (typeof record[key] !== "string") return `${key} is not a string`;
  for (const key of ["zone", "resource", "subject"])
    if (!nullableString(key)) return `${key} is not a string or null`;
  if (record.context === null || typeof record.context !== "object" || Array.isArray(record.context))
    return "context is not an object";
  for (const key of ["prevHash", "hash"])
    if (typeof record[key] !== "string" || !HEX64.test(record[key] as string))
      return `${key} is not 64 lowercase hex digits`;
  return {
    seq: record.seq as number,
    id: record.id as string,
    time: record.time as string,
    type: record.type as string,
    actor: record.actor as string,
    zone: record.zone as string | null,
    resource: record.resource as string | null,
    subject: record.subject as string | null,
    context: record.context as Record<string, unknown>,
    prevHash: record.prevHash as string,
    hash: record.hash as string,
  };
}

/**
 * Checks events one at a time, in seq order, so a caller can feed pages as it reads them and
 * stop at the first break. `finish(head)` compares the end of the chain with the head row.
 */
export function createChainVerifier() {
  let count = 0;
  let lastSeq = 0;
  let lastHash = GENESIS_HASH;
  let failure: Extract<VerifyResult, { ok: false }> | undefined;
  let checkpoint: ChainHead | undefined;

  const fail = (firstBadSeq: number, problem: VerifyProblem, reason: string) => {
    failure = { ok: false, count, firstBadSeq, problem, reason };
    return failure;
  };

  return {
    get lastSeq() {
      return lastSeq;
    },
    get count() {
      return count;
    },
    /**
     * Expects the event at `head.seq` to carry `head.hash` once it arrives: used when the head
     * was read while appends were still landing, so it lies inside the chain rather than at its end.
     */
    expect(head: ChainHead): void {
      checkpoint = head;
    },
    /** Feeds the next event; returns the failure once the chain is broken. */
    push(record: AuditEvent | UnreadableRecord): VerifyResult | undefined {
      if (failure) return failure;
      const expectedSeq = lastSeq + 1;
      if (record.seq !== expectedSeq) {
        return record.seq > expectedSeq
          ? fail(expectedSeq, "SEQ_GAP", `seq ${expectedSeq} is missing: the next row is seq ${record.seq}`)
          : fail(expectedSeq, "SEQ_GAP", `seq ${record.seq} appears where seq ${expectedSeq} belongs`);
      }
      if ("unreadable" in record) return fail(record.seq, "UNREADABLE", record.unreadable);
      if (record.prevHash !== lastHash) {
        return fail(
          record.seq,
          "PREV_HASH_MISMATCH",
          record.seq === 1
            ? "prevHash of the first event is not the genesis hash"
            : `prevHash does not match the hash of seq ${lastSeq}: a row was inserted, reordered or rewritten here`,
        );
      }
      if (hashEvent(record.prevHash, record) !== record.hash) {
        return fail(
          record.seq,
          "HASH_MISMATCH",
          "hash does not match the row's contents: a field was edited",
        );
      }
      if (checkpoint && checkpoint.seq === record.seq && checkpoint.hash !== record.hash) {
        return fail(
          record.seq,
          "HEAD_MISMATCH",
          `the head's hash for seq ${record.seq} differs from the chain's`,
        );
      }
      count++;
      lastSeq = record.seq;
      lastHash = record.hash;
      return undefined;
    },
    /** The verdict once every event has been pushed; without a head, the chain alone is judged. */
    finish(head?: ChainHead): VerifyResult {
      if (failure) return failure;
      if (head) {
        if (head.seq > lastSeq) {
          return fail(
            lastSeq + 1,
            "HEAD_MISMATCH",
            `the head records seq ${head.seq} but the chain ends at seq ${lastSeq}: events were removed from the end`,
          );
        }
        if (head.seq < lastSeq) {
          return fail(
            head.seq + 1,
            "HEAD_MISMATCH",
            `the chain continues past the head (seq ${head.seq}) to seq ${lastSeq}: events were added outside Firebreak`,
          );
        }
        if (head.hash !== lastHash) {
          return fail(
            lastSeq,
            "HEAD_MISMATCH",
            `the head's hash for seq ${lastSeq} differs from the chain's`,
          );
        }
      }
      return { ok: true, count, headHash: lastHash };
    },
  };
}

export type ChainVerifier = ReturnType<typeof createChainVerifier>;

/**
 * Recomputes the chain over `events` (in seq order, starting at seq 1) and reports the first
 * broken link; with `head`, also checks that the chain ends where the head row says it does.
 */
export async function verifyChain(
  events: Iterable<AuditEvent | UnreadableRecord> | AsyncIterable<AuditEvent | UnreadableRecord>,
  head?: ChainHead,
): Promise<VerifyResult> {
  const verifier = createChainVerifier();
  for await (const event of events) {
    const failure = verifier.push(event);
    if (failure) return failure;
  }
  return verifier.finish(head);
}

import { createHash } from "node:crypto";
import { GENESIS_HASH } from "../audit/chain.js";
import { canonicalJson } from "../shared/canonical-json.js";

/**
 * A session's transcript is a hash chain of its own, encoded like the audit chain (canonical JSON,
 * SHA-256, lowercase hex; see audit/NOTES.md): record n carries the hash of record n − 1, record 1
 * the genesis hash. The session's digest is its last record's hash, carried by the audit chain's
 * `session.ended` event, so a transcript rewritten with recomputed hashes still disagrees with the
 * chain. Pure: no I/O, no clock.
 */
export { GENESIS_HASH };

export interface TranscriptRecord {
  sessionId: string;
  seq: number;
  /** Epoch milliseconds. */
  time: number;
  /** `startup`, `statement`, `copy`, `notice`, `end`, … (`command` for SSH). */
  kind: string;
  payload: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** SHA-256 over the canonical JSON of the record's fields (time as ISO 8601 UTC) and prevHash. */
export function hashRecord(prevHash: string, record: Omit<TranscriptRecord, "prevHash" | "hash">): string {
  const fields = {
    sessionId: record.sessionId,
    seq: record.seq,
    time: new Date(record.time).toISOString(),
    kind: record.kind,
    payload: record.payload,
    prevHash,
  };
  return createHash("sha256").update(canonicalJson(fields), "utf8").digest("hex");
}

/** What is known about a session from outside its records: its row and its audit events. */
export interface TranscriptAnchors {
  /** `session.ended`'s record count and digest, when the session ended. */
  ended?: { records: number; digest: string };
  /** `session.statement` events: the record seq and hash each one names. */
  statements: ReadonlyMap<number, string>;
}

export type TranscriptProblem =
  | "SEQ_GAP"
  | "PREV_HASH_MISMATCH"
  | "HASH_MISMATCH"
  | "UNREADABLE"
  | "ANCHOR_MISMATCH"
  | "DIGEST_MISMATCH"
  | "SESSION_MISSING"
  | "UNANCHORED";

export type TranscriptVerdict =
  | { ok: true; records: number; digest: string }
  | { ok: false; firstBadSeq: number; problem: TranscriptProblem; reason: string };

/**
 * Checks one session's records, fed in seq order a page at a time, against each other and against
 * its anchors in the audit chain: an edited, deleted, inserted or appended record is caught.
 */
export function createTranscriptVerifier(anchors: TranscriptAnchors) {
  let expected = 1;
  let lastHash = GENESIS_HASH;
  let failure: Extract<TranscriptVerdict, { ok: false }> | undefined;
  const fail = (firstBadSeq: number, problem: TranscriptProblem, reason: string) => {
    failure = { ok: false, firstBadSeq, problem, reason };
    return failure;
  };
  return {
    get lastSeq() {
      return expected - 1;
    },
    push(record: TranscriptRecord | { seq: number; unreadable: string }): TranscriptVerdict | undefined {
      if (failure) return failure;
      if (record.seq !== expected)
        return fail(
          expected,
          "SEQ_GAP",
          `record ${expected} is missing or out of place: record ${record.seq} is there`,
        );
      if ("unreadable" in record) return fail(record.seq, "UNREADABLE", record.unreadable);
      if (record.prevHash !== lastHash)
        return fail(
          record.seq,
          "PREV_HASH_MISMATCH",
          `record ${record.seq} does not follow record ${record.seq - 1}`,
        );
      if (hashRecord(record.prevHash, record) !== record.hash)
        return fail(
          record.seq,
          "HASH_MISMATCH",
          `record ${record.seq} was edited: its hash does not match it`,
        );
      const anchored = anchors.statements.get(record.seq);
      if (anchored !== undefined && anchored !== record.hash)
        return fail(
          record.seq,
          "ANCHOR_MISMATCH",
          `record ${record.seq} differs from what its session.statement audit event recorded`,
        );
      lastHash = record.hash;
      expected++;
      return undefined;
    },
    finish(): TranscriptVerdict {
      if (failure) return failure;
      const count = expected - 1;
      for (const seq of anchors.statements.keys())
        if (seq > count)
          return fail(
            count + 1,
            "SEQ_GAP",
            `record ${seq}, named by a session.statement audit event, is missing`,
          );
      if (anchors.ended) {
        if (anchors.ended.records !== count)
          return fail(
            Math.min(count, anchors.ended.records) + 1,
            "DIGEST_MISMATCH",
            `the session ended with ${anchors.ended.records} records; ${count} are stored`,
          );
        if (anchors.ended.digest !== lastHash)
          return fail(
            count,
            "DIGEST_MISMATCH",
            "the transcript's digest differs from the one session.ended recorded",
          );
      }
      return { ok: true, records: count, digest: lastHash };
    },
  };
}

/** verifyTranscript over records already in hand. */
export function verifyTranscript(
  records: Iterable<TranscriptRecord | { seq: number; unreadable: string }>,
  anchors: TranscriptAnchors,
): TranscriptVerdict {
  const verifier = createTranscriptVerifier(anchors);
  for (const record of records) if (verifier.push(record)) break;
  return verifier.finish();
}

import type { KeyObject } from "node:crypto";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { type AnchorPoint, type AnchorProblem, judgeAnchors } from "./anchor.js";
import { type AuditEvent, GENESIS_HASH, hashEvent, parseEventLine } from "./chain.js";
import { CHECKPOINT_TYPE, checkpointOf, verifyCheckpointSignature } from "./checkpoint.js";

/**
 * Verifies an exported stream (JSON lines: `firebreak audit export`, or a file sink's lines) with
 * nothing but the file and the public key: no server, no database. Pure apart from reading the
 * lines; see NOTES.md ("Verifying an export offline") for what each problem means.
 */

export type ExportProblem =
  /** A line is not an event: not JSON, or fields missing or of the wrong type. */
  | "UNREADABLE"
  /** An event is missing: its seq never appears (or later events were renumbered down over it). */
  | "REMOVED"
  /** An event appears out of its place. */
  | "REORDERED"
  /** An event that was never written sits in the chain (a second event claims a seq, or later events were shifted up). */
  | "INSERTED"
  /** An event's contents were changed (with or without recomputing its hash). */
  | "ALTERED"
  /** A checkpoint names a key none of the given public keys has. */
  | "UNKNOWN_KEY"
  /** A checkpoint's signature does not verify: forged, or its fields changed. */
  | "BAD_SIGNATURE"
  /** A validly signed checkpoint vouches for a chain other than this one: events before it were changed and the chain recomputed. */
  | "CHECKPOINT_MISMATCH"
  /** A public key was given, but no checkpoint is in the stream to check it against. */
  | "NOT_SIGNED"
  /** With `requireSignedEnd`: events follow the last checkpoint (the end of the stream is not vouched for). */
  | "UNSIGNED_END"
  /** With anchors: the stream ends before an anchored event (the tail was cut), or holds another event where one belongs. */
  | AnchorProblem
  /** The stream holds no events. */
  | "EMPTY";

export interface VerifyKey {
  publicKey: KeyObject;
  keyId: string;
}

export interface ExportVerifyOptions {
  /** Keys whose checkpoints are trusted; none means the chain alone is checked. */
  keys?: readonly VerifyKey[];
  /** Fail when events follow the last verified checkpoint. */
  requireSignedEnd?: boolean;
  /** Events held outside the database (`--anchor`) that the stream must contain. */
  anchors?: readonly AnchorPoint[];
}

export interface ExportVerifyResult {
  ok: boolean;
  /** Distinct events that verified (before the first problem, on failure). */
  events: number;
  /** Lines repeating an event already seen, byte for byte in meaning (at-least-once delivery). */
  duplicates: number;
  /** Checkpoints whose signature and head verified (0 when no keys were given). */
  checkpoints: number;
  /** Checkpoints seen but not checked, because no key was given. */
  uncheckedCheckpoints: number;
  /** The newest seq a verified checkpoint signed. */
  lastSignedSeq: number | null;
  /** Events after the last verified checkpoint event, which no signature vouches for yet. */
  unsignedTail: number;
  lastSeq: number;
  headHash: string | null;
  /** Anchored events compared with the stream (0 without anchors). */
  anchors: number;
  /** The newest anchored seq, which the stream was required to contain. */
  anchoredSeq: number | null;
  problem: ExportProblem | null;
  /** The first event that cannot be trusted. */
  firstBadSeq: number | null;
  /** The line of the file where the problem shows (1-based across all files), when it is one line. */
  line: number | null;
  reason: string | null;
}

interface Line {
  number: number;
  text: string;
}

const hashAt = (event: AuditEvent, seq: number) => hashEvent(event.prevHash, { ...event, seq });

/**
 * Verifies the events `open()` yields, in file order. `open` may be called a second time, to
 * look ahead for an event that is missing where it belongs (removed, or only moved).
 */
export async function verifyExportLines(
  open: () => AsyncIterable<Line>,
  options: ExportVerifyOptions = {},
): Promise<ExportVerifyResult> {
  const keys = options.keys ?? [];
  const anchors = options.anchors ?? [];
  const seen = new Map<number, { hash: string; id: string }>();
  let expected = 1;
  let lastHash = GENESIS_HASH;
  let duplicates = 0;
  let checkpoints = 0;
  let unchecked = 0;
  let lastSignedSeq: number | null = null;
  let lastCheckpointEventSeq = 0;
  /** Seqs of the checkpoint events whose signature and head verified, ascending. */
  const signedCheckpoints: number[] = [];

  const result = (
    problem: ExportProblem | null,
    firstBadSeq: number | null,
    line: number | null,
    reason: string | null,
  ): ExportVerifyResult => ({
    ok: problem === null,
    events: expected - 1,
    duplicates,
    checkpoints,
    uncheckedCheckpoints: unchecked,
    lastSignedSeq,
    unsignedTail: Math.max(0, expected - 1 - lastCheckpointEventSeq),
    lastSeq: expected - 1,
    headHash: expected > 1 ? lastHash : null,
    anchors: anchors.length,
    anchoredSeq: anchors.reduce<number | null>((newest, point) => Math.max(newest ?? 0, point.seq), null),
    problem,
    firstBadSeq,
    line,
    reason,
  });
  /** The first event after the last verified checkpoint, which itself carries a valid signature. */
  const firstUnsigned = () => lastCheckpointEventSeq + 1;

  for await (const { number, text } of open()) {
    if (text.trim() === "") continue;
    const event = parseEventLine(text);
    if (typeof event === "string") return result("UNREADABLE", expected, number, `line ${number}: ${event}`);
    const computed = hashEvent(event.prevHash, event);

    if (event.seq < expected) {
      const prior = seen.get(event.seq);
      if (prior && prior.id === event.id && prior.hash === event.hash && computed === event.hash) {
        duplicates++;
        continue;
      }
      return result(
        "INSERTED",
        event.seq,
        number,
        `line ${number}: a second, different event claims seq ${event.seq}`,
      );
    }

    if (event.seq > expected) {
      const found = await findSeq(open, expected, number);
      return found === null
        ? result(
            "REMOVED",
            expected,
            number,
            `seq ${expected} is missing: line ${number} holds seq ${event.seq} where it belongs`,
          )
        : result(
            "REORDERED",
            expected,
            number,
            `seq ${expected} is out of order: line ${number} holds seq ${event.seq} where it belongs, and seq ${expected} comes later, on line ${found}`,
          );
    }

    if (computed !== event.hash) {
      if (event.seq > 1 && hashAt(event, event.seq - 1) === event.hash)
        return result(
          "INSERTED",
          event.seq - 1,
          number,
          `line ${number} is the original seq ${event.seq - 1} renumbered to ${event.seq}: the event now at seq ${event.seq - 1} was inserted`,
        );
      if (hashAt(event, event.seq + 1) === event.hash)
        return result(
          "REMOVED",
          event.seq,
          number,
          `line ${number} is the original seq ${event.seq + 1} renumbered to ${event.seq}: the original seq ${event.seq} was removed`,
        );
      return result(
        "ALTERED",
        event.seq,
        number,
        `seq ${event.seq} (line ${number}) does not match its hash: it was changed`,
      );
    }

    if (event.prevHash !== lastHash) {
      const twoBack = seen.get(event.seq - 2)?.hash ?? (event.seq === 2 ? GENESIS_HASH : undefined);
      if (event.seq >= 2 && event.prevHash === twoBack)
        return result(
          "INSERTED",
          event.seq - 1,
          number,
          `seq ${event.seq} (line ${number}) links to seq ${event.seq - 2}: the event at seq ${event.seq - 1} was inserted`,
        );
      return event.seq === 1
        ? result("ALTERED", 1, number, "the first event does not start from the genesis hash")
        : result(
            "ALTERED",
            event.seq - 1,
            number,
            `seq ${event.seq} (line ${number}) links to another version of seq ${event.seq - 1}: seq ${event.seq - 1} was rewritten and its hash recomputed`,
          );
    }

    if (event.type === CHECKPOINT_TYPE) {
      const checkpoint = checkpointOf(event);
      if (checkpoint === null)
        return result(
          "ALTERED",
          event.seq,
          number,
          `seq ${event.seq} is a checkpoint with missing or malformed fields`,
        );
      if (keys.length === 0) unchecked++;
      else {
        const key = keys.find((candidate) => candidate.keyId === checkpoint.keyId);
        const range = `seq ${firstUnsigned()} to ${checkpoint.checkpoint.seq}`;
        if (!key)
          return result(
            "UNKNOWN_KEY",
            firstUnsigned(),
            number,
            `the checkpoint at seq ${event.seq} is signed by ${checkpoint.keyId}, which none of the given keys is; ${range} are not vouched for`,
          );
        if (!verifyCheckpointSignature(key.publicKey, checkpoint.checkpoint, checkpoint.signature))
          return result(
            "BAD_SIGNATURE",
            firstUnsigned(),
            number,
            `the checkpoint at seq ${event.seq} has an invalid signature; ${range} are not vouched for`,
          );
        const signed = seen.get(checkpoint.checkpoint.seq);
        if (checkpoint.checkpoint.seq >= event.seq || !signed || signed.hash !== checkpoint.checkpoint.hash)
          return result(
            "CHECKPOINT_MISMATCH",
            firstUnsigned(),
            number,
            `the checkpoint at seq ${event.seq} signed a different chain at seq ${checkpoint.checkpoint.seq}: events between seq ${firstUnsigned()} and ${checkpoint.checkpoint.seq} were changed, inserted or removed and the chain recomputed`,
          );
        checkpoints++;
        lastSignedSeq = checkpoint.checkpoint.seq;
        lastCheckpointEventSeq = event.seq;
        signedCheckpoints.push(event.seq);
      }
    }

    seen.set(event.seq, { hash: event.hash, id: event.id });
    lastHash = event.hash;
    expected++;
  }

  if (expected === 1) return result("EMPTY", null, null, "the stream holds no events");
  // Before the signature checks: a stream cut back to a checkpoint ends signed, and only an
  // anchor kept elsewhere shows what is missing after it.
  const lost = judgeAnchors(anchors, {
    lastSeq: expected - 1,
    hashAt: (seq) => seen.get(seq)?.hash,
    signedBefore: (seq) => signedCheckpoints.findLast((checkpoint) => checkpoint < seq) ?? 0,
  });
  if (lost) return result(lost.problem, lost.firstBadSeq, null, lost.reason);
  if (keys.length > 0 && checkpoints === 0)
    return result(
      "NOT_SIGNED",
      1,
      null,
      "a public key was given but the stream holds no checkpoint to verify",
    );
  if (options.requireSignedEnd && keys.length > 0 && lastCheckpointEventSeq < expected - 1)
    return result(
      "UNSIGNED_END",
      lastCheckpointEventSeq + 1,
      null,
      `${expected - 1 - lastCheckpointEventSeq} event(s) after the last checkpoint (seq ${lastCheckpointEventSeq}) are not vouched for`,
    );
  return result(null, null, null, null);
}

/** The line where `seq` appears after line `after`, or null. */
async function findSeq(open: () => AsyncIterable<Line>, seq: number, after: number): Promise<number | null> {
  for await (const { number, text } of open()) {
    if (number <= after) continue;
    const event = parseEventLine(text);
    if (typeof event !== "string" && event.seq === seq) return number;
  }
  return null;
}

/** Lines of the files, in order, numbered across them. */
export function linesOfFiles(paths: readonly string[]): () => AsyncIterable<Line> {
  return async function* () {
    let number = 0;
    for (const path of paths) {
      const reader = createInterface({
        input: createReadStream(path, { encoding: "utf8" }),
        crlfDelay: Number.POSITIVE_INFINITY,
      });
      for await (const text of reader) yield { number: ++number, text };
    }
  };
}

/** Verifies exported JSON-lines files (in the order given, e.g. `audit.jsonl.2 audit.jsonl.1 audit.jsonl`). */
export function verifyExportFiles(paths: readonly string[], options: ExportVerifyOptions = {}) {
  return verifyExportLines(linesOfFiles(paths), options);
}

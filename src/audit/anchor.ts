import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { access, open, readFile, realpath, rename, rm } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative } from "node:path";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import { listAuditEvents, listAuditEventsBySeq, readHead } from "./audit.repo.js";
import { type AuditEvent, GENESIS_HASH, hashEvent, parseEventLine } from "./chain.js";
import { CHECKPOINT_TYPE, checkpointOf } from "./checkpoint.js";

/**
 * The chain's head anchored outside the database. A hash chain whose head row sits in the same
 * database can be cut short by anyone who can write that database: delete the tail, rewind the
 * head, and every check made from the database alone passes. An anchor is a copy of events (the
 * newest signed checkpoint, written by the server to `audit.anchor.file`, or a sink's JSON lines)
 * held where a database writer cannot reach; the chain must still contain every anchored event.
 * See NOTES.md ("Anchors").
 */

export type AnchorProblem =
  /** The chain ends before an anchored event: its tail was removed and the head rewound. */
  | "BEHIND_ANCHOR"
  /** The chain holds another event (or none) where an anchored one belongs: it was rewritten. */
  | "ANCHOR_MISMATCH";

/** One event the chain must hold, as read from outside the database. */
export interface AnchorPoint {
  seq: number;
  hash: string;
  prevHash: string;
  /** Where it was read (`FILE line N`), for messages. */
  source: string;
}

export interface AnchorFailure {
  problem: AnchorProblem;
  /** The first missing seq (BEHIND_ANCHOR), or the first event that can no longer be trusted. */
  firstBadSeq: number;
  reason: string;
}

/** What the judge needs of a chain that has been verified on its own: its end and its hashes. */
export interface ChainView {
  lastSeq: number;
  /** The hash of the event at `seq`, or undefined when there is none. */
  hashAt(seq: number): string | undefined;
  /** The newest seq before `seq` that a verified signed checkpoint vouches for (0: none). */
  signedBefore?(seq: number): number;
}

/**
 * Checks that `chain` holds every anchored event, in seq order; the first that it lacks decides.
 * Pure. Because each hash covers the one before it, the chain agreeing at an anchored seq means it
 * agrees at every seq before it too, so a single anchor (the newest checkpoint) already pins the
 * whole chain up to there; more anchors (a sink's every event) only place a rewrite more exactly.
 */
export function judgeAnchors(points: readonly AnchorPoint[], chain: ChainView): AnchorFailure | null {
  let agreed = 0;
  for (const point of [...points].sort((a, b) => a.seq - b.seq)) {
    if (point.seq > chain.lastSeq) {
      return {
        problem: "BEHIND_ANCHOR",
        firstBadSeq: chain.lastSeq + 1,
        reason: `the chain ends at seq ${chain.lastSeq}, but ${point.source} holds seq ${point.seq}: seq ${chain.lastSeq + 1} to ${point.seq} were removed from the end of the chain and its head rewound`,
      };
    }
    const hash = chain.hashAt(point.seq);
    if (hash === point.hash) {
      agreed = point.seq;
      continue;
    }
    // When the link into the event still matches, everything before it is the original: the
    // change is exactly here. Otherwise it lies somewhere after the last event known to agree.
    const before = point.seq === 1 ? GENESIS_HASH : chain.hashAt(point.seq - 1);
    if (hash !== undefined && before === point.prevHash) {
      return {
        problem: "ANCHOR_MISMATCH",
        firstBadSeq: point.seq,
        reason: `seq ${point.seq} is not the event ${point.source} holds: it was rewritten`,
      };
    }
    // A verified checkpoint vouches for everything up to itself as surely as an anchor does.
    const trusted = Math.max(agreed, chain.signedBefore?.(point.seq) ?? 0);
    return {
      problem: "ANCHOR_MISMATCH",
      firstBadSeq: trusted + 1,
      reason: `${hash === undefined ? `seq ${point.seq} is missing from the chain` : `the chain's seq ${point.seq} is not the event ${point.source} holds`}: events ${trusted === 0 ? "from seq 1" : `after seq ${trusted} (the newest the chain holds that an anchor or a signature vouches for)`} to seq ${point.seq} were removed or rewritten`,
    };
  }
  return null;
}

/** The newest seq among `points`, or null. */
export function newestAnchoredSeq(points: readonly AnchorPoint[]): number | null {
  return points.reduce<number | null>((newest, point) => Math.max(newest ?? 0, point.seq), null);
}

/**
 * Reads anchors from JSON-lines files: the anchor file the server writes, or a `json` file sink's
 * files (oldest first). Every event in them becomes an anchor; when a file holds two different
 * events for one seq, the first one read (the one delivered first) is kept, since a rewritten
 * chain is delivered after the original. Throws a plain Error naming the file and line when a
 * line is not an event whose hash matches its contents.
 */
export async function readAnchorPoints(paths: readonly string[]): Promise<AnchorPoint[]> {
  const points = new Map<number, AnchorPoint>();
  for (const path of paths)
    for (const { event, source } of await readAnchorEvents(path))
      if (!points.has(event.seq))
        points.set(event.seq, { seq: event.seq, hash: event.hash, prevHash: event.prevHash, source });
  return [...points.values()].sort((a, b) => a.seq - b.seq);
}

/** The events of one anchor file, each checked against its own hash, with the line it is on. */
async function readAnchorEvents(path: string): Promise<{ event: AuditEvent; source: string }[]> {
  const text = await readFile(path, "utf8");
  const events: { event: AuditEvent; source: string }[] = [];
  for (const [index, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    const source = `${path} line ${index + 1}`;
    const event = parseEventLine(line);
    if (typeof event === "string") throw new Error(`${source} is not an audit event: ${event}`);
    if (hashEvent(event.prevHash, event) !== event.hash)
      throw new Error(`${source} does not match its own hash: it cannot vouch for anything`);
    events.push({ event, source });
  }
  if (events.length === 0) throw new Error(`${path} holds no audit event`);
  return events;
}

/**
 * Checkpoints the anchor file keeps, newest last: the newest alone pins the chain up to it, and
 * the older ones place a rewrite between two checkpoints instead of anywhere before the newest.
 */
export const ANCHOR_HISTORY = 100;

/**
 * Replaces `path` with `events`, one JSON line each, atomically: written to a temporary file in
 * the same directory, flushed, renamed over the old anchor, and the directory flushed, so a crash
 * leaves the old anchor or the new one, never half of either.
 */
export async function writeAnchorFile(path: string, events: readonly AuditEvent[]): Promise<void> {
  const directory = dirname(path);
  const temporary = join(
    directory,
    `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`,
  );
  const file = await open(temporary, "wx", 0o644);
  try {
    await file.writeFile(events.map((event) => `${JSON.stringify(event)}\n`).join(""), "utf8");
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  const folder = await open(directory, "r");
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}

const isInside = (child: string, parent: string) => {
  const path = relative(parent, child);
  return path === "" || (!path.startsWith("..") && !isAbsolute(path));
};

/**
 * Refuses an anchor file that would not be outside the reach of whoever can change the database:
 * inside one of `dataDirectories` (where the SQLite database lives, so restoring or editing that
 * directory rewinds the anchor with the chain), or in a directory that is missing or not writable.
 * Throws CONFIG_INVALID.
 */
export async function checkAnchorLocation(file: string, dataDirectories: readonly string[]): Promise<void> {
  if (!isAbsolute(file))
    throw new FirebreakError("CONFIG_INVALID", `audit.anchor.file must be an absolute path, not '${file}'`);
  const directory = dirname(file);
  let real: string;
  try {
    real = await realpath(directory);
    await access(real, constants.W_OK);
  } catch {
    throw new FirebreakError(
      "CONFIG_INVALID",
      `audit.anchor.file: the directory ${directory} does not exist or cannot be written by this process`,
    );
  }
  for (const data of dataDirectories) {
    const realData = await realpath(data).catch(() => data);
    if (isInside(real, realData))
      throw new FirebreakError(
        "CONFIG_INVALID",
        `audit.anchor.file (${file}) is inside the data directory ${data}: whoever can change the database there can rewind the anchor with it; put the anchor outside it, ideally on another filesystem`,
      );
  }
}

const ALERT = "audit-anchor-mismatch";

/** What the server's own anchor says about the chain, for `GET /v1/audit/verify`. */
export type AnchorCheck =
  | { ok: true; anchoredSeq: number }
  | {
      ok: false;
      anchoredSeq: number | null;
      problem: AnchorProblem | "ANCHOR_UNREADABLE";
      firstBadSeq: number | null;
      reason: string;
    };

/**
 * Keeps `audit.anchor.file`: after each checkpoint it checks that the chain still holds the
 * anchored checkpoint, and only then replaces the anchor with the newest checkpoint; at start it
 * refuses a chain that no longer holds it. An anchor is never overwritten by a chain that lost it,
 * so the evidence stays where the operator finds it.
 */
export function createAnchorKeeper(deps: {
  db: Db;
  inTransaction: InTransaction;
  /** `audit.anchor.file` of the configuration in force. */
  file: () => string | undefined;
  /** Directories the anchor may not be in (the SQLite database's). */
  dataDirectories: readonly string[];
  onError: (error: unknown) => void;
}) {
  let file: string | undefined;
  let pending: Promise<unknown> = Promise.resolve();
  /** Anchors this process has already raised an alert about, so one loss is one alert. */
  const alerted = new Set<string>();

  /** The configured file, following reloads; a new path that is not acceptable keeps the old one. */
  const currentFile = async (): Promise<string | undefined> => {
    const configured = deps.file();
    if (configured !== file) {
      try {
        if (configured !== undefined) await checkAnchorLocation(configured, deps.dataDirectories);
        file = configured;
      } catch (error) {
        deps.onError(error);
      }
    }
    return file;
  };

  /** The anchored checkpoints (oldest first) and their points; null when none was written yet. */
  const readAnchor = async (
    path: string,
  ): Promise<{ events: AuditEvent[]; points: AnchorPoint[] } | null> => {
    try {
      const read = await readAnchorEvents(path);
      return {
        events: read.map(({ event }) => event),
        points: read.map(({ event, source }) => ({
          seq: event.seq,
          hash: event.hash,
          prevHash: event.prevHash,
          source,
        })),
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw error;
    }
  };

  /** The database's chain as the judge sees it, around the anchored seqs only. */
  const judge = async (points: readonly AnchorPoint[]): Promise<AnchorFailure | null> => {
    const head = await readHead(deps.db);
    const wanted = points.flatMap((point) => [point.seq - 1, point.seq]).filter((seq) => seq >= 1);
    const rows = await listAuditEventsBySeq(deps.db, [...new Set(wanted)]);
    // The hash recomputed from the row, so a row edited under an unchanged hash column does not agree.
    const hashes = new Map(rows.map((event) => [event.seq, hashEvent(event.prevHash, event)]));
    return judgeAnchors(points, { lastSeq: head.seq, hashAt: (seq) => hashes.get(seq) });
  };

  const describe = (path: string, failure: AnchorFailure) =>
    `the audit chain no longer holds the checkpoint anchored in ${path}: ${failure.reason}`;

  /** Appends one alert for this loss, unless the newest event already is that alert (restarts). */
  const raiseAlert = async (point: AnchorPoint, failure: AnchorFailure) => {
    const key = `${point.seq}:${point.hash}`;
    if (alerted.has(key)) return;
    alerted.add(key);
    await deps.inTransaction(async (unit) => {
      const head = await readHead(unit.tx);
      const newest =
        head.seq > 0 ? (await listAuditEventsBySeq(unit.tx, [head.seq]).catch(() => []))[0] : undefined;
      if (
        newest?.type === "alert.raised" &&
        newest.context.alert === ALERT &&
        newest.context.anchorSeq === point.seq &&
        newest.context.anchorHash === point.hash
      )
        return;
      await unit.audit({
        type: "alert.raised",
        actor: "system:audit",
        context: {
          alert: ALERT,
          severity: "critical",
          problem: failure.problem,
          firstBadSeq: failure.firstBadSeq,
          anchorSeq: point.seq,
          anchorHash: point.hash,
          headSeq: head.seq,
          message: `the audit chain no longer holds the checkpoint anchored outside the database: ${failure.reason.replace(point.source, "the anchor")}`,
        },
      });
    });
  };

  const newestOf = (points: readonly AnchorPoint[]) =>
    points.reduce((newest, point) => (point.seq > newest.seq ? point : newest));

  /** Checks the anchor against the chain; anchors the newest checkpoint when it still holds. */
  const syncOnce = async (): Promise<void> => {
    const path = await currentFile();
    if (path === undefined) return;
    const anchored = await readAnchor(path);
    const points = anchored?.points ?? null;
    if (points !== null) {
      const failure = await judge(points);
      if (failure) {
        await raiseAlert(newestOf(points), failure);
        throw new FirebreakError("AUDIT_ANCHOR_MISMATCH", `${describe(path, failure)}; the anchor is kept`);
      }
    }
    const [checkpoint] = await listAuditEvents(deps.db, { type: CHECKPOINT_TYPE, order: "desc", limit: 1 });
    if (!checkpoint || checkpointOf(checkpoint) === null) return;
    if (points !== null && checkpoint.seq <= newestOf(points).seq) return;
    await writeAnchorFile(path, [...(anchored?.events ?? []), checkpoint].slice(-ANCHOR_HISTORY));
  };

  const sync = (): Promise<void> => {
    const run = pending.then(syncOnce).catch(deps.onError);
    pending = run;
    return run;
  };

  return {
    /** Checks the configured location (CONFIG_INVALID stops the start). */
    async init(): Promise<void> {
      file = deps.file();
      if (file !== undefined) await checkAnchorLocation(file, deps.dataDirectories);
    },

    /**
     * At start, before anything is appended: a chain that lost the anchored checkpoint gets its
     * alert (delivered once the server is allowed to start) and stops the start with
     * AUDIT_ANCHOR_MISMATCH; an anchor that cannot be read stops it with CONFIG_INVALID. A chain
     * that holds it has its newest checkpoint anchored at once.
     */
    async checkAtStart(): Promise<void> {
      if (file === undefined) return;
      let points: AnchorPoint[] | null;
      try {
        points = (await readAnchor(file))?.points ?? null;
      } catch (error) {
        throw new FirebreakError(
          "CONFIG_INVALID",
          `audit.anchor.file: ${error instanceof Error ? error.message : String(error)}; it is not overwritten: restore it, or move it aside to start a new anchor`,
        );
      }
      const failure = points === null ? null : await judge(points);
      // The chain holds the anchor (or none was written yet): anchor its newest checkpoint now,
      // so a newly configured anchor does not wait for the next checkpoint.
      if (points === null || !failure) return sync();
      await raiseAlert(newestOf(points), failure);
      throw new FirebreakError(
        "AUDIT_ANCHOR_MISMATCH",
        `${describe(file, failure)}. Firebreak does not serve on this chain: find out who changed the database (the sinks hold copies of the events), and only to accept the chain as it is now, move ${file} aside and start again`,
      );
    },

    /**
     * After a checkpoint (or an attempt at one): checks and advances the anchor. Never throws:
     * a lost anchor is raised as an alert and reported through `onError`. Calls are serialised.
     */
    sync,

    /** The server's anchor against the chain now; null when no anchor is configured or written yet. */
    async verify(): Promise<AnchorCheck | null> {
      const path = await currentFile();
      if (path === undefined) return null;
      let points: AnchorPoint[] | null;
      try {
        points = (await readAnchor(path))?.points ?? null;
      } catch (error) {
        return {
          ok: false,
          anchoredSeq: null,
          problem: "ANCHOR_UNREADABLE",
          firstBadSeq: null,
          reason: `the anchor file cannot be used: ${error instanceof Error ? error.message : String(error)}`,
        };
      }
      if (points === null) return null;
      const anchoredSeq = newestOf(points).seq;
      const failure = await judge(points);
      return failure ? { ok: false, anchoredSeq, ...failure } : { ok: true, anchoredSeq };
    },
  };
}
export type AnchorKeeper = ReturnType<typeof createAnchorKeeper>;

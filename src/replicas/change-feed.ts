import { listAuditEvents, readHead } from "../audit/audit.repo.js";
import type { AuditEvent } from "../audit/chain.js";
import type { Db } from "../db/types.js";
import type { EventBus } from "../shared/events.js";
import type { AuditListener } from "./replica.repo.js";

/** Where a replica stands: current (it confirmed it has applied everything committed) or why not. */
export interface FeedStatus {
  current: boolean;
  /** Why it cannot confirm it is current; null when it is. */
  reason: string | null;
  /** The last seq applied to the live views. */
  seq: number;
}

export interface ChangeFeedOptions {
  /** How often the head is read on the listening connection (confirms currency, catches lost news). */
  probeMs?: number;
  /** A replica that has not confirmed it is current for this long answers access checks with deny. */
  staleAfterMs?: number;
  /** First wait before reconnecting a lost listening connection; doubles up to 8× on failures. */
  reconnectMs?: number;
}

const PAGE = 1000;
export const DEFAULT_PROBE_MS = 200;
export const DEFAULT_STALE_AFTER_MS = 1_000;
const DEFAULT_RECONNECT_MS = 250;

type EventListener = (event: AuditEvent) => void;
type BatchHandler = (events: readonly AuditEvent[]) => Promise<void>;

/**
 * Every committed change, from whichever replica made it, in seq order: the feed the live views
 * follow (access index, `/v1/events`, agent desired state, gateway sessions). See NOTES.md.
 * On SQLite (one process) it is the in-process bus and costs nothing; on PostgreSQL it reads the
 * chain by seq, woken by NOTIFY and by a head probe on the listening connection.
 */
export interface ChangeFeed {
  /** Each committed event once, in seq order; same shape as the bus, so live views take either. */
  subscribe(listener: EventListener): () => void;
  /** Awaited for each batch before the feed counts itself current past it (the access index). */
  onBatch(handler: BatchHandler): void;
  /** Judged on the process's monotonic clock: currency is about elapsed time, not the business clock. */
  status(): FeedStatus;
  /** Starts following from the head as it is now; resolves once the first confirmation is made. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The single-process feed: the bus already carries every commit there is, and this process's own
 * listeners have applied each change, so batch handlers have nothing to re-derive and are never
 * called. No timer, no query: SQLite costs what it did before replicas existed.
 */
export function createLocalFeed(deps: { bus: Pick<EventBus, "subscribe">; head: () => Promise<number> }) {
  let seq = 0;
  let unsubscribe: (() => void) | null = null;
  const feed: ChangeFeed = {
    subscribe: (listener) => deps.bus.subscribe(listener),
    onBatch() {},
    status: () => ({ current: true, reason: null, seq }),
    async start() {
      seq = await deps.head();
      unsubscribe = deps.bus.subscribe((event) => {
        seq = Math.max(seq, event.seq);
      });
    },
    async stop() {
      unsubscribe?.();
    },
  };
  return feed;
}

/**
 * The multi-replica feed on PostgreSQL. `cursor` is the last seq delivered; a catch-up reads
 * `seq > cursor` in pages and delivers only a gap-free run (a committed head at H means 1…H are
 * committed, so a gap is a read racing a commit, retried). Currency is confirmed by the probe: the
 * head read at time T on the listening connection, once the cursor has reached it, means every
 * change committed before T is applied. Not confirmed within `staleAfterMs`, or the connection
 * lost, and the replica is not current.
 */
export function createPostgresFeed(deps: {
  db: Db;
  /** Milliseconds on a monotonic clock (default `performance.now`). */
  monotonic?: () => number;
  bus: Pick<EventBus, "subscribe">;
  listen: (handlers: {
    onNotify: (seq: number) => void;
    onLost: (error: Error) => void;
  }) => Promise<AuditListener>;
  options?: ChangeFeedOptions;
  log?: { error(message: string, fields?: Record<string, unknown>): void };
}): ChangeFeed {
  const monotonic = deps.monotonic ?? (() => performance.now());
  const probeMs = deps.options?.probeMs ?? DEFAULT_PROBE_MS;
  const staleAfterMs = deps.options?.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  const reconnectMs = deps.options?.reconnectMs ?? DEFAULT_RECONNECT_MS;
  const listeners = new Set<EventListener>();
  const handlers: BatchHandler[] = [];
  let cursor = 0;
  let confirmedAt: number | null = null;
  let listener: AuditListener | null = null;
  let problem: string | null = "the change feed has not started";
  let stopped = false;
  let failures = 0;
  let probeTimer: NodeJS.Timeout | null = null;
  let reconnectTimer: NodeJS.Timeout | null = null;
  let unsubscribe: (() => void) | null = null;
  let catching: Promise<void> | null = null;
  let again = false;

  /** Reads and delivers everything after the cursor; one run at a time, re-run when news came meanwhile. */
  function catchUp(): Promise<void> {
    if (catching) {
      again = true;
      return catching;
    }
    catching = (async () => {
      do {
        again = false;
        for (;;) {
          const page = await listAuditEvents(deps.db, { afterSeq: cursor, limit: PAGE });
          const run: AuditEvent[] = [];
          for (const event of page) {
            if (event.seq !== cursor + run.length + 1) break;
            run.push(event);
          }
          // A gap (a row missing below the head) is never skipped: the probe keeps reporting the
          // feed behind, and the replica not current, until it is read.
          if (run.length === 0) break;
          for (const handler of handlers) await handler(run);
          cursor = (run.at(-1) as AuditEvent).seq;
          for (const event of run) for (const each of listeners) each(event);
          if (run.length < PAGE) break;
        }
      } while (again && !stopped);
    })().finally(() => {
      catching = null;
    });
    return catching;
  }

  async function probe() {
    if (!listener || stopped) return;
    const askedAt = monotonic();
    try {
      const head = await listener.headSeq();
      if (cursor < head) await catchUp();
      if (cursor >= head) {
        confirmedAt = askedAt;
        problem = null;
      } else problem = `the change feed is behind: applied ${cursor} of ${head}`;
    } catch (error) {
      problem = `the change feed could not catch up: ${describe(error)}`;
    }
  }

  function schedule() {
    if (stopped) return;
    probeTimer = setTimeout(async () => {
      await probe();
      schedule();
    }, probeMs);
    probeTimer.unref();
  }

  async function connect(): Promise<void> {
    try {
      listener = await deps.listen({
        onNotify: (seq) => {
          if (seq > cursor) void catchUp().catch(noteFailure);
        },
        onLost: (error) => {
          listener = null;
          confirmedAt = null;
          problem = `the change notification connection was lost: ${describe(error)}`;
          deps.log?.error("change feed connection lost", { error: describe(error) });
          reconnectLater();
        },
      });
      failures = 0;
      // Whatever happened while it was away is read by seq before it counts as current again.
      await probe();
    } catch (error) {
      listener = null;
      problem = `the change notification connection could not be opened: ${describe(error)}`;
      reconnectLater();
    }
  }

  function reconnectLater() {
    if (stopped || reconnectTimer) return;
    const delay = reconnectMs * 2 ** Math.min(failures, 3);
    failures++;
    reconnectTimer = setTimeout(() => {
      reconnectTimer = null;
      void connect();
    }, delay);
    reconnectTimer.unref();
  }

  function noteFailure(error: unknown) {
    problem = `the change feed could not catch up: ${describe(error)}`;
  }

  return {
    subscribe(each) {
      listeners.add(each);
      return () => listeners.delete(each);
    },
    onBatch(handler) {
      handlers.push(handler);
    },
    status() {
      const now = monotonic();
      if (listener === null || confirmedAt === null)
        return { current: false, reason: problem ?? "the change feed is not connected", seq: cursor };
      if (now - confirmedAt > staleAfterMs)
        return {
          current: false,
          reason: problem ?? `the change feed has not confirmed it is current for ${now - confirmedAt} ms`,
          seq: cursor,
        };
      return { current: true, reason: null, seq: cursor };
    },
    async start() {
      cursor = (await readHead(deps.db)).seq;
      // Own commits are read back at once rather than waiting for their notification.
      unsubscribe = deps.bus.subscribe((event) => {
        if (event.seq > cursor) void catchUp().catch(noteFailure);
      });
      await connect();
      schedule();
    },
    async stop() {
      stopped = true;
      unsubscribe?.();
      if (probeTimer) clearTimeout(probeTimer);
      if (reconnectTimer) clearTimeout(reconnectTimer);
      await catching?.catch(() => {});
      await listener?.close();
      listener = null;
    },
  };
}

function describe(error: unknown): string {
  // Driver messages name no secret here (no statement parameters), but keep them short.
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

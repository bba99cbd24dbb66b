import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { AuditDeliveryConfig, AuditSinkConfig } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import type { AuditSink, SinkDeps } from "../plugins/contracts.js";
import type { SinkRegistry } from "../plugins/registry.js";
import type { Clock } from "../shared/clock.js";
import type { EventBus } from "../shared/events.js";
import { type SinkRecord, toSinkRecord } from "./analyst-view.js";
import { listAuditEvents, listAuditEventsBySeq, readHead } from "./audit.repo.js";
import { type AuditEvent, canonicalJson } from "./chain.js";
import {
  claimLease,
  clearBackoff,
  countDeadLetters,
  type DeadLetter,
  ensureSinkState,
  insertDeadLetter,
  listDeadLetters,
  listSinkStates,
  markReplayed,
  markReplayFailed,
  queueDeadLetters,
  readSinkState,
  recordDelivered,
  recordFailure,
  releaseLease,
  rewindSink,
  type SinkState,
} from "./outbox.repo.js";
import type { RelatedLookup } from "./related.js";
import { createSinkFilter } from "./sink-filter.js";
import { SinkDeliveryError, toDeliveryError } from "./sinks/sink-error.js";

/** Delivery settings with every default filled in (milliseconds). */
export interface DeliverySettings {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  batchSize: number;
  timeoutMs: number;
}

export const DEFAULT_DELIVERY: DeliverySettings = {
  maxAttempts: 8,
  initialBackoffMs: 1_000,
  maxBackoffMs: 5 * 60_000,
  batchSize: 500,
  timeoutMs: 10_000,
};

/** How often an idle sink looks for events committed by other processes, and re-checks its lease. */
const POLL_INTERVAL_MS = 2_000;
/** A sink whose configuration cannot be built (a secret missing) is tried again this often. */
const SETUP_RETRY_MS = 30_000;

/** Fills a sink's delivery settings from its own, then the audit-wide ones, then the defaults. */
export function deliverySettings(
  sink: AuditDeliveryConfig | undefined,
  audit: AuditDeliveryConfig | undefined,
): DeliverySettings {
  return {
    maxAttempts: sink?.maxAttempts ?? audit?.maxAttempts ?? DEFAULT_DELIVERY.maxAttempts,
    initialBackoffMs: sink?.initialBackoff ?? audit?.initialBackoff ?? DEFAULT_DELIVERY.initialBackoffMs,
    maxBackoffMs: sink?.maxBackoff ?? audit?.maxBackoff ?? DEFAULT_DELIVERY.maxBackoffMs,
    batchSize: sink?.batchSize ?? audit?.batchSize ?? DEFAULT_DELIVERY.batchSize,
    timeoutMs: sink?.timeout ?? audit?.timeout ?? DEFAULT_DELIVERY.timeoutMs,
  };
}

/**
 * The wait before attempt `attempts + 1`: exponential from `initialBackoffMs`, capped at
 * `maxBackoffMs`, with "equal jitter" (a random point in the upper half) so that sinks failing
 * together do not retry in lockstep, while the wait still grows.
 */
export function backoffDelay(attempts: number, settings: DeliverySettings, random: () => number): number {
  const exponent = Math.min(Math.max(attempts - 1, 0), 30);
  const ceiling = Math.min(settings.maxBackoffMs, settings.initialBackoffMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** What delivery reports to metrics. */
export interface DeliveryObserver {
  delivered(sink: string, lagSeconds: readonly number[]): void;
  failed(sink: string): void;
  deadLettered(sink: string): void;
}

export interface SinkStatus {
  name: string;
  type: AuditSinkConfig["type"];
  format: string;
  target: string | null;
  state: "idle" | "delivering" | "retrying" | "failing" | "misconfigured" | "starting";
  deliveredSeq: number;
  headSeq: number;
  lagEvents: number;
  lagSeconds: number;
  attempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  lastDeliveredAt: number | null;
  deliveredTotal: number;
  errorTotal: number;
  deadLetters: { dead: number; queued: number; replayed: number };
  filter: NonNullable<AuditSinkConfig["filter"]> | null;
}

interface Runner {
  name: string;
  config: AuditSinkConfig;
  fingerprint: string;
  settings: DeliverySettings;
  filter: (event: AuditEvent) => boolean;
  sink: AuditSink | null;
  setupError: string | null;
  /** Until this seq, deliver one event at a time: a batch failed, and one of its events may be the cause. */
  probeThrough: number;
  /** No attempt before this time (the backoff, kept in memory so pokes during it cost nothing). */
  notBefore: number;
  leaseUntil: number;
  stopped: boolean;
  poked: boolean;
  wakeup: (() => void) | null;
  inFlight: AbortController | null;
  loop: Promise<void>;
}

/** The delivery instances alive in this process, by nonce (see isDeadLocalOwner). */
const LIVE_NONCES = new Set<string>();

/** The lease or the cursor changed under a pass (another process, or a replay): start the pass over. */
class LeaseLost extends Error {}

export interface DeliveryDeps {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  bus: Pick<EventBus, "subscribe">;
  registry: SinkRegistry;
  sinkDeps: SinkDeps;
  related: RelatedLookup;
  /** The sinks and audit-wide delivery settings of the running configuration. */
  config: () => { sinks: readonly AuditSinkConfig[]; delivery: AuditDeliveryConfig | undefined };
  publicUrl: () => string | null;
  log: { error(message: string, fields?: Record<string, unknown>): void };
  observer?: DeliveryObserver;
  random?: () => number;
  pollIntervalMs?: number;
}

/**
 * Delivers the audit chain to every configured sink in the background, each sink on its own loop
 * so a slow or dead one delays nobody: requests and grants only append to the chain, and a
 * commit merely pokes the loops. See NOTES.md ("Delivery") for the design and its guarantees.
 */
export function createAuditDelivery(deps: DeliveryDeps) {
  const { db, clock } = deps;
  const random = deps.random ?? Math.random;
  const pollMs = deps.pollIntervalMs ?? POLL_INTERVAL_MS;
  const nonce = randomBytes(6).toString("hex");
  const owner = `${hostname().slice(0, 40)}/${process.pid}/${nonce}`;
  const runners = new Map<string, Runner>();
  let unsubscribe: (() => void) | null = null;
  let started = false;

  const leaseTtl = (runner: Runner) => Math.max(15_000, runner.settings.timeoutMs * 2 + 5_000);

  /** A lease holder on this host whose process is gone (killed) can be taken over at once. */
  function isDeadLocalOwner(holder: string): boolean {
    const [host, pidText, holderNonce] = holder.split("/");
    const pid = Number(pidText);
    if (host !== hostname().slice(0, 40) || !Number.isInteger(pid) || pid <= 0) return false;
    // Our own pid with a nonce no instance here has is an earlier incarnation (a container
    // restarted as pid 1, say), long gone.
    if (pid === process.pid) return holderNonce !== undefined && !LIVE_NONCES.has(holderNonce);
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === "ESRCH";
    }
  }

  async function holdLease(runner: Runner, now: number): Promise<boolean> {
    const ttl = leaseTtl(runner);
    if (runner.leaseUntil - now > ttl / 2) return true;
    if (await claimLease(db, runner.name, owner, now, now + ttl)) {
      runner.leaseUntil = now + ttl;
      return true;
    }
    const holder = (await readSinkState(db, runner.name))?.leaseOwner;
    if (
      holder &&
      isDeadLocalOwner(holder) &&
      (await claimLease(db, runner.name, owner, now, now + ttl, holder))
    ) {
      runner.leaseUntil = now + ttl;
      return true;
    }
    runner.leaseUntil = 0;
    return false;
  }

  async function toRecords(events: readonly AuditEvent[]): Promise<SinkRecord[]> {
    const publicUrl = deps.publicUrl();
    const records: SinkRecord[] = [];
    for (const event of events) records.push(toSinkRecord(event, await deps.related(event), publicUrl));
    return records;
  }

  async function deliverWithTimeout(runner: Runner, records: readonly SinkRecord[]): Promise<void> {
    const sink = runner.sink as AuditSink;
    const controller = new AbortController();
    runner.inFlight = controller;
    const timer = setTimeout(() => controller.abort(), runner.settings.timeoutMs);
    try {
      await Promise.race([
        sink.deliver(records, controller.signal),
        // A sink that ignores its signal still cannot hold the loop past the timeout.
        new Promise<never>((_, reject) =>
          controller.signal.addEventListener("abort", () => reject(new SinkDeliveryError("timed out")), {
            once: true,
          }),
        ),
      ]);
    } finally {
      clearTimeout(timer);
      runner.inFlight = null;
    }
  }

  async function replayQueued(runner: Runner): Promise<void> {
    const letters = await listDeadLetters(db, runner.name, {
      state: "queued",
      limit: runner.settings.batchSize,
    });
    if (letters.length === 0) return;
    const records = await toRecords(
      await listAuditEventsBySeq(
        db,
        letters.map((letter) => letter.seq),
      ),
    );
    const now = clock.now();
    try {
      await deliverWithTimeout(runner, records);
      await markReplayed(
        db,
        runner.name,
        records.map((record) => record.event.seq),
        now,
      );
      deps.observer?.delivered(runner.name, lags(records, now));
    } catch (error) {
      const failure = toDeliveryError(error);
      const delivered = Math.min(Math.max(failure.delivered, 0), records.length);
      deps.observer?.failed(runner.name);
      await markReplayed(
        db,
        runner.name,
        records.slice(0, delivered).map((record) => record.event.seq),
        now,
      );
      // The rest go back to the dead-letter list: replaying again is the operator's call.
      for (const record of records.slice(delivered))
        await markReplayFailed(db, runner.name, record.event.seq, failure.message, now);
    }
  }

  const lags = (records: readonly SinkRecord[], now: number) =>
    records.map((record) => Math.max(0, (now - Date.parse(record.event.time)) / 1000));

  /** One step of a sink's loop; returns how long to wait (null: until poked or the next poll). */
  async function pass(runner: Runner): Promise<number | null> {
    let now = clock.now();
    if (runner.sink === null) {
      try {
        runner.sink = deps.registry[runner.config.type](runner.config, deps.sinkDeps);
        runner.setupError = null;
      } catch (error) {
        const message =
          error instanceof FirebreakError || error instanceof SinkDeliveryError
            ? error.message
            : "the sink cannot be set up";
        if (message !== runner.setupError)
          deps.log.error("audit sink cannot be set up", { sink: runner.name, error: message });
        runner.setupError = message;
        return SETUP_RETRY_MS;
      }
    }
    if (runner.notBefore > now) return runner.notBefore - now;
    if (!(await holdLease(runner, now))) return pollMs;
    await replayQueued(runner);

    const state = await readSinkState(db, runner.name);
    if (state === null) return pollMs;
    if (state.nextAttemptAt !== null && state.nextAttemptAt > now) {
      runner.notBefore = state.nextAttemptAt;
      return state.nextAttemptAt - now;
    }
    const limit = runner.probeThrough > state.deliveredSeq ? 1 : runner.settings.batchSize;
    const events = await listAuditEvents(db, { afterSeq: state.deliveredSeq, limit });
    if (events.length === 0) return null;
    const lastSeq = (events[events.length - 1] as AuditEvent).seq;
    const records = await toRecords(events.filter(runner.filter));

    if (records.length > 0) {
      try {
        await deliverWithTimeout(runner, records);
      } catch (error) {
        return failure(runner, state, records, toDeliveryError(error));
      }
    }
    now = clock.now();
    const count = records.length;
    const saved = state.failing
      ? await deps
          .inTransaction(async (unit) => {
            if (
              !(await recordDelivered(unit.tx, runner.name, owner, {
                fromSeq: state.deliveredSeq,
                throughSeq: lastSeq,
                count,
                now,
              }))
            )
              throw new LeaseLost();
            await unit.audit({
              type: "audit.sink_recovered",
              actor: "system:audit-delivery",
              context: {
                sink: runner.name,
                kind: runner.config.type,
                target: runner.sink?.target ?? null,
                deliveredThroughSeq: lastSeq,
              },
            });
            return true;
          })
          .catch((error: unknown) => {
            if (error instanceof LeaseLost) return false;
            throw error;
          })
      : await recordDelivered(db, runner.name, owner, {
          fromSeq: state.deliveredSeq,
          throughSeq: lastSeq,
          count,
          now,
        });
    if (!saved) {
      runner.leaseUntil = 0;
      return 0;
    }
    if (count > 0) deps.observer?.delivered(runner.name, lags(records, now));
    return events.length < limit ? null : 0;
  }

  async function failure(
    runner: Runner,
    state: SinkState,
    records: readonly SinkRecord[],
    error: SinkDeliveryError,
  ): Promise<number | null> {
    const now = clock.now();
    const delivered = Math.min(Math.max(error.delivered, 0), records.length - 1);
    const failed = records[delivered] as SinkRecord;
    // Everything before the failed record arrived or was filtered out.
    const throughSeq = failed.event.seq - 1;
    const attempts = (throughSeq > state.deliveredSeq ? 0 : state.attempts) + 1;
    // Until the cursor passes this batch, events go one at a time: the one that failed is retried
    // alone, and if another in the batch is the culprit, it alone ends up in the dead-letter list.
    runner.probeThrough = Math.max(
      runner.probeThrough,
      (records[records.length - 1] as SinkRecord).event.seq,
    );
    deps.observer?.failed(runner.name);

    if (attempts < runner.settings.maxAttempts) {
      const delay = backoffDelay(attempts, runner.settings, random);
      const saved = await recordFailure(db, runner.name, owner, {
        fromSeq: state.deliveredSeq,
        throughSeq,
        delivered,
        attempts,
        nextAttemptAt: now + delay,
        error: error.message,
        failing: state.failing,
        now,
      });
      if (!saved) {
        runner.leaseUntil = 0;
        return 0;
      }
      runner.notBefore = now + delay;
      return delay;
    }

    // Out of attempts: the event goes to the dead-letter list and the cursor moves past it. The
    // alert is raised once per outage (on the first dead letter while the sink was healthy), so
    // the alert events themselves, which also flow to this sink, cannot feed an alert loop.
    try {
      await deps.inTransaction(async (unit) => {
        await insertDeadLetter(unit.tx, {
          sink: runner.name,
          seq: failed.event.seq,
          eventId: failed.event.id,
          attempts,
          lastError: error.message,
          deadAt: now,
        });
        const saved = await recordFailure(unit.tx, runner.name, owner, {
          fromSeq: state.deliveredSeq,
          throughSeq: failed.event.seq,
          delivered,
          attempts: 0,
          nextAttemptAt: null,
          error: error.message,
          failing: true,
          now,
        });
        if (!saved) throw new LeaseLost();
        if (!state.failing) {
          await unit.audit({
            type: "alert.raised",
            actor: "system:audit-delivery",
            context: {
              alert: "audit-sink-failing",
              severity: "high",
              sink: runner.name,
              kind: runner.config.type,
              target: runner.sink?.target ?? null,
              seq: failed.event.seq,
              eventId: failed.event.id,
              eventType: failed.event.type,
              attempts,
              error: error.message,
              message: `audit sink '${runner.name}' gave up on event ${failed.event.seq} after ${attempts} attempts (${error.message}); it is in the dead-letter list and can be replayed with 'firebreak audit sinks --replay ${runner.name}'`,
            },
          });
        }
      });
    } catch (caught) {
      if (caught instanceof LeaseLost) {
        runner.leaseUntil = 0;
        return 0;
      }
      throw caught;
    }
    deps.observer?.deadLettered(runner.name);
    return 0;
  }

  async function run(runner: Runner): Promise<void> {
    while (!runner.stopped) {
      let delay: number | null;
      try {
        delay = await pass(runner);
      } catch (error) {
        deps.log.error("audit delivery pass failed", {
          sink: runner.name,
          error: error instanceof FirebreakError ? error.message : describe(error),
        });
        delay = pollMs;
      }
      if (runner.stopped) break;
      if (delay === 0) {
        // Yield, so a sink with a long backlog shares the event loop with requests.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      await sleep(runner, Math.min(delay ?? pollMs, pollMs));
    }
  }

  function sleep(runner: Runner, ms: number): Promise<void> {
    if (runner.poked) {
      runner.poked = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        runner.wakeup = null;
        runner.poked = false;
        resolve();
      }
      runner.wakeup = done;
    });
  }

  function poke(runner: Runner): void {
    runner.poked = true;
    runner.wakeup?.();
  }

  function fingerprint(config: AuditSinkConfig, settings: DeliverySettings): string {
    return canonicalJson({ config, settings });
  }

  async function startRunner(config: AuditSinkConfig, settings: DeliverySettings): Promise<void> {
    const now = clock.now();
    const startSeq = config.startAt === "newest" ? (await readHead(db)).seq : 0;
    await ensureSinkState(db, config.name, startSeq, now);
    const runner: Runner = {
      name: config.name,
      config,
      fingerprint: fingerprint(config, settings),
      settings,
      filter: createSinkFilter(config.filter),
      sink: null,
      setupError: null,
      probeThrough: 0,
      notBefore: 0,
      leaseUntil: 0,
      stopped: false,
      poked: false,
      wakeup: null,
      inFlight: null,
      loop: Promise.resolve(),
    };
    runners.set(config.name, runner);
    runner.loop = run(runner);
  }

  async function stopRunner(runner: Runner): Promise<void> {
    runner.stopped = true;
    runner.inFlight?.abort();
    runner.wakeup?.();
    await runner.loop;
    runners.delete(runner.name);
    await runner.sink?.close().catch(() => {});
    await releaseLease(db, runner.name, owner).catch(() => {});
  }

  function wanted() {
    const { sinks, delivery } = deps.config();
    return sinks.map((config) => ({ config, settings: deliverySettings(config.delivery, delivery) }));
  }

  function requireSink(name: string): AuditSinkConfig {
    const config = deps.config().sinks.find((sink) => sink.name === name);
    if (!config) throw new FirebreakError("NOT_FOUND", `no audit sink '${name}'`);
    return config;
  }

  return {
    /** The process's lease name, as shown in the sink status. */
    owner,

    /** Creates each sink's cursor if new, starts one loop per sink, and wakes them on every commit. */
    async start(): Promise<void> {
      if (started) return;
      started = true;
      LIVE_NONCES.add(nonce);
      for (const { config, settings } of wanted()) await startRunner(config, settings);
      unsubscribe = deps.bus.subscribe(() => {
        for (const runner of runners.values()) poke(runner);
      });
    },

    /** Applies a changed configuration: sinks added, removed or changed are started, stopped, restarted. */
    async reconfigure(): Promise<void> {
      if (!started) return;
      const next = wanted();
      const names = new Set(next.map((entry) => entry.config.name));
      for (const runner of [...runners.values()]) if (!names.has(runner.name)) await stopRunner(runner);
      for (const { config, settings } of next) {
        const running = runners.get(config.name);
        if (running && running.fingerprint === fingerprint(config, settings)) continue;
        if (running) await stopRunner(running);
        await startRunner(config, settings);
      }
    },

    /** Wakes every sink (after events committed elsewhere, or to retry a failing sink now). */
    poke(): void {
      for (const runner of runners.values()) poke(runner);
    },

    /**
     * Waits until every sink has delivered (or dead-lettered) through the current head, or
     * `timeoutMs` passed; true when caught up. Used at shutdown after the final checkpoint.
     */
    async flush(timeoutMs: number): Promise<boolean> {
      const target = (await readHead(db)).seq;
      // How long shutdown may wait is real time whatever the service's clock says: a test's manual
      // clock stands still, and a wait measured by it would never end.
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const states = new Map((await listSinkStates(db)).map((state) => [state.sink, state]));
        const behind = [...runners.values()].filter(
          (runner) => runner.sink !== null && (states.get(runner.name)?.deliveredSeq ?? 0) < target,
        );
        if (behind.length === 0) return true;
        if (performance.now() >= deadline) return false;
        for (const runner of behind) poke(runner);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },

    /** Stops every loop (aborting deliveries in flight), closes the sinks and releases the leases. */
    async stop(): Promise<void> {
      unsubscribe?.();
      unsubscribe = null;
      started = false;
      await Promise.all([...runners.values()].map(stopRunner));
      LIVE_NONCES.delete(nonce);
    },

    /** Each configured sink: where it stands in the chain, its failures and dead letters. */
    async status(): Promise<SinkStatus[]> {
      const now = clock.now();
      const head = await readHead(db);
      const states = new Map((await listSinkStates(db)).map((state) => [state.sink, state]));
      const dead = await countDeadLetters(db);
      const out: SinkStatus[] = [];
      for (const config of deps.config().sinks) {
        const state = states.get(config.name);
        const runner = runners.get(config.name);
        const deliveredSeq = state?.deliveredSeq ?? 0;
        const lagEvents = Math.max(0, head.seq - deliveredSeq);
        let lagSeconds = 0;
        if (lagEvents > 0) {
          const [oldest] = await listAuditEvents(db, { afterSeq: deliveredSeq, limit: 1 });
          if (oldest) lagSeconds = Math.max(0, (now - Date.parse(oldest.time)) / 1000);
        }
        const attempts = state?.attempts ?? 0;
        out.push({
          name: config.name,
          type: config.type,
          format: config.format ?? (config.type === "syslog" ? "rfc5424" : "json"),
          target: runner?.sink?.target ?? null,
          state: runner?.setupError
            ? "misconfigured"
            : !state
              ? "starting"
              : state.failing
                ? "failing"
                : attempts > 0
                  ? "retrying"
                  : lagEvents > 0
                    ? "delivering"
                    : "idle",
          deliveredSeq,
          headSeq: head.seq,
          lagEvents,
          lagSeconds,
          attempts,
          nextAttemptAt: state?.nextAttemptAt ?? null,
          lastError: runner?.setupError ?? state?.lastError ?? null,
          lastErrorAt: state?.lastErrorAt ?? null,
          lastDeliveredAt: state?.lastDeliveredAt ?? null,
          deliveredTotal: state?.deliveredTotal ?? 0,
          errorTotal: state?.errorTotal ?? 0,
          deadLetters: dead.get(config.name) ?? { dead: 0, queued: 0, replayed: 0 },
          filter: config.filter ?? null,
        });
      }
      return out;
    },

    /** The dead letters of one sink, oldest first. */
    async deadLetters(name: string, state?: DeadLetter["state"]): Promise<DeadLetter[]> {
      requireSink(name);
      return listDeadLetters(db, name, state ? { state } : {});
    },

    /**
     * Queues a sink's dead letters for another delivery and, with `fromSeq`, moves its cursor back
     * so everything from that seq is delivered again. Recorded as `audit.replay_requested`.
     */
    async replay(name: string, actor: string, options: { fromSeq?: number } = {}) {
      requireSink(name);
      const result = await deps.inTransaction(async (unit) => {
        const queued = await queueDeadLetters(unit.tx, name);
        const rewound =
          options.fromSeq === undefined
            ? false
            : await rewindSink(unit.tx, name, options.fromSeq - 1, unit.now);
        await clearBackoff(unit.tx, name, unit.now);
        await unit.audit({
          type: "audit.replay_requested",
          actor,
          context: { sink: name, deadLetters: queued, fromSeq: options.fromSeq ?? null, rewound },
        });
        return { queued, rewoundTo: rewound ? (options.fromSeq as number) - 1 : null };
      });
      const runner = runners.get(name);
      if (runner) {
        runner.notBefore = 0;
        poke(runner);
      }
      return result;
    },
  };
}

export type AuditDelivery = ReturnType<typeof createAuditDelivery>;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

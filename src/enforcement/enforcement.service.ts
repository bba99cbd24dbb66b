import type { AgentReport } from "../api/enforcement.schema.js";
import type { FirebreakConfig } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import {
  buildNetworkState,
  type NetworkState,
  pathsForGrant,
  standingState,
} from "../segmentation/network-state.js";
import type { Clock } from "../shared/clock.js";
import type { EventBus } from "../shared/events.js";
import { type AgentRecord, listAgents, listOpenPaths, saveAgent, touchAgent } from "./enforcement.repo.js";

/**
 * The server's side of network enforcement. It publishes the desired network state (standing
 * flows plus one path per active grant) for agents to follow, records what each agent reports
 * having applied, and answers the question a grant's close needs answered before revocation counts
 * as verified: has every agent that could still hold this path dropped it? See NOTES.md.
 */

export type { AgentReport };

export interface AgentView {
  name: string;
  enforcer: string;
  status: AgentRecord["status"];
  inContact: boolean;
  lastSeenAt: number;
  graceMs: number;
  appliedDigest: string | null;
  appliedAt: number | null;
  current: boolean;
  openGrants: number | null;
  report: Record<string, unknown>;
}

interface LiveAgent {
  record: AgentRecord;
  /** Long-polls in flight: an agent waiting on us is in contact even between answers. */
  polling: number;
  /** Grants whose paths it holds open, or null when that cannot be known (a state we no longer remember). */
  open: ReadonlySet<string> | null;
}

/** Extra time beyond an agent's grace before the server counts it as failed closed. */
const SILENCE_SLACK_MS = 2_000;
const REMEMBERED_STATES = 256;
const MAX_LIST_IN_AUDIT = 50;

export function createEnforcementService(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  bus: Pick<EventBus, "subscribe">;
  config: () => FirebreakConfig;
  onError?: (error: unknown) => void;
}) {
  const onError = deps.onError ?? (() => {});
  let generation = 0;
  let cache: { state: NetworkState; generation: number; validUntil: number } | null = null;
  let inflight: { promise: Promise<NetworkState>; generation: number } | null = null;
  let published: string | null = null;
  const waiters = new Set<{ after: string | null; resolve: (state: NetworkState | null) => void }>();
  const remembered = new Map<string, ReadonlySet<string>>();
  const agents = new Map<string, LiveAgent>();
  const confirmations = new Set<() => void>();
  let expiryTimer: NodeJS.Timeout | null = null;
  /** Zones and flows of the running configuration, derived once per configuration. */
  let standingMemo: { config: FirebreakConfig; standing: ReturnType<typeof standingState> } | null = null;
  let unsubscribe: (() => void) | null = null;

  async function compute(): Promise<NetworkState> {
    const config = deps.config();
    const now = deps.clock.now();
    const rows = await listOpenPaths(deps.db, now);
    const paths = rows.flatMap((row) =>
      pathsForGrant(
        config,
        {
          id: row.grantId,
          user: row.user,
          zone: row.zone,
          resource: row.resource,
          sourceZone: row.sourceZone,
          clientAddress: row.clientAddress,
          endsAt: row.endsAt,
        },
        [row.resource],
      ),
    );
    if (standingMemo?.config !== config) standingMemo = { config, standing: standingState(config) };
    const state = buildNetworkState(standingMemo.standing, paths, now);
    remembered.delete(state.digest);
    remembered.set(state.digest, new Set(state.paths.map((p) => p.grantId)));
    while (remembered.size > REMEMBERED_STATES) remembered.delete(remembered.keys().next().value as string);
    return state;
  }

  /** The desired state now: cached until something changes or one of its paths ends. */
  async function desired(): Promise<NetworkState> {
    for (;;) {
      const wanted = generation;
      if (cache && cache.generation === wanted && deps.clock.now() < cache.validUntil) return cache.state;
      if (!inflight || inflight.generation !== wanted) {
        const promise = compute();
        const entry = { promise, generation: wanted };
        inflight = entry;
        promise
          .then((state) => {
            if (generation !== wanted) return;
            const nextEnd = Math.min(...state.paths.map((p) => p.endsAt));
            cache = {
              state,
              generation: wanted,
              validUntil: Number.isFinite(nextEnd) ? nextEnd : Number.MAX_SAFE_INTEGER,
            };
            scheduleExpiry(nextEnd);
          })
          .catch(() => {})
          .finally(() => {
            if (inflight === entry) inflight = null;
          });
      }
      const state = await (inflight as { promise: Promise<NetworkState> }).promise;
      if (generation === wanted) return state;
    }
  }

  function scheduleExpiry(nextEnd: number) {
    if (expiryTimer) clearTimeout(expiryTimer);
    expiryTimer = null;
    if (!Number.isFinite(nextEnd) || unsubscribe === null) return;
    // Paths leave the state when they end even before the scheduler closes their grant.
    const delay = Math.min(Math.max(nextEnd - deps.clock.now(), 0) + 5, 60_000);
    expiryTimer = setTimeout(() => changed(), delay);
    expiryTimer.unref();
  }

  async function publish() {
    const state = await desired();
    if (state.digest === published) return;
    published = state.digest;
    for (const waiter of [...waiters]) {
      if (waiter.after === state.digest) continue;
      waiters.delete(waiter);
      waiter.resolve(state);
    }
  }

  /** Something that shapes the desired state changed: recompute and wake the agents waiting on it. */
  function changed() {
    generation++;
    publish().catch(onError);
  }

  function heldOpen(agent: LiveAgent): ReadonlySet<string> | null {
    return agent.open;
  }

  function silentFor(agent: LiveAgent, now: number): boolean {
    return agent.polling === 0 && now - agent.record.lastSeenAt > agent.record.graceMs + SILENCE_SLACK_MS;
  }

  function openSetOf(record: AgentRecord, notOpen: readonly string[]): ReadonlySet<string> | null {
    if (record.status === "failed-closed") return new Set();
    if (!record.appliedDigest) return record.status === "connected" ? new Set() : null;
    const granted = remembered.get(record.appliedDigest);
    if (!granted) return null;
    const skipped = new Set(notOpen);
    return new Set([...granted].filter((id) => !skipped.has(id)));
  }

  function wakeConfirmations() {
    for (const check of [...confirmations]) check();
  }

  /**
   * Waits until `done()` lists no pending agent, re-checking on every report and every quarter
   * second (agents fall silent with time); gives up after `timeoutMs`.
   */
  function waitFor(evaluate: () => { confirmed: string[]; pending: string[] }, timeoutMs: number) {
    return new Promise<{ confirmed: string[]; pending: string[] }>((resolve) => {
      let finished = false;
      const finish = () => {
        finished = true;
        confirmations.delete(check);
        clearInterval(tick);
        clearTimeout(limit);
      };
      const check = () => {
        if (finished) return;
        const result = evaluate();
        if (result.pending.length === 0) {
          finish();
          resolve(result);
        }
      };
      const tick = setInterval(check, 250);
      const limit = setTimeout(() => {
        if (finished) return;
        finish();
        resolve(evaluate());
      }, timeoutMs);
      confirmations.add(check);
      check();
    });
  }

  return {
    desired,
    changed,

    /** Resolves with the state when its digest differs from `after`, or with null after `timeoutMs`. */
    async waitForChange(after: string | null, timeoutMs: number, signal?: AbortSignal) {
      const state = await desired();
      if (state.digest !== after || timeoutMs <= 0) return state.digest !== after ? state : null;
      return new Promise<NetworkState | null>((resolve) => {
        const waiter = {
          after,
          resolve: (value: NetworkState | null) => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", abort);
            resolve(value);
          },
        };
        const abort = () => {
          waiters.delete(waiter);
          waiter.resolve(null);
        };
        const timer = setTimeout(abort, timeoutMs);
        signal?.addEventListener("abort", abort, { once: true });
        waiters.add(waiter);
      });
    },

    /** An agent started a long-poll: it is in contact until the returned function is called. */
    async polling(name: string, enforcer: string, graceMs: number): Promise<() => void> {
      const now = deps.clock.now();
      let agent = agents.get(name);
      if (!agent) {
        const record: AgentRecord = {
          name,
          enforcer,
          firstSeenAt: now,
          lastSeenAt: now,
          graceMs,
          status: "connected",
          appliedDigest: null,
          appliedAt: null,
          report: {},
        };
        agent = { record, polling: 0, open: new Set() };
        agents.set(name, agent);
        await saveAgent(deps.db, record);
      } else {
        agent.record = { ...agent.record, lastSeenAt: now, graceMs };
        await touchAgent(deps.db, name, now);
      }
      const live = agent;
      live.polling++;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        live.polling--;
        live.record = { ...live.record, lastSeenAt: deps.clock.now() };
      };
    },

    /** Records what an agent applied; audits what changed, drift and failing closed. */
    async report(actor: string, report: AgentReport) {
      const now = deps.clock.now();
      const previous = agents.get(report.agent);
      const record: AgentRecord = {
        name: report.agent,
        enforcer: report.enforcer,
        firstSeenAt: previous?.record.firstSeenAt ?? now,
        lastSeenAt: now,
        graceMs: report.graceMs,
        status: report.status,
        appliedDigest: report.status === "error" ? (previous?.record.appliedDigest ?? null) : report.digest,
        appliedAt: report.status === "error" ? (previous?.record.appliedAt ?? null) : now,
        report: {
          mode: report.mode,
          notOpen: report.notOpen,
          skipped: report.skipped,
          drift: report.drift,
          error: report.error,
          durationMs: report.durationMs,
          where: report.where,
        },
      };
      const changedDigest = previous?.record.appliedDigest !== record.appliedDigest;
      const changedStatus = previous?.record.status !== record.status;
      const drifted = report.drift.removed.length > 0 || report.drift.restored.length > 0;
      await deps.inTransaction(async (unit) => {
        await saveAgent(unit.tx, record);
        const context = {
          agent: report.agent,
          enforcer: report.enforcer,
          where: report.where,
          reportedBy: actor,
        };
        if (report.status === "applied" && (changedDigest || changedStatus)) {
          await unit.audit({
            type: "enforcement.applied",
            actor: `agent:${report.agent}`,
            context: {
              ...context,
              digest: report.digest,
              mode: report.mode,
              openPaths: (remembered.get(report.digest ?? "")?.size ?? 0) - report.notOpen.length,
              notOpen: report.notOpen.slice(0, MAX_LIST_IN_AUDIT),
              skipped: report.skipped.slice(0, MAX_LIST_IN_AUDIT),
              durationMs: Math.round(report.durationMs),
            },
          });
        }
        if (report.status === "failed-closed" && changedStatus) {
          await unit.audit({
            type: "alert.raised",
            actor: `agent:${report.agent}`,
            context: {
              ...context,
              alert: "agent-failed-closed",
              severity: "high",
              message: `agent ${report.agent} lost the server for longer than its grace and dropped every grant path`,
            },
          });
        }
        if (report.status === "error" && (changedStatus || report.error !== previous?.record.report.error)) {
          await unit.audit({
            type: "alert.raised",
            actor: `agent:${report.agent}`,
            context: {
              ...context,
              alert: "enforcement-failed",
              severity: "high",
              message: report.error ?? "",
            },
          });
        }
        if (drifted) {
          await unit.audit({
            type: "alert.raised",
            actor: `agent:${report.agent}`,
            context: {
              ...context,
              alert: "enforcement-drift",
              severity: "high",
              message: `rules changed by hand in Firebreak's table were undone (${report.drift.removed.length} removed, ${report.drift.restored.length} restored)`,
              removed: report.drift.removed.slice(0, MAX_LIST_IN_AUDIT),
              restored: report.drift.restored.slice(0, MAX_LIST_IN_AUDIT),
            },
          });
        }
      });
      const open = report.status === "error" && previous ? previous.open : openSetOf(record, report.notOpen);
      agents.set(report.agent, { record, polling: previous?.polling ?? 0, open });
      wakeConfirmations();
    },

    agents(): AgentView[] {
      const now = deps.clock.now();
      return [...agents.values()].map((agent) => ({
        name: agent.record.name,
        enforcer: agent.record.enforcer,
        status: agent.record.status,
        inContact: !silentFor(agent, now),
        lastSeenAt: agent.record.lastSeenAt,
        graceMs: agent.record.graceMs,
        appliedDigest: agent.record.appliedDigest,
        appliedAt: agent.record.appliedAt,
        current: agent.record.appliedDigest !== null && agent.record.appliedDigest === cache?.state.digest,
        openGrants: agent.open?.size ?? null,
        report: agent.record.report,
      }));
    },

    /** Waits until every agent in contact holds the grant's path open (bounded; never an error). */
    waitOpen(grantId: string, timeoutMs: number) {
      return waitFor(() => {
        const now = deps.clock.now();
        const confirmed: string[] = [];
        const pending: string[] = [];
        for (const agent of agents.values()) {
          if (agent.record.status === "failed-closed" || silentFor(agent, now)) continue;
          (heldOpen(agent)?.has(grantId) ? confirmed : pending).push(agent.record.name);
        }
        return { confirmed, pending };
      }, timeoutMs);
    },

    /**
     * Waits until no agent can still hold the grant's path: each has reported a state without it,
     * has failed closed, or has been silent for longer than its grace (it then fails closed itself).
     */
    waitClosed(grantId: string, timeoutMs: number) {
      return waitFor(() => {
        const now = deps.clock.now();
        const confirmed: string[] = [];
        const pending: string[] = [];
        for (const agent of agents.values()) {
          const open = heldOpen(agent);
          const gone =
            agent.record.status === "failed-closed" ||
            silentFor(agent, now) ||
            (open !== null && !open.has(grantId));
          (gone ? confirmed : pending).push(agent.record.name);
        }
        return { confirmed, pending };
      }, timeoutMs);
    },

    /** Loads known agents and follows committed events that change the desired state. */
    async start() {
      for (const record of await listAgents(deps.db)) {
        if (!agents.has(record.name))
          agents.set(record.name, { record, polling: 0, open: openSetOf(record, []) });
      }
      unsubscribe = deps.bus.subscribe((event) => {
        if (/^(grant\.|flow\.|config\.applied$)/.test(event.type)) changed();
      });
      changed();
    },

    stop() {
      unsubscribe?.();
      unsubscribe = null;
      if (expiryTimer) clearTimeout(expiryTimer);
      for (const waiter of [...waiters]) {
        waiters.delete(waiter);
        waiter.resolve(null);
      }
      wakeConfirmations();
    },
  };
}
export type EnforcementService = ReturnType<typeof createEnforcementService>;

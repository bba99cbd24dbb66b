import type { AgentReport } from "../api/enforcement.schema.js";
import type { ApplyOptions, ApplyResult, Drift } from "../enforcers/nftables/nftables.enforcer.js";
import type { NetworkState } from "../segmentation/network-state.js";

/**
 * The enforcement agent: follows the server's desired network state, applies it through an
 * enforcer, reports what it applied, and fails closed. The same loop runs in `firebreak agent`
 * (state over HTTP) and inside `firebreak serve --enforcer nftables` (state in process).
 *
 * Time: grant ends are server times. The agent keeps the offset between the server's clock (sent
 * with every answer) and its own monotonic clock, so a wrong wall clock on either side cannot
 * stretch a grant. Invariants are written down in NOTES.md.
 */

export interface StateSource {
  /** Waits up to `waitSeconds` for a state whose digest differs from `after`; `state` is null if none came. */
  poll(
    after: string | null,
    waitSeconds: number,
    signal: AbortSignal,
  ): Promise<{ serverTime: number; state: NetworkState | null }>;
  report(report: AgentReport): Promise<void>;
}

export interface PathEnforcer {
  readonly where: string;
  apply(state: Pick<NetworkState, "zones" | "flows" | "paths">, options: ApplyOptions): Promise<ApplyResult>;
  check(): Promise<Drift>;
}

export interface AgentLog {
  info(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface AgentStatus {
  digest: string | null;
  failedClosed: boolean;
  openGrants: readonly string[];
  lastContactAgoMs: number | null;
  lastError: string | null;
  applies: number;
}

const MAX_BACKOFF_MS = 5_000;
const MAX_UNDELIVERED = 10;

export function createAgent(deps: {
  name: string;
  enforcerKind: string;
  source: StateSource;
  enforcer: PathEnforcer;
  /** How long without the server before grant paths are dropped (standing flows stay). */
  graceMs: number;
  /** How often the loaded rules are compared with what was loaded (hand edits undone, reported). */
  driftCheckMs: number;
  log: AgentLog;
  /** Monotonic milliseconds (default: performance.now). */
  monotonic?: () => number;
  /** Called after every apply, for tests and the benchmark. */
  onApplied?: (result: ApplyResult, failedClosed: boolean) => void;
}) {
  const monotonic = deps.monotonic ?? (() => performance.now());
  // A long-poll must return well inside the grace, or waiting itself would look like silence.
  const pollWaitSeconds = Math.max(1, Math.min(25, Math.floor(deps.graceMs / 3000)));
  let current: NetworkState | null = null;
  /** server time = monotonic() + offset. */
  let offset: number | null = null;
  let lastContact: number | null = null;
  let failedClosed = false;
  let lastError: string | null = null;
  let openGrants: readonly string[] = [];
  let applies = 0;
  let reported: string | null = null;
  const undelivered: AgentReport[] = [];
  let expiryTimer: NodeJS.Timeout | null = null;
  let retryTimer: NodeJS.Timeout | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  let stopped = false;

  const serverNow = () => monotonic() + (offset ?? 0);

  function serialised(work: () => Promise<void>): Promise<void> {
    const next = chain.then(work, work);
    chain = next.catch(() => {});
    return next;
  }

  /**
   * Reports are delivered in order, and one that could not be sent waits for the next chance: the
   * server must learn that the agent failed closed even though it can only be told afterwards.
   */
  async function sendReport(report: AgentReport) {
    const last = undelivered.at(-1);
    if (last && last.status === report.status && last.digest === report.digest) undelivered.pop();
    undelivered.push(report);
    if (undelivered.length > MAX_UNDELIVERED) undelivered.splice(0, undelivered.length - MAX_UNDELIVERED);
    try {
      while (undelivered.length > 0) {
        const next = undelivered[0] as AgentReport;
        await deps.source.report(next);
        undelivered.shift();
        reported = `${next.status}|${next.digest}`;
      }
    } catch (error) {
      deps.log.error("could not report to the server; will retry", { error: messageOf(error) });
    }
  }

  function scheduleExpiry(result: ApplyResult) {
    if (expiryTimer) clearTimeout(expiryTimer);
    expiryTimer = null;
    const next = Math.min(...result.grantElements.map((e) => e.endsAt));
    if (!Number.isFinite(next) || stopped) return;
    // The agent drops each path at its grant's end on its own clock (the kernel's timeout, in whole
    // seconds, is the backstop); it does not wait for the server to say the grant expired.
    expiryTimer = setTimeout(() => void apply({ reason: "expiry" }), Math.max(0, next - serverNow()));
    expiryTimer.unref();
  }

  async function apply(options: { reason: string; checkDrift?: boolean }): Promise<void> {
    return serialised(async () => {
      if (!current || stopped) return;
      const state = current;
      try {
        const result = await deps.enforcer.apply(state, {
          now: serverNow(),
          withoutGrants: failedClosed,
          checkDrift: options.checkDrift ?? false,
        });
        applies++;
        lastError = null;
        openGrants = result.openGrants;
        scheduleExpiry(result);
        deps.onApplied?.(result, failedClosed);
        const drifted = result.drift.removed.length > 0 || result.drift.restored.length > 0;
        if (drifted) deps.log.error("hand edits in the table were undone", { ...result.drift });
        const status = failedClosed ? "failed-closed" : "applied";
        const open = new Set(result.openGrants);
        const notOpen = [...new Set(state.paths.map((p) => p.grantId))].filter((id) => !open.has(id));
        const report: AgentReport = {
          agent: deps.name,
          enforcer: deps.enforcerKind,
          status,
          digest: state.digest,
          graceMs: deps.graceMs,
          mode: result.mode,
          notOpen,
          skipped: result.skipped.slice(0, 100),
          drift: {
            removed: result.drift.removed.slice(0, 200),
            restored: result.drift.restored.slice(0, 200),
          },
          error: null,
          durationMs: result.durationMs,
          where: deps.enforcer.where,
        };
        if (
          result.mode !== "unchanged" ||
          drifted ||
          reported !== `${status}|${state.digest}` ||
          undelivered.length > 0
        )
          await sendReport(report);
      } catch (error) {
        lastError = messageOf(error);
        deps.log.error("applying the desired state failed; retrying", {
          error: lastError,
          reason: options.reason,
        });
        await sendReport({
          agent: deps.name,
          enforcer: deps.enforcerKind,
          status: "error",
          digest: state.digest,
          graceMs: deps.graceMs,
          mode: null,
          notOpen: [],
          skipped: [],
          drift: { removed: [], restored: [] },
          error: lastError.slice(0, 1000),
          durationMs: 0,
          where: deps.enforcer.where,
        });
        if (retryTimer) clearTimeout(retryTimer);
        retryTimer = setTimeout(() => void apply({ reason: "retry" }), 2_000);
        retryTimer.unref();
      }
    });
  }

  let checking = false;
  /** Lists the table without holding up applies; re-applies (and reports) only when it drifted. */
  async function checkDrift() {
    if (checking || !current || stopped) return;
    checking = true;
    try {
      const drift = await deps.enforcer.check();
      if (drift.removed.length > 0 || drift.restored.length > 0)
        await apply({ reason: "drift", checkDrift: true });
    } catch (error) {
      deps.log.error("checking the loaded rules failed", { error: messageOf(error) });
    } finally {
      checking = false;
    }
  }

  function watchGrace() {
    if (stopped || failedClosed || lastContact === null) return;
    if (monotonic() - lastContact <= deps.graceMs) return;
    failedClosed = true;
    deps.log.error("lost the server for longer than the grace: dropping every grant path", {
      graceMs: deps.graceMs,
    });
    void apply({ reason: "fail-closed" });
  }

  return {
    /** Follows the server until `signal` aborts. */
    async run(signal: AbortSignal): Promise<void> {
      const graceTimer = setInterval(watchGrace, Math.min(250, Math.max(50, deps.graceMs / 10)));
      const driftTimer = setInterval(() => void checkDrift(), deps.driftCheckMs);
      let backoff = 250;
      try {
        while (!signal.aborted) {
          const attempt = new AbortController();
          const abort = () => attempt.abort();
          signal.addEventListener("abort", abort, { once: true });
          const limit = setTimeout(abort, (pollWaitSeconds + 10) * 1000);
          try {
            const answer = await deps.source.poll(current?.digest ?? null, pollWaitSeconds, attempt.signal);
            const received = monotonic();
            // The server stamps its time as it answers; the one-way delay (milliseconds) is ignored.
            offset = answer.serverTime - received;
            lastContact = received;
            backoff = 250;
            const recovered = failedClosed;
            failedClosed = false;
            if (recovered) deps.log.info("the server is back: grant paths follow the desired state again");
            if (answer.state) current = answer.state;
            if (answer.state || recovered || undelivered.length > 0)
              await apply({ reason: recovered ? "recovered" : "state" });
          } catch (error) {
            if (signal.aborted) break;
            lastError = messageOf(error);
            deps.log.error("cannot reach the server", { error: lastError, retryInMs: backoff });
            await new Promise((resolve) => setTimeout(resolve, backoff));
            backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
          } finally {
            clearTimeout(limit);
            signal.removeEventListener("abort", abort);
          }
        }
      } finally {
        stopped = true;
        clearInterval(graceTimer);
        clearInterval(driftTimer);
        if (expiryTimer) clearTimeout(expiryTimer);
        if (retryTimer) clearTimeout(retryTimer);
        await chain;
      }
    },

    status(): AgentStatus {
      return {
        digest: current?.digest ?? null,
        failedClosed,
        openGrants,
        lastContactAgoMs: lastContact === null ? null : monotonic() - lastContact,
        lastError,
        applies,
      };
    },
  };
}
export type Agent = ReturnType<typeof createAgent>;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

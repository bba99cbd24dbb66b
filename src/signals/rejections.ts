import type { SignalSourceKind } from "../plugins/contracts.js";

/** Why a delivery was refused: a wrong token or signature, a timestamp outside the window, a replay. */
export type RejectionReason = "bad-credentials" | "stale" | "replayed";

/** Refused deliveries from one sender are summed over this long into one audit event. */
export const REJECTION_INTERVAL_MS = 60_000;
/** Refusals per sender and interval answered as themselves; beyond that, 429 RATE_LIMITED. */
export const REJECTIONS_PER_INTERVAL = 10;
/** Senders tracked at once; beyond that, further addresses share one summary per source. */
export const MAX_TRACKED_SENDERS = 10_000;

/** What one sender (source and client address) had refused during one interval. */
export interface RejectionSummary {
  source: SignalSourceKind;
  /** Null for the summary shared by addresses beyond `MAX_TRACKED_SENDERS`. */
  clientAddress: string | null;
  firstAt: number;
  lastAt: number;
  count: number;
  reasons: Partial<Record<RejectionReason, number>>;
  /** How many of `count` were answered 429 instead of their own refusal. */
  rateLimited: number;
}

interface OpenWindow extends RejectionSummary {
  endsAt: number;
}

/**
 * Counts refused signal deliveries per sender in memory, so a flood of bad requests costs neither
 * an audit event nor a database write each: the caller takes the summaries of ended intervals and
 * writes one event per sender and interval. An interval starts at a sender's first refusal.
 */
export function createRejectionTracker(
  options: { intervalMs?: number; limit?: number; maxTracked?: number } = {},
) {
  const intervalMs = options.intervalMs ?? REJECTION_INTERVAL_MS;
  const limit = options.limit ?? REJECTIONS_PER_INTERVAL;
  const maxTracked = options.maxTracked ?? MAX_TRACKED_SENDERS;
  const open = new Map<string, OpenWindow>();
  let closed: RejectionSummary[] = [];

  function summary(window: OpenWindow): RejectionSummary {
    const { endsAt: _endsAt, ...rest } = window;
    return rest;
  }

  /** Ended summaries wait here for the next `take`; bounded like the open ones. */
  function close(window: RejectionSummary) {
    if (closed.length < maxTracked) {
      closed.push(window);
      return;
    }
    const shared = closed.find((c) => c.source === window.source && c.clientAddress === null);
    if (!shared) {
      closed.push({ ...window, clientAddress: null });
      return;
    }
    shared.firstAt = Math.min(shared.firstAt, window.firstAt);
    shared.lastAt = Math.max(shared.lastAt, window.lastAt);
    shared.count += window.count;
    shared.rateLimited += window.rateLimited;
    for (const [reason, n] of Object.entries(window.reasons) as [RejectionReason, number][])
      shared.reasons[reason] = (shared.reasons[reason] ?? 0) + n;
  }

  /** The sender's current window, a new one when its last has ended. */
  function windowOf(key: string, source: SignalSourceKind, clientAddress: string | null, now: number) {
    const current = open.get(key);
    if (current && now < current.endsAt) return current;
    if (current) {
      open.delete(key);
      close(summary(current));
    }
    const started: OpenWindow = {
      source,
      clientAddress,
      firstAt: now,
      lastAt: now,
      count: 0,
      reasons: {},
      rateLimited: 0,
      endsAt: now + intervalMs,
    };
    open.set(key, started);
    return started;
  }

  return {
    /**
     * Counts one refusal. `limited` says the sender is over its allowance for this interval and is
     * to be answered 429; `retryAfterMs` is when its interval ends.
     */
    note(
      source: SignalSourceKind,
      clientAddress: string | null,
      reason: RejectionReason,
      now: number,
    ): { limited: boolean; retryAfterMs: number } {
      const own = `${source} ${clientAddress ?? ""}`;
      const tracked = open.has(own) || open.size + closed.length < maxTracked;
      const window = tracked
        ? windowOf(own, source, clientAddress, now)
        : windowOf(`${source} *`, source, null, now);
      window.count++;
      window.lastAt = now;
      window.reasons[reason] = (window.reasons[reason] ?? 0) + 1;
      const limited = window.count > limit;
      if (limited) window.rateLimited++;
      return { limited, retryAfterMs: Math.max(0, window.endsAt - now) };
    },

    /** Summaries of intervals ended by `now` (every interval when `all`), removed from the tracker. */
    take(now: number, all = false): RejectionSummary[] {
      for (const [key, window] of open) {
        if (!all && now < window.endsAt) continue;
        open.delete(key);
        close(summary(window));
      }
      const taken = closed;
      closed = [];
      return taken;
    },

    /** Puts back summaries that could not be written, so the next `take` returns them again. */
    restore(summaries: readonly RejectionSummary[]) {
      closed = [...summaries, ...closed];
    },
  };
}
export type RejectionTracker = ReturnType<typeof createRejectionTracker>;

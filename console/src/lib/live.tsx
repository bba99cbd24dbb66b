import { createContext, type ReactNode, useContext, useEffect, useMemo, useRef, useState } from "react";
import { followEvents, type StreamStatus } from "../api/events";
import type { AuditEvent } from "../api/types";
import { useSignedIn } from "../auth/session";

/**
 * One live connection per tab. Administrators and auditors follow `/v1/events` (every committed
 * audit event); everyone else, whom the server does not let read the whole audit stream, gets the
 * same views refreshed by polling.
 */

type Listener = (event: AuditEvent) => void;

interface Live {
  status: StreamStatus | "polling";
  subscribe(listener: Listener): () => void;
}

const LiveContext = createContext<Live | null>(null);

export function LiveProvider({ children }: { children: ReactNode }) {
  const { principal, api } = useSignedIn();
  const canFollow = principal.isAdmin || principal.isAuditor;
  const [status, setStatus] = useState<Live["status"]>(canFollow ? "connecting" : "polling");
  const listeners = useRef(new Set<Listener>());

  useEffect(() => {
    if (!canFollow) {
      setStatus("polling");
      return;
    }
    return followEvents({
      token: api.token(),
      onEvent: (event) => {
        for (const listener of listeners.current) listener(event);
      },
      onStatus: (next) => setStatus(next === "forbidden" ? "polling" : next),
    });
  }, [canFollow, api]);

  const value = useMemo<Live>(
    () => ({
      status,
      subscribe(listener) {
        listeners.current.add(listener);
        return () => {
          listeners.current.delete(listener);
        };
      },
    }),
    [status],
  );
  return <LiveContext.Provider value={value}>{children}</LiveContext.Provider>;
}

export function useLiveStatus(): Live["status"] {
  const live = useContext(LiveContext);
  return live?.status ?? "polling";
}

/**
 * Calls `onChange(event)` for each live event whose type `matches`, or `onChange(null)` every
 * `pollMs` while there is no live stream (and once when the stream comes back, to catch up).
 */
export function useLiveUpdates(
  matches: (event: AuditEvent) => boolean,
  onChange: (event: AuditEvent | null) => void,
  pollMs = 5000,
) {
  const live = useContext(LiveContext);
  const latest = useRef({ matches, onChange });
  latest.current = { matches, onChange };
  const status = live?.status ?? "polling";
  const isLive = status === "live";

  useEffect(() => {
    if (!live) return;
    return live.subscribe((event) => {
      if (latest.current.matches(event)) latest.current.onChange(event);
    });
  }, [live]);

  // Whatever committed before the stream was (re)established is picked up by one refresh.
  const previous = useRef(status);
  useEffect(() => {
    if (isLive && previous.current !== "live") latest.current.onChange(null);
    previous.current = status;
  }, [isLive, status]);

  useEffect(() => {
    if (isLive) return;
    const timer = setInterval(() => latest.current.onChange(null), pollMs);
    return () => clearInterval(timer);
  }, [isLive, pollMs]);
}

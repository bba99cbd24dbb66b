import { createContext, type ReactNode, useContext, useEffect, useMemo, useRef, useState } from "react";
import { followEvents, type StreamStatus } from "../api/events";
import type { AuditEvent } from "../api/types";
import { useSignedIn } from "../auth/session";

/**
 * One live connection per tab, for everyone: `/v1/events` streams each viewer the events the REST
 * API would show them (everything to administrators and auditors; their own requests and grants,
 * and those they may approve or review, to others). While the stream is down, and for good when
 * the server refuses it, the same views refresh by polling instead.
 */

type Listener = (event: AuditEvent) => void;

interface Live {
  status: StreamStatus | "polling";
  subscribe(listener: Listener): () => void;
}

const LiveContext = createContext<Live | null>(null);

/** How long to wait before following again after a refusal the API did not confirm. */
const REFUSED_RETRY_MS = 30_000;

export function LiveProvider({ children }: { children: ReactNode }) {
  const { api } = useSignedIn();
  const [status, setStatus] = useState<Live["status"]>("connecting");
  const [attempt, setAttempt] = useState(0);
  const listeners = useRef(new Set<Listener>());

  // biome-ignore lint/correctness/useExhaustiveDependencies: a new attempt is a reason to follow again
  useEffect(() => {
    let retry: ReturnType<typeof setTimeout> | null = null;
    const stop = followEvents({
      token: api.token(),
      onEvent: (event) => {
        for (const listener of listeners.current) listener(event);
      },
      onStatus: (next) => {
        if (next === "unauthenticated") {
          // The server closes a stream when its credential ends and refuses the reconnect. An API
          // call settles it: a 401 there signs the console out (the API client's rule); a
          // credential that still works only lost its stream, which is tried again later.
          setStatus("polling");
          api
            .get("/v1/whoami")
            .then(() => {
              retry = setTimeout(() => setAttempt((n) => n + 1), REFUSED_RETRY_MS);
            })
            .catch(() => {});
          return;
        }
        setStatus(next === "forbidden" ? "polling" : next);
      },
    });
    return () => {
      if (retry) clearTimeout(retry);
      stop();
    };
  }, [api, attempt]);

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
 * `pollWhileLive` keeps polling with the stream up, for changes the viewer's stream does not carry
 * (incidents and configuration reach only administrators and auditors live).
 */
export function useLiveUpdates(
  matches: (event: AuditEvent) => boolean,
  onChange: (event: AuditEvent | null) => void,
  pollMs = 5000,
  options: { pollWhileLive?: boolean } = {},
) {
  const live = useContext(LiveContext);
  const latest = useRef({ matches, onChange });
  latest.current = { matches, onChange };
  const status = live?.status ?? "polling";
  const isLive = status === "live";
  const polls = !isLive || options.pollWhileLive === true;

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
    if (!polls) return;
    const timer = setInterval(() => latest.current.onChange(null), pollMs);
    return () => clearInterval(timer);
  }, [polls, pollMs]);
}

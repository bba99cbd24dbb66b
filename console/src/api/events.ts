import type { AuditEvent } from "./types";

/**
 * `unauthenticated`: the server no longer accepts the credential (it closes a stream when the
 * credential ends, and the reconnect is refused); `forbidden`: it does not stream to this caller.
 * Both stop the stream for good; the views poll instead.
 */
export type StreamStatus =
  | "connecting"
  | "live"
  | "reconnecting"
  | "unauthenticated"
  | "forbidden"
  | "closed";

/** No byte for this long (the server sends a keep-alive every 15 s) means the connection is dead. */
const SILENCE_LIMIT_MS = 45_000;
const MAX_BACKOFF_MS = 30_000;

/**
 * Follows `/v1/events` (server-sent events of the committed audit events the caller may see) with
 * fetch rather than EventSource, because EventSource cannot send an Authorization header: the
 * token stays in a header, never in a URL where logs, history or a Referer would keep it.
 * Reconnects with backoff when the stream ends or fails and resumes from the last event id, as
 * EventSource would.
 */
export function followEvents(options: {
  token: string | null;
  onEvent: (event: AuditEvent) => void;
  onStatus: (status: StreamStatus) => void;
}): () => void {
  let closed = false;
  let lastId: string | null = null;
  let controller: AbortController | null = null;
  let backoff = 1000;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;

  async function connect() {
    if (closed) return;
    controller = new AbortController();
    const current = controller;
    let watchdog: ReturnType<typeof setTimeout> | null = null;
    const resetWatchdog = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(() => current.abort(), SILENCE_LIMIT_MS);
    };
    options.onStatus(lastId === null ? "connecting" : "reconnecting");
    try {
      const headers: Record<string, string> = { accept: "text/event-stream" };
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      if (lastId !== null) headers["last-event-id"] = lastId;
      const response = await fetch("/v1/events", {
        headers,
        credentials: "same-origin",
        cache: "no-store",
        signal: current.signal,
      });
      if (response.status === 401 || response.status === 403) {
        await response.body?.cancel();
        closed = true;
        options.onStatus(response.status === 401 ? "unauthenticated" : "forbidden");
        return;
      }
      if (!response.ok || !response.body) {
        await response.body?.cancel();
        throw new Error(`events answered ${response.status}`);
      }
      options.onStatus("live");
      backoff = 1000;
      resetWatchdog();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let data: string[] = [];
      let id: string | null = null;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        resetWatchdog();
        buffer += value;
        let newline = buffer.indexOf("\n");
        while (newline >= 0) {
          const line = buffer.slice(0, newline).replace(/\r$/, "");
          buffer = buffer.slice(newline + 1);
          newline = buffer.indexOf("\n");
          if (line === "") {
            if (data.length > 0) {
              if (id !== null) lastId = id;
              try {
                options.onEvent(JSON.parse(data.join("\n")) as AuditEvent);
              } catch {
                // A malformed event is skipped; the next one carries on.
              }
            }
            data = [];
            id = null;
          } else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
          else if (line.startsWith("id:")) id = line.slice(3).trim();
        }
      }
    } catch {
      // Aborted by close() or the watchdog, or the network failed: retry below unless closed.
    } finally {
      if (watchdog) clearTimeout(watchdog);
    }
    if (closed) return;
    options.onStatus("reconnecting");
    retryTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  }

  void connect();
  return () => {
    const wasClosed = closed;
    closed = true;
    if (retryTimer) clearTimeout(retryTimer);
    controller?.abort();
    // A stream that already stopped keeps saying why.
    if (!wasClosed) options.onStatus("closed");
  };
}

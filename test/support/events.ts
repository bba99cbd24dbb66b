import { expect } from "vitest";

/** One event as `/v1/events` carries it. */
export interface StreamedEvent {
  seq: number;
  type: string;
  actor: string;
  zone: string | null;
  resource: string | null;
  subject: string | null;
  context: Record<string, unknown>;
}

export interface FollowedStream {
  /** Every event received so far, in the order it arrived. */
  events: StreamedEvent[];
  /** The SSE comment lines received (`open`, `keep-alive`, `closed: …`). */
  comments: string[];
  /** Resolves when the server ends the stream (not when `stop` aborts it). */
  ended: Promise<void>;
  /** Resolves with the first event that matches, rejecting after `withinMs`. */
  waitFor(match: (event: StreamedEvent) => boolean, withinMs?: number): Promise<StreamedEvent>;
  /** Resolves once the server ended the stream, rejecting after `withinMs`. */
  waitForEnd(withinMs?: number): Promise<void>;
  stop(): void;
}

/** Rejects after `ms` with `what`, unless `promise` settles first: a bound, not a sleep. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms);
  });
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

/**
 * Opens `/v1/events` over a real socket with the given headers (a bearer token or a session
 * cookie) and collects what it carries until the server ends it or `stop` is called.
 */
export async function followEvents(
  base: string,
  headers: Record<string, string>,
  path = "/v1/events",
): Promise<FollowedStream> {
  const controller = new AbortController();
  const response = await fetch(`${base}${path}`, { headers, signal: controller.signal });
  expect(response.status).toBe(200);
  const events: StreamedEvent[] = [];
  const comments: string[] = [];
  const waiters: { match: (event: StreamedEvent) => boolean; resolve: (event: StreamedEvent) => void }[] = [];
  let endedByServer = false;
  let resolveEnded: () => void = () => {};
  const ended = new Promise<void>((resolve) => {
    resolveEnded = resolve;
  });
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let split = buffer.indexOf("\n\n"); split >= 0; split = buffer.indexOf("\n\n")) {
          const lines = buffer.slice(0, split).split("\n");
          buffer = buffer.slice(split + 2);
          for (const line of lines) if (line.startsWith(": ")) comments.push(line.slice(2));
          const data = lines.find((line) => line.startsWith("data: "));
          if (!data) continue;
          const event = JSON.parse(data.slice(6)) as StreamedEvent;
          events.push(event);
          for (const waiter of [...waiters]) {
            if (waiter.match(event)) {
              waiters.splice(waiters.indexOf(waiter), 1);
              waiter.resolve(event);
            }
          }
        }
      }
      endedByServer = true;
      resolveEnded();
    } catch {
      // Aborted by stop().
    }
  })();
  return {
    events,
    comments,
    ended,
    waitFor(match, withinMs = 5_000) {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      return within(
        new Promise<StreamedEvent>((resolve) => waiters.push({ match, resolve })),
        withinMs,
        "the awaited event",
      );
    },
    waitForEnd(withinMs = 5_000) {
      return within(ended, withinMs, "the end of the stream");
    },
    stop() {
      if (!endedByServer) controller.abort();
    },
  };
}

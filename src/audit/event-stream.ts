import type { ServerResponse } from "node:http";
import type { EventBus } from "../shared/events.js";
import type { Principal } from "../users/user.service.js";
import type { AuditService } from "./audit.service.js";
import type { AuditEvent } from "./chain.js";

/** How often an open stream checks that the credential which opened it still authenticates. */
export const CREDENTIAL_RECHECK_MS = 5_000;
const HEARTBEAT_MS = 15_000;
const PAGE = 1000;

/**
 * Events after which the follower's credential or identity may have changed: checked again before
 * anything later is sent, so nothing committed after a revocation reaches the revoked credential.
 */
const RECHECK_AFTER = new Set(["token.revoked", "user.signed_out", "user.signed_in", "config.applied"]);

/** Who follows a stream, and how to ask again whether the credential they opened it with still holds. */
export interface StreamFollower {
  principal: Principal;
  /** The same credential authenticated again: who it belongs to now, or null once it no longer does. */
  recheck(): Promise<Principal | null>;
}

export interface EventStreamDeps {
  audit: Pick<AuditService, "list">;
  /** Committed events to follow: the process's bus, or the change feed of every replica (src/replicas/). */
  bus: Pick<EventBus, "subscribe">;
  visible: (viewer: Principal, event: AuditEvent) => Promise<boolean>;
  recheckMs?: number;
}

/**
 * The open `/v1/events` streams. They never end on their own, so shutdown ends them: otherwise
 * the HTTP server would wait for every console left open before it could close.
 */
export function createEventStreams(deps: EventStreamDeps) {
  const open = new Set<ReturnType<typeof serveEventStream>>();
  return {
    serve(stream: Parameters<typeof serveEventStream>[1]) {
      const served = serveEventStream(deps, stream);
      open.add(served);
      void served.ended.then(() => open.delete(served));
      return served;
    },
    /** Ends every open stream, telling each client why. */
    closeAll(reason: string) {
      for (const served of [...open]) served.end(reason);
    },
    get size() {
      return open.size;
    },
  };
}
export type EventStreams = ReturnType<typeof createEventStreams>;

/**
 * Serves one `/v1/events` stream on `out`, already answered 200: replays from `afterSeq`, then
 * follows the bus. Each event passes `visible` for the follower as they are at that moment, one at
 * a time in sequence order. The stream ends when the client goes away, when the follower's
 * credential stops authenticating (checked every `recheckMs` and after the events that can revoke
 * it), or when something fails; a client resumes with `Last-Event-ID` and is authenticated afresh.
 */
export function serveEventStream(
  deps: EventStreamDeps,
  stream: { out: ServerResponse; afterSeq: number; follower: StreamFollower },
): { ended: Promise<string>; end(reason: string): void } {
  const { out, follower } = stream;
  let principal = follower.principal;
  let cursor = stream.afterSeq;
  let ended = false;
  let resolveEnded: (reason: string) => void = () => {};
  const endedPromise = new Promise<string>((resolve) => {
    resolveEnded = resolve;
  });

  const queue: AuditEvent[] = [];
  let replaying = true;
  let draining: Promise<void> | null = null;
  let checking: Promise<void> | null = null;

  const unsubscribe = deps.bus.subscribe((event) => {
    queue.push(event);
    kick();
  });
  const heartbeat = setInterval(() => write(": keep-alive\n\n"), HEARTBEAT_MS);
  const recheckTimer = setInterval(() => void recheck(), deps.recheckMs ?? CREDENTIAL_RECHECK_MS);
  heartbeat.unref();
  recheckTimer.unref();

  function end(reason: string, tellClient = true) {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    clearInterval(recheckTimer);
    unsubscribe();
    queue.length = 0;
    if (!out.writableEnded && !out.destroyed) {
      // A comment, which every SSE client ignores, so a reader that logs frames can say why.
      if (tellClient) out.write(`: closed: ${reason}\n\n`);
      out.end();
    }
    resolveEnded(reason);
  }

  function write(frame: string): boolean {
    if (ended || out.writableEnded || out.destroyed) return true;
    return out.write(frame);
  }

  function recheck(): Promise<void> {
    if (ended) return Promise.resolve();
    // One check at a time; `finally` runs after the assignment, so a check that fails at once
    // still clears the slot.
    checking ??= (async () => {
      try {
        const now = await follower.recheck();
        if (now === null) end("the credential that opened this stream is no longer valid");
        else principal = now;
      } catch {
        end("the credential could not be checked");
      }
    })().finally(() => {
      checking = null;
    });
    return checking;
  }

  async function deliver(event: AuditEvent) {
    if (ended || event.seq <= cursor) return;
    cursor = event.seq;
    if (RECHECK_AFTER.has(event.type)) await recheck();
    if (ended || !(await deps.visible(principal, event)) || ended) return;
    if (!write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)) {
      // A slow reader holds the pipeline rather than the server's memory.
      await new Promise<void>((resolve) => {
        const done = () => {
          out.off("drain", done);
          out.off("close", done);
          resolve();
        };
        out.on("drain", done);
        out.on("close", done);
      });
    }
  }

  function kick() {
    if (replaying || draining || ended) return;
    draining = (async () => {
      while (queue.length > 0 && !ended) await deliver(queue.shift() as AuditEvent);
    })()
      .catch(() => end("the stream failed; resume with Last-Event-ID"))
      .finally(() => {
        draining = null;
        if (queue.length > 0) kick();
      });
  }

  out.on("close", () => end("the client went away", false));
  // Sent at once so clients see the stream open before the first event or keep-alive.
  write(": open\n\n");
  // Subscribed first, then replayed from the database, so nothing committed in between is missed;
  // what the bus delivered meanwhile waits in the queue and is skipped by sequence if replayed.
  void (async () => {
    for (;;) {
      const page = await deps.audit.list({ afterSeq: cursor, limit: PAGE });
      for (const event of page) await deliver(event);
      if (page.length < PAGE || ended) break;
    }
  })()
    .then(() => {
      replaying = false;
      kick();
    })
    .catch(() => end("the stream failed; resume with Last-Event-ID"));

  return { ended: endedPromise, end: (reason: string) => end(reason) };
}

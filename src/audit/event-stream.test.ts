import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createEventBus } from "../shared/events.js";
import type { Principal } from "../users/user.service.js";
import type { AuditListQuery } from "./audit.repo.js";
import type { AuditEvent } from "./chain.js";
import { createEventStreams, type EventStreamDeps, type StreamFollower } from "./event-stream.js";

const alice: Principal = { name: "alice", groups: [], isAdmin: false, isAuditor: false };

function event(seq: number, type = "request.created", extra: Partial<AuditEvent> = {}): AuditEvent {
  return {
    seq,
    id: `evt_${seq}`,
    time: new Date(0).toISOString(),
    type,
    actor: "alice",
    zone: null,
    resource: null,
    subject: null,
    context: {},
    prevHash: "0".repeat(64),
    hash: "0".repeat(64),
    ...extra,
  };
}

/** The committed log as `AuditService.list` reads it. */
function storedLog(events: AuditEvent[]): EventStreamDeps["audit"] {
  return {
    async list(query: AuditListQuery = {}) {
      return events.filter((e) => e.seq > (query.afterSeq ?? 0)).slice(0, query.limit ?? 100);
    },
  };
}

interface Client {
  seqs: number[];
  comments: string[];
  ended: Promise<void>;
  waitForSeq(seq: number): Promise<void>;
  abort(): void;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A real HTTP server whose one route serves a stream from `streams`, and a client reading it. */
async function open(
  streams: ReturnType<typeof createEventStreams>,
  afterSeq: number,
  follower: StreamFollower,
): Promise<Client> {
  const server = createServer((_request, response) => {
    response.writeHead(200, { "content-type": "text/event-stream" });
    streams.serve({ out: response, afterSeq, follower });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const controller = new AbortController();
  const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
    signal: controller.signal,
  });
  const seqs: number[] = [];
  const comments: string[] = [];
  const waiting: { seq: number; resolve: () => void }[] = [];
  const ended = (async () => {
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let split = buffer.indexOf("\n\n"); split >= 0; split = buffer.indexOf("\n\n")) {
          const lines = buffer.slice(0, split).split("\n");
          buffer = buffer.slice(split + 2);
          for (const line of lines) {
            if (line.startsWith(": ")) comments.push(line.slice(2));
            if (line.startsWith("data: ")) {
              const seq = (JSON.parse(line.slice(6)) as AuditEvent).seq;
              seqs.push(seq);
              for (const w of waiting.filter((candidate) => candidate.seq <= seq)) w.resolve();
            }
          }
        }
      }
    } catch {
      // aborted
    }
  })();
  return {
    seqs,
    comments,
    ended,
    waitForSeq: (seq) =>
      seqs.some((s) => s >= seq)
        ? Promise.resolve()
        : new Promise((resolve) => waiting.push({ seq, resolve })),
    abort: () => controller.abort(),
  };
}

const always = (principal: Principal): StreamFollower => ({ principal, recheck: async () => principal });

describe("serveEventStream", () => {
  it("replays, then follows, in sequence order and without repeats, however long each decision takes", async () => {
    const bus = createEventBus();
    const streams = createEventStreams({
      audit: storedLog([1, 2, 3, 4, 5].map((seq) => event(seq))),
      bus,
      // Later events decide faster than earlier ones: a stream that did not wait would reorder them.
      visible: (_viewer, e) => new Promise((resolve) => setTimeout(() => resolve(true), 30 - e.seq)),
    });
    const client = await open(streams, 2, always(alice));
    bus.publish([4, 5, 6, 7, 8].map((seq) => event(seq)));
    await client.waitForSeq(8);
    expect(client.seqs).toEqual([3, 4, 5, 6, 7, 8]);
    client.abort();
  });

  it("checks the credential after a revocation before sending anything later, and ends the stream", async () => {
    const bus = createEventBus();
    let revoked = false;
    let checks = 0;
    const streams = createEventStreams({
      audit: storedLog([]),
      bus,
      visible: async () => true,
      recheckMs: 600_000,
    });
    const client = await open(streams, 0, {
      principal: alice,
      recheck: async () => {
        checks += 1;
        return revoked ? null : alice;
      },
    });
    bus.publish([event(1)]);
    await client.waitForSeq(1);
    revoked = true;
    bus.publish([event(2, "token.revoked", { context: { user: "alice" } }), event(3)]);
    await client.ended;
    expect(client.seqs).toEqual([1]);
    expect(checks).toBe(1);
    expect(client.comments).toContain("closed: the credential that opened this stream is no longer valid");
    expect(streams.size).toBe(0);
  });

  it("checks the credential on its timer, so an expiry no event announces still ends the stream", async () => {
    let expired = false;
    const streams = createEventStreams({
      audit: storedLog([]),
      bus: createEventBus(),
      visible: async () => true,
      recheckMs: 20,
    });
    const client = await open(streams, 0, {
      principal: alice,
      recheck: async () => (expired ? null : alice),
    });
    expired = true;
    await client.ended;
    expect(client.comments.at(-1)).toBe("closed: the credential that opened this stream is no longer valid");
  });

  it("decides each event for the follower as the last check found them", async () => {
    const bus = createEventBus();
    const admin: Principal = { ...alice, isAdmin: true };
    let current = admin;
    const streams = createEventStreams({
      audit: storedLog([]),
      bus,
      visible: async (viewer) => viewer.isAdmin,
      recheckMs: 600_000,
    });
    const client = await open(streams, 0, { principal: admin, recheck: async () => current });
    bus.publish([event(1)]);
    await client.waitForSeq(1);
    // A reload takes administration away; what follows is decided for who they are now.
    current = alice;
    bus.publish([event(2, "config.applied"), event(3), event(4)]);
    current = admin;
    bus.publish([event(5, "config.applied")]);
    await client.waitForSeq(5);
    expect(client.seqs).toEqual([1, 5]);
    client.abort();
  });

  it("ends the stream, rather than skip an event, when a decision fails", async () => {
    const bus = createEventBus();
    const streams = createEventStreams({
      audit: storedLog([]),
      bus,
      visible: async (_viewer, e) => {
        if (e.seq === 2) throw new Error("database unreachable");
        return true;
      },
    });
    const client = await open(streams, 0, always(alice));
    bus.publish([event(1), event(2), event(3)]);
    await client.ended;
    expect(client.seqs).toEqual([1]);
    expect(client.comments.at(-1)).toBe("closed: the stream failed; resume with Last-Event-ID");
  });

  it("ends the stream when the credential cannot be checked", async () => {
    const streams = createEventStreams({
      audit: storedLog([]),
      bus: createEventBus(),
      visible: async () => true,
      recheckMs: 20,
    });
    const client = await open(streams, 0, {
      principal: alice,
      recheck: async () => {
        throw new Error("database unreachable");
      },
    });
    await client.ended;
    expect(client.comments.at(-1)).toBe("closed: the credential could not be checked");
  });

  it("closeAll ends every open stream, and a client that leaves is forgotten", async () => {
    const streams = createEventStreams({
      audit: storedLog([]),
      bus: createEventBus(),
      visible: async () => true,
    });
    const first = await open(streams, 0, always(alice));
    const second = await open(streams, 0, always(alice));
    const leaving = await open(streams, 0, always(alice));
    expect(streams.size).toBe(3);
    leaving.abort();
    await expect.poll(() => streams.size).toBe(2);
    streams.closeAll("the server is shutting down");
    await Promise.all([first.ended, second.ended]);
    expect(first.comments.at(-1)).toBe("closed: the server is shutting down");
    expect(streams.size).toBe(0);
  });
});

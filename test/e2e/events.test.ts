import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REASON, startTestApp, type TestApp } from "../support/app.js";

/**
 * `/v1/events` over a real socket: administrators and auditors follow every committed event;
 * anyone else only what concerns them, so a live view never leaks a request in another zone.
 */
describe("live events are filtered by who follows them", () => {
  let t: TestApp;
  let base: string;

  beforeAll(async () => {
    t = await startTestApp("sqlite");
    await t.app.http.listen({ host: "127.0.0.1", port: 0 });
    const address = t.app.http.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Starts following the stream as `user`; `seen` collects `type@zone` of each event it carries. */
  async function follow(user: string) {
    const controller = new AbortController();
    const response = await fetch(`${base}/v1/events`, {
      headers: { authorization: `Bearer ${await t.token(user)}` },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    const seen: string[] = [];
    const reading = (async () => {
      const decoder = new TextDecoder();
      let buffer = "";
      try {
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          buffer += decoder.decode(chunk, { stream: true });
          for (let split = buffer.indexOf("\n\n"); split >= 0; split = buffer.indexOf("\n\n")) {
            const data = buffer
              .slice(0, split)
              .split("\n")
              .find((line) => line.startsWith("data: "));
            buffer = buffer.slice(split + 2);
            if (data) {
              const event = JSON.parse(data.slice(6)) as { type: string; zone: string | null };
              seen.push(`${event.type}@${event.zone}`);
            }
          }
        }
      } catch {
        // aborted
      }
    })();
    return { seen, reading, stop: () => controller.abort() };
  }

  it("shows the requester and the zone's approvers the request, and an outsider nothing", async () => {
    const streams = await Promise.all(["alice", "carol", "frank", "erin"].map((user) => follow(user)));
    await t.call("POST", "/v1/incidents", {
      body: { id: "INC-9", zone: "vault", severity: 2, title: "down" },
    });
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-9" },
    });
    expect(created.status).toBe(201);
    await new Promise((r) => setTimeout(r, 300));
    for (const stream of streams) stream.stop();
    await Promise.all(streams.map((s) => s.reading));
    const [alice, carol, frank, erin] = streams.map((s) => s.seen);
    expect(alice).toEqual(["request.created@vault"]);
    expect(carol).toEqual(["request.created@vault"]);
    expect(frank).toEqual([]);
    // Erin is an auditor: she sees the incident too.
    expect(erin).toEqual(["incident.opened@vault", "request.created@vault"]);
  });
});

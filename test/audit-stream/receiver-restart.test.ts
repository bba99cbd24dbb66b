import { afterEach, describe, expect, it } from "vitest";
import { appendAuditEvent } from "../../src/audit/audit.repo.js";
import type { TestApp } from "../support/app.js";
import { startStreamReceiver, waitFor } from "./support/receivers.js";
import { runBreakGlass, startStreamApp, streamConfig } from "./support/stream-app.js";

describe("syslog receivers that die, hang or vanish", () => {
  let t: TestApp | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await t?.close();
    t = undefined;
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it("loses nothing: once it is back, every event arrives (duplicates carry the same id), in order", async () => {
    const receiver = await startStreamReceiver();
    let running = true;
    cleanups.push(async () => {
      if (running) await receiver.stop();
    });
    t = await startStreamApp(
      "sqlite",
      streamConfig({
        sinks: [
          `{ name: siem, type: syslog, url: "${receiver.url}", delivery: { batchSize: 25, initialBackoff: 1s } }`,
        ],
      }),
    );
    const app = t.app;
    const append = async (count: number, from: number) => {
      for (let index = 0; index < count; index++) {
        await appendAuditEvent(
          app.db,
          {
            type: "incident.updated",
            actor: "system:test",
            zone: "vault",
            subject: `inc_${from + index}`,
            context: { note: "x".repeat(200), index: from + index },
          },
          t?.clock.now() ?? 0,
        );
        if (index % 20 === 0) app.services.auditDelivery.poke();
      }
      app.services.auditDelivery.poke();
    };

    await append(400, 0);
    await waitFor("the receiver to be part-way through", () => receiver.received.length >= 100);
    // It hangs first, so a batch is written into the kernel's buffers and never read: a sender
    // that counted a finished write as delivered would lose that batch when the receiver dies.
    receiver.pause();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await receiver.stop();
    running = false;
    const arrivedBefore = receiver.received.length;
    await append(200, 400);
    await waitFor("the sink to notice", async () => {
      const [siem] = await app.services.auditDelivery.status();
      return (siem?.attempts ?? 0) > 0 && siem?.lastError !== null;
    });
    const [failing] = await app.services.auditDelivery.status();
    expect(failing).toMatchObject({ state: "retrying", deadLetters: { dead: 0 } });
    expect(failing?.lastError).toMatch(/connection (refused|reset)|closed the connection/);
    expect(failing?.lagEvents).toBeGreaterThan(0);

    await receiver.start();
    running = true;
    // The backoff runs on the injected clock: move past it, and the sink tries again.
    t.clock.advance(10 * 60_000);
    app.services.auditDelivery.poke();
    expect(await app.services.auditDelivery.flush(20_000)).toBe(true);

    const all = (await t.auditEvents()).map((event) => (event as unknown as { id: string }).id);
    const received = receiver.ids();
    expect(receiver.errors).toEqual([]);
    expect(arrivedBefore).toBeLessThan(all.length);
    expect(new Set(received)).toEqual(new Set(all));
    // First arrivals are in chain order; anything else is a resend of what came before.
    const firstArrivals = received.filter((id, index) => received.indexOf(id) === index);
    expect(firstArrivals).toEqual(all);
    const [recovered] = await app.services.auditDelivery.status();
    expect(recovered).toMatchObject({ state: "idle", lagEvents: 0, deadLetters: { dead: 0, queued: 0 } });
  });

  it("never holds up requests and grants, however hung or dead its sinks are", async () => {
    const hung = await startStreamReceiver();
    hung.pause();
    const dead = await startStreamReceiver();
    await dead.stop();
    cleanups.push(hung.stop);
    t = await startStreamApp(
      "sqlite",
      streamConfig({
        sinks: [
          `{ name: hung, type: syslog, url: "${hung.url}", delivery: { timeout: 30s } }`,
          `{ name: dead, type: syslog, url: "${dead.url}" }`,
        ],
      }),
    );
    const started = performance.now();
    await runBreakGlass(t);
    await runBreakGlass(t, "INC-4712");
    const elapsed = performance.now() - started;
    // Two whole break-glass stories, each a dozen commits, while neither sink has taken one event.
    expect(elapsed).toBeLessThan(5_000);
    const status = await t.app.services.auditDelivery.status();
    const head = (await t.auditEvents()).length;
    expect(status.map((sink) => [sink.name, sink.deliveredSeq])).toEqual([
      ["hung", 0],
      ["dead", 0],
    ]);
    expect(status.every((sink) => sink.lagEvents === head)).toBe(true);
    expect(status.find((sink) => sink.name === "dead")?.lastError).toMatch(/connection refused/);
  });
});

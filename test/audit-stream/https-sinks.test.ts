import { createHmac, randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { expectError, expectStatus, REASON, type TestApp } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";
import {
  createSelfSignedCertificate,
  type ReceivedRequest,
  startHttpsReceiver,
  waitFor,
  writeTemporaryFile,
} from "./support/receivers.js";
import { PUBLIC_URL, runBreakGlass, startStreamApp, streamConfig } from "./support/stream-app.js";

/** Checks a request the way a Standard Webhooks receiver must, independently of Firebreak's code. */
function verifyStandardWebhook(request: ReceivedRequest, secret: string): boolean {
  const id = String(request.headers["webhook-id"]);
  const timestamp = String(request.headers["webhook-timestamp"]);
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const expected = createHmac("sha256", key).update(`${id}.${timestamp}.${request.body}`).digest("base64");
  const signatures = String(request.headers["webhook-signature"]).split(" ");
  return signatures.includes(`v1,${expected}`);
}

describe.each(DIALECTS)("webhook and Splunk HEC sinks over HTTPS on %s", (dialect) => {
  let t: TestApp | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await t?.close();
    t = undefined;
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it("signs each event as Standard Webhooks says, sends HEC batches with the token, and never shows a secret", async () => {
    const certificate = createSelfSignedCertificate();
    const webhook = await startHttpsReceiver(certificate);
    const hec = await startHttpsReceiver(certificate, () => ({
      status: 200,
      body: '{"text":"Success","code":0}',
    }));
    cleanups.push(webhook.close, hec.close);
    const secret = `whsec_${randomBytes(24).toString("base64")}`;
    const token = `hec-${randomBytes(16).toString("hex")}`;
    const secretPath = writeTemporaryFile("soar.secret", `${secret}\n`);
    const tokenPath = writeTemporaryFile("hec.token", token);
    t = await startStreamApp(
      dialect,
      streamConfig({
        sinks: [
          `{ name: soar, type: webhook, url: "${webhook.url}/firebreak", secret: "file:${secretPath}", tls: { ca: "file:${certificate.certPath}" } }`,
          `{ name: splunk, type: splunk-hec, url: "${hec.url}", token: "file:${tokenPath}", format: ocsf, index: security, tls: { ca: "file:${certificate.certPath}" } }`,
        ],
      }),
    );
    const { grantId } = await runBreakGlass(t);
    expect(await t.app.services.auditDelivery.flush(15_000)).toBe(true);
    const events = (await t.auditEvents()) as unknown as { id: string; type: string; seq: number }[];
    const ids = events.map((event) => event.id);

    // Webhook: one POST per event, in order, its id the event id, signed with the whsec_ key.
    expect(webhook.requests.map((request) => request.headers["webhook-id"])).toEqual(ids);
    for (const request of webhook.requests) {
      expect(request.method).toBe("POST");
      expect(request.url).toBe("/firebreak");
      expect(request.headers["content-type"]).toBe("application/json");
      expect(String(request.headers["webhook-timestamp"])).toMatch(/^\d{10}$/);
      expect(verifyStandardWebhook(request, secret)).toBe(true);
      const tampered = { ...request, body: request.body.replace('"seq":', '"seq": ') };
      expect(verifyStandardWebhook(tampered, secret)).toBe(false);
    }
    const activation = webhook.requests
      .map(
        (request) =>
          JSON.parse(request.body) as { type: string; timestamp: string; data: Record<string, unknown> },
      )
      .find((body) => body.type === "grant.activated");
    expect(activation?.data).toMatchObject({
      type: "grant.activated",
      severity: "medium",
      context: { purpose: REASON, ticket: "INC-4711", sourceZone: "bastion", approvers: ["carol"] },
      links: { grant: `${PUBLIC_URL}/grants/${grantId}` },
    });

    // HEC: batches to the collector endpoint with `Splunk <token>`, events as OCSF.
    expect(hec.requests.length).toBeGreaterThan(0);
    const hecEvents: {
      event: { metadata: { uid: string } };
      index: string;
      sourcetype: string;
      fields: Record<string, string>;
    }[] = [];
    for (const request of hec.requests) {
      expect(request.url).toBe("/services/collector/event");
      expect(request.headers.authorization).toBe(`Splunk ${token}`);
      expect(request.headers["x-splunk-request-channel"]).toMatch(/^[0-9a-f-]{36}$/);
      for (const line of request.body.split("\n")) hecEvents.push(JSON.parse(line));
    }
    expect(hecEvents.map((entry) => entry.event.metadata.uid)).toEqual(ids);
    expect(
      hecEvents.every((entry) => entry.index === "security" && entry.sourcetype === "firebreak:audit"),
    ).toBe(true);
    expect(hecEvents.find((entry) => entry.fields.type === "grant.activated")?.fields).toMatchObject({
      zone: "vault",
      grant: grantId,
      user: "alice",
    });

    // Status and metrics name targets by origin only, and no secret appears anywhere.
    const sinks = await t.call("GET", "/v1/audit/sinks", { as: "erin" });
    expectStatus(sinks, 200);
    expect(
      sinks.body.sinks.map((sink: { name: string; target: string; state: string; lagEvents: number }) => [
        sink.name,
        sink.target,
        sink.state,
        sink.lagEvents,
      ]),
    ).toEqual([
      ["soar", webhook.url, "idle", 0],
      ["splunk", hec.url, "idle", 0],
    ]);
    expectError(await t.call("GET", "/v1/audit/sinks", { as: "alice" }), 403, "FORBIDDEN");
    expectError(
      await t.call("POST", "/v1/audit/sinks/soar/replay", { as: "alice", body: {} }),
      403,
      "FORBIDDEN",
    );
    const metrics = await t.call("GET", "/metrics", { as: null });
    expect(metrics.status).toBe(200);
    for (const text of [
      sinks.text,
      metrics.text,
      JSON.stringify(await t.auditEvents()),
      t.serverErrors.join("\n"),
    ]) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(secret.slice(6));
    }
  });

  it("retries with backoff, dead-letters after the last attempt with one alert, recovers, and replays", async () => {
    const certificate = createSelfSignedCertificate();
    let answer = 200;
    const webhook = await startHttpsReceiver(certificate, () => ({ status: answer }));
    cleanups.push(webhook.close);
    const secretPath = writeTemporaryFile("soar.secret", `whsec_${randomBytes(24).toString("base64")}`);
    t = await startStreamApp(
      dialect,
      streamConfig({
        sinks: [
          `{ name: soar, type: webhook, url: "${webhook.url}/hook", secret: "file:${secretPath}", tls: { ca: "file:${certificate.certPath}" }, delivery: { maxAttempts: 3, initialBackoff: 2s, maxBackoff: 1m } }`,
        ],
      }),
    );
    const app = t.app;
    const status = async () =>
      ((await t?.call("GET", "/v1/audit/sinks"))?.body.sinks[0] ?? {}) as Record<string, unknown> & {
        deadLetters: { dead: number; queued: number; replayed: number };
      };
    const incident = async (id: string) =>
      expectStatus(
        (await t?.call("POST", "/v1/incidents", {
          body: { id, zone: "vault", severity: 3, title: "disk", status: "open" },
        })) ?? { status: 0, body: null, text: "", headers: {} },
        201,
      );
    /** Moves the injected clock past each backoff and wakes the sink, until `done` holds. */
    const drive = async (what: string, done: () => Promise<boolean>) => {
      for (let step = 0; step < 200; step++) {
        if (await done()) return;
        t?.clock.advance(60_000);
        app.services.auditDelivery.poke();
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`never reached: ${what}: ${JSON.stringify(await status())}`);
    };

    expect(await app.services.auditDelivery.flush(10_000)).toBe(true);
    answer = 503;
    const failingSince = webhook.requests.length;
    await incident("INC-1");

    // One failure: the next attempt waits for the backoff (on the injected clock).
    await waitFor("a first failure", async () => (await status()).attempts === 1);
    const first = await status();
    expect(first).toMatchObject({ state: "retrying", lastError: "HTTP 503", deadLetters: { dead: 0 } });
    const wait = Date.parse(String(first.nextAttemptAt)) - t.clock.now();
    expect(wait).toBeGreaterThanOrEqual(1_000);
    expect(wait).toBeLessThanOrEqual(2_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(webhook.requests.length - failingSince).toBe(1);

    // Out of attempts: a dead letter and one alert; more events fail the same way, no second alert.
    await drive("a dead letter", async () => (await status()).deadLetters.dead >= 1);
    expect(await status()).toMatchObject({ state: "failing" });
    await incident("INC-2");
    await drive("three dead letters", async () => (await status()).deadLetters.dead >= 3);
    const alerts = (await t.auditEvents()).filter(
      (event) => event.type === "alert.raised" && event.context.alert === "audit-sink-failing",
    );
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.context).toMatchObject({
      sink: "soar",
      kind: "webhook",
      attempts: 3,
      error: "HTTP 503",
      severity: "high",
    });
    const letters = await t.call("GET", "/v1/audit/sinks/soar/dead-letters");
    expectStatus(letters, 200);
    expect(letters.body.deadLetters[0]).toMatchObject({ state: "dead", attempts: 3, lastError: "HTTP 503" });

    // The receiver is fixed: the next event goes through, and delivery says so once.
    answer = 200;
    await incident("INC-3");
    await drive("recovery", async () => (await status()).state === "idle");
    expect(await app.services.auditDelivery.flush(10_000)).toBe(true);
    expect((await t.auditEvents()).filter((event) => event.type === "audit.sink_recovered")).toHaveLength(1);

    // Replay: the dead letters go out again, with their original ids.
    const deadIds: string[] = letters.body.deadLetters.map((letter: { eventId: string }) => letter.eventId);
    const before = webhook.requests.length;
    const replay = await t.call("POST", "/v1/audit/sinks/soar/replay", { as: "erin", body: {} });
    expectStatus(replay, 200);
    expect(replay.body.queued).toBeGreaterThanOrEqual(3);
    await drive("the replay", async () => (await status()).deadLetters.replayed === replay.body.queued);
    const replayed = webhook.requests.slice(before).map((request) => String(request.headers["webhook-id"]));
    expect(replayed.filter((id) => deadIds.includes(id))).toEqual(deadIds);
    const requested = (await t.auditEvents()).filter((event) => event.type === "audit.replay_requested");
    expect(requested).toMatchObject([
      { actor: "erin", context: { sink: "soar", deadLetters: replay.body.queued } },
    ]);
    expectError(await t.call("POST", "/v1/audit/sinks/nope/replay", { body: {} }), 404, "NOT_FOUND");
  });

  it("reports a sink whose secret cannot be resolved as misconfigured, naming the reference and nothing else", async () => {
    t = await startStreamApp(
      dialect,
      streamConfig({
        sinks: [
          `{ name: soar, type: webhook, url: "https://127.0.0.1:9/hook", secret: "env:FIREBREAK_TEST_UNSET_SECRET" }`,
        ],
      }),
    );
    await waitFor(
      "the sink to be tried",
      async () => (await t?.call("GET", "/v1/audit/sinks"))?.body.sinks[0].state === "misconfigured",
    );
    const [sink] = (await t.call("GET", "/v1/audit/sinks")).body.sinks;
    expect(sink).toMatchObject({ name: "soar", target: null, deliveredSeq: 0 });
    expect(sink.lastError).toBe(
      "secret reference 'env:FIREBREAK_TEST_UNSET_SECRET' needs the environment variable FIREBREAK_TEST_UNSET_SECRET, which is not set",
    );
    // Logged once for the operator; requests go on regardless.
    expect(t.serverErrors.filter((line) => line.startsWith("audit sink cannot be set up"))).toHaveLength(1);
    await runBreakGlass(t);
    t.serverErrors.length = 0;
  });
});

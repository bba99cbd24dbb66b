import { createHmac } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  expectError,
  expectStatus,
  REASON,
  type Reply,
  startTestApp,
  TEST_CONFIG,
  type TestApp,
} from "../support/app.js";
import { DIALECTS } from "../support/databases.js";

const SECOND = 1000;
const MINUTE = 60 * SECOND;

const ENV = {
  AM_TOKEN: "am-token-for-replay-tests",
  PD_SECRET: "pd-secret-for-replay-tests",
  GENERIC_SECRET: "generic-secret-for-replay-tests",
};

const CONFIG = `${TEST_CONFIG}
signals:
  alertmanager: { token: env:AM_TOKEN }
  pagerduty: { secret: env:PD_SECRET, services: { PCACHE: cache } }
  generic: { secret: env:GENERIC_SECRET }
`;

/** One HTTP delivery exactly as a sender made it, so a test can send the same bytes again. */
interface Delivery {
  kind: "alertmanager" | "pagerduty" | "generic";
  body: string;
  headers: Record<string, string>;
}

/** A generic signal signed over `<timestamp>.<body>` with the timestamp `at` (epoch ms). */
function generic(
  at: number,
  payload: { id: string; zone: string; severity: number; status: "open" | "resolved" },
): Delivery {
  const body = JSON.stringify({ title: "cache poisoned", ...payload });
  const timestamp = String(Math.floor(at / SECOND));
  const signature = createHmac("sha256", ENV.GENERIC_SECRET).update(`${timestamp}.${body}`).digest("hex");
  return {
    kind: "generic",
    body,
    headers: { "x-firebreak-timestamp": timestamp, "x-firebreak-signature": `sha256=${signature}` },
  };
}

/** A PagerDuty v3 incident event on the service mapped to the cache zone, signed as PagerDuty signs. */
function pagerduty(eventId: string, type: string, occurredAt: number, incident = "PINC1"): Delivery {
  const body = JSON.stringify({
    event: {
      id: eventId,
      event_type: type,
      resource_type: "incident",
      occurred_at: new Date(occurredAt).toISOString(),
      data: {
        id: incident,
        type: "incident",
        title: "cache poisoned",
        urgency: "high",
        priority: { summary: "P1" },
        service: { id: "PCACHE" },
      },
    },
  });
  const signature = createHmac("sha256", ENV.PD_SECRET).update(body).digest("hex");
  return { kind: "pagerduty", body, headers: { "x-pagerduty-signature": `v1=${signature}` } };
}

/** An Alertmanager notification for one alert in the cache zone. */
function alertmanager(
  status: "firing" | "resolved",
  startsAt: number,
  endsAt: number | null,
  token = ENV.AM_TOKEN,
): Delivery {
  const body = JSON.stringify({
    status,
    alerts: [
      {
        status,
        labels: { alertname: "CachePoisoned", zone: "cache", severity: "critical" },
        fingerprint: "fp-cache",
        startsAt: new Date(startsAt).toISOString(),
        endsAt: endsAt === null ? "0001-01-01T00:00:00Z" : new Date(endsAt).toISOString(),
      },
    ],
  });
  return { kind: "alertmanager", body, headers: { authorization: `Bearer ${token}` } };
}

describe.each(DIALECTS)("signal replay and refused signals on %s", (dialect) => {
  let t: TestApp;
  let started: TestApp | null = null;

  beforeEach(async () => {
    started = null;
    t = await startTestApp(dialect, { config: CONFIG, env: ENV });
    started = t;
  });

  afterEach(async () => {
    if (!started) return;
    const errors = started.serverErrors;
    await started.close();
    expect(errors, "the server answered 500 INTERNAL").toEqual([]);
  });

  function send(delivery: Delivery, remoteAddress?: string): Promise<Reply> {
    return t.call("POST", `/v1/signals/${delivery.kind}`, {
      as: null,
      rawBody: delivery.body,
      headers: { "content-type": "application/json", ...delivery.headers },
      ...(remoteAddress ? { remoteAddress } : {}),
    });
  }

  async function openCacheIncidents(): Promise<unknown[]> {
    const zone = await t.call("GET", "/v1/zones/cache");
    expectStatus(zone, 200);
    return zone.body.openIncidents;
  }

  async function incidentEvents() {
    return (await t.auditEvents())
      .filter((e) => e.type.startsWith("incident."))
      .map((e) => ({ type: e.type, externalId: e.context.externalId }));
  }

  /** A cache flush by `user`: auto-approved during a severity-1 incident, pending otherwise. */
  async function requestFlush(user: string) {
    const created = await t.call("POST", "/v1/requests", {
      as: user,
      body: { zone: "cache", role: "flush", reason: REASON },
    });
    expectStatus(created, 201);
    return created.body as { id: string; state: string; autoApproved: boolean };
  }

  it("refuses a replayed generic signal, so a resolved incident stays resolved and auto-approval stays off", async () => {
    const opened = generic(t.clock.now(), { id: "cache-1", zone: "cache", severity: 1, status: "open" });
    expectStatus(await send(opened), 202);
    expect(await requestFlush("alice")).toMatchObject({ state: "approved", autoApproved: true });

    t.clock.advance(MINUTE);
    const resolved = generic(t.clock.now(), {
      id: "cache-1",
      zone: "cache",
      severity: 1,
      status: "resolved",
    });
    expectStatus(await send(resolved), 202);
    expect(await openCacheIncidents()).toEqual([]);

    // The attacker sends the captured "open" again, byte for byte, inside its time window.
    expectError(await send(opened), 409, "SIGNAL_REPLAYED");
    expectError(await send(resolved), 409, "SIGNAL_REPLAYED");
    expect(await openCacheIncidents()).toEqual([]);
    expect(await requestFlush("bob")).toMatchObject({ state: "pending", autoApproved: false });

    // The receipts are in the database: a restarted server still knows them.
    await t.restart();
    expectError(await send(opened), 409, "SIGNAL_REPLAYED");

    // Once outside the window the timestamp alone refuses it.
    t.clock.advance(5 * MINUTE);
    expectError(await send(opened), 401, "SIGNAL_STALE");
    expect(await openCacheIncidents()).toEqual([]);
    expect(await incidentEvents()).toEqual([
      { type: "incident.opened", externalId: "cache-1" },
      { type: "incident.resolved", externalId: "cache-1" },
    ]);
  });

  it("refuses generic signals whose timestamp is missing, altered, or too far ahead", async () => {
    const now = t.clock.now();
    const fine = generic(now, { id: "cache-2", zone: "cache", severity: 1, status: "open" });
    const { "x-firebreak-timestamp": _dropped, ...withoutTimestamp } = fine.headers;
    expectError(await send({ ...fine, headers: withoutTimestamp }), 401, "UNAUTHENTICATED");
    // Moving the timestamp forward to pass the window again breaks the signature.
    const moved = { ...fine.headers, "x-firebreak-timestamp": String(Math.floor(now / SECOND) + 60) };
    expectError(await send({ ...fine, headers: moved }), 401, "UNAUTHENTICATED");
    // The old form, a signature over the body alone, is no longer accepted.
    const bodyOnly = createHmac("sha256", ENV.GENERIC_SECRET).update(fine.body).digest("hex");
    expectError(
      await send({ ...fine, headers: { ...fine.headers, "x-firebreak-signature": `sha256=${bodyOnly}` } }),
      401,
      "UNAUTHENTICATED",
    );
    const future = generic(now + 6 * MINUTE, { id: "cache-2", zone: "cache", severity: 1, status: "open" });
    expectError(await send(future), 401, "SIGNAL_STALE");
    const past = generic(now - 6 * MINUTE, { id: "cache-2", zone: "cache", severity: 1, status: "open" });
    expectError(await send(past), 401, "SIGNAL_STALE");
    expect(await openCacheIncidents()).toEqual([]);
    expectStatus(await send(fine), 202);
    expect(await openCacheIncidents()).toHaveLength(1);
  });

  it("orders generic events by their signed time: an older open is superseded, a newer one reopens", async () => {
    const start = t.clock.now();
    expectStatus(
      await send(generic(start, { id: "cache-3", zone: "cache", severity: 1, status: "open" })),
      202,
    );
    const resolvedAt = start + 60 * SECOND;
    t.clock.set(resolvedAt);
    expectStatus(
      await send(generic(resolvedAt, { id: "cache-3", zone: "cache", severity: 1, status: "resolved" })),
      202,
    );
    // Signed before the resolution but delivered after it (a retry, or a sender's queue).
    const late = await send(
      generic(start + 30 * SECOND, { id: "cache-3", zone: "cache", severity: 1, status: "open" }),
    );
    expectStatus(late, 202);
    expect(late.body).toEqual({ applied: 0, ignored: 0, superseded: 1 });
    // Signed in the same second as the resolution: not newer, so it does not reopen either.
    const sameSecond = await send(
      generic(resolvedAt, { id: "cache-3", zone: "cache", severity: 2, status: "open" }),
    );
    expect(sameSecond.body).toEqual({ applied: 0, ignored: 0, superseded: 1 });
    expect(await openCacheIncidents()).toEqual([]);

    t.clock.advance(SECOND);
    const reopened = await send(
      generic(t.clock.now(), { id: "cache-3", zone: "cache", severity: 1, status: "open" }),
    );
    expect(reopened.body).toEqual({ applied: 1, ignored: 0, superseded: 0 });
    expect(await openCacheIncidents()).toEqual([expect.objectContaining({ id: "cache-3", severity: 1 })]);
    expect(await incidentEvents()).toEqual([
      { type: "incident.opened", externalId: "cache-3" },
      { type: "incident.resolved", externalId: "cache-3" },
      { type: "incident.opened", externalId: "cache-3" },
    ]);
  });

  it("applies one of several identical deliveries sent at once", async () => {
    const delivery = generic(t.clock.now(), { id: "cache-4", zone: "cache", severity: 1, status: "open" });
    const replies = await Promise.all(Array.from({ length: 6 }, () => send(delivery)));
    expect(replies.map((r) => r.status).sort()).toEqual([202, 409, 409, 409, 409, 409]);
    for (const reply of replies.filter((r) => r.status === 409)) expectError(reply, 409, "SIGNAL_REPLAYED");
    expect(await incidentEvents()).toEqual([{ type: "incident.opened", externalId: "cache-4" }]);
  });

  it("forgets receipts once their deliveries could no longer pass the window, and still refuses them", async () => {
    const delivery = generic(t.clock.now(), { id: "cache-5", zone: "cache", severity: 1, status: "open" });
    expectStatus(await send(delivery), 202);
    const receipts = () =>
      t.app.db
        .selectFrom("signal_receipts")
        .select((eb) => eb.fn.countAll<number>().as("count"))
        .executeTakeFirstOrThrow()
        .then((row) => Number(row.count));
    expect(await receipts()).toBe(1);
    t.clock.advance(5 * MINUTE);
    await t.app.services.signals.maintain();
    expect(await receipts()).toBe(1);
    t.clock.advance(6 * MINUTE);
    await t.app.services.signals.maintain();
    expect(await receipts()).toBe(0);
    expectError(await send(delivery), 401, "SIGNAL_STALE");
  });

  it("refuses a replayed PagerDuty event by its id and orders events by occurred_at", async () => {
    const start = t.clock.now();
    const triggered = pagerduty("evt-1", "incident.triggered", start);
    expectStatus(await send(triggered), 202);
    expect(await requestFlush("alice")).toMatchObject({ state: "approved", autoApproved: true });
    t.clock.advance(MINUTE);
    expectStatus(await send(pagerduty("evt-2", "incident.resolved", t.clock.now())), 202);
    expect(await openCacheIncidents()).toEqual([]);

    expectError(await send(triggered), 409, "SIGNAL_REPLAYED");
    // A genuine event that happened before the resolution, delivered late, does not reopen it.
    const late = await send(pagerduty("evt-3", "incident.acknowledged", start + 30 * SECOND));
    expect(late.body).toEqual({ applied: 0, ignored: 0, superseded: 1 });
    expect(await openCacheIncidents()).toEqual([]);
    expect(await requestFlush("bob")).toMatchObject({ state: "pending", autoApproved: false });

    // PagerDuty retries for about 20 minutes, so the window is 30 minutes; older is refused.
    t.clock.advance(30 * MINUTE);
    expectError(await send(pagerduty("evt-4", "incident.triggered", start)), 401, "SIGNAL_STALE");
    expect(await openCacheIncidents()).toEqual([]);

    // An event without its id or time is not a PagerDuty v3 event.
    for (const field of ["occurred_at", "id"]) {
      const event = JSON.parse(pagerduty("evt-5", "incident.triggered", t.clock.now()).body);
      delete event.event[field];
      const body = JSON.stringify(event);
      const signature = createHmac("sha256", ENV.PD_SECRET).update(body).digest("hex");
      expectError(
        await send({ kind: "pagerduty", body, headers: { "x-pagerduty-signature": `v1=${signature}` } }),
        400,
        "VALIDATION_FAILED",
      );
    }

    const reopened = await send(pagerduty("evt-6", "incident.reopened", t.clock.now()));
    expect(reopened.body).toEqual({ applied: 1, ignored: 0, superseded: 0 });
    expect(await openCacheIncidents()).toHaveLength(1);
  });

  it("keeps an incident resolved by Alertmanager when an old firing notification is sent again", async () => {
    const startsAt = t.clock.now() - 10 * MINUTE;
    const firing = alertmanager("firing", startsAt, null);
    expectStatus(await send(firing), 202);
    expect(await requestFlush("alice")).toMatchObject({ state: "approved", autoApproved: true });
    const endsAt = t.clock.now();
    expectStatus(await send(alertmanager("resolved", startsAt, endsAt)), 202);
    expect(await openCacheIncidents()).toEqual([]);

    // A bearer token signs nothing, so the replay is authenticated; its start time gives it away.
    t.clock.advance(2 * MINUTE);
    const replayed = await send(firing);
    expectStatus(replayed, 202);
    expect(replayed.body).toEqual({ applied: 0, ignored: 0, superseded: 1 });
    expect(await openCacheIncidents()).toEqual([]);
    expect(await requestFlush("bob")).toMatchObject({ state: "pending", autoApproved: false });

    // The alert firing again starts later than it ended: that reopens the incident.
    const again = await send(alertmanager("firing", t.clock.now(), null));
    expect(again.body).toEqual({ applied: 1, ignored: 0, superseded: 0 });
    expect(await openCacheIncidents()).toHaveLength(1);

    // Without its times an alert cannot be ordered, so it is refused.
    const undated = JSON.parse(firing.body);
    delete undated.alerts[0].startsAt;
    expectError(await send({ ...firing, body: JSON.stringify(undated) }), 400, "VALIDATION_FAILED");
    const unended = JSON.parse(alertmanager("resolved", startsAt, endsAt).body);
    unended.alerts[0].endsAt = "0001-01-01T00:00:00Z";
    expectError(await send({ ...firing, body: JSON.stringify(unended) }), 400, "VALIDATION_FAILED");
    expect(await openCacheIncidents()).toHaveLength(1);
  });

  it("refuses activation of an auto-approved request once its autoApprove condition is false", async () => {
    expectStatus(
      await send(generic(t.clock.now(), { id: "cache-6", zone: "cache", severity: 1, status: "open" })),
      202,
    );
    const request = await requestFlush("alice");
    expect(request).toMatchObject({ state: "approved", autoApproved: true });
    t.clock.advance(MINUTE);
    expectStatus(
      await send(generic(t.clock.now(), { id: "cache-6", zone: "cache", severity: 1, status: "resolved" })),
      202,
    );

    const refused = await t.call("POST", `/v1/requests/${request.id}/activate`, { as: "alice" });
    expectError(refused, 403, "AUTO_APPROVAL_LAPSED");
    expect(refused.body.error.details.reasons).toEqual([
      expect.objectContaining({ code: "CONDITION_FALSE", policy: "cache-flush", field: "autoApprove.when" }),
    ]);
    expect(await t.count("grants")).toBe(0);
    expect((await t.call("GET", `/v1/requests/${request.id}`, { as: "alice" })).body.state).toBe("approved");
    const denied = (await t.auditEvents()).filter((e) => e.type === "decision.denied");
    expect(denied).toEqual([
      expect.objectContaining({
        actor: "alice",
        zone: "cache",
        subject: request.id,
        context: expect.objectContaining({
          stage: "activation",
          request: request.id,
          reasons: [expect.objectContaining({ code: "CONDITION_FALSE", field: "autoApprove.when" })],
          activationSignals: expect.objectContaining({ incident: expect.objectContaining({ open: false }) }),
        }),
      }),
    ]);

    // A lesser incident does not make the condition true either.
    t.clock.advance(SECOND);
    expectStatus(
      await send(generic(t.clock.now(), { id: "cache-6", zone: "cache", severity: 2, status: "open" })),
      202,
    );
    expectError(
      await t.call("POST", `/v1/requests/${request.id}/activate`, { as: "alice" }),
      403,
      "AUTO_APPROVAL_LAPSED",
    );

    // Once the condition holds again, on a newer event, the same request activates.
    t.clock.advance(SECOND);
    expectStatus(
      await send(generic(t.clock.now(), { id: "cache-6", zone: "cache", severity: 1, status: "open" })),
      202,
    );
    expectStatus(await t.call("POST", `/v1/requests/${request.id}/activate`, { as: "alice" }), 201);
  });

  it("activates a request approved by people whatever the incident does afterwards", async () => {
    const request = await requestFlush("alice");
    expect(request.state).toBe("pending");
    expectStatus(await t.call("POST", `/v1/requests/${request.id}/approve`, { as: "carol", body: {} }), 200);
    expectStatus(await t.call("POST", `/v1/requests/${request.id}/activate`, { as: "alice" }), 201);
  });

  it("sums refused signals into one audit event per sender and interval, and answers 429 beyond the allowance", async () => {
    const attacker = "10.99.0.7";
    const other = "10.99.0.8";
    const wrong = alertmanager("firing", t.clock.now(), null, "not-the-token");
    const before = (await t.auditEvents()).length;
    const statuses: number[] = [];
    for (let i = 0; i < 14; i++) {
      const reply = await send(wrong, attacker);
      statuses.push(reply.status);
      if (reply.status === 429) {
        expectError(reply, 429, "RATE_LIMITED");
        expect(Number(reply.headers["retry-after"])).toBeGreaterThan(0);
      } else expectError(reply, 401, "UNAUTHENTICATED");
    }
    expect(statuses).toEqual([...Array(10).fill(401), ...Array(4).fill(429)]);
    expectError(await send(wrong, other), 401, "UNAUTHENTICATED");
    // A signed delivery refused as a replay counts towards its sender's summary too.
    const delivery = generic(t.clock.now(), { id: "cache-7", zone: "cache", severity: 3, status: "open" });
    expectStatus(await send(delivery, other), 202);
    expectError(await send(delivery, other), 409, "SIGNAL_REPLAYED");
    // The sender with the right token is not locked out by someone sharing its address.
    expectStatus(await send(alertmanager("firing", t.clock.now(), null), attacker), 202);

    // Nothing reached the chain per request.
    const during = (await t.auditEvents()).slice(before);
    expect(during.filter((e) => e.type === "signal.rejected")).toEqual([]);
    await t.app.services.signals.maintain();
    expect((await t.auditEvents()).filter((e) => e.type === "signal.rejected")).toEqual([]);

    t.clock.advance(MINUTE);
    await t.app.services.signals.maintain();
    const rejected = (await t.auditEvents()).filter((e) => e.type === "signal.rejected");
    expect(rejected.map((e) => ({ actor: e.actor, context: e.context }))).toEqual([
      {
        actor: "signal:alertmanager",
        context: expect.objectContaining({
          source: "alertmanager",
          clientAddress: attacker,
          count: 14,
          rateLimited: 4,
          reasons: { "bad-credentials": 14 },
          intervalSeconds: 60,
        }),
      },
      {
        actor: "signal:alertmanager",
        context: expect.objectContaining({ source: "alertmanager", clientAddress: other, count: 1 }),
      },
      {
        actor: "signal:generic",
        context: expect.objectContaining({
          source: "generic",
          clientAddress: other,
          count: 1,
          reasons: { replayed: 1 },
          rateLimited: 0,
        }),
      },
    ]);
    // The token someone tried is never recorded.
    expect(JSON.stringify(rejected)).not.toContain("not-the-token");

    // A new interval: the attacker is answered 401 again, and the count starts over.
    expectError(await send(wrong, attacker), 401, "UNAUTHENTICATED");
    // Refusals not yet summarised are recorded when the server stops.
    await t.restart();
    const last = (await t.auditEvents()).filter((e) => e.type === "signal.rejected").at(-1);
    expect(last?.context).toMatchObject({ clientAddress: attacker, count: 1, rateLimited: 0 });

    const verified = await t.call("GET", "/v1/audit/verify");
    expect(verified.body).toMatchObject({ ok: true });
  });
});

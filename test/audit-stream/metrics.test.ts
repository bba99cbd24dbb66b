import { randomBytes } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { expectStatus, REASON, type TestApp } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";
import { startStreamReceiver, writeTemporaryFile } from "./support/receivers.js";
import { runBreakGlass, startStreamApp, streamConfig } from "./support/stream-app.js";

/** The value of one series in a Prometheus text exposition, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe.each(DIALECTS)("GET /metrics on %s", (dialect) => {
  let t: TestApp | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await t?.close();
    t = undefined;
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it("exposes requests by state, active grants, approval and revocation times, decisions and sink lag", async () => {
    const receiver = await startStreamReceiver();
    cleanups.push(receiver.stop);
    const token = randomBytes(16).toString("hex");
    t = await startStreamApp(
      dialect,
      streamConfig({
        sinks: [`{ name: siem, type: syslog, url: "${receiver.url}" }`],
        server: `  metricsToken: file:${writeTemporaryFile("metrics.token", token)}\n`,
      }),
    );
    await runBreakGlass(t);
    // A second use that stays active.
    const created = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-4711" },
    });
    expectStatus(created, 201);
    t.clock.advance(90_000);
    expectStatus(
      await t.call("POST", `/v1/requests/${created.body.id}/approve`, { as: "lena", body: {} }),
      200,
    );
    expectStatus(await t.call("POST", `/v1/requests/${created.body.id}/activate`, { as: "bob" }), 201);
    expect(await t.app.services.auditDelivery.flush(10_000)).toBe(true);

    const refused = await t.call("GET", "/metrics", { as: null });
    expect(refused.status).toBe(401);
    const reply = await t.call("GET", "/metrics", { as: { token } });
    expect(reply.status).toBe(200);
    expect(String(reply.headers["content-type"])).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = reply.text;
    expect(sample(text, 'firebreak_requests{state="revoked"}')).toBe(1);
    expect(sample(text, 'firebreak_requests{state="active"}')).toBe(1);
    expect(sample(text, 'firebreak_requests{state="pending"}')).toBe(0);
    expect(sample(text, 'firebreak_active_grants{zone="vault"}')).toBe(1);
    expect(sample(text, 'firebreak_time_to_approve_seconds_count{via="approvers"}')).toBe(2);
    // bob waited 90 s for lena: one approval falls in the 120 s bucket and not in the 60 s one.
    expect(sample(text, 'firebreak_time_to_approve_seconds_bucket{le="60",via="approvers"}')).toBe(1);
    expect(sample(text, 'firebreak_time_to_approve_seconds_bucket{le="120",via="approvers"}')).toBe(2);
    expect(sample(text, "firebreak_time_to_revoke_seconds_count")).toBe(1);
    expect(sample(text, 'firebreak_decision_latency_seconds_count{outcome="needs-approval"}')).toBe(2);
    expect(sample(text, 'firebreak_decision_latency_seconds_count{outcome="deny"}')).toBe(1);
    expect(text).toContain("# TYPE firebreak_revocation_failures_total counter");
    expect(sample(text, "firebreak_grants_revocation_failing")).toBe(0);
    expect(sample(text, 'firebreak_audit_sink_lag_events{sink="siem"}')).toBe(0);
    expect(sample(text, 'firebreak_audit_sink_lag_seconds{sink="siem"}')).toBe(0);
    expect(sample(text, 'firebreak_audit_sink_dead_letters{sink="siem",state="dead"}')).toBe(0);
    const events = await t.auditEvents();
    expect(sample(text, 'firebreak_audit_sink_delivered_total{sink="siem"}')).toBe(events.length);
    expect(sample(text, 'firebreak_audit_delivery_lag_seconds_count{sink="siem"}')).toBe(events.length);
    expect(sample(text, 'firebreak_audit_sink_errors_total{sink="siem"}') ?? 0).toBe(0);
    expect(sample(text, 'firebreak_audit_events_total{type="grant.activated"}')).toBe(2);
    expect(text).toContain("process_cpu_user_seconds_total");

    // A sink that stops taking events shows as lag and errors.
    await receiver.stop();
    expectStatus(
      await t.call("POST", "/v1/incidents", {
        body: { id: "INC-9", zone: "vault", severity: 3, title: "disk", status: "open" },
      }),
      201,
    );
    for (let attempt = 0; attempt < 200; attempt++) {
      const next = (await t.call("GET", "/metrics", { as: { token } })).text;
      if ((sample(next, 'firebreak_audit_sink_errors_total{sink="siem"}') ?? 0) >= 1) {
        expect(sample(next, 'firebreak_audit_sink_lag_events{sink="siem"}')).toBeGreaterThanOrEqual(1);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error("the failing sink never showed in the metrics");
  });
});

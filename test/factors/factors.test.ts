import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import * as OTPAuth from "otpauth";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { expectError, expectStatus, startTestApp, type TestApp } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";

/** A webhook receiver on loopback that keeps what it was sent. */
async function startReceiver() {
  const received: { path: string; headers: IncomingMessage["headers"]; body: string }[] = [];
  const server: Server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      received.push({ path: request.url ?? "", headers: request.headers, body });
      response.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    received,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const WEBHOOK_SECRET = `whsec_${Buffer.from("a test webhook signing secret!!").toString("base64")}`;

function config(receiverUrl: string) {
  return `version: 1
auditors: [group:security]
server: { publicUrl: "https://firebreak.example.test", trustedProxies: [127.0.0.2] }
directory:
  users:
    alice: { groups: [sre] }
    carol: { groups: [leads] }
    lena: { groups: [leads] }
    erin: { groups: [security] }
zones:
  bastion: { cidrs: [127.0.0.0/8] }
  office: { cidrs: [10.99.0.0/16] }
  vault: { labels: { tier: data } }
resources:
  vault-db: { zone: vault, type: log, roles: { admin: { grants: [owner] } } }
breakGlass:
  - name: vault-mfa
    zone: vault
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    factors: [totp]
    approverFactors: [totp]
    approvals: [{ from: group:leads, count: 1 }]
    pendingExpiry: 10m
signals:
  alertmanager: { token: env:AM_TOKEN }
  pagerduty: { secret: env:PD_SECRET, services: { PSVC1: vault } }
  generic: { secret: env:GENERIC_SECRET }
notify:
  - { type: webhook, url: "${receiverUrl}/hook", secret: env:HOOK_SECRET }
  - { type: slack, url: "${receiverUrl}/slack" }
`;
}

const ENV = {
  AM_TOKEN: "am-token-123",
  PD_SECRET: "pd-secret-456",
  GENERIC_SECRET: "generic-secret-789",
  HOOK_SECRET: WEBHOOK_SECRET,
};

describe.each(DIALECTS)("factors, signals and notifications on %s", (dialect) => {
  let t: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const secrets = new Map<string, OTPAuth.Secret>();
  const code = (user: string, offsetSteps = 0) =>
    OTPAuth.TOTP.generate({
      secret: secrets.get(user) as OTPAuth.Secret,
      timestamp: t.clock.now() + offsetSteps * 30_000,
    });

  beforeAll(async () => {
    receiver = await startReceiver();
    t = await startTestApp(dialect, { config: config(receiver.url), env: ENV });
  });
  afterAll(async () => {
    await t?.close();
    await receiver?.close();
  });

  async function enroll(user: string) {
    const started = await t.call("POST", "/v1/mfa/totp/enroll", { as: user });
    expectStatus(started, 201);
    expect(started.body.uri).toMatch(/^otpauth:\/\/totp\/Firebreak:/);
    expect(started.body.qrSvg).toContain("<svg");
    secrets.set(user, OTPAuth.Secret.fromBase32(started.body.secret));
    const confirmed = await t.call("POST", "/v1/mfa/totp/verify", { as: user, body: { code: code(user) } });
    expectStatus(confirmed, 200);
    expect(confirmed.body.kind).toBe("totp");
  }

  async function pendingRequest() {
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "vault", role: "admin", duration: "15m", reason: "need to fix the vault" },
    });
    expectStatus(created, 201);
    return created.body.id as string;
  }

  it("enrols TOTP with an otpauth URI, refuses a replayed code, and requires a fresh factor to activate and to approve", async () => {
    await enroll("alice");
    await enroll("carol");
    // The code that confirmed carol's enrolment cannot be used again.
    const replay = await t.call("POST", "/v1/mfa/totp/verify", {
      as: "carol",
      body: { code: code("carol") },
    });
    expectError(replay, 403, "FACTOR_REPLAYED");
    // First factors enrolled with a sign-in alone count once settled (test/factors/enrolment.test.ts).
    t.clock.advance(24 * 3_600_000);

    const id = await pendingRequest();
    t.clock.advance(10 * 60_000 - 120_000);
    // Approving needs the approver's own fresh factor; carol's last one is 8 minutes old.
    expectError(
      await t.call("POST", `/v1/requests/${id}/approve`, { as: "carol", body: {} }),
      403,
      "FACTOR_REQUIRED",
    );
    t.clock.advance(30_000);
    expectStatus(
      await t.call("POST", `/v1/requests/${id}/approve`, { as: "carol", body: { totp: code("carol") } }),
      200,
    );

    // Activation: the last factor is stale; a wrong code fails; a fresh code works and is recorded on the grant.
    expectError(
      await t.call("POST", `/v1/requests/${id}/activate`, { as: "alice", body: {} }),
      403,
      "FACTOR_REQUIRED",
    );
    expectError(
      await t.call("POST", `/v1/requests/${id}/activate`, {
        as: "alice",
        body: { totp: "000000" === code("alice") ? "111111" : "000000" },
      }),
      403,
      "FACTOR_INVALID",
    );
    const activated = await t.call("POST", `/v1/requests/${id}/activate`, {
      as: "alice",
      body: { totp: code("alice") },
    });
    expectStatus(activated, 201);
    expect(activated.body.factor).toEqual({ kind: "totp", at: new Date(t.clock.now()).toISOString() });
    const events = await t.auditEvents();
    const activation = events.find((e) => e.type === "grant.activated");
    expect(activation?.context.factors).toEqual([
      { kind: "totp", at: new Date(t.clock.now()).toISOString() },
    ]);
    expect(events.filter((e) => e.type === "factor.failed").map((e) => e.context.reason)).toEqual(
      expect.arrayContaining(["replayed code", "wrong code"]),
    );
    // Done: the later tests ask for the same role again.
    expectStatus(
      await t.call("POST", `/v1/grants/${activated.body.id}/revoke`, {
        as: "alice",
        body: { reason: "fixed" },
      }),
      200,
    );
  });

  it("rate-limits factor attempts after five failures, and audits it", async () => {
    t.clock.advance(10 * 60_000);
    for (let i = 0; i < 5; i++) {
      expectError(
        await t.call("POST", "/v1/mfa/totp/verify", { as: "alice", body: { code: String(100000 + i) } }),
        403,
        "FACTOR_INVALID",
      );
    }
    expectError(
      await t.call("POST", "/v1/mfa/totp/verify", { as: "alice", body: { code: code("alice") } }),
      429,
      "RATE_LIMITED",
    );
    expect((await t.auditEvents()).some((e) => e.type === "factor.rate_limited" && e.actor === "alice")).toBe(
      true,
    );
    t.clock.advance(6 * 60_000);
    expectStatus(
      await t.call("POST", "/v1/mfa/totp/verify", { as: "alice", body: { code: code("alice") } }),
      200,
    );
  });

  it("notifies approvers with a Standard Webhooks signature and a Slack message, and tells the requester of decisions", async () => {
    receiver.received.length = 0;
    const id = await pendingRequest();
    expectStatus(
      await t.call("POST", `/v1/requests/${id}/deny`, {
        as: "lena",
        body: { reason: "use the runbook first" },
      }),
      200,
    );
    // Deliveries run in the background: wait for what they should bring, not for a fixed time.
    const arrived = (type: string) =>
      receiver.received.some((r) => r.path === "/hook" && JSON.parse(r.body).type === type);
    await vi.waitFor(
      () => {
        expect(arrived("firebreak.request.created") && arrived("firebreak.request.denied")).toBe(true);
        expect(
          receiver.received.some(
            (r) => r.path === "/slack" && JSON.parse(r.body).text.includes("asks for role 'admin'"),
          ),
        ).toBe(true);
      },
      { timeout: 10_000, interval: 20 },
    );
    const hooks = receiver.received
      .filter((r) => r.path === "/hook")
      .map((r) => ({ ...r, json: JSON.parse(r.body) }));
    const created = hooks.find((h) => h.json.type === "firebreak.request.created");
    const denied = hooks.find((h) => h.json.type === "firebreak.request.denied");
    expect(created?.json.data.audience).toBe("approvers");
    expect(created?.json.data.suggestedApprovers).toEqual(["carol", "lena"]);
    expect(created?.json.data.link).toBe(`https://firebreak.example.test/requests/${id}`);
    expect(denied?.json.data.audience).toBe("requester");
    expect(denied?.json.data.message).toContain("use the runbook first");
    // Verify the signature as a receiver would.
    for (const hook of hooks) {
      const key = Buffer.from(WEBHOOK_SECRET.slice(6), "base64");
      const expected = createHmac("sha256", key)
        .update(`${hook.headers["webhook-id"]}.${hook.headers["webhook-timestamp"]}.${hook.body}`)
        .digest("base64");
      expect(hook.headers["webhook-signature"]).toBe(`v1,${expected}`);
    }
    const slack = receiver.received.filter((r) => r.path === "/slack").map((r) => JSON.parse(r.body));
    expect(
      slack.some(
        (m) =>
          m.text.includes("asks for role 'admin'") && JSON.stringify(m.blocks).includes(`/requests/${id}`),
      ),
    ).toBe(true);
  });

  it("reminds approvers before a pending request lapses", async () => {
    receiver.received.length = 0;
    const id = await pendingRequest();
    t.clock.advance(7 * 60_000);
    await t.runScheduler();
    expect(
      (await t.auditEvents()).filter((e) => e.type === "request.reminder" && e.subject === id),
    ).toHaveLength(0);
    t.clock.advance(60_000);
    await t.runScheduler();
    await t.runScheduler();
    expect(
      (await t.auditEvents()).filter((e) => e.type === "request.reminder" && e.subject === id),
    ).toHaveLength(1);
    await vi.waitFor(
      () =>
        expect(
          receiver.received.some(
            (r) => r.path === "/hook" && JSON.parse(r.body).type === "firebreak.request.reminder",
          ),
        ).toBe(true),
      { timeout: 10_000, interval: 20 },
    );
  });

  it("accepts signals only with a valid token or signature, and audits refusals", async () => {
    const alert = {
      status: "firing",
      alerts: [
        {
          status: "firing",
          labels: { alertname: "VaultDown", zone: "vault", severity: "critical" },
          fingerprint: "fp-1",
          startsAt: new Date(t.clock.now()).toISOString(),
        },
      ],
    };
    const am = (token: string) =>
      t.call("POST", "/v1/signals/alertmanager", {
        as: null,
        body: alert,
        headers: { authorization: `Bearer ${token}` },
      });
    expectError(await am("wrong"), 401, "UNAUTHENTICATED");
    expectStatus(await am(ENV.AM_TOKEN), 202);
    expect((await t.call("GET", "/v1/zones/vault")).body.openIncidents).toEqual([
      expect.objectContaining({ id: "fp-1", severity: 1 }),
    ]);

    const pd = JSON.stringify({
      event: {
        id: "evt-pd-1",
        occurred_at: new Date(t.clock.now()).toISOString(),
        event_type: "incident.resolved",
        data: { id: "fp-pd", title: "x", service: { id: "PSVC1" } },
      },
    });
    const sign = (body: string, key: string) => `v1=${createHmac("sha256", key).update(body).digest("hex")}`;
    const pdCall = (signature: string, body = pd) =>
      t.call("POST", "/v1/signals/pagerduty", {
        as: null,
        rawBody: body,
        headers: { "content-type": "application/json", "x-pagerduty-signature": signature },
      });
    expectError(await pdCall(sign(pd, "not-the-secret")), 401, "UNAUTHENTICATED");
    expectError(
      await pdCall(sign(pd, ENV.PD_SECRET), pd.replace("resolved", "triggered")),
      401,
      "UNAUTHENTICATED",
    );
    expectStatus(await pdCall(`v1=deadbeef, ${sign(pd, ENV.PD_SECRET)}`), 202);

    const generic = JSON.stringify({
      id: "g-1",
      zone: "vault",
      severity: 2,
      title: "latency",
      status: "open",
    });
    const timestamp = String(Math.floor(t.clock.now() / 1000));
    const genericCall = (signature: string | null) =>
      t.call("POST", "/v1/signals/generic", {
        as: null,
        rawBody: generic,
        headers: {
          "content-type": "application/json",
          "x-firebreak-timestamp": timestamp,
          ...(signature ? { "x-firebreak-signature": signature } : {}),
        },
      });
    expectError(await genericCall(null), 401, "UNAUTHENTICATED");
    const signed = createHmac("sha256", ENV.GENERIC_SECRET).update(`${timestamp}.${generic}`).digest("hex");
    expectStatus(await genericCall(`sha256=${signed}`), 202);
    // Refusals are summed per sender and minute (test/e2e/signal-replay.test.ts).
    t.clock.advance(60_000);
    await t.app.services.signals.maintain();
    const rejected = (await t.auditEvents()).filter((e) => e.type === "signal.rejected");
    expect(rejected.reduce((sum, e) => sum + Number(e.context.count), 0)).toBeGreaterThanOrEqual(4);
  });

  it("believes X-Forwarded-For only from configured proxies when deciding the source zone", async () => {
    const explain = (remoteAddress: string) =>
      t.call("POST", "/v1/decisions", {
        as: "alice",
        remoteAddress,
        headers: { "x-forwarded-for": "10.99.1.2" },
        body: { zone: "vault", role: "admin", reason: "x" },
      });
    const trusted = await explain("127.0.0.2");
    const untrusted = await explain("127.0.0.3");
    expectStatus(trusted, 200);
    expectStatus(untrusted, 200);
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      remoteAddress: "127.0.0.2",
      headers: { "x-forwarded-for": "10.99.1.2" },
      body: { zone: "vault", role: "admin", reason: "through the proxy" },
    });
    expect(created.body.sourceZone).toBe("office");
    expect(created.body.clientAddress).toBe("10.99.1.2");
    const direct = await t.call("POST", "/v1/requests", {
      as: "alice",
      remoteAddress: "127.0.0.3",
      headers: { "x-forwarded-for": "10.99.1.2" },
      body: { zone: "vault", role: "admin", reason: "spoofed header" },
    });
    expect(direct.body.sourceZone).toBe("bastion");
    expect(direct.body.clientAddress).toBe("127.0.0.3");
  });
});

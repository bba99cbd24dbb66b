import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, expectStatus, startTestApp, type TestApp } from "../../test/support/app.js";
import { DIALECTS } from "../../test/support/databases.js";

const CONFIG = `version: 1
agents: [user:gw-agent]
auditors: [group:security]
directory:
  users:
    alice: { groups: [sre] }
    carol: { groups: [leads] }
    erin: { groups: [security] }
    gw-agent: { groups: [] }
zones:
  bastion: { cidrs: [127.0.0.0/8], enforcement: enforce, labels: { exposure: public } }
  app: { cidrs: [10.30.0.0/24], enforcement: enforce }
  db: { cidrs: [10.40.0.0/24], enforcement: enforce, labels: { tier: data } }
flows:
  - { from: app, to: db, ports: [tcp/5432] }
resources:
  db-pg:
    zone: db
    type: log
    address: 10.40.0.5:5432
    roles:
      admin: { grants: [db_owner] }
breakGlass:
  - name: db-emergency
    zone: db
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
    sourceZones: [bastion]
`;

const report = (overrides: Record<string, unknown> = {}) => ({
  agent: "gw1",
  enforcer: "nftables",
  status: "applied",
  digest: "0".repeat(64),
  graceMs: 30_000,
  mode: "replaced",
  notOpen: [],
  skipped: [],
  drift: { removed: [], restored: [] },
  error: null,
  durationMs: 12,
  where: "this host",
  ...overrides,
});

describe.each(DIALECTS)("enforcement API on %s", (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(dialect, { config: CONFIG });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function activateGrant() {
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { resource: "db-pg", role: "admin", reason: "the replica is stuck again" },
    });
    expectStatus(created, 201);
    expectStatus(
      await t.call("POST", `/v1/requests/${created.body.id}/approve`, { as: "carol", body: {} }),
      200,
    );
    const activated = await t.call("POST", `/v1/requests/${created.body.id}/activate`, {
      as: "alice",
      body: {},
    });
    expectStatus(activated, 201);
    return activated.body as { id: string; endsAt: string };
  }

  it("lets agents, administrators and auditors read the desired state, and nobody else", async () => {
    const state = await t.call("GET", "/v1/enforcement/desired-state", { as: "gw-agent" });
    expectStatus(state, 200);
    expect(state.body.changed).toBe(true);
    expect(state.body.state.zones.map((z: { name: string }) => z.name)).toEqual(["bastion", "app", "db"]);
    expect(state.body.state.flows).toEqual([{ from: "app", to: "db", ports: ["tcp/5432"] }]);
    expectStatus(await t.call("GET", "/v1/enforcement/desired-state", { as: "erin" }), 200);
    expectError(await t.call("GET", "/v1/enforcement/desired-state", { as: "alice" }), 403, "FORBIDDEN");
    expectError(
      await t.call("GET", "/v1/enforcement/desired-state?agent=x", { as: "erin" }),
      403,
      "FORBIDDEN",
    );
    expectError(
      await t.call("POST", "/v1/enforcement/reports", { as: "erin", body: report() }),
      403,
      "FORBIDDEN",
    );
    expectError(await t.call("GET", "/v1/enforcement/desired-state", { as: null }), 401, "UNAUTHENTICATED");
  });

  it("publishes a grant's path, long-polls on the digest an agent holds, and resumes after a change", async () => {
    const first = await t.call("GET", "/v1/enforcement/desired-state?agent=gw1", { as: "gw-agent" });
    const digest = first.body.digest as string;
    const started = Date.now();
    const unchanged = await t.call("GET", `/v1/enforcement/desired-state?agent=gw1&after=${digest}&wait=1`, {
      as: "gw-agent",
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(unchanged.body).toMatchObject({ changed: false, digest, state: null });

    const waiting = t.call("GET", `/v1/enforcement/desired-state?agent=gw1&after=${digest}&wait=20`, {
      as: "gw-agent",
    });
    const grant = await activateGrant();
    const changed = await waiting;
    expect(changed.body.changed).toBe(true);
    expect(changed.body.state.paths).toEqual([
      {
        grantId: grant.id,
        user: "alice",
        zone: "db",
        resource: "db-pg",
        from: { zone: "bastion", address: "127.0.0.1", cidrs: [] },
        to: { host: "10.40.0.5", port: 5432, protocol: "tcp" },
        endsAt: Date.parse(grant.endsAt),
      },
    ]);
    // A reconnect naming the old digest gets the current state at once.
    const resumed = await t.call("GET", `/v1/enforcement/desired-state?agent=gw1&after=${digest}&wait=20`, {
      as: "gw-agent",
    });
    expect(resumed.body.digest).toBe(changed.body.digest);
    expect(resumed.body.serverTime).toBe(t.clock.now());

    const reach = await t.call("GET", "/v1/zones/bastion/reachability", { as: "alice" });
    expectStatus(reach, 200);
    expect(reach.body.direct).toEqual([
      {
        zone: "db",
        path: [{ from: "bastion", to: "db", ports: ["tcp/5432"], via: "grant", grants: [grant.id] }],
        resources: ["db-pg"],
      },
    ]);
    const standingOnly = await t.call("GET", "/v1/zones/bastion/reachability?grants=false", { as: "alice" });
    expect(standingOnly.body.blastRadius.zones).toBe(0);

    expectStatus(
      await t.call("POST", `/v1/grants/${grant.id}/revoke`, { as: "alice", body: { reason: "done" } }),
      200,
    );
    const after = await t.call("GET", "/v1/enforcement/desired-state", { as: "gw-agent" });
    expect(after.body.state.paths).toEqual([]);
  });

  it("records agent reports, audits changes and drift, and refuses malformed ones", async () => {
    const state = await t.call("GET", "/v1/enforcement/desired-state?agent=gw1", { as: "gw-agent" });
    expectStatus(
      await t.call("POST", "/v1/enforcement/reports", {
        as: "gw-agent",
        body: report({
          digest: state.body.digest,
          drift: { removed: ["rule in chain gate: ip saddr 1.2.3.4 accept"], restored: [] },
        }),
      }),
      202,
    );
    const agents = await t.call("GET", "/v1/enforcement/agents", { as: "erin" });
    expect(agents.body.agents).toEqual([
      expect.objectContaining({
        name: "gw1",
        status: "applied",
        current: true,
        inContact: true,
        openGrants: 0,
      }),
    ]);
    const events = await t.auditEvents();
    expect(events.filter((e) => e.type === "enforcement.applied").at(-1)?.context).toMatchObject({
      agent: "gw1",
      mode: "replaced",
    });
    expect(events.find((e) => e.context.alert === "enforcement-drift")?.context.removed).toEqual([
      "rule in chain gate: ip saddr 1.2.3.4 accept",
    ]);
    for (const bad of [
      report({ agent: "Bad Name" }),
      report({ digest: "zz" }),
      report({ notOpen: ["x"] }),
      { ...report(), extra: 1 },
    ])
      expectError(
        await t.call("POST", "/v1/enforcement/reports", { as: "gw-agent", body: bad }),
        400,
        "VALIDATION_FAILED",
      );
  });

  it("answers lint and blast radius for the running configuration", async () => {
    const lint = await t.call("GET", "/v1/lint", { as: "erin" });
    expectStatus(lint, 200);
    expect(lint.body.findings.map((f: { code: string }) => f.code)).toContain("POLICY_WITHOUT_FACTORS");
    expectError(await t.call("GET", "/v1/lint", { as: "alice" }), 403, "FORBIDDEN");
    const blast = await t.call("POST", "/v1/zones/blast-radius", {
      as: "alice",
      body: { resource: "db-pg", role: "admin" },
    });
    expectStatus(blast, 200);
    expect(blast.body.changes).toEqual([
      expect.objectContaining({
        sourceZone: "bastion",
        before: { zones: 0, resources: 0, directZones: 0, directResources: 0 },
        after: { zones: 1, resources: 1, directZones: 1, directResources: 1 },
        addedResources: ["db-pg"],
        paths: [{ resource: "db-pg", to: "10.40.0.5:5432" }],
      }),
    ]);
    expectError(await t.call("GET", "/v1/zones/nowhere/reachability", { as: "alice" }), 404, "NOT_FOUND");
  });
});

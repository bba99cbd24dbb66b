import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgent, type StateSource } from "../../src/agent/agent.js";
import { createHttpStateSource } from "../../src/agent/sources.js";
import {
  canBuildLabs,
  createLab,
  holdConnection,
  type Lab,
  startEchoServer,
  tryConnect,
} from "../../src/bench/netns-lab.js";
import { createNftRunner } from "../../src/enforcers/nftables/nft.js";
import { createNftablesEnforcer } from "../../src/enforcers/nftables/nftables.enforcer.js";
import { type App, createApp } from "../../src/server/app.js";
import { skipUnlessAvailable } from "../support/requirements.js";

/**
 * Real packets through real nftables rules. Zones are network namespaces joined through a router
 * namespace; an agent (following the server over HTTP) enforces in the router. A grant opens the
 * path from the bastion zone to the database's port for its window, and closing it — at expiry —
 * refuses new connections and cuts the one opened during the grant.
 */

const PORT = 5432;
const GRANT_SECONDS = 4;
const skip = skipUnlessAvailable(
  await canBuildLabs(),
  "grant paths through nftables, in network namespaces",
  "needs root, nft and ip (network namespaces)",
);

function config(lab: Lab) {
  const zone = (name: string) => lab.zone(name);
  return `version: 1
agents: [user:gw-agent]
directory:
  users:
    alice: { groups: [sre] }
    carol: { groups: [leads] }
    gw-agent: { groups: [] }
zones:
  bastion: { cidrs: [${zone("bastion").cidr}], enforcement: enforce, labels: { tier: access } }
  app: { cidrs: [${zone("app").cidr}], enforcement: enforce }
  db: { cidrs: [${zone("db").cidr}], enforcement: enforce, labels: { tier: data } }
  legacy: { cidrs: [${zone("legacy").cidr}], enforcement: monitor }
flows:
  - { from: app, to: db, ports: [tcp/${PORT}] }
resources:
  db-pg:
    zone: db
    type: log
    address: ${zone("db").host}:${PORT}
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
}

describe.skipIf(skip)("grant paths through nftables, in network namespaces", () => {
  let lab: Lab;
  let app: App;
  let directory: string;
  let url: string;
  let adminToken: string;
  const controller = new AbortController();
  let running: Promise<void>;
  let cut = false;
  const tokens = new Map<string, string>();

  async function call(
    method: "GET" | "POST",
    path: string,
    as: string,
    body?: unknown,
    remoteAddress?: string,
  ) {
    const token = as === "admin" ? adminToken : tokens.get(as);
    const response = await app.http.inject({
      method,
      url: path,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      ...(remoteAddress ? { remoteAddress } : {}),
    });
    return { status: response.statusCode, body: response.json() };
  }

  async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
    const started = Date.now();
    while (!(await check())) {
      if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async function auditTypes() {
    const { body } = await call("GET", "/v1/audit?limit=1000", "admin");
    return body.events as { type: string; context: Record<string, unknown> }[];
  }

  beforeAll(async () => {
    lab = await createLab(["bastion", "app", "db", "legacy"]);
    directory = await mkdtemp(join(tmpdir(), "firebreak-netns-"));
    await writeFile(join(directory, "firebreak.yaml"), config(lab));
    app = await createApp({
      configPath: join(directory, "firebreak.yaml"),
      databaseUrl: `sqlite:${join(directory, "firebreak.db")}`,
      masterKeyFile: join(directory, "master.key"),
      env: {},
      enforcement: { kind: "agent", confirmTimeoutMs: 5_000 },
    });
    const started = await app.start({ host: "127.0.0.1", port: 0 });
    adminToken = started.admin?.token ?? "";
    url = String(started.address);
    for (const user of ["alice", "carol", "gw-agent"]) {
      const minted = await call("POST", `/v1/users/${user}/tokens`, "admin", {});
      expect(minted.status).toBe(201);
      tokens.set(user, minted.body.token);
    }
    await startEchoServer(lab, lab.zone("db").netns, PORT);
    await startEchoServer(lab, lab.zone("legacy").netns, PORT);

    const http = createHttpStateSource({
      url,
      token: tokens.get("gw-agent") ?? "",
      agent: "gateway",
      enforcer: "nftables",
      graceMs: 1_500,
    });
    // The network between agent and server, which the fail-closed test cuts.
    const source: StateSource = {
      poll: async (after, wait, signal) => {
        if (cut) {
          await new Promise((resolve) => setTimeout(resolve, 100));
          throw new Error("connection refused");
        }
        return http.poll(after, wait, signal);
      },
      report: async (report) => {
        if (cut) throw new Error("connection refused");
        return http.report(report);
      },
    };
    const agent = createAgent({
      name: "gateway",
      enforcerKind: "nftables",
      source,
      enforcer: createNftablesEnforcer({ runner: createNftRunner({ netns: lab.router }) }),
      graceMs: 1_500,
      driftCheckMs: 300,
      log: { info() {}, error() {} },
    });
    running = agent.run(controller.signal);
    await waitUntil("the agent's first report", async () => {
      const { body } = await call("GET", "/v1/enforcement/agents", "admin");
      return body.agents.some(
        (a: { name: string; status: string }) => a.name === "gateway" && a.status === "applied",
      );
    });
  });

  afterAll(async () => {
    controller.abort();
    await running?.catch(() => {});
    await app?.stop();
    await lab?.destroy();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  const bastion = () => lab.zone("bastion");
  const db = () => lab.zone("db");

  it("allows standing flows and nothing else before a grant; a monitor zone only logs", async () => {
    expect(await tryConnect(lab.zone("app").netns, db().host, PORT)).toEqual({ ok: true });
    expect((await tryConnect(bastion().netns, db().host, PORT, 800)).ok).toBe(false);
    expect((await tryConnect(lab.zone("app").netns, bastion().host, 22, 800)).ok).toBe(false);
    // No flow leads to the monitor-mode zone, yet traffic passes (and is logged by the kernel).
    expect(await tryConnect(bastion().netns, lab.zone("legacy").host, PORT)).toEqual({ ok: true });
    const gate = await lab.exec(lab.router, ["nft", "list", "chain", "inet", "firebreak", "gate"]);
    expect(gate).toContain(
      'ct original ip daddr @monitor4 ct state new log prefix "firebreak monitor: " accept',
    );
  });

  it("opens the path for the grant's window, then refuses new connections and cuts open ones", async () => {
    const requested = await call(
      "POST",
      "/v1/requests",
      "alice",
      { resource: "db-pg", role: "admin", duration: `${GRANT_SECONDS}s`, reason: "replica is stuck" },
      bastion().host,
    );
    expect(requested.status).toBe(201);
    expect(requested.body.sourceZone).toBe("bastion");
    expect((await call("POST", `/v1/requests/${requested.body.id}/approve`, "carol", {})).status).toBe(200);
    const activated = await call("POST", `/v1/requests/${requested.body.id}/activate`, "alice", {});
    expect(activated.status, JSON.stringify(activated.body)).toBe(201);
    const grantId: string = activated.body.id;
    const endsAt = Date.parse(activated.body.endsAt);

    // Activation returned once the agent confirmed the path: it works right away.
    expect(await tryConnect(bastion().netns, db().host, PORT)).toEqual({ ok: true });
    const held = holdConnection(lab, bastion().netns, db().host, PORT, 10);
    await held.connected();

    const listed = await lab.exec(lab.router, ["nft", "list", "set", "inet", "firebreak", "grants4"]);
    expect(listed).toContain(`${bastion().host} . ${db().host} . tcp . ${PORT}`);
    expect(listed).toContain(`grant ${grantId}`);

    const ended = await Promise.race([
      held.ended(),
      new Promise<null>((resolve) => setTimeout(() => resolve(null), GRANT_SECONDS * 1000 + 5_000)),
    ]);
    expect(ended, "the connection opened during the grant was not cut").not.toBeNull();
    expect(ended?.event).toBe("error");
    expect(ended?.error).toBe("ECONNRESET");
    const cutAfterMs = (ended?.at ?? 0) - endsAt;
    console.info(`expiry to cut: ${cutAfterMs} ms`);
    expect(cutAfterMs).toBeGreaterThanOrEqual(-50);
    expect(cutAfterMs).toBeLessThan(1_000);
    const lastEcho = held.lastEcho();
    expect(lastEcho).not.toBeNull();
    expect(lastEcho ?? 0).toBeLessThan(endsAt + 1_000);

    expect((await tryConnect(bastion().netns, db().host, PORT, 800)).ok).toBe(false);
    // Standing flows are untouched.
    expect(await tryConnect(lab.zone("app").netns, db().host, PORT)).toEqual({ ok: true });

    await waitUntil("the grant's close to be verified", async () => {
      const grant = await call("GET", `/v1/grants/${grantId}`, "admin");
      return grant.body.state === "expired" && grant.body.revocation.status === "verified";
    });
    const events = await auditTypes();
    const opened = events.find((e) => e.type === "flow.opened" && e.context.grant === grantId);
    expect(opened?.context.rule).toBe(`firebreak:grant:${grantId}`);
    expect(opened?.context.appliedBy).toEqual(["gateway"]);
    const closed = events.find((e) => e.type === "flow.closed" && e.context.grant === grantId);
    expect(closed?.context.closedBy).toEqual(["gateway"]);
    expect(events.some((e) => e.type === "enforcement.applied" && e.context.agent === "gateway")).toBe(true);
  });

  it("removes and reports rules added by hand to Firebreak's table", async () => {
    await lab.exec(lab.router, [
      "nft",
      "insert",
      "rule",
      "inet",
      "firebreak",
      "gate",
      "ip",
      "saddr",
      bastion().host,
      "accept",
    ]);
    await waitUntil("the hand-added rule to be removed", async () => {
      const table = await lab.exec(lab.router, ["nft", "list", "chain", "inet", "firebreak", "gate"]);
      return !table.includes(`ip saddr ${bastion().host} accept`);
    });
    expect((await tryConnect(bastion().netns, db().host, PORT, 800)).ok).toBe(false);
    await waitUntil("the drift alert", async () =>
      (await auditTypes()).some((e) => e.type === "alert.raised" && e.context.alert === "enforcement-drift"),
    );
    const alert = (await auditTypes()).find((e) => e.context.alert === "enforcement-drift");
    expect(JSON.stringify(alert?.context.removed)).toContain(bastion().host);
  });

  it("fails closed: without the server past the grace, grant paths go and standing flows stay", async () => {
    const requested = await call(
      "POST",
      "/v1/requests",
      "alice",
      { resource: "db-pg", role: "admin", duration: "10m", reason: "second look at the replica" },
      bastion().host,
    );
    await call("POST", `/v1/requests/${requested.body.id}/approve`, "carol", {});
    const activated = await call("POST", `/v1/requests/${requested.body.id}/activate`, "alice", {});
    expect(activated.status, JSON.stringify(activated.body)).toBe(201);
    expect(await tryConnect(bastion().netns, db().host, PORT)).toEqual({ ok: true });

    cut = true;
    await waitUntil(
      "the agent to fail closed",
      async () => !(await tryConnect(bastion().netns, db().host, PORT, 500)).ok,
    );
    expect(await tryConnect(lab.zone("app").netns, db().host, PORT)).toEqual({ ok: true });

    cut = false;
    await waitUntil(
      "the path to come back with the server",
      async () => (await tryConnect(bastion().netns, db().host, PORT, 500)).ok,
    );
    await waitUntil("the failed-closed alert", async () =>
      (await auditTypes()).some(
        (e) => e.type === "alert.raised" && e.context.alert === "agent-failed-closed",
      ),
    );
    const revoked = await call("POST", `/v1/grants/${activated.body.id}/revoke`, "alice", { reason: "done" });
    expect(revoked.status).toBe(200);
    expect(revoked.body.revocation.status).toBe("verified");
    expect((await tryConnect(bastion().netns, db().host, PORT, 800)).ok).toBe(false);
  });
});

describe.skipIf(skip)("the server enforcing itself (serve --enforcer nftables)", () => {
  let lab: Lab;
  let app: App;
  let directory: string;
  const tokens = new Map<string, string>();

  async function call(path: string, as: string, body: unknown, remoteAddress?: string) {
    const response = await app.http.inject({
      method: "POST",
      url: path,
      headers: { authorization: `Bearer ${tokens.get(as)}`, "content-type": "application/json" },
      payload: JSON.stringify(body),
      ...(remoteAddress ? { remoteAddress } : {}),
    });
    return { status: response.statusCode, body: response.json() };
  }

  beforeAll(async () => {
    lab = await createLab(["bastion", "app", "db", "legacy"]);
    directory = await mkdtemp(join(tmpdir(), "firebreak-netns-local-"));
    await writeFile(join(directory, "firebreak.yaml"), config(lab));
    app = await createApp({
      configPath: join(directory, "firebreak.yaml"),
      databaseUrl: `sqlite:${join(directory, "firebreak.db")}`,
      masterKeyFile: join(directory, "master.key"),
      env: {},
      enforcement: { kind: "nftables", netns: lab.router, confirmTimeoutMs: 5_000 },
    });
    const started = await app.start(null);
    tokens.set("admin", started.admin?.token ?? "");
    for (const user of ["alice", "carol"])
      tokens.set(user, (await call(`/v1/users/${user}/tokens`, "admin", {})).body.token);
    await startEchoServer(lab, lab.zone("db").netns, PORT);
  });

  afterAll(async () => {
    await app?.stop();
    await lab?.destroy();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it("opens the grant's path at activation and closes it at expiry", async () => {
    const bastion = lab.zone("bastion");
    const db = lab.zone("db");
    expect((await tryConnect(bastion.netns, db.host, PORT, 800)).ok).toBe(false);
    const requested = await call(
      "/v1/requests",
      "alice",
      { resource: "db-pg", role: "admin", duration: "3s", reason: "replica is stuck" },
      bastion.host,
    );
    await call(`/v1/requests/${requested.body.id}/approve`, "carol", {});
    const activated = await call(`/v1/requests/${requested.body.id}/activate`, "alice", {});
    expect(activated.status, JSON.stringify(activated.body)).toBe(201);
    expect(await tryConnect(bastion.netns, db.host, PORT)).toEqual({ ok: true });
    const wait = Date.parse(activated.body.endsAt) - Date.now() + 300;
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
    expect((await tryConnect(bastion.netns, db.host, PORT, 800)).ok).toBe(false);
    expect(await tryConnect(lab.zone("app").netns, db.host, PORT)).toEqual({ ok: true });
  });
});

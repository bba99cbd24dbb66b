import { randomBytes } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, test, vi } from "vitest";
import { GOOD_JUSTIFICATION, processTestConfig } from "../process/fixtures.js";
import { POSTGRES_ADMIN_URL } from "../support/databases.js";
import { followEvents } from "../support/events.js";
import {
  type ApiClient,
  apiClient,
  createEmptyDatabase,
  killAllProcesses,
  processGroup,
  type ServerProcess,
  temporaryDirectory,
  waitFor,
  writeText,
} from "../support/process.js";

// Issue 13: several `firebreak serve` processes on one PostgreSQL database, each current with every
// change whichever replica made it; SQLite refused a second process. Real processes, real database.
vi.setConfig({ testTimeout: 120_000 });
afterAll(killAllProcesses);

interface Access {
  allowed: boolean;
}
const ACCESS = "/v1/access?user=ana&zone=vault&role=admin";

async function ready(url: string): Promise<{ status: number; body: { status: string; reason?: string } }> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: (await response.json()) as { status: string; reason?: string } };
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Waits until every client's access check answers `allowed`. */
async function accessOnAll(clients: ApiClient[], allowed: boolean, what: string) {
  for (const [index, client] of clients.entries())
    await waitFor(async () => (await client.get<Access>(ACCESS)).allowed === allowed, {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: `${what} on replica ${index}`,
    });
}

describe("three replicas on one PostgreSQL database", () => {
  test("every replica sees every change, and one that cannot confirm it is current denies and is not ready", async ({
    onTestFinished,
  }) => {
    const database = await createEmptyDatabase("postgres");
    onTestFinished(database.drop);
    // Replica C connects as a role of its own, so the test can stop it (and only it) reconnecting.
    const role = `replicas_c_${randomBytes(6).toString("hex")}`;
    await withAdmin((c) => c.query(`CREATE ROLE ${role} LOGIN SUPERUSER`));
    onTestFinished(() =>
      withAdmin(async (c) => {
        await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [role]);
        await c.query(`DROP ROLE IF EXISTS ${role}`);
      }),
    );
    const group = processGroup();
    onTestFinished(group.killAll);
    const directory = await temporaryDirectory();
    onTestFinished(directory.remove);
    const config = await writeText(join(directory.path, "firebreak.yaml"), processTestConfig());

    const a = await group.startServer({ config, db: database.url });
    const token = a.admin?.token ?? "";
    const asC = new URL(database.url);
    asC.username = role;
    const [b, c] = (await Promise.all([
      group.startServer({ config, db: database.url }),
      group.startServer({ config, db: asC.toString() }),
    ])) as [ServerProcess, ServerProcess];
    const servers = [a, b, c];
    const admins = servers.map((s) => apiClient(s.url, token));
    const adminA = admins[0] as ApiClient;
    const ana = (await adminA.post<{ token: string }>("/v1/users", { name: "ana", groups: ["sre"] })).token;
    const lead = (await adminA.post<{ token: string }>("/v1/users", { name: "lead", groups: ["leads"] }))
      .token;
    const anaOn = servers.map((s) => apiClient(s.url, ana));
    const leadOn = servers.map((s) => apiClient(s.url, lead));

    // A live view on B, opened before anything happens elsewhere.
    const streamOnB = await followEvents(b.url, { authorization: `Bearer ${token}` });
    onTestFinished(() => streamOnB.stop());

    // Requested on A, approved on B, activated on C.
    const request = await (anaOn[0] as ApiClient).post<{ id: string }>("/v1/requests", {
      zone: "vault",
      role: "admin",
      duration: "1h",
      ...GOOD_JUSTIFICATION,
    });
    await (leadOn[1] as ApiClient).post(`/v1/requests/${request.id}/approve`, { comment: "go" });
    const grant = await (anaOn[2] as ApiClient).post<{ id: string }>(
      `/v1/requests/${request.id}/activate`,
      {},
    );
    await accessOnAll(admins, true, "access while the grant is active");

    // B's stream carries what A and C did.
    const activated = await streamOnB.waitFor(
      (e) => e.type === "grant.activated" && e.subject === grant.id,
      10_000,
    );
    expect(activated.actor).toBe("ana");
    await streamOnB.waitFor((e) => e.type === "request.created" && e.subject === request.id, 1_000);

    // Revoked on A: C, which activated it, stops answering allowed.
    await adminA.post(`/v1/grants/${grant.id}/revoke`, { reason: "incident over, closing access" });
    await accessOnAll(admins, false, "access after the revoke");

    // Every replica lists the three, on one configuration.
    const listed = await (admins[1] as ApiClient).get<{
      replicas: { pid: number; live: boolean; configDigest: string; self: boolean }[];
      configMismatch: boolean;
    }>("/v1/replicas");
    expect(
      listed.replicas
        .filter((r) => r.live)
        .map((r) => r.pid)
        .sort(),
    ).toEqual(servers.map((s) => s.pid).sort());
    expect(listed.replicas.filter((r) => r.self).map((r) => r.pid)).toEqual([b.pid]);
    expect(listed.configMismatch).toBe(false);
    const cli = await group.cli(["--json", "replicas"], { url: c.url, token });
    expect(cli.code, cli.stderr).toBe(0);
    expect((JSON.parse(cli.stdout) as { replicas: unknown[] }).replicas.length).toBeGreaterThanOrEqual(3);
    expect(await adminA.post<{ replicas: number }>("/v1/replicas/reload", {})).toEqual({ replicas: 3 });

    // A second grant, active, then C loses its notification connection and cannot get it back.
    const second = await (anaOn[0] as ApiClient).post<{ id: string }>("/v1/requests", {
      zone: "vault",
      role: "admin",
      duration: "1h",
      ...GOOD_JUSTIFICATION,
    });
    await (leadOn[0] as ApiClient).post(`/v1/requests/${second.id}/approve`, {});
    await (anaOn[0] as ApiClient).post(`/v1/requests/${second.id}/activate`, {});
    await accessOnAll(admins, true, "access on the second grant");
    await withAdmin(async (client) => {
      await client.query(`ALTER ROLE ${role} NOLOGIN`);
      const { rows } = await client.query<{ killed: boolean }>(
        "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = $1",
        [`firebreak-feed ${c.pid}`],
      );
      expect(rows.map((r) => r.killed)).toEqual([true]);
    });
    const adminC = admins[2] as ApiClient;
    const notReady = await waitFor(
      async () => {
        const answer = await ready(c.url);
        return answer.status === 503 ? answer : null;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: "C not ready" },
    );
    expect(notReady.body.status).toBe("not-current");
    expect(notReady.body.reason).toMatch(/change notification connection/);
    // While it cannot confirm it is current it denies, and keeps denying; A still allows.
    for (let i = 0; i < 3; i++) {
      expect((await adminC.get<Access>(ACCESS)).allowed).toBe(false);
      expect((await ready(c.url)).status).toBe(503);
    }
    expect((await adminA.get<Access>(ACCESS)).allowed).toBe(true);
    // Allowed to connect again, it catches up by seq and answers again.
    await withAdmin((client) => client.query(`ALTER ROLE ${role} LOGIN`));
    await waitFor(async () => (await ready(c.url)).status === 200, {
      timeoutMs: 15_000,
      what: "C ready again",
    });
    expect((await adminC.get<Access>(ACCESS)).allowed).toBe(true);
  });
});

describe("SQLite stays one process", () => {
  test("a second serve on the same SQLite file is refused with a clear message", async ({
    onTestFinished,
  }) => {
    const database = await createEmptyDatabase("sqlite");
    onTestFinished(database.drop);
    const group = processGroup();
    onTestFinished(group.killAll);
    const directory = await temporaryDirectory();
    onTestFinished(directory.remove);
    const config = await writeText(join(directory.path, "firebreak.yaml"), processTestConfig());
    const first = await group.startServer({ config, db: database.url });
    const second = group.spawnServer({ config, db: database.url });
    const failure = await second.started.then(
      () => null,
      (error: unknown) => String(error),
    );
    expect(failure).toMatch(/another firebreak serve is already running/);
    expect((await ready(first.url)).status).toBe(200);
    // The lock dies with the process: after kill -9, a new serve starts on the file.
    first.signal("SIGKILL");
    await first.exited;
    const restarted = await group.startServer({ config, db: database.url });
    expect((await ready(restarted.url)).status).toBe(200);
  });
});

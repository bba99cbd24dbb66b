import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, test, vi } from "vitest";
import { createTestDatabase, DIALECTS } from "../support/databases.js";
import {
  apiClient,
  createEmptyDatabase,
  describeResult,
  killAllProcesses,
  parseJson,
  processGroup,
  temporaryDirectory,
  waitFor,
  waitForReady,
  writeText,
} from "../support/process.js";
import { processTestConfig } from "./fixtures.js";

// Real processes on a shared machine: generous limits, so load slows these tests but never fails them.
vi.setConfig({ testTimeout: 90_000 });
afterAll(killAllProcesses);

const SERVERS = 3;

describe.concurrent.each(DIALECTS)("concurrent first start on %s", (dialect) => {
  test(`${SERVERS} servers started at once on one un-migrated database: all come up on PostgreSQL (one on SQLite, the others refused) and exactly one creates the administrator`, async ({
    onTestFinished,
  }) => {
    const database = await createEmptyDatabase(dialect);
    onTestFinished(database.drop);
    // Hooks run last-registered first: processes end before their database is dropped.
    const group = processGroup();
    onTestFinished(group.killAll);
    const directory = await temporaryDirectory();
    onTestFinished(directory.remove);
    const config = await writeText(join(directory.path, "firebreak.yaml"), processTestConfig());

    // Spawned in one tick: they race through migrations, the administrator and the first
    // config.applied event.
    const spawned = Array.from({ length: SERVERS }, () => group.spawnServer({ config, db: database.url }));
    const outcomes = await Promise.allSettled(spawned.map((s) => s.started));
    const failures = outcomes.flatMap((o) => (o.status === "rejected" ? [String(o.reason)] : []));
    if (dialect === "sqlite") {
      // SQLite serves from one process (SPEC, replicas): the others are refused, never left to diverge.
      expect(failures, failures.join("\n\n")).toHaveLength(SERVERS - 1);
      for (const failure of failures)
        expect(failure).toMatch(/another firebreak serve is already running on /);
    } else {
      expect(failures, failures.join("\n\n")).toEqual([]);
    }
    const servers = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    await Promise.all(servers.map((s) => waitForReady(s.url)));

    const admins = servers.flatMap((s) => (s.admin ? [s.admin] : []));
    expect(admins, "exactly one server prints an administrator token").toHaveLength(1);
    const token = admins[0]?.token ?? "";

    // Every server accepts that token: they share one database and one administrator.
    for (const server of servers) {
      const me = await apiClient(server.url, token).get<{ name: string; isAdmin: boolean }>("/v1/whoami");
      expect(me).toMatchObject({ name: "admin", isAdmin: true });
    }

    const admin = apiClient(servers[0]?.url ?? "", token);
    const { events } = await admin.get<{ events: { type: string }[] }>("/v1/audit?limit=1000");
    const count = (type: string) => events.filter((e) => e.type === type).length;
    expect(count("user.created"), "one administrator, created once").toBe(1);
    expect(count("config.applied"), "the configuration is recorded once, not once per server").toBe(1);

    const verify = await group.cli(["--json", "audit", "verify"], { url: servers.at(-1)?.url, token });
    expect(verify.code, describeResult(verify)).toBe(0);
    expect(parseJson(verify)).toMatchObject({ ok: true, count: events.length });

    // Each one still stops cleanly.
    for (const server of servers) expect(await server.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});

// The race above shows itself only some of the time (in about a third of runs here). Here it is forced: a lock holds every server
// at the moment it first reads the stored configuration, and all are released together.
// PostgreSQL only, because only there can a test see exactly who is waiting on a lock.
describe("first start with every server released at once from a lock (postgres)", () => {
  test(`${SERVERS} servers that read the stored configuration at the same moment all come up and record it once`, async ({
    onTestFinished,
  }) => {
    const database = await createTestDatabase("postgres");
    onTestFinished(database.drop);
    const blocker = new pg.Client({ connectionString: database.url });
    await blocker.connect();
    onTestFinished(() => blocker.end());
    const group = processGroup();
    onTestFinished(group.killAll);
    const directory = await temporaryDirectory();
    onTestFinished(directory.remove);
    const config = await writeText(join(directory.path, "firebreak.yaml"), processTestConfig());

    await blocker.query("BEGIN");
    await blocker.query("LOCK TABLE config_state IN ACCESS EXCLUSIVE MODE");
    const spawned = Array.from({ length: SERVERS }, () => group.spawnServer({ config, db: database.url }));
    await waitFor(
      async () => {
        const { rows } = await blocker.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
           WHERE c.relname = 'config_state' AND NOT l.granted
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
        );
        return (rows[0]?.waiting ?? 0) >= SERVERS;
      },
      { timeoutMs: 60_000, what: `${SERVERS} servers waiting to read config_state` },
    );
    await blocker.query("COMMIT");

    const outcomes = await Promise.allSettled(spawned.map((s) => s.started));
    const failures = outcomes.flatMap((o) => (o.status === "rejected" ? [String(o.reason)] : []));
    expect(failures, failures.join("\n\n")).toEqual([]);
    const servers = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    const admins = servers.flatMap((s) => (s.admin ? [s.admin] : []));
    expect(admins).toHaveLength(1);
    const admin = apiClient(servers[0]?.url ?? "", admins[0]?.token ?? "");
    const { events } = await admin.get<{ events: { type: string }[] }>("/v1/audit?type=config.applied");
    expect(events).toHaveLength(1);
    expect(await admin.get("/v1/audit/verify")).toMatchObject({ ok: true });
  });
});

import { execFile, spawn } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { parseStatements, ready } from "../gateway/postgres/classify.js";
import { createStatementInspector } from "../gateway/postgres/statement-rules.js";
import { createApp } from "../server/app.js";
import { measure } from "./measure.js";

/**
 * The PostgreSQL gateway benchmark (issue 12): `pgbench -S -c16 -j2` and pgbench's default
 * TPC-B-like script, direct to PostgreSQL, through PgBouncer (Debian's package, session pooling)
 * and through the gateway, in alternating rounds of one run, so a slow moment of the shared machine
 * falls on every target alike. Printed: TPS and its ratio to direct, side by side; the latency one
 * client sees per statement (p50/p99) and what each hop adds; memory per open session.
 * Figures are printed, never asserted.
 *
 * Run alone: `npx tsc -p tsconfig.bench.json && node --expose-gc dist-bench/bench/gateway.bench.js`
 * (GATEWAY_BENCH_SECONDS, GATEWAY_BENCH_ROUNDS and GATEWAY_BENCH_SCALE shorten or lengthen it).
 */

const exec = promisify(execFile);
const PG = { host: "127.0.0.1", port: 5432, user: "postgres" };
const DATABASE = "g2bench_pgbench";
const SCALE = Number(process.env.GATEWAY_BENCH_SCALE ?? 5);
const SECONDS = Number(process.env.GATEWAY_BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.GATEWAY_BENCH_ROUNDS ?? 2);
// PostgreSQL allows 100 connections by default, and other work on the machine holds some.
const IDLE_SESSIONS = 40;

/** A place pgbench can connect to, with what it costs per open session (the process it runs in). */
interface Target {
  name: string;
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
  /** Resident memory of the process that carries the sessions, in bytes. */
  rss(): number;
  stop(): Promise<void>;
}

const GATEWAY_CONFIG = `version: 1
directory:
  users:
    bench: { groups: [sre] }
zones:
  bench: { cidrs: [127.0.0.0/8] }
resources:
  bench-pg:
    zone: bench
    type: postgres
    address: 127.0.0.1:5432
    connection: { url: "postgresql://postgres@127.0.0.1:5432/${DATABASE}" }
    namePrefix: g2b_
    access: gateway
    roles:
      bench:
        grants: [g2bench_rw]
        statements:
          - deny: "statement.command.startsWith('DROP') || statement.command == 'TRUNCATE'"
            message: not part of a benchmark's purpose
          - allow: "statement.category in ['read', 'write', 'transaction', 'session']"
breakGlass:
  - name: bench
    zone: bench
    roles: [bench]
    eligible: [group:sre]
    duration: { default: 1h, max: 1h }
gateway:
  postgres:
    listen: 127.0.0.1:0
    maxConnectionsPerAddress: 1000
`;

/**
 * The gateway as `firebreak serve` runs it, in this process: a server on an embedded database, a
 * break-glass grant on a gateway resource whose role carries statement rules (so every statement
 * is classified, checked and recorded), and pgbench connecting as the grant with its token.
 */
export async function startGateway(): Promise<Target> {
  await withAdmin((admin) =>
    admin.query(
      "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'g2bench_rw') THEN CREATE ROLE g2bench_rw NOLOGIN; END IF; END $$",
    ),
  );
  const inDatabase = new pg.Client({ ...PG, database: DATABASE });
  await inDatabase.connect();
  await inDatabase.query("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO g2bench_rw");
  await inDatabase.end();

  const directory = mkdtempSync(join(tmpdir(), "g2bench-gateway-"));
  writeFileSync(join(directory, "firebreak.yaml"), GATEWAY_CONFIG);
  const app = await createApp({
    configPath: join(directory, "firebreak.yaml"),
    databaseUrl: `sqlite:${join(directory, "firebreak.db")}`,
    masterKeyFile: join(directory, "master.key"),
    log: { info() {}, error: (message, fields) => console.error(message, fields) },
  });
  const { admin } = await app.start(null);
  const call = async (url: string, token: string, body: unknown = {}) => {
    const response = await app.http.inject({
      method: "POST",
      url,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      payload: JSON.stringify(body),
    });
    if (response.statusCode >= 300)
      throw new Error(`${url}: ${response.statusCode} ${response.body.slice(0, 300)}`);
    return JSON.parse(response.body) as Record<string, unknown>;
  };
  try {
    const user = (await call("/v1/users/bench/tokens", admin?.token ?? "")).token as string;
    const request = await call("/v1/requests", user, {
      resource: "bench-pg",
      role: "bench",
      reason: "measuring the gateway against PgBouncer",
    });
    const activated = await call(`/v1/requests/${String(request.id)}/activate`, user);
    const grant = String((activated.grant as { id?: string } | undefined)?.id ?? activated.id);
    const credential = await call(`/v1/grants/${grant}/credential`, user);
    const token = (credential.credentials as { secret: string }[])[0]?.secret ?? "";
    const address = app.services.gateways.address() as { host: string; port: number };
    return {
      name: "gateway",
      host: address.host,
      port: address.port,
      user: grant,
      password: token,
      database: "bench-pg",
      // The gateway shares this process: collect first, or garbage from the pgbench rounds hides the sessions.
      rss: heapAndBuffers,
      async stop() {
        await call(`/v1/grants/${grant}/revoke`, user, { reason: "benchmark done" }).catch(() => undefined);
        await app.stop();
        rmSync(directory, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await app.stop();
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }
}

/** Heap and buffers after a collection, not RSS: freed pages of earlier rounds leave RSS at the allocator's whim. */
function heapAndBuffers(): number {
  (globalThis as { gc?: () => void }).gc?.();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.external;
}

async function withAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const admin = new pg.Client({ ...PG, database: "postgres" });
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

function rssOf(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kib === undefined ? Number.NaN : Number(kib) * 1024;
  } catch {
    return Number.NaN;
  }
}

export async function prepareDatabase(): Promise<void> {
  const admin = new pg.Client({ ...PG, database: "postgres" });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${DATABASE}`);
  } finally {
    await admin.end();
  }
  await exec(
    "pgbench",
    ["-i", "-q", "-s", String(SCALE), "-h", PG.host, "-p", String(PG.port), "-U", PG.user, DATABASE],
    {
      env: { ...process.env, PGPASSWORD: "" },
    },
  );
}

/** PgBouncer in session pooling, started from a private directory (it refuses to run as root: run as postgres). */
async function startPgBouncer(): Promise<Target> {
  const directory = mkdtempSync(join(tmpdir(), "g2bench-pgbouncer-"));
  chmodSync(directory, 0o755);
  const port = await freePort();
  writeFileSync(join(directory, "users.txt"), `"${PG.user}" ""\n`);
  writeFileSync(
    join(directory, "pgbouncer.ini"),
    [
      "[databases]",
      `${DATABASE} = host=${PG.host} port=${PG.port} dbname=${DATABASE}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(directory, "users.txt")}`,
      "pool_mode = session",
      "max_client_conn = 1000",
      "default_pool_size = 200",
      "max_db_connections = 0",
      `logfile = ${join(directory, "pgbouncer.log")}`,
      "",
    ].join("\n"),
  );
  const asPostgres = process.getuid?.() === 0;
  // PgBouncer writes its log there as the user it runs as.
  if (asPostgres) {
    const { stdout } = await exec("id", ["-u", "postgres"]);
    const uid = Number(stdout.trim());
    chownSync(directory, uid, -1);
    for (const file of readdirSync(directory)) chownSync(join(directory, file), uid, -1);
  }
  const child = asPostgres
    ? spawn("runuser", ["-u", "postgres", "--", "/usr/sbin/pgbouncer", join(directory, "pgbouncer.ini")], {
        stdio: "ignore",
      })
    : spawn("/usr/sbin/pgbouncer", [join(directory, "pgbouncer.ini")], { stdio: "ignore" });
  const target: Target = {
    name: "pgbouncer",
    host: "127.0.0.1",
    port,
    user: PG.user,
    database: DATABASE,
    rss: () => {
      // runuser forks pgbouncer: measure the child, not runuser.
      const pids = asPostgres ? childPids(child.pid) : [child.pid];
      return pids.reduce((sum: number, pid) => sum + rssOf(pid), 0);
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => setTimeout(resolve, 200));
      rmSync(directory, { recursive: true, force: true });
    },
  };
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const client = new pg.Client({ host: target.host, port, user: PG.user, database: DATABASE });
      await client.connect();
      await client.end();
      return target;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  throw new Error(
    `pgbouncer did not start: ${readFileSync(join(directory, "pgbouncer.log"), "utf8").slice(-500)}`,
  );
}

function childPids(parent: number | undefined): number[] {
  if (parent === undefined) return [];
  try {
    return readFileSync(`/proc/${parent}/task/${parent}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

interface PgbenchResult {
  tps: number;
  /** Per-transaction latencies in microseconds, when logged. */
  latencies: number[];
}

export async function pgbench(target: Target, args: string[], logged = false): Promise<PgbenchResult> {
  const directory = logged ? mkdtempSync(join(tmpdir(), "g2bench-log-")) : undefined;
  try {
    const { stdout } = await exec(
      "pgbench",
      [
        "-n",
        "-h",
        target.host,
        "-p",
        String(target.port),
        "-U",
        target.user,
        ...args,
        ...(directory ? ["-l", "--log-prefix", join(directory, "tx")] : []),
        target.database,
      ],
      { env: { ...process.env, PGPASSWORD: target.password ?? "" }, maxBuffer: 16 * 1024 * 1024 },
    );
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1] ?? Number.NaN);
    const latencies: number[] = [];
    if (directory)
      for (const file of readdirSync(directory))
        for (const line of readFileSync(join(directory, file), "utf8").split("\n")) {
          // client_id transaction_no time script_no time_epoch time_us
          const micros = Number(line.split(" ")[2]);
          if (Number.isFinite(micros) && line !== "") latencies.push(micros);
        }
    return { tps, latencies };
  } finally {
    if (directory) rmSync(directory, { recursive: true, force: true });
  }
}

function percentile(values: number[], fraction: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))] as number;
}

/** Opens idle sessions and reports the carrying process's resident memory per session. */
async function memoryPerSession(target: Target): Promise<number> {
  const before = target.rss();
  const clients: pg.Client[] = [];
  try {
    for (let index = 0; index < IDLE_SESSIONS; index++) {
      const client = new pg.Client({
        host: target.host,
        port: target.port,
        user: target.user,
        password: target.password,
        database: target.database,
      });
      await client.connect();
      await client.query("select 1");
      clients.push(client);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    return (target.rss() - before) / IDLE_SESSIONS;
  } finally {
    await Promise.all(clients.map((client) => client.end().catch(() => undefined)));
  }
}

const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");

export async function runGatewayBenchmarks(): Promise<void> {
  console.log("\n## PostgreSQL gateway (issue 12): pgbench direct, through PgBouncer, through the gateway");
  await ready();
  // The classifier's own cost, for the record: what the gateway adds per statement before forwarding.
  const inspector = createStatementInspector({
    rulesFor: () => [{ allow: "statement.category == 'read' || statement.category == 'write'" }],
  });
  const grant = { id: "grt_bench", user: "bench", zone: "z", role: "r", policy: "p", resource: DATABASE };
  const classified = measure(
    "classify + rules, pgbench -S statement (new literal each time)",
    20_000,
    100,
    (index) => {
      const outcome = inspector.inspect({
        text: `SELECT abalance FROM pgbench_accounts WHERE aid = ${index};`,
        grant,
        request: null,
      });
      return outcome.refusal === null;
    },
  );
  const parsedOnly = measure(
    "parse only, same statement (cached)",
    200_000,
    1000,
    () => parseStatements("SELECT abalance FROM pgbench_accounts WHERE aid = $1;").ok,
  );
  for (const row of [classified, parsedOnly])
    console.log(`${row.name}: p50 ${fixed(row.p50 / 1000, 1)} µs, p99 ${fixed(row.p99 / 1000, 1)} µs`);

  await prepareDatabase();
  const direct: Target = {
    name: "direct",
    ...PG,
    database: DATABASE,
    // The benchmark's own clients live in this process: measured against direct, they are the
    // baseline taken off the gateway's in-process figure.
    rss: heapAndBuffers,
    async stop() {},
  };
  const targets: Target[] = [direct, await startPgBouncer()];
  try {
    targets.push(await startGateway());
  } catch (error) {
    console.log(`(the gateway could not be started here: ${(error as Error).message})`);
  }

  const scripts = [
    { name: "select-only (-S)", args: ["-S", "-c16", "-j2", "-T", String(SECONDS)] },
    { name: "tpcb-like", args: ["-c16", "-j2", "-T", String(SECONDS)] },
  ];
  const tps = new Map<string, number[]>();
  const latencies = new Map<string, number[]>();
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate the order too, so no target always runs right after the same neighbour.
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const script of scripts)
        for (const target of order) {
          const result = await pgbench(target, script.args);
          const key = `${script.name}|${target.name}`;
          tps.set(key, [...(tps.get(key) ?? []), result.tps]);
        }
      for (const target of order) {
        const result = await pgbench(
          target,
          ["-S", "-c1", "-j1", "-T", String(Math.max(2, SECONDS / 2))],
          true,
        );
        latencies.set(target.name, [...(latencies.get(target.name) ?? []), ...result.latencies]);
      }
    }

    const median = (values: number[]) => percentile(values, 0.5);
    console.log(
      `\npgbench, scale ${SCALE}, ${SECONDS}s per run, ${ROUNDS} alternating rounds (median TPS; ratio to direct):`,
    );
    console.log(["script".padEnd(18), ...targets.map((t) => t.name.padStart(22))].join(""));
    for (const script of scripts) {
      const base = median(tps.get(`${script.name}|direct`) ?? []);
      const cells = targets.map((target) => {
        const value = median(tps.get(`${script.name}|${target.name}`) ?? []);
        return `${fixed(value)} (${fixed(value / base, 2)}×)`.padStart(22);
      });
      console.log([script.name.padEnd(18), ...cells].join(""));
    }

    const directP50 = percentile(latencies.get("direct") ?? [], 0.5);
    const directP99 = percentile(latencies.get("direct") ?? [], 0.99);
    console.log("\none client, pgbench -S (one statement per transaction): latency per statement, µs");
    for (const target of targets) {
      const values = latencies.get(target.name) ?? [];
      const p50 = percentile(values, 0.5);
      const p99 = percentile(values, 0.99);
      const added =
        target.name === "direct"
          ? ""
          : `  added p50 ${fixed(p50 - directP50)}  p99 ${fixed(p99 - directP99)}`;
      console.log(
        `${target.name.padEnd(12)} p50 ${fixed(p50).padStart(6)}  p99 ${fixed(p99).padStart(6)}${added}`,
      );
    }

    const collected = typeof (globalThis as { gc?: unknown }).gc === "function";
    console.log(
      `\nmemory per open session (${IDLE_SESSIONS} idle sessions, resident memory of PgBouncer, heap and buffers of the gateway${collected ? ", after a collection" : "; node --expose-gc gives a steadier gateway figure"}):`,
    );
    const clientSide = await memoryPerSession(direct).catch(() => Number.NaN);
    for (const target of targets.slice(1)) {
      const bytes = await memoryPerSession(target).catch((error: Error) => {
        console.log(`${target.name.padEnd(12)} could not open ${IDLE_SESSIONS} sessions: ${error.message}`);
        return Number.NaN;
      });
      // The gateway's figure holds the benchmark's own clients too (same process): take them off.
      const net = target.name === "gateway" ? bytes - clientSide : bytes;
      if (Number.isFinite(net)) console.log(`${target.name.padEnd(12)} ${fixed(net / 1024, 1)} KiB`);
    }
  } finally {
    for (const target of targets) await target.stop();
  }
}

if (process.argv[1]?.endsWith("gateway.bench.js")) await runGatewayBenchmarks();

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { ResourceConfig } from "../config/schema.js";
import { createMariadbConnector } from "../connectors/mariadb/mariadb.connector.js";
import { createPostgresConnector } from "../connectors/postgres/postgres.connector.js";
import { generateEd25519KeyPair } from "../connectors/ssh/keygen.js";
import { createSshConnector } from "../connectors/ssh/ssh.connector.js";
import type { ConnectorDeps, CredentialConnector } from "../plugins/contracts.js";
import { createApp } from "../server/app.js";
import { createManualClock } from "../shared/clock.js";

/**
 * Issue 3's benchmark: issue and revoke latency per connector against the real servers, and 1,000
 * PostgreSQL grants expiring in the same second — the time until the last one is verified closed —
 * beside the bare cost of the same CREATE/DROP statements run directly through `pg` at the same
 * concurrency.
 */
const SOCKET = "/var/run/postgresql";
const GRANTS = 1_000;
const CONCURRENCY = 16;

const deps: ConnectorDeps = {
  secret: () => {
    throw new Error("no secret references in the benchmark");
  },
  keys: { getOrCreate: async () => ({ privateKey: "", publicKey: "" }) },
  now: () => Date.now(),
};

function percentiles(samples: number[]) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (f: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(f * sorted.length) - 1))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

async function pool<T>(count: number, work: (index: number) => Promise<T>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let index = next++; index < count; index = next++) await work(index);
    }),
  );
}

async function withAdmin<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: SOCKET, user: "postgres", database });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

async function latency(
  name: string,
  connector: CredentialConnector,
  resource: ResourceConfig,
  runs: number,
  publicKey: string | null = null,
) {
  const issue: number[] = [];
  const revoke: number[] = [];
  for (let i = 0; i < runs; i++) {
    const grantId = `grt_bench${randomBytes(8).toString("hex")}${i}`;
    const start = performance.now();
    const issued = await connector.issue({
      grantId,
      user: `bench${i}`,
      zone: resource.zone,
      resourceName: "bench",
      resource,
      role: "admin",
      startsAt: Date.now(),
      endsAt: Date.now() + 600_000,
      sourceZone: null,
      sourceCidrs: [],
      clientAddress: "127.0.0.1",
      publicKey,
    });
    issue.push(performance.now() - start);
    const context = {
      grantId,
      user: `bench${i}`,
      resourceName: "bench",
      resource,
      externalId: issued.externalId,
      detail: issued.detail,
    };
    const closeStart = performance.now();
    await connector.revoke(context);
    if (!(await connector.verifyRevoked(context))) throw new Error(`${name}: revocation did not verify`);
    revoke.push(performance.now() - closeStart);
  }
  const i = percentiles(issue);
  const r = percentiles(revoke);
  console.log(
    `  ${name.padEnd(10)} issue p50 ${i.p50.toFixed(1)} ms  p99 ${i.p99.toFixed(1)} ms   revoke+verify p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms   (${runs} runs)`,
  );
}

export async function runConnectorBenchmarks(): Promise<void> {
  const database = `firebreak_bench_${randomBytes(4).toString("hex")}`;
  const dir = await mkdtemp(join(tmpdir(), "firebreak-bench-conn-"));
  await withAdmin("postgres", (c) => c.query(`CREATE DATABASE ${database}`));
  await withAdmin(database, async (c) => {
    await c.query("CREATE ROLE bench_owner NOLOGIN").catch(() => {});
  });
  try {
    console.log("\n(d) connector latency against the real servers, one grant at a time");
    const pgResource = {
      zone: "db",
      type: "postgres",
      namePrefix: "bn_",
      connection: { url: `postgres://postgres@localhost/${database}?host=${SOCKET}` },
      roles: { admin: { grants: ["bench_owner"] } },
    } as unknown as ResourceConfig;
    const pgConnector = createPostgresConnector(deps);
    await latency("postgres", pgConnector, pgResource, 100);
    await pgConnector.close();

    const mariadb = createMariadbConnector(deps);
    try {
      const mariaResource = {
        zone: "db",
        type: "mariadb",
        namePrefix: "bn_",
        connection: { url: "mysql://root@127.0.0.1:3306/" },
        roles: { admin: { privileges: ["SELECT ON firebreak_bench.*"] } },
      } as unknown as ResourceConfig;
      await latency("mariadb", mariadb, mariaResource, 50);
    } catch (error) {
      console.log(`  mariadb    not measured: ${(error as Error).message}`);
    } finally {
      await mariadb.close();
    }

    // SSH: a certificate signed by the zone's CA per grant; revoke publishes a key revocation list.
    const stored = new Map<string, { privateKey: string; publicKey: string }>();
    const ssh = createSshConnector({
      ...deps,
      keys: {
        async getOrCreate(_kind, zone, create) {
          const existing = stored.get(zone) ?? (await create());
          stored.set(zone, existing);
          return existing;
        },
      },
    });
    const userKey = await generateEd25519KeyPair("bench-user");
    const sshResource = {
      zone: "db",
      type: "ssh",
      roles: { admin: { principals: ["ops"] } },
    } as unknown as ResourceConfig;
    await latency("ssh", ssh, sshResource, 50, userKey.publicKey);
    await ssh.close();

    console.log(
      `\n(d) ${GRANTS} PostgreSQL grants expiring in the same second (${CONCURRENCY} closed at once)`,
    );
    const users = Array.from({ length: GRANTS }, (_, i) => `u${i}`);
    const configPath = join(dir, "bench.yaml");
    await writeFile(
      configPath,
      `version: 1
directory:
  users:
${users.map((u) => `    ${u}: { groups: [sre] }`).join("\n")}
zones:
  db: {}
resources:
  bench-pg:
    zone: db
    type: postgres
    namePrefix: bx_
    connection: { url: "postgres://postgres@localhost/${database}?host=${SOCKET}" }
    roles: { admin: { grants: [bench_owner] } }
breakGlass:
  - name: bench
    zone: db
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 10m, max: 1h }
`,
    );
    const clock = createManualClock(Date.now());
    const app = await createApp({
      configPath,
      databaseUrl: `sqlite:${join(dir, "fb.db")}`,
      clock,
      masterKeyFile: join(dir, "master.key"),
    });
    try {
      const { admin } = await app.start(null);
      const adminPrincipal = await app.services.users.authenticate(admin?.token);
      void adminPrincipal;
      const activateStart = performance.now();
      await pool(GRANTS, async (i) => {
        const principal = { name: users[i] as string, groups: ["sre"], isAdmin: false, isAuditor: false };
        const request = await app.services.requests.create(
          principal,
          { zone: "db", role: "admin", durationMs: 600_000, reason: "benchmark" },
          null,
        );
        await app.services.grants.activate(principal, request.id, []);
      });
      const activateSeconds = (performance.now() - activateStart) / 1000;
      clock.advance(600_000);
      const expiryStart = performance.now();
      await app.services.scheduler.runDue();
      const expirySeconds = (performance.now() - expiryStart) / 1000;
      const verified = await app.db
        .selectFrom("grants")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("revocation_status", "=", "verified")
        .executeTakeFirstOrThrow();
      const left = await withAdmin(database, (c) =>
        c.query("select count(*)::int as n from pg_roles where rolname like 'bx\\_%'"),
      );

      // The floor: the same statements on the same number of roles, straight through pg.
      const bare = new pg.Pool({ host: SOCKET, user: "postgres", database, max: 8 });
      const createStart = performance.now();
      await pool(GRANTS, (i) =>
        bare.query(`CREATE ROLE bare_${i} LOGIN PASSWORD 'x' VALID UNTIL 'infinity' IN ROLE bench_owner`),
      );
      const bareCreateSeconds = (performance.now() - createStart) / 1000;
      const dropStart = performance.now();
      await pool(GRANTS, async (i) => {
        await bare.query(`ALTER ROLE bare_${i} NOLOGIN`);
        await bare.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", [
          `bare_${i}`,
        ]);
        await bare.query(`DROP OWNED BY bare_${i}`);
        await bare.query(`DROP ROLE bare_${i}`);
      });
      const bareDropSeconds = (performance.now() - dropStart) / 1000;
      await bare.end();
      console.log(
        `  activation of ${GRANTS} grants (request + activate + CREATE ROLE): ${activateSeconds.toFixed(2)} s; bare CREATE ROLE x${GRANTS}: ${bareCreateSeconds.toFixed(2)} s`,
      );
      console.log(
        `  expiry to last verified close: ${expirySeconds.toFixed(2)} s (${Number(verified.n)} verified, ${left.rows[0].n} roles left); bare NOLOGIN+terminate+DROP x${GRANTS}: ${bareDropSeconds.toFixed(2)} s (${(expirySeconds / bareDropSeconds).toFixed(1)}x)`,
      );
    } finally {
      await app.stop();
    }
  } finally {
    await withAdmin("postgres", (c) => c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`));
    await withAdmin("postgres", async (c) => {
      const roles = await c.query<{ rolname: string }>(
        "select rolname from pg_roles where rolname like 'bx\\_%' or rolname like 'bn\\_%' or rolname like 'bare\\_%' or rolname = 'bench_owner'",
      );
      for (const r of roles.rows)
        await c.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(r.rolname)}`).catch(() => {});
    });
    await rm(dir, { recursive: true, force: true });
  }
}

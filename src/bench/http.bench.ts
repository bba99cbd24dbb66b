import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { migrateToLatest, openDatabase } from "../db/database.js";
import { createApp } from "../server/app.js";

/**
 * (c) Requests created and approved per second through the real HTTP API, on SQLite and on
 * PostgreSQL, printed beside the same number of bare inserts of the same rows into the same
 * database (each in its own transaction, at the same concurrency): the floor for this workload.
 */
const PAIRS = 400;
const CONCURRENCY = 8;
const POSTGRES_ADMIN_URL =
  process.env.FIREBREAK_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const CONFIG = `version: 1
directory:
  users:
${Array.from({ length: CONCURRENCY }, (_, i) => `    sre${i}: { groups: [sre] }`).join("\n")}
    lead: { groups: [leads] }
zones:
  bench: { cidrs: [127.0.0.0/8] }
resources:
  bench-db: { zone: bench, type: log, roles: { admin: { grants: [owner] } } }
breakGlass:
  - name: bench
    zone: bench
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    approvals: [{ from: group:leads, count: 1 }]
    justification: { minLength: 10, ticket: '^INC-[0-9]+$' }
    when: 'signals.incident.severity >= 1'
`;

async function runPool(count: number, worker: (index: number) => Promise<void>): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let index = next++; index < count; index = next++) await worker(index);
    }),
  );
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function benchOne(dialect: "sqlite" | "postgres", dir: string) {
  let url: string;
  let dropPostgres: (() => Promise<void>) | null = null;
  if (dialect === "sqlite") url = `sqlite:${join(dir, "bench.db")}`;
  else {
    const name = `firebreak_bench_${randomBytes(6).toString("hex")}`;
    const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const target = new URL(POSTGRES_ADMIN_URL);
    target.pathname = `/${name}`;
    url = target.toString();
    dropPostgres = async () => {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    };
  }
  const configPath = join(dir, `bench-${dialect}.yaml`);
  await writeFile(configPath, CONFIG);
  const app = await createApp({
    configPath,
    databaseUrl: url,
    log: { info() {}, error: (message, fields) => console.error(message, fields) },
  });
  try {
    const { admin } = await app.start({ host: "127.0.0.1", port: 0 });
    const address = app.http.server.address();
    const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    const post = async (path: string, token: string, body: unknown) => {
      const response = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const json = (await response.json()) as { id?: string; error?: { code: string } };
      if (!response.ok) throw new Error(`${path}: ${response.status} ${json.error?.code}`);
      return json;
    };
    const token = async (user: string) =>
      ((await post(`/v1/users/${user}/tokens`, admin?.token ?? "", {})) as unknown as { token: string })
        .token;
    const requesters = await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => token(`sre${i}`)));
    const lead = await token("lead");

    const apiSeconds = await runPool(PAIRS, async (index) => {
      const created = await post("/v1/requests", requesters[index % CONCURRENCY] as string, {
        zone: "bench",
        role: "admin",
        duration: "15m",
        reason: `benchmark request number ${index}`,
        ticket: `INC-${index}`,
      });
      await post(`/v1/requests/${created.id}/approve`, lead, { comment: "ok" });
    });

    // The floor: the same rows inserted directly, one transaction each, same concurrency.
    const bare = openDatabase(url);
    await migrateToLatest(bare.db);
    const bareSeconds = await runPool(PAIRS, async (index) => {
      await bare.db.transaction().execute(async (tx) => {
        await tx
          .insertInto("requests")
          .values({
            id: `req_bare${randomBytes(8).toString("hex")}`,
            requester: "bare",
            zone: "bench",
            resource: null,
            role: "admin",
            policy: "bench",
            duration_ms: 900_000,
            reason: `bare insert ${index}`,
            ticket: null,
            state: "pending",
            source_zone: null,
            client_address: null,
            approvals_json: "{}",
            signals_json: "{}",
            auto_approved: 0,
            created_at: Date.now(),
            updated_at: Date.now(),
            lapses_at: null,
            closed_reason: null,
          })
          .execute();
      });
    });
    await bare.close();
    const verify = await app.services.audit.verify();
    return { dialect, apiSeconds, bareSeconds, chainOk: verify.ok, events: verify.count };
  } finally {
    await app.stop();
    await dropPostgres?.();
  }
}

export async function runHttpBenchmarks(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "firebreak-bench-"));
  try {
    console.log(
      `\n(c) requests created and approved through the HTTP API: ${PAIRS} create+approve pairs, ${CONCURRENCY} clients in parallel`,
    );
    console.log(
      "  database   API pairs/s   (ms per pair)   bare inserts/s (same rows, same concurrency)   chain",
    );
    for (const dialect of ["sqlite", "postgres"] as const) {
      const result = await benchOne(dialect, dir);
      console.log(
        `  ${dialect.padEnd(9)}  ${(PAIRS / result.apiSeconds).toFixed(0).padStart(11)}   ${((result.apiSeconds * 1000) / PAIRS).toFixed(2).padStart(13)}   ${(PAIRS / result.bareSeconds).toFixed(0).padStart(14)}                                   ${result.chainOk ? "OK" : "BROKEN"} (${result.events} events)`,
      );
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

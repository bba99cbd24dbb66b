import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import pg from "pg";
import type { AuditEvent } from "../audit/chain.js";
import { createAuditDelivery } from "../audit/delivery.js";
import { createRelatedLookup } from "../audit/related.js";
import type { AuditSinkConfig } from "../config/schema.js";
import { migrateToLatest, openDatabase } from "../db/database.js";
import { createTransactionRunner } from "../db/transaction.js";
import { sinkRegistry } from "../plugins/registry.js";
import { systemClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";

/**
 * (f) The audit stream: events appended per second with the hash chain (one event per
 * transaction, as services append them), beside bare inserts of the same rows into a table with
 * no chain, on SQLite and PostgreSQL; then the delivery lag (commit to arrival) at a local
 * RFC 5424 TCP receiver while events are appended as fast as the database takes them.
 */
const APPENDS = 3_000;
const LOAD_EVENTS = 5_000;
const CONCURRENCY = 8;
const POSTGRES_ADMIN_URL =
  process.env.FIREBREAK_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

const context = (index: number) => ({
  request: `req_bench${index}`,
  purpose: "restore the ledger replica after the failover",
  ticket: `INC-${index}`,
  approvers: ["carol"],
  sourceZone: "bastion",
  clientAddress: "10.20.0.7",
  signals: { incident: { open: true, severity: 2, id: `INC-${index}` } },
});

async function pool(
  count: number,
  concurrency: number,
  work: (index: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let index = next++; index < count; index = next++) await work(index);
    }),
  );
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** A receiver that deframes octet-counted syslog and notes when each event id arrived. */
async function startReceiver() {
  const arrived = new Map<string, number>();
  const server = net.createServer((socket) => {
    let buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const space = buffer.indexOf(0x20);
        if (space < 0) break;
        const length = Number(buffer.subarray(0, space).toString("latin1"));
        if (buffer.length < space + 1 + length) break;
        const message = buffer.subarray(space + 1, space + 1 + length).toString("utf8");
        buffer = buffer.subarray(space + 1 + length);
        const id = / id="(evt_[0-9a-f]+)"/.exec(message)?.[1];
        if (id && !arrived.has(id)) arrived.set(id, performance.timeOrigin + performance.now());
      }
    });
    socket.on("end", () => socket.end());
    socket.on("error", () => {});
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)),
  );
  return { port, arrived, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))] as number;
}

async function database(dialect: "sqlite" | "postgres", dir: string, label: string) {
  if (dialect === "sqlite") return { url: `sqlite:${join(dir, `${label}.db`)}`, drop: async () => {} };
  const name = `firebreak_bench_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const target = new URL(POSTGRES_ADMIN_URL);
  target.pathname = `/${name}`;
  return {
    url: target.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

async function benchAppends(dialect: "sqlite" | "postgres", dir: string) {
  const target = await database(dialect, dir, "appends");
  const handle = openDatabase(target.url);
  try {
    await migrateToLatest(handle.db);
    const inTransaction = createTransactionRunner({
      db: handle.db,
      clock: systemClock,
      bus: createEventBus(),
    });
    const append = (index: number) =>
      inTransaction((unit) =>
        unit.audit({
          type: "grant.activated",
          actor: "alice",
          zone: "vault",
          subject: `grt_bench${index}`,
          context: context(index),
        }),
      );
    const sequential = await pool(APPENDS, 1, append);
    const parallel = await pool(APPENDS, CONCURRENCY, (index) => append(APPENDS + index));
    await sql`create table bench_plain (id varchar(64) primary key, time bigint not null, type varchar(64) not null, actor varchar(128) not null, zone varchar(63), subject varchar(64), context_json text not null)`.execute(
      handle.db,
    );
    const bareInsert = (index: number) =>
      handle.db.transaction().execute(async (tx) => {
        await sql`insert into bench_plain (id, time, type, actor, zone, subject, context_json) values (${`evt_${randomBytes(12).toString("hex")}`}, ${Date.now()}, ${"grant.activated"}, ${"alice"}, ${"vault"}, ${`grt_bench${index}`}, ${JSON.stringify(context(index))})`.execute(
          tx,
        );
      });
    const bareSequential = await pool(APPENDS, 1, bareInsert);
    const bare = await pool(APPENDS, CONCURRENCY, (index) => bareInsert(APPENDS + index));
    return {
      sequential: APPENDS / sequential,
      parallel: APPENDS / parallel,
      bareSequential: APPENDS / bareSequential,
      bare: APPENDS / bare,
    };
  } finally {
    await handle.close();
    await target.drop();
  }
}

async function benchLag(dialect: "sqlite" | "postgres", dir: string) {
  const target = await database(dialect, dir, "lag");
  const handle = openDatabase(target.url);
  const receiver = await startReceiver();
  const bus = createEventBus();
  const committed = new Map<string, number>();
  bus.subscribe((event: AuditEvent) => committed.set(event.id, performance.timeOrigin + performance.now()));
  const sink = { name: "siem", type: "syslog", url: `tcp://127.0.0.1:${receiver.port}` } as AuditSinkConfig;
  let delivery: ReturnType<typeof createAuditDelivery> | null = null;
  try {
    await migrateToLatest(handle.db);
    const inTransaction = createTransactionRunner({ db: handle.db, clock: systemClock, bus });
    delivery = createAuditDelivery({
      db: handle.db,
      clock: systemClock,
      inTransaction,
      bus,
      registry: sinkRegistry,
      sinkDeps: { secret: () => "", hostname: "bench", procId: String(process.pid), now: () => Date.now() },
      related: createRelatedLookup(handle.db),
      config: () => ({ sinks: [sink], delivery: undefined }),
      publicUrl: () => "https://firebreak.example.com",
      log: { error: (message, fields) => console.error(message, fields) },
    });
    await delivery.start();
    // Each writer yields to the event loop between appends, as request handlers do (their
    // commits follow network reads); a loop of synchronous SQLite calls would otherwise run as one
    // chain of microtasks and starve every socket in the process, the sink's included.
    const seconds = await pool(LOAD_EVENTS, CONCURRENCY, async (index) => {
      await new Promise((resolve) => setImmediate(resolve));
      await inTransaction((unit) =>
        unit.audit({
          type: "grant.activated",
          actor: "alice",
          zone: "vault",
          subject: `grt_bench${index % 50}`,
          context: context(index),
        }),
      );
    });
    const caughtUp = await delivery.flush(60_000);
    const lags: number[] = [];
    for (const [id, at] of committed) {
      const arrived = receiver.arrived.get(id);
      if (arrived !== undefined) lags.push(arrived - at);
    }
    lags.sort((a, b) => a - b);
    return {
      rate: LOAD_EVENTS / seconds,
      delivered: lags.length,
      caughtUp,
      p50: percentile(lags, 0.5),
      p99: percentile(lags, 0.99),
      max: lags.at(-1) ?? Number.NaN,
    };
  } finally {
    await delivery?.stop();
    await receiver.close();
    await handle.close();
    await target.drop();
  }
}

export async function runAuditBenchmarks(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "firebreak-bench-audit-"));
  try {
    console.log(
      `\n(f) audit stream: ${APPENDS} hash-chained appends (one event per transaction, about 600 bytes of context each), then delivery lag to a local RFC 5424 TCP receiver under ${LOAD_EVENTS} appends`,
    );
    console.log(
      "  database   chained/s (1 writer)   chained/s (8 writers)   bare inserts/s, no chain (1 writer)   (8 writers)",
    );
    for (const dialect of ["sqlite", "postgres"] as const) {
      const result = await benchAppends(dialect, dir);
      console.log(
        `  ${dialect.padEnd(9)}  ${result.sequential.toFixed(0).padStart(20)}   ${result.parallel.toFixed(0).padStart(21)}   ${result.bareSequential.toFixed(0).padStart(35)}   ${result.bare.toFixed(0).padStart(11)}`,
      );
    }
    console.log("  database   appended/s under load   delivered   lag p50     lag p99     lag max");
    for (const dialect of ["sqlite", "postgres"] as const) {
      const result = await benchLag(dialect, dir);
      console.log(
        `  ${dialect.padEnd(9)}  ${result.rate.toFixed(0).padStart(21)}   ${`${result.delivered}/${LOAD_EVENTS}${result.caughtUp ? "" : " (behind)"}`.padStart(9)}   ${`${result.p50.toFixed(1)} ms`.padStart(8)}   ${`${result.p99.toFixed(1)} ms`.padStart(9)}   ${`${result.max.toFixed(1)} ms`.padStart(9)}`,
      );
    }
    console.log(
      "  lag: from the commit (the bus publishing the event) to the receiver reading its frame; batches of up to 500 events, one connection per batch, each confirmed by the receiver's close",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

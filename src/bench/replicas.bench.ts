import { randomBytes } from "node:crypto";
import pg from "pg";
import { migrateToLatest, openDatabase } from "../db/database.js";
import { createTransactionRunner } from "../db/transaction.js";
import { createPostgresFeed } from "../replicas/change-feed.js";
import { createReplicaFollower } from "../replicas/follower.js";
import { openAuditListener } from "../replicas/replica.repo.js";
import { systemClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";

const POSTGRES_ADMIN_URL =
  process.env.FIREBREAK_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const CHANGES = 300;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

/**
 * (r) Time from a change committed on one replica to its visibility on another: replica A commits
 * a `grant.*` event; replica B's feed (NOTIFY wake-up, read by seq, the follower re-deriving the
 * grant from the database) delivers it. Peer: the same change seen by A's own in-process bus.
 */
export async function runReplicaBenchmarks(): Promise<void> {
  const name = `firebreak_bench_replicas_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  const a = openDatabase(url.toString());
  const b = openDatabase(url.toString());
  try {
    await migrateToLatest(a.db);
    const busA = createEventBus();
    const inTransaction = createTransactionRunner({ db: a.db, clock: systemClock, bus: busA });
    const feed = createPostgresFeed({
      db: b.db,
      bus: createEventBus(),
      listen: (handlers) =>
        openAuditListener({ url: url.toString(), applicationName: "firebreak-bench-feed", ...handlers }),
    });
    createReplicaFollower({
      db: b.db,
      access: { addGrant() {}, removeGrant() {}, setUser() {} },
      feed,
      now: () => Date.now(),
    });
    await feed.start();
    const committedAt = new Map<number, number>();
    const remote: number[] = [];
    const local: number[] = [];
    let waiting: (() => void) | null = null;
    busA.subscribe((event) => {
      local.push(performance.now() - (committedAt.get(-1) ?? 0));
      committedAt.set(event.seq, committedAt.get(-1) ?? 0);
    });
    feed.subscribe((event) => {
      const start = committedAt.get(event.seq);
      if (start !== undefined) remote.push(performance.now() - start);
      waiting?.();
    });
    for (let i = 0; i < CHANGES; i++) {
      const seen = new Promise<void>((resolve) => {
        waiting = resolve;
      });
      await inTransaction(async (unit) => {
        await unit.audit({ type: "grant.revoked", actor: "bench", subject: `grt_bench${i}`, context: {} });
        // Stamped at the end of the work, before the chain append and the commit: both rows include them.
        committedAt.set(-1, performance.now());
      });
      await seen;
    }
    remote.sort((x, y) => x - y);
    local.sort((x, y) => x - y);
    console.log(
      `\n(r) replicas: ${CHANGES} changes committed on one replica, time until another replica's feed has applied each (PostgreSQL, NOTIFY + read by seq + grant re-derived)`,
    );
    console.log("  seen by                         p50        p99        max");
    const row = (label: string, values: number[]) =>
      console.log(
        `  ${label.padEnd(30)}  ${`${percentile(values, 0.5).toFixed(2)} ms`.padStart(9)}  ${`${percentile(values, 0.99).toFixed(2)} ms`.padStart(9)}  ${`${(values.at(-1) ?? Number.NaN).toFixed(2)} ms`.padStart(9)}`,
      );
    row("another replica (the feed)", remote);
    row("the same replica (its bus)", local);
    console.log("  both measured from the end of the transaction's work (append and commit included)");
    await feed.stop();
  } finally {
    await a.close();
    await b.close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

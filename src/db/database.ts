import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import SQLite from "better-sqlite3";
import {
  Kysely,
  type Migration,
  type MigrationProvider,
  Migrator,
  PostgresDialect,
  SqliteDialect,
} from "kysely";
import pg from "pg";
import { FirebreakError } from "../errors.js";
import * as initial from "./migrations/2026-11-29T00-00-initial.js";
import * as auditDelivery from "./migrations/2026-11-29T02-00-audit-delivery.js";
import * as segmentation from "./migrations/2026-11-29T03-00-segmentation.js";
import * as identity from "./migrations/2026-11-29T04-00-identity.js";
import * as factors from "./migrations/2026-11-29T05-00-factors.js";
import * as factorHardening from "./migrations/2026-12-03T01-00-factor-hardening.js";
import * as signalReplay from "./migrations/2026-12-03T02-00-signal-replay.js";
import * as inputLimits from "./migrations/2026-12-03T04-00-input-limits.js";
import * as userNameCase from "./migrations/2026-12-03T04-10-user-name-case.js";
import * as gatewaySessions from "./migrations/2026-12-03T06-00-gateway-sessions.js";
import * as replicas from "./migrations/2026-12-03T07-00-replicas.js";
import * as drills from "./migrations/2026-12-03T09-00-drills.js";
import * as emergencyKits from "./migrations/2026-12-03T11-00-emergency-kits.js";
import type { Database, Db } from "./types.js";

export type Dialect = "sqlite" | "postgres";

export interface DatabaseHandle {
  db: Db;
  dialect: Dialect;
  /** A printable location with any password removed. */
  location: string;
  close(): Promise<void>;
}

/** Every migration, in order. Dated names; a landed migration is never edited. */
const MIGRATIONS: Record<string, Migration> = {
  "2026-11-29T00-00-initial": initial,
  "2026-11-29T02-00-audit-delivery": auditDelivery,
  "2026-11-29T03-00-segmentation": segmentation,
  "2026-11-29T04-00-identity": identity,
  "2026-11-29T05-00-factors": factors,
  "2026-12-03T01-00-factor-hardening": factorHardening,
  "2026-12-03T02-00-signal-replay": signalReplay,
  "2026-12-03T04-00-input-limits": inputLimits,
  "2026-12-03T04-10-user-name-case": userNameCase,
  "2026-12-03T06-00-gateway-sessions": gatewaySessions,
  "2026-12-03T11-00-emergency-kits": emergencyKits,
  "2026-12-03T07-00-replicas": replicas,
  "2026-12-03T09-00-drills": drills,
};

const migrationProvider: MigrationProvider = { getMigrations: async () => MIGRATIONS };

// PostgreSQL returns int8 as strings to protect precision; our int8 columns hold epoch
// milliseconds and sequence numbers, all far below 2^53, so numbers are safe and simpler.
pg.types.setTypeParser(20, (value) => Number(value));

/**
 * Opens the database named by `url`: `sqlite:PATH` (or a bare path) for the embedded store,
 * `postgres://…` for PostgreSQL.
 */
export function openDatabase(url: string): DatabaseHandle {
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    const pool = new pg.Pool({ connectionString: url, max: 10 });
    // An idle client that loses its connection must not crash the process.
    pool.on("error", () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, dialect: "postgres", location: redactUrl(url), close: () => db.destroy() };
  }
  const path = resolve(url.startsWith("sqlite:") ? url.slice("sqlite:".length) : url);
  mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SQLite(path);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("busy_timeout = 5000");
  sqlite.pragma("foreign_keys = ON");
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return { db, dialect: "sqlite", location: `sqlite:${path}`, close: () => db.destroy() };
}

/**
 * Brings the schema to the latest migration. Safe when several processes start at once:
 * PostgreSQL serialises through Kysely's advisory lock; SQLite through its write lock, and a
 * process that loses the race for it retries once the winner has committed.
 */
export async function migrateToLatest(db: Db): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  let lastError: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    const { error } = await migrator.migrateToLatest();
    if (!error) return;
    lastError = error;
    await new Promise((r) => setTimeout(r, 50 + Math.random() * 200));
  }
  throw new FirebreakError(
    "UNAVAILABLE",
    `database migration failed: ${lastError instanceof Error ? lastError.message : String(lastError)}`,
  );
}

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "postgres://(unparseable url)";
  }
}

const STATEMENT_CACHE_SIZE = 500;

/**
 * better-sqlite3 compiles a statement on every `prepare`, and Kysely prepares every query it runs;
 * most of Firebreak's queries are the same few hundred SQL strings, so compiled statements are
 * kept (least recently used out first). Safe because Kysely's SQLite driver runs one query at a
 * time on its single connection.
 */
function withStatementCache(sqlite: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement) cache.delete(sql);
      else statement = sqlite.prepare(sql);
      cache.set(sql, statement);
      if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      return statement;
    },
    close() {
      cache.clear();
      sqlite.close();
    },
  };
}

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { type DatabaseHandle, migrateToLatest, openDatabase } from "../../src/db/database.js";

/** Every database Firebreak supports; behaviour suites run once per entry with describe.each. */
export const DIALECTS = ["sqlite", "postgres"] as const;
export type TestDialect = (typeof DIALECTS)[number];

/** The server test databases are created on; override with FIREBREAK_TEST_POSTGRES_URL. */
export const POSTGRES_ADMIN_URL =
  process.env.FIREBREAK_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  /** What `--db` takes, for tests that start a server process on the same database. */
  url: string;
  handle: DatabaseHandle;
  /** Closes the handle and deletes the database. */
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database of its own: a temporary file for SQLite, a new database on the
 * local server for PostgreSQL. PostgreSQL being unreachable is an error, never a skipped test:
 * a suite that silently ran on one dialect would claim coverage it does not have.
 */
export async function createTestDatabase(dialect: TestDialect): Promise<TestDatabase> {
  return dialect === "sqlite" ? createSqlite() : createPostgres();
}

async function createSqlite(): Promise<TestDatabase> {
  const directory = await mkdtemp(join(tmpdir(), "firebreak-test-"));
  const url = `sqlite:${join(directory, "firebreak.db")}`;
  const handle = openDatabase(url);
  try {
    await migrateToLatest(handle.db);
  } catch (error) {
    await handle.close();
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    handle,
    async drop() {
      await handle.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

async function createPostgres(): Promise<TestDatabase> {
  // Lowercase hex only, so the name needs no quoting anywhere it is used.
  const name = `firebreak_test_${randomBytes(8).toString("hex")}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  const handle = openDatabase(url.toString());
  const drop = async () => {
    await handle.close();
    // FORCE ends connections a failed test may have left behind, so drop never hangs.
    await withAdminClient((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  };
  try {
    await migrateToLatest(handle.db);
  } catch (error) {
    await drop();
    throw error;
  }
  return { url: url.toString(), handle, drop };
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is required by the test suite but ${redact(POSTGRES_ADMIN_URL)} is unreachable ` +
        `(${error instanceof Error ? error.message : String(error)}). Start it, or point ` +
        "FIREBREAK_TEST_POSTGRES_URL at one.",
    );
  }
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = "***";
  return parsed.toString();
}

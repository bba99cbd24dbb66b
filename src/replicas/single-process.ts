import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import SQLite from "better-sqlite3";
import { FirebreakError } from "../errors.js";

/**
 * SQLite serves from one process (issue 13.6): a second `serve` on the same file would keep its own
 * access index and scheduler and diverge. The server holds SQLite's own exclusive lock on a side
 * file (`<database>.serve.lock`) for as long as it runs; the operating system drops it when the
 * process ends, however it ends (kill -9 included), so a stale lock never blocks a restart.
 * Offline commands (`rotate-master-key`, `audit verify --offline`) do not take it.
 */
export function holdServeLock(databasePath: string): { release(): void } {
  const file = `${resolve(databasePath)}.serve.lock`;
  mkdirSync(dirname(file), { recursive: true });
  const lock = new SQLite(file);
  try {
    lock.pragma("busy_timeout = 0");
    lock.pragma("locking_mode = EXCLUSIVE");
    // In exclusive locking mode the write lock taken here is kept after the commit, until close.
    lock.exec("BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS serve_lock (pid INTEGER); COMMIT;");
  } catch (error) {
    lock.close();
    if (error instanceof Error && /locked|busy/i.test(error.message))
      throw new FirebreakError(
        "CONFLICT",
        `another firebreak serve is already running on ${databasePath}: SQLite serves from one process; stop it first, or use PostgreSQL to run several replicas`,
      );
    throw error;
  }
  return { release: () => lock.close() };
}

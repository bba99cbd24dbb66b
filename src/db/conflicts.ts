/**
 * Recognising the database's race outcomes (issue 13, point 3). A unique-key violation means
 * another transaction took the same key first; a serialization failure or deadlock means the
 * database rolled this one back so that another could commit. Neither is an internal error: the
 * first becomes the refusal its caller names (DUPLICATE_GRANT …, else CONFLICT), the second is
 * retried by the transaction runner, since the whole transaction was rolled back.
 */

interface DriverError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
}

function asDriverError(error: unknown): DriverError | null {
  return typeof error === "object" && error !== null ? (error as DriverError) : null;
}

/**
 * The violated unique key of a PostgreSQL (SQLSTATE 23505, with its constraint name) or SQLite
 * (SQLITE_CONSTRAINT_UNIQUE / PRIMARYKEY, "table.column" from its message) error, or null.
 */
export function uniqueViolation(error: unknown): { key: string } | null {
  const e = asDriverError(error);
  if (!e) return null;
  if (e.code === "23505") return { key: typeof e.constraint === "string" ? e.constraint : "" };
  if (e.code === "SQLITE_CONSTRAINT_UNIQUE" || e.code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
    const message = typeof e.message === "string" ? e.message : "";
    return { key: message.replace(/^.*constraint failed:\s*/, "") };
  }
  return null;
}

/** True when the unique key violated names `column` (PostgreSQL: `grants_active_key_key`). */
export function violatesKey(error: unknown, column: string): boolean {
  const violation = uniqueViolation(error);
  return violation?.key.includes(column) ?? false;
}

/** Serialization failure (40001) or deadlock (40P01): the transaction was rolled back whole. */
export function isRetryableConflict(error: unknown): boolean {
  const code = asDriverError(error)?.code;
  return code === "40001" || code === "40P01";
}

import { FirebreakError } from "../../errors.js";

/**
 * The strict grammar of a role's `privileges` entries on a MariaDB resource, such as
 * `SELECT, INSERT ON shop.*` or `SELECT ON shop.orders`. Only known privilege keywords and
 * identifiers from a safe alphabet pass; the SQL is rebuilt from our own keyword table and quoted
 * identifiers, so nothing from the configuration is ever pasted into a statement.
 */

/** Database, table and role names Firebreak writes into statements: letters, digits, `_`. */
export const SAFE_IDENTIFIER = /^[A-Za-z0-9_]{1,64}$/;

/** Privileges that apply to a table and everything wider. */
const TABLE_PRIVILEGES = [
  "SELECT",
  "INSERT",
  "UPDATE",
  "DELETE",
  "CREATE",
  "DROP",
  "INDEX",
  "ALTER",
  "CREATE VIEW",
  "SHOW VIEW",
  "TRIGGER",
  "REFERENCES",
  "DELETE HISTORY",
  "ALL PRIVILEGES",
] as const;

/** Privileges that need a whole database (`db.*`). */
const DATABASE_PRIVILEGES = [
  "CREATE ROUTINE",
  "ALTER ROUTINE",
  "CREATE TEMPORARY TABLES",
  "EVENT",
  "EXECUTE",
  "LOCK TABLES",
] as const;

/**
 * The only privileges accepted on `*.*`: monitoring that reads no table data. Anything else on
 * `*.*` would reach the `mysql` system database (account hashes, or writing accounts that outlive
 * the grant) and the database holding Firebreak's expiry events (deleting one's own backstop).
 */
const GLOBAL_PRIVILEGES = [
  "PROCESS",
  "SHOW DATABASES",
  "REPLICATION CLIENT",
  "BINLOG MONITOR",
  "SLAVE MONITOR",
  "REPLICA MONITOR",
] as const;

/** Privileges that would let access outlive the grant or borrow another identity. */
const REFUSED_PRIVILEGES = new Set(["GRANT OPTION", "CREATE USER", "SUPER", "SET USER", "PROXY"]);

/** Databases no grant may name: the server's own accounts and, added by the caller, the control database. */
const RESERVED_DATABASES = ["mysql", "information_schema", "performance_schema"];

export type PrivilegeLevel = "global" | "database" | "table";

export interface ParsedPrivilege {
  /** Canonical keywords from the tables above, never the text as written. */
  privileges: string[];
  level: PrivilegeLevel;
  database: string | null;
  table: string | null;
}

const ALIASES: Record<string, string> = { ALL: "ALL PRIVILEGES" };

const LEVEL_OF = new Map<string, PrivilegeLevel>([
  ...TABLE_PRIVILEGES.map((p) => [p, "table"] as const),
  ...DATABASE_PRIVILEGES.map((p) => [p, "database"] as const),
  ...GLOBAL_PRIVILEGES.map((p) => [p, "global"] as const),
]);

/** How wide a target each level of privilege needs. */
const RANK: Record<PrivilegeLevel, number> = { table: 0, database: 1, global: 2 };

/**
 * `PRIVILEGE[, PRIVILEGE…] ON target`, target `*.*`, `db.*` or `db.table`. The privilege list may hold
 * only letters, spaces, `_` and commas; anything else (quotes, backticks, `;`, comments, column
 * lists, `TO …`, `WITH GRANT OPTION`) fails the shape before any keyword is looked at.
 */
const SHAPE = /^([A-Za-z_ ,]+?) ON (\*|[A-Za-z0-9_]{1,64})\.(\*|[A-Za-z0-9_]{1,64})$/i;

function refuse(entry: string, why: string): never {
  // The entry is configuration, not a secret; quoting it with JSON keeps control characters visible.
  throw new FirebreakError("CONFIG_INVALID", `MariaDB privilege ${JSON.stringify(entry)} refused: ${why}`);
}

/**
 * Parses one `privileges` entry strictly. Throws CONFIG_INVALID naming the entry and the reason for
 * anything it does not fully understand. `controlDatabase` (where expiry events live) is refused as
 * a target like `mysql`.
 */
export function parsePrivilege(entry: string, controlDatabase: string): ParsedPrivilege {
  const text = entry.trim().replace(/\s+/g, " ");
  const match = SHAPE.exec(text);
  if (match === null) {
    refuse(entry, "expected 'PRIVILEGE[, PRIVILEGE…] ON db.* | db.table | *.*' with plain names");
  }
  const [, list = "", databaseText = "", tableText = ""] = match;
  if (databaseText === "*" && tableText !== "*") refuse(entry, "'*.table' names no database");

  const privileges: string[] = [];
  for (const item of list.split(",")) {
    const keyword = item.trim().toUpperCase();
    if (keyword === "") refuse(entry, "an empty privilege in the list");
    const canonical = ALIASES[keyword] ?? keyword;
    if (REFUSED_PRIVILEGES.has(canonical)) {
      refuse(entry, `${canonical} would let access outlive the grant; it is never granted`);
    }
    if (!LEVEL_OF.has(canonical)) {
      refuse(
        entry,
        `'${keyword}' is not a privilege Firebreak grants directly; map a MariaDB role in 'grants'`,
      );
    }
    if (!privileges.includes(canonical)) privileges.push(canonical);
  }
  if (privileges.includes("ALL PRIVILEGES") && privileges.length > 1) {
    refuse(entry, "ALL PRIVILEGES already includes the others; write it alone");
  }

  const level: PrivilegeLevel = databaseText === "*" ? "global" : tableText === "*" ? "database" : "table";
  for (const privilege of privileges) {
    const needs = LEVEL_OF.get(privilege) ?? "global";
    if (level === "global" && needs !== "global") {
      refuse(
        entry,
        `${privilege} on *.* would reach the mysql system database and Firebreak's expiry events; name the databases (db.*) instead`,
      );
    }
    if (level !== "global" && needs === "global") refuse(entry, `${privilege} applies only to *.*`);
    if (RANK[needs] > RANK[level]) refuse(entry, `${privilege} needs a whole database (db.*)`);
  }

  if (level !== "global") {
    const reserved = [...RESERVED_DATABASES, controlDatabase.toLowerCase()];
    if (reserved.includes(databaseText.toLowerCase())) {
      refuse(entry, `the database '${databaseText}' belongs to the server or to Firebreak`);
    }
  }
  return {
    privileges,
    level,
    database: level === "global" ? null : databaseText,
    table: level === "table" ? tableText : null,
  };
}

function hasControlCharacter(text: string): boolean {
  for (const character of text) {
    const code = character.charCodeAt(0);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** A backquoted identifier; backslashes are literal inside backquotes in every SQL mode. */
export function quoteIdentifier(name: string): string {
  if (name.length === 0 || name.length > 128 || hasControlCharacter(name)) {
    throw new FirebreakError("CONFIG_INVALID", "an identifier that cannot be quoted safely");
  }
  return `\`${name.replace(/`/g, "``")}\``;
}

/**
 * A single-quoted string literal written the same way whatever the server's SQL mode: quotes are
 * doubled, and a backslash (an escape only without NO_BACKSLASH_ESCAPES) is refused outright.
 */
export function quoteString(value: string): string {
  if (value.includes("\\") || hasControlCharacter(value)) {
    throw new FirebreakError(
      "CONFIG_INVALID",
      "a value that cannot be quoted the same way in every SQL mode",
    );
  }
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The `ON` clause of a GRANT. A database-level name has `_` escaped because GRANT reads `_` and `%`
 * in `db.*` as wildcards: `shop_db.*` would also cover `shopXdb`.
 */
export function grantTarget(privilege: ParsedPrivilege): string {
  if (privilege.level === "global" || privilege.database === null) return "*.*";
  if (privilege.level === "database") return `${quoteIdentifier(privilege.database.replace(/_/g, "\\_"))}.*`;
  return `${quoteIdentifier(privilege.database)}.${quoteIdentifier(privilege.table ?? "")}`;
}

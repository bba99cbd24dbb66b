/**
 * Statement classification for the PostgreSQL gateway: every statement a client sends is parsed
 * with PostgreSQL's own parser (libpg_query compiled to WebAssembly), never by pattern matching,
 * so comments, quoting and dollar quotes cannot hide a statement or its calls. See NOTES.md.
 */

/** What a statement does, coarsely: what statement rules and transcripts name. */
export type StatementCategory =
  | "read"
  | "write"
  | "ddl"
  | "privilege"
  | "session"
  | "transaction"
  | "utility";

export const STATEMENT_CATEGORIES: readonly StatementCategory[] = [
  "read",
  "write",
  "ddl",
  "privilege",
  "session",
  "transaction",
  "utility",
];

export interface ParsedStatement {
  /** The statement's own text, as sent (comments inside it kept, the separating `;` not). */
  readonly text: string;
  /** Its command, upper case: `SELECT`, `DROP TABLE`, `SET ROLE`, `BEGIN`, … */
  readonly command: string;
  readonly category: StatementCategory;
  /** Relations named anywhere in it (`schema.name` when qualified), lower case as PostgreSQL folds them; CTE names included. */
  readonly relations: readonly string[];
  /** Functions called anywhere in it, by their last name part (`pg_terminate_backend`). */
  readonly functions: readonly string[];
  /** The same calls as written, schema-qualified when they were (`pg_catalog.pg_terminate_backend`). */
  readonly qualifiedFunctions: readonly string[];
  /** Its effect cannot be seen from the text: `DO` blocks and `EXECUTE` of a prepared statement. */
  readonly opaque: boolean;
}

export type ParseOutcome =
  | { readonly ok: true; readonly statements: readonly ParsedStatement[] }
  | { readonly ok: false; readonly error: { readonly message: string; readonly position: number | null } };

let loading: Promise<void> | undefined;
let parseSync: ((sql: string) => unknown) | undefined;

/**
 * Loads the parser (WebAssembly) once; `parseStatements` may be called when it resolved. Imported
 * here, not at the top: importing the package compiles the WebAssembly, which `validate` (it checks
 * rules, it parses no SQL) should not pay for.
 */
export function ready(): Promise<void> {
  loading ??= import("libpg-query").then(async (module) => {
    await module.loadModule();
    parseSync = module.parseSync;
  });
  return loading;
}

const CACHE_LIMIT = 2000;
const CACHEABLE_LENGTH = 16 * 1024;
const cache = new Map<string, ParseOutcome>();

/**
 * Parses a query string (one or more statements) synchronously, after `ready()`. The outcome of a
 * short text is cached (the extended protocol parses the same text again and again); it is frozen.
 */
export function parseStatements(sql: string): ParseOutcome {
  if (parseSync === undefined) throw new Error("the statement parser is not loaded: await ready() first");
  const cached = cache.get(sql);
  if (cached !== undefined) return cached;
  const outcome = deepFreeze(parseUncached(sql, parseSync));
  if (sql.length <= CACHEABLE_LENGTH) {
    // Oldest first out: a Map iterates in insertion order.
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
    cache.set(sql, outcome);
  }
  return outcome;
}

interface RawStatement {
  stmt?: Node;
  stmt_location?: number;
  stmt_len?: number;
}
type Node = Record<string, unknown>;

function parseUncached(sql: string, parse: (sql: string) => unknown): ParseOutcome {
  // A NUL byte ends the C string the parser reads: what follows would be unseen.
  if (sql.includes("\u0000"))
    return { ok: false, error: { message: "the query contains a NUL byte", position: null } };
  let tree: { stmts?: RawStatement[] };
  try {
    tree = parse(sql) as { stmts?: RawStatement[] };
  } catch (error) {
    const details = (error as { sqlDetails?: { message?: string; cursorPosition?: number } }).sqlDetails;
    const message = details?.message ?? (error instanceof Error ? error.message : String(error));
    // Nothing but blanks and comments: no statement, as PostgreSQL answers EmptyQueryResponse.
    if (message === "Query cannot be empty") return { ok: true, statements: [] };
    const position =
      typeof details?.cursorPosition === "number" ? characterOffset(sql, details.cursorPosition) : null;
    return { ok: false, error: { message, position } };
  }
  // Locations are byte offsets in the UTF-8 text.
  const bytes = Buffer.from(sql, "utf8");
  const statements = (tree.stmts ?? []).map((raw) => {
    const start = raw.stmt_location ?? 0;
    const end = raw.stmt_len === undefined || raw.stmt_len === 0 ? bytes.length : start + raw.stmt_len;
    const text = bytes.subarray(start, end).toString("utf8").trim();
    return classify(raw.stmt ?? {}, text);
  });
  return { ok: true, statements };
}

/** The parser reports byte offsets; users count characters. */
function characterOffset(sql: string, byteOffset: number): number {
  return Buffer.from(sql, "utf8").subarray(0, byteOffset).toString("utf8").length;
}

/** The node's type and body: libpg_query's JSON wraps each node as `{ TypeName: { … } }`. */
function unwrap(node: Node): [string, Node] {
  const [type, body] = Object.entries(node)[0] ?? ["", {}];
  return [type, (body ?? {}) as Node];
}

const DATA_MODIFYING = new Set(["InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"]);

function classify(node: Node, text: string): ParsedStatement {
  const [type, body] = unwrap(node);
  const walked = walk(node);
  let { command, category } = describe(type, body);
  // `WITH d AS (DELETE …) SELECT …` and `EXPLAIN ANALYZE UPDATE …` change data: the kind follows the worst part.
  if (
    (category === "read" || category === "utility") &&
    walked.modifies &&
    !(type === "ExplainStmt" && !analyzes(body))
  )
    category = "write";
  return {
    text,
    command,
    category,
    relations: [...walked.relations],
    functions: [...walked.functions],
    qualifiedFunctions: [...walked.qualifiedFunctions],
    opaque: type === "DoStmt" || type === "ExecuteStmt",
  };
}

interface Walked {
  relations: Set<string>;
  functions: Set<string>;
  qualifiedFunctions: Set<string>;
  modifies: boolean;
}

/** Every relation and function call in the tree, iteratively (a deep expression cannot exhaust the stack). */
function walk(root: unknown): Walked {
  const walked: Walked = {
    relations: new Set(),
    functions: new Set(),
    qualifiedFunctions: new Set(),
    modifies: false,
  };
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const value = pending.pop();
    if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
      continue;
    }
    if (value === null || typeof value !== "object") continue;
    for (const [key, child] of Object.entries(value as Node)) {
      if (child !== null && typeof child === "object" && !Array.isArray(child)) {
        const body = child as Node;
        if (key === "RangeVar" || key === "relation") addRelation(walked.relations, body);
        // CALL keeps its call under `funccall`.
        else if (key === "FuncCall" || key === "funccall") addFunction(walked, body.funcname);
        else if (key === "DropStmt" && RELATION_KINDS.has(String(body.removeType)))
          addDropped(walked.relations, body);
        else if (DATA_MODIFYING.has(key)) walked.modifies = true;
      }
      pending.push(child);
    }
  }
  return walked;
}

const RELATION_KINDS = new Set([
  "OBJECT_TABLE",
  "OBJECT_VIEW",
  "OBJECT_MATVIEW",
  "OBJECT_INDEX",
  "OBJECT_SEQUENCE",
  "OBJECT_FOREIGN_TABLE",
]);

/** `DROP TABLE a, s.b` names its relations as lists of names, not RangeVars. */
function addDropped(relations: Set<string>, body: Node): void {
  if (!Array.isArray(body.objects)) return;
  for (const object of body.objects) {
    const parts = nameParts((object as { List?: { items?: unknown } })?.List?.items);
    if (parts.length > 0) relations.add(parts.join("."));
  }
}

function addRelation(relations: Set<string>, body: Node): void {
  const name = typeof body.relname === "string" ? body.relname : undefined;
  if (name === undefined) return;
  const schema = typeof body.schemaname === "string" ? body.schemaname : undefined;
  relations.add(schema === undefined ? name : `${schema}.${name}`);
}

function addFunction(walked: Walked, funcname: unknown): void {
  const parts = nameParts(funcname);
  if (parts.length === 0) return;
  walked.functions.add(parts[parts.length - 1] as string);
  walked.qualifiedFunctions.add(parts.join("."));
}

/** `[{String:{sval:"a"}}, {String:{sval:"b"}}]` → `["a", "b"]`. */
function nameParts(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const parts: string[] = [];
  for (const item of list) {
    const value = (item as { String?: { sval?: unknown } })?.String?.sval;
    if (typeof value === "string") parts.push(value);
  }
  return parts;
}

function analyzes(body: Node): boolean {
  const options = Array.isArray(body.options) ? body.options : [];
  return options.some(
    (option) => (option as { DefElem?: { defname?: unknown } })?.DefElem?.defname === "analyze",
  );
}

/** `OBJECT_MATVIEW` → `MATERIALIZED VIEW`. */
function objectName(objectType: unknown): string {
  const name = typeof objectType === "string" ? objectType.replace(/^OBJECT_/, "") : "OBJECT";
  const special: Record<string, string> = {
    MATVIEW: "MATERIALIZED VIEW",
    FOREIGN_TABLE: "FOREIGN TABLE",
    FDW: "FOREIGN DATA WRAPPER",
    FOREIGN_SERVER: "SERVER",
    EVENT_TRIGGER: "EVENT TRIGGER",
    ACCESS_METHOD: "ACCESS METHOD",
    TSCONFIGURATION: "TEXT SEARCH CONFIGURATION",
    TSDICTIONARY: "TEXT SEARCH DICTIONARY",
    TSPARSER: "TEXT SEARCH PARSER",
    TSTEMPLATE: "TEXT SEARCH TEMPLATE",
  };
  return special[name] ?? name.replaceAll("_", " ");
}

// Commands and categories of the statement types whose name alone says it. The rest are derived
// from the node's name (`AlterTableStmt` → `ALTER TABLE`, DDL) below.
const KNOWN: Record<string, { command: string; category: StatementCategory }> = {
  InsertStmt: { command: "INSERT", category: "write" },
  UpdateStmt: { command: "UPDATE", category: "write" },
  DeleteStmt: { command: "DELETE", category: "write" },
  MergeStmt: { command: "MERGE", category: "write" },
  TruncateStmt: { command: "TRUNCATE", category: "write" },
  GrantStmt: { command: "GRANT", category: "privilege" },
  GrantRoleStmt: { command: "GRANT ROLE", category: "privilege" },
  CreateRoleStmt: { command: "CREATE ROLE", category: "privilege" },
  AlterRoleStmt: { command: "ALTER ROLE", category: "privilege" },
  AlterRoleSetStmt: { command: "ALTER ROLE", category: "privilege" },
  DropRoleStmt: { command: "DROP ROLE", category: "privilege" },
  AlterDefaultPrivilegesStmt: { command: "ALTER DEFAULT PRIVILEGES", category: "privilege" },
  ReassignOwnedStmt: { command: "REASSIGN OWNED", category: "privilege" },
  DropOwnedStmt: { command: "DROP OWNED", category: "privilege" },
  AlterOwnerStmt: { command: "ALTER OWNER", category: "privilege" },
  CreatePolicyStmt: { command: "CREATE POLICY", category: "privilege" },
  AlterPolicyStmt: { command: "ALTER POLICY", category: "privilege" },
  CreateUserMappingStmt: { command: "CREATE USER MAPPING", category: "privilege" },
  AlterUserMappingStmt: { command: "ALTER USER MAPPING", category: "privilege" },
  DropUserMappingStmt: { command: "DROP USER MAPPING", category: "privilege" },
  VariableShowStmt: { command: "SHOW", category: "session" },
  DiscardStmt: { command: "DISCARD", category: "session" },
  ListenStmt: { command: "LISTEN", category: "session" },
  UnlistenStmt: { command: "UNLISTEN", category: "session" },
  NotifyStmt: { command: "NOTIFY", category: "session" },
  DeallocateStmt: { command: "DEALLOCATE", category: "session" },
  FetchStmt: { command: "FETCH", category: "read" },
  ClosePortalStmt: { command: "CLOSE", category: "session" },
  ConstraintsSetStmt: { command: "SET CONSTRAINTS", category: "transaction" },
  LockStmt: { command: "LOCK TABLE", category: "utility" },
  VacuumStmt: { command: "VACUUM", category: "utility" },
  CheckPointStmt: { command: "CHECKPOINT", category: "utility" },
  DoStmt: { command: "DO", category: "utility" },
  CallStmt: { command: "CALL", category: "utility" },
  LoadStmt: { command: "LOAD", category: "utility" },
  ExecuteStmt: { command: "EXECUTE", category: "utility" },
  ClusterStmt: { command: "CLUSTER", category: "utility" },
  ReindexStmt: { command: "REINDEX", category: "utility" },
  RefreshMatViewStmt: { command: "REFRESH MATERIALIZED VIEW", category: "write" },
  IndexStmt: { command: "CREATE INDEX", category: "ddl" },
  ViewStmt: { command: "CREATE VIEW", category: "ddl" },
  CreateStmt: { command: "CREATE TABLE", category: "ddl" },
  CreateTableAsStmt: { command: "CREATE TABLE AS", category: "ddl" },
  CreateFunctionStmt: { command: "CREATE FUNCTION", category: "ddl" },
  RuleStmt: { command: "CREATE RULE", category: "ddl" },
  CreateTrigStmt: { command: "CREATE TRIGGER", category: "ddl" },
  CreateSchemaStmt: { command: "CREATE SCHEMA", category: "ddl" },
  CreateSeqStmt: { command: "CREATE SEQUENCE", category: "ddl" },
  CreateExtensionStmt: { command: "CREATE EXTENSION", category: "ddl" },
  CreatedbStmt: { command: "CREATE DATABASE", category: "ddl" },
  DropdbStmt: { command: "DROP DATABASE", category: "ddl" },
  RenameStmt: { command: "ALTER", category: "ddl" },
  CommentStmt: { command: "COMMENT", category: "ddl" },
  DefineStmt: { command: "CREATE", category: "ddl" },
};

const TRANSACTION_COMMANDS: Record<string, string> = {
  TRANS_STMT_BEGIN: "BEGIN",
  TRANS_STMT_START: "START TRANSACTION",
  TRANS_STMT_COMMIT: "COMMIT",
  TRANS_STMT_ROLLBACK: "ROLLBACK",
  TRANS_STMT_SAVEPOINT: "SAVEPOINT",
  TRANS_STMT_RELEASE: "RELEASE",
  TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO SAVEPOINT",
  TRANS_STMT_PREPARE: "PREPARE TRANSACTION",
  TRANS_STMT_COMMIT_PREPARED: "COMMIT PREPARED",
  TRANS_STMT_ROLLBACK_PREPARED: "ROLLBACK PREPARED",
};

function describe(type: string, body: Node): { command: string; category: StatementCategory } {
  switch (type) {
    case "SelectStmt":
      // SELECT … INTO creates a table.
      return body.intoClause === undefined
        ? { command: "SELECT", category: "read" }
        : { command: "SELECT INTO", category: "ddl" };
    case "CopyStmt": {
      if (body.is_from === true) return { command: "COPY FROM", category: "write" };
      // COPY TO a server file or program acts on the server, not in the session.
      const serverSide = typeof body.filename === "string" || body.is_program === true;
      return { command: "COPY TO", category: serverSide ? "utility" : "read" };
    }
    case "ExplainStmt": {
      // EXPLAIN ANALYZE runs its statement: it is what that statement is.
      const inner = body.query as Node | undefined;
      if (inner === undefined || !analyzes(body)) return { command: "EXPLAIN", category: "read" };
      const [innerType, innerBody] = unwrap(inner);
      return { command: "EXPLAIN", category: describe(innerType, innerBody).category };
    }
    case "PrepareStmt":
    case "DeclareCursorStmt": {
      // The prepared or declared statement is what will run: judge it by that.
      const inner = body.query as Node | undefined;
      const command = type === "PrepareStmt" ? "PREPARE" : "DECLARE CURSOR";
      if (inner === undefined) return { command, category: "utility" };
      const [innerType, innerBody] = unwrap(inner);
      return { command, category: describe(innerType, innerBody).category };
    }
    case "TransactionStmt":
      return { command: TRANSACTION_COMMANDS[String(body.kind)] ?? "TRANSACTION", category: "transaction" };
    case "VariableSetStmt": {
      const name = typeof body.name === "string" ? body.name : "";
      const reset = body.kind === "VAR_RESET" || body.kind === "VAR_RESET_ALL";
      if (name === "role" || name === "session_authorization")
        return {
          command: `${reset ? "RESET" : "SET"} ${name === "role" ? "ROLE" : "SESSION AUTHORIZATION"}`,
          category: "privilege",
        };
      if (name === "transaction_isolation" || name.startsWith("TRANSACTION"))
        return { command: "SET TRANSACTION", category: "transaction" };
      return { command: reset ? "RESET" : "SET", category: "session" };
    }
    case "DropStmt":
      return { command: `DROP ${objectName(body.removeType)}`, category: "ddl" };
    case "AlterTableStmt":
      return { command: `ALTER ${objectName(body.objtype)}`, category: "ddl" };
    default: {
      const known = KNOWN[type];
      if (known !== undefined) return known;
      const words = type
        .replace(/Stmt$/, "")
        .replace(/([a-z])([A-Z])/g, "$1 $2")
        .toUpperCase();
      const category: StatementCategory = /^(CREATE|ALTER|DROP)\b/.test(words) ? "ddl" : "utility";
      return { command: words || "UNKNOWN", category };
    }
  }
}

/** The parse is shared through the cache: nobody may change it. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}

/**
 * Support for the just-in-time credential suites (test/jit): a real Firebreak server process
 * (spawned from dist/) on its own SQLite database, with PostgreSQL, MariaDB and OpenSSH targets on
 * this machine, and small clients for each target.
 *
 * Targets are shared with every other suite running in parallel, so everything a file creates
 * carries its own tag: the resources' `namePrefix` (the reconciler revokes every account with
 * that prefix that has no live grant) and the fixture roles, schemas and databases (named `jfx…`,
 * never under a prefix). An unreachable target fails the suite; nothing is ever skipped.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import mysql from "mysql2/promise";
import pg from "pg";
import YAML from "yaml";
import {
  type ProcessGroup,
  processGroup,
  type ServerProcess,
  temporaryDirectory,
  waitFor,
  waitForReady,
} from "./process.js";
import { type Sshd, startSshd } from "./sshd.js";

export const PG_SOCKET = "/var/run/postgresql";
/** Issued logins connect to this database over TCP, where pg_hba.conf requires a password. */
export const PG_DATABASE = "firebreak_pwtest";
/** The admin URL a resource is configured with: no password, the local socket. */
export const PG_ADMIN_URL = `postgres://postgres@localhost/${PG_DATABASE}?host=${PG_SOCKET}`;
export const MARIADB_ADMIN_URL = "mysql://root@127.0.0.1:3306/";

/** Four hex digits, unique enough to keep parallel runs of the suite apart. */
export function uniqueTag(): string {
  return randomBytes(2).toString("hex");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** Runs `work` as the PostgreSQL superuser over the local socket; an unreachable server fails loudly. */
export async function withPgAdmin<T>(work: (client: pg.Client) => Promise<T>, database = PG_DATABASE) {
  const client = new pg.Client({
    host: PG_SOCKET,
    user: "postgres",
    database,
    connectionTimeoutMillis: 5_000,
  });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is required by the JIT suites but is unreachable on ${PG_SOCKET} (${String(error)})`,
    );
  }
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** A session as an issued login: TCP to 127.0.0.1, where a password is required. */
export async function pgLogin(user: string, password: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: "127.0.0.1",
    port: 5432,
    user,
    password,
    database: PG_DATABASE,
    connectionTimeoutMillis: 5_000,
  });
  // A session cut by revocation emits 'error'; the test observes it through its next query.
  client.on("error", () => {});
  await client.connect();
  return client;
}

/** "ok" when the login works (the session is closed again), else the SQLSTATE or error code. */
export async function pgLoginOutcome(user: string, password: string): Promise<string> {
  try {
    const client = await pgLogin(user, password);
    await client.query("select 1");
    await client.end();
    return "ok";
  } catch (error) {
    return String((error as { code?: unknown }).code ?? "failed");
  }
}

/** Login roles under `prefix`, sorted. */
export async function pgAccounts(prefix: string): Promise<string[]> {
  return withPgAdmin(async (client) => {
    const rows = await client.query<{ rolname: string }>(
      "select rolname from pg_roles where starts_with(rolname, $1) order by rolname",
      [prefix],
    );
    return rows.rows.map((r) => r.rolname);
  });
}

/** Drops every role under `prefix` (cleanup after a suite; the server is stopped by then). */
export async function dropPgAccounts(prefix: string): Promise<void> {
  await withPgAdmin(async (client) => {
    for (const role of await pgAccountsWith(client, prefix)) {
      const name = pg.escapeIdentifier(role);
      await client.query(`select pg_terminate_backend(pid) from pg_stat_activity where usename = $1`, [role]);
      await client.query(`DROP OWNED BY ${name}`);
      await client.query(`DROP ROLE IF EXISTS ${name}`);
    }
  });
}

async function pgAccountsWith(client: pg.Client, prefix: string) {
  const rows = await client.query<{ rolname: string }>(
    "select rolname from pg_roles where starts_with(rolname, $1)",
    [prefix],
  );
  return rows.rows.map((r) => r.rolname);
}

export interface PgFixture {
  /** A NOLOGIN role that may read `table`; resources map a Firebreak role onto it. */
  reader: string;
  /** `schema.table`, holding one row `(1, 100)`. */
  table: string;
  drop(): Promise<void>;
}

/** A reader role and a table it may read, so an issued login proves privileges through membership. */
export async function createPgFixture(tag: string): Promise<PgFixture> {
  const reader = `jfx${tag}_reader`;
  const schema = `jfx${tag}`;
  await withPgAdmin(async (client) => {
    await client.query(`CREATE ROLE ${reader} NOLOGIN`);
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.query(`CREATE TABLE ${schema}.payments (id int primary key, amount int)`);
    await client.query(`INSERT INTO ${schema}.payments VALUES (1, 100)`);
    await client.query(`GRANT USAGE ON SCHEMA ${schema} TO ${reader}`);
    await client.query(`GRANT SELECT ON ${schema}.payments TO ${reader}`);
  });
  return {
    reader,
    table: `${schema}.payments`,
    async drop() {
      await withPgAdmin(async (client) => {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
        await client.query(`DROP OWNED BY ${reader}`).catch(() => {});
        await client.query(`DROP ROLE IF EXISTS ${reader}`);
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// MariaDB

/** Runs `work` as MariaDB's root over TCP; an unreachable server fails loudly. */
export async function withMariaAdmin<T>(work: (connection: mysql.Connection) => Promise<T>): Promise<T> {
  let connection: mysql.Connection;
  try {
    connection = await mysql.createConnection({
      host: "127.0.0.1",
      port: 3306,
      user: "root",
      connectTimeout: 5_000,
    });
  } catch (error) {
    throw new Error(
      `MariaDB is required by the JIT suites but 127.0.0.1:3306 is unreachable (${String(error)})`,
    );
  }
  try {
    return await work(connection);
  } finally {
    await connection.end().catch(() => {});
  }
}

/** A session as an issued account. */
export async function mariaLogin(user: string, password: string, database?: string) {
  const connection = await mysql.createConnection({
    host: "127.0.0.1",
    port: 3306,
    user,
    password,
    connectTimeout: 5_000,
    ...(database ? { database } : {}),
  });
  connection.on("error", () => {});
  return connection;
}

/** "ok" when the login works, else the driver's error code (ER_ACCESS_DENIED_ERROR, …). */
export async function mariaLoginOutcome(user: string, password: string): Promise<string> {
  try {
    const connection = await mariaLogin(user, password);
    await connection.query("select 1");
    await connection.end();
    return "ok";
  } catch (error) {
    return String((error as { code?: unknown }).code ?? "failed");
  }
}

/** Account names under `prefix` (roles excluded), sorted. */
export async function mariaAccounts(prefix: string): Promise<string[]> {
  return withMariaAdmin(async (connection) => {
    const [rows] = await connection.query(
      "SELECT DISTINCT User AS name FROM mysql.user WHERE LEFT(User, ?) = ? AND is_role = _binary'N' ORDER BY User",
      [prefix.length, prefix],
    );
    return (rows as { name: string }[]).map((r) => r.name);
  });
}

/** Drops every account under `prefix` and its sessions (cleanup). */
export async function dropMariaAccounts(prefix: string): Promise<void> {
  await withMariaAdmin(async (connection) => {
    const [rows] = await connection.query(
      "SELECT User AS name, Host AS host FROM mysql.user WHERE LEFT(User, ?) = ?",
      [prefix.length, prefix],
    );
    for (const { name, host } of rows as { name: string; host: string }[]) {
      await connection.query(`KILL CONNECTION USER ${connection.escape(name)}`).catch(() => {});
      await connection.query(`DROP USER IF EXISTS ${connection.escape(name)}@${connection.escape(host)}`);
    }
  });
}

export interface MariaFixture {
  /** A database with a table `items` holding one row. */
  database: string;
  /** A MariaDB role that may read the database. */
  reader: string;
  /** Where the connector keeps its expiry events. */
  control: string;
  drop(): Promise<void>;
}

/** A database, a reader role and a control database; also makes sure the event scheduler runs. */
export async function createMariaFixture(tag: string): Promise<MariaFixture> {
  const database = `jfx${tag}_shop`;
  const reader = `jfx${tag}_reader`;
  const control = `jfx${tag}_ctl`;
  await withMariaAdmin(async (connection) => {
    // The connector's backstop needs it; it refuses to issue without it (see its NOTES.md).
    await connection.query("SET GLOBAL event_scheduler = ON");
    await connection.query(`CREATE DATABASE ${database}`);
    await connection.query(`CREATE TABLE ${database}.items (id int primary key, name varchar(20))`);
    await connection.query(`INSERT INTO ${database}.items VALUES (1, 'widget')`);
    await connection.query(`CREATE ROLE ${reader}`);
    await connection.query(`GRANT SELECT ON ${database}.* TO ${reader}`);
  });
  return {
    database,
    reader,
    control,
    async drop() {
      await withMariaAdmin(async (connection) => {
        await connection.query(`DROP DATABASE IF EXISTS ${database}`);
        await connection.query(`DROP DATABASE IF EXISTS ${control}`);
        await connection.query(`DROP ROLE IF EXISTS ${reader}`);
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Configuration

/** The directory every JIT configuration starts from. */
export const DIRECTORY = {
  users: {
    alice: { groups: ["sre"] },
    bob: { groups: ["sre"] },
    carol: { groups: ["leads"] },
    erin: { groups: ["security"] },
  },
};

/** A break-glass policy: sre may ask, one lead approves (none when `approvals` is false). */
export function policy(
  name: string,
  zone: string,
  roles: string[],
  options: { duration?: string; approvals?: boolean } = {},
) {
  return {
    name,
    zone,
    roles,
    eligible: ["group:sre"],
    duration: { default: options.duration ?? "1m", max: "1h" },
    ...(options.approvals === false ? {} : { approvals: [{ from: "group:leads", count: 1 }] }),
  };
}

/**
 * A whole configuration as YAML. Built as an object and serialised, so strings a test wants to be
 * hostile reach Firebreak exactly as written, never as broken YAML.
 */
export function configText(config: {
  zones: Record<string, unknown>;
  resources: Record<string, unknown>;
  breakGlass: unknown[];
  directory?: unknown;
}): string {
  return YAML.stringify({
    version: 1,
    auditors: ["group:security"],
    directory: config.directory ?? DIRECTORY,
    zones: { bastion: { cidrs: ["127.0.0.0/8"] }, ...config.zones },
    resources: config.resources,
    breakGlass: config.breakGlass,
  });
}

// ---------------------------------------------------------------------------------------------
// The server

export interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field in tests
  body: any;
  text: string;
}

/** Every reply body a suite received, for the check that no secret ever left in one. */
export interface ReplyLog {
  /** Replies that may not carry a secret. */
  readonly replies: string[];
  /** Successful credential deliveries: the one place a secret is meant to be. */
  readonly deliveries: string[];
}

export function createReplyLog(): ReplyLog {
  return { replies: [], deliveries: [] };
}

export interface JitClient {
  readonly user: string;
  call(method: "GET" | "POST", path: string, body?: unknown): Promise<Reply>;
  /** Like `call`, but fails the test unless the status is `status`; returns the body. */
  // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field in tests
  ok(method: "GET" | "POST", path: string, body?: unknown, status?: number | number[]): Promise<any>;
  readonly token: string;
}

export interface JitServer {
  /** Changes at each restart (the port is the kernel's choice). */
  readonly url: string;
  readonly pid: number;
  readonly process: ServerProcess;
  readonly directory: string;
  readonly configPath: string;
  readonly dbPath: string;
  readonly dbUrl: string;
  readonly masterKey: string;
  readonly admin: JitClient;
  readonly group: ProcessGroup;
  readonly log: ReplyLog;
  /** Everything every incarnation of the server wrote to stdout and stderr. */
  output(): string;
  /** A client for a user (a token minted by the administrator on first use). */
  as(user: string): Promise<JitClient>;
  writeConfig(text: string): Promise<void>;
  /** Writes the file and applies it through POST /v1/config/reload. */
  reload(text: string): Promise<void>;
  /** SIGKILL, waiting for the exit. */
  kill(): Promise<void>;
  /** SIGTERM, waiting for the exit. */
  stop(): Promise<void>;
  /** Starts a new process on the same database and configuration, with `env` replacing the master key if given. */
  start(env?: { masterKey?: string }): Promise<void>;
  /** Stops whatever runs and removes the directory. */
  close(): Promise<void>;
}

/**
 * Spawns `firebreak serve` on a fresh SQLite database in its own directory, with its own master key
 * in FIREBREAK_MASTER_KEY (so no key file is shared with other suites), and waits until it is ready.
 */
export async function startJitServer(config: string, options: { log?: ReplyLog } = {}): Promise<JitServer> {
  const group = processGroup();
  const directory = await temporaryDirectory();
  const configPath = join(directory.path, "firebreak.yaml");
  const dbPath = join(directory.path, "firebreak.db");
  const dbUrl = `sqlite:${dbPath}`;
  await writeFile(configPath, config);
  const log = options.log ?? createReplyLog();
  let output = "";
  let masterKey = randomBytes(32).toString("hex");
  let current: ServerProcess | null = null;
  let adminToken = "";
  const tokens = new Map<string, string>();

  async function spawnOne() {
    const spawned = group.spawnServer({
      config: configPath,
      db: dbUrl,
      env: { FIREBREAK_MASTER_KEY: masterKey, FIREBREAK_MASTER_KEY_PREVIOUS: undefined },
    });
    spawned.child.stdout?.on("data", (chunk: string | Buffer) => {
      output += chunk.toString();
    });
    spawned.child.stderr?.on("data", (chunk: string | Buffer) => {
      output += chunk.toString();
    });
    const server = await spawned.started;
    await waitForReady(server.url);
    current = server;
    return server;
  }

  function client(user: string, token: string): JitClient {
    async function call(method: "GET" | "POST", path: string, body?: unknown): Promise<Reply> {
      if (!current) throw new Error("the server is not running");
      // A POST always carries a JSON body (an empty object when there is nothing to say).
      const payload = body === undefined ? (method === "POST" ? {} : undefined) : body;
      const response = await fetch(`${current.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(payload === undefined ? {} : { "content-type": "application/json" }),
        },
        body: payload === undefined ? undefined : JSON.stringify(payload),
      });
      const text = await response.text();
      let parsed: unknown = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = null;
      }
      const delivered = /\/v1\/grants\/[^/]+\/credential$/.test(path) && response.status === 200;
      (delivered ? log.deliveries : log.replies).push(text);
      return { status: response.status, body: parsed, text };
    }
    return {
      user,
      token,
      call,
      async ok(method, path, body, status) {
        const reply = await call(method, path, body);
        const expected = status ?? (method === "POST" ? [200, 201] : [200]);
        const wanted = Array.isArray(expected) ? expected : [expected];
        if (!wanted.includes(reply.status))
          throw new Error(`${user}: ${method} ${path} answered ${reply.status}: ${reply.text.slice(0, 500)}`);
        return reply.body;
      },
    };
  }

  const first = await spawnOne();
  if (!first.admin) throw new Error("the first start of a fresh database printed no administrator token");
  adminToken = first.admin.token;
  const admin = client(first.admin.user, adminToken);

  const handle: JitServer = {
    get url() {
      if (!current) throw new Error("the server is not running");
      return current.url;
    },
    get pid() {
      return current?.pid ?? -1;
    },
    get process() {
      if (!current) throw new Error("the server is not running");
      return current;
    },
    directory: directory.path,
    configPath,
    dbPath,
    dbUrl,
    get masterKey() {
      return masterKey;
    },
    admin,
    group,
    log,
    output: () => output,
    async as(user) {
      let token = tokens.get(user);
      if (!token) {
        const minted = await admin.ok("POST", `/v1/users/${encodeURIComponent(user)}/tokens`, {}, 201);
        token = String(minted.token);
        tokens.set(user, token);
      }
      return client(user, token);
    },
    writeConfig: (text) => writeFile(configPath, text),
    async reload(text) {
      await writeFile(configPath, text);
      await admin.ok("POST", "/v1/config/reload", {});
    },
    async kill() {
      const server = current;
      current = null;
      await server?.stop("SIGKILL");
    },
    async stop() {
      const server = current;
      current = null;
      await server?.stop("SIGTERM");
    },
    async start(env = {}) {
      if (current) throw new Error("the server is already running");
      if (env.masterKey) masterKey = env.masterKey;
      await spawnOne();
    },
    async close() {
      await group.killAll();
      current = null;
      await directory.remove();
    },
  };
  return handle;
}

// ---------------------------------------------------------------------------------------------
// Flows

/** Request → approval by carol (when pending) → activation; returns the grant view. */
export async function activateGrant(
  server: JitServer,
  options: {
    user: string;
    zone?: string;
    resource?: string;
    role: string;
    duration?: string;
    publicKey?: string;
  },
) {
  const requester = await server.as(options.user);
  const request = await requester.ok("POST", "/v1/requests", {
    ...(options.resource ? { resource: options.resource } : { zone: options.zone }),
    role: options.role,
    reason: "the primary is down and needs a hand",
    ...(options.duration ? { duration: options.duration } : {}),
  });
  if (request.state === "pending") {
    const lead = await server.as("carol");
    const approved = await lead.ok("POST", `/v1/requests/${request.id}/approve`, { comment: "go" });
    if (approved.state !== "approved") throw new Error(`the request is ${approved.state} after approval`);
  } else if (request.state !== "approved") {
    throw new Error(`the request was ${request.state}: ${JSON.stringify(request)}`);
  }
  return requester.ok(
    "POST",
    `/v1/requests/${request.id}/activate`,
    options.publicKey ? { publicKey: options.publicKey } : {},
    201,
  );
}

export interface AuditEvent {
  seq: number;
  type: string;
  actor: string;
  zone: string | null;
  resource: string | null;
  subject: string | null;
  context: Record<string, unknown>;
  time: string;
}

/** Every audit event (as the administrator), optionally only those about `subject`. */
export async function auditEvents(server: JitServer, subject?: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for (;;) {
    const after = events.at(-1)?.seq ?? 0;
    const query = `afterSeq=${after}&limit=1000${subject ? `&subject=${encodeURIComponent(subject)}` : ""}`;
    const page = await server.admin.ok("GET", `/v1/audit?${query}`);
    events.push(...(page.events as AuditEvent[]));
    if (page.events.length < 1000) return events;
  }
}

/** Waits until an audit event of `type` about `subject` exists; returns it. */
export async function waitForAudit(
  server: JitServer,
  subject: string,
  type: string,
  timeoutMs = 15_000,
): Promise<AuditEvent> {
  return waitFor(async () => (await auditEvents(server, subject)).find((event) => event.type === type), {
    timeoutMs,
    intervalMs: 100,
    what: `audit event ${type} for ${subject}`,
  });
}

// ---------------------------------------------------------------------------------------------
// OpenSSH

/**
 * A real sshd accepting certificates for principal `ops`. Firebreak's zone CA does not exist until
 * the server is asked for it, so sshd starts trusting nothing; `trustZoneCa` installs the CA
 * afterwards (sshd reads TrustedUserCAKeys at every authentication).
 */
export async function startJitSshd(): Promise<Sshd> {
  return startSshd({ trustedUserCaKeys: [], principals: ["ops"] });
}

/** Makes sshd trust the zone's CA, as printed by GET /v1/zones/:zone/ssh-ca; returns the CA line. */
export async function trustZoneCa(server: JitServer, zone: string, sshd: Sshd): Promise<string> {
  const ca = await server.admin.ok("GET", `/v1/zones/${zone}/ssh-ca`);
  await writeFile(join(sshd.directory, "trusted_user_ca_keys"), `${ca.publicKey}\n`);
  return String(ca.publicKey);
}

/** Does what a host's fetch job does: GET the zone's KRL and install it as sshd's RevokedKeys. */
export async function installKrl(server: JitServer, zone: string, sshd: Sshd): Promise<void> {
  const response = await fetch(`${server.url}/v1/zones/${zone}/ssh-krl`);
  if (response.status !== 200) throw new Error(`GET ssh-krl answered ${response.status}`);
  await sshd.writeRevokedKeys(Buffer.from(await response.arrayBuffer()));
}

export { sleep, waitFor } from "./process.js";

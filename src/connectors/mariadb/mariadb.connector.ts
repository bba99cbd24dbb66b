import { createHash, randomBytes } from "node:crypto";
import mysql, { type Pool, type PoolConnection } from "mysql2/promise";
import type { ResourceConfigOf } from "../../config/schema.js";
import { FirebreakError } from "../../errors.js";
import { connectorForType } from "../../plugins/connector-for-type.js";
import type {
  ConnectorDeps,
  CredentialConnector,
  IssueContext,
  RevokeContext,
} from "../../plugins/contracts.js";
import {
  grantTarget,
  type ParsedPrivilege,
  parsePrivilege,
  quoteIdentifier,
  quoteString,
  SAFE_IDENTIFIER,
} from "./mariadb.privileges.js";
import { ACCOUNT_HOST, DEFAULT_CONTROL_DATABASE } from "./mariadb.settings.js";

type MariadbResource = ResourceConfigOf<"mariadb">;

/** Every account Firebreak creates starts with this (or the resource's `namePrefix`); the reconciler looks for nothing else. */
export const DEFAULT_PREFIX = "fb_";
/** MariaDB before 10.6 allows 80 characters in a user name; staying under it keeps older servers working. */
export const MAX_USER_NAME_LENGTH = 80;

/** What an account Firebreak manages may be called; anything else handed to revoke is refused. */
const MANAGED_NAME = /^[a-z0-9_]{1,80}$/;
/** A grant id kept readable in the account name; longer or odder ids are hashed (32 characters, so never confused). */
const READABLE_GRANT_ID = /^grt_([a-z0-9]{1,30})$/;
const STATEMENT_TIMEOUT_MS = 10_000;

function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * The account for one grant: `fb_<user>_<grant>`, only `[a-z0-9_]`, at most 80 characters. The
 * grant part is the last `_`-separated segment and holds no `_`, so two grants never share a name;
 * the user part is only there for people reading the process list and is shortened to fit.
 */
export function accountNameFor(grantId: string, user: string, prefix = DEFAULT_PREFIX): string {
  const readable = READABLE_GRANT_ID.exec(grantId)?.[1];
  const grantPart = readable ?? sha256Hex(grantId).slice(0, 32);
  const room = MAX_USER_NAME_LENGTH - prefix.length - 1 - grantPart.length;
  const userPart =
    user
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_+/, "")
      .slice(0, Math.max(0, room))
      .replace(/_+$/, "") || "user";
  return `${prefix}${userPart}_${grantPart}`;
}

/** The one-shot event that drops the account at the grant's end; derived from the account alone (≤ 64 characters). */
export function expiryEventFor(account: string): string {
  return `fb_expire_${sha256Hex(account).slice(0, 32)}`;
}

/** The per-grant role that carries several mapped roles at once (MariaDB allows one default role). */
export function bundleRoleFor(account: string): string {
  return `fb_role_${sha256Hex(account).slice(0, 32)}`;
}

/** The mysql_native_password hash, so the clear password never travels in a statement (or shows in the process list). */
export function nativePasswordHash(password: string): string {
  const inner = createHash("sha1").update(password).digest();
  return `*${createHash("sha1").update(inner).digest("hex").toUpperCase()}`;
}

function account(name: string, host: string): string {
  return `${quoteString(name)}@${quoteString(host)}`;
}

/** What one resource's settings mean for this connector, validated before the target is touched. */
interface ResourceSettings {
  controlDatabase: string;
  userHost: string;
  database: string | null;
}

function settingsOf(resourceName: string, resource: MariadbResource): ResourceSettings {
  const connection = resource.connection ?? {};
  const controlDatabase = connection.controlDatabase ?? DEFAULT_CONTROL_DATABASE;
  const userHost = connection.userHost ?? "%";
  const database = connection.database ?? null;
  const invalid = (field: string, expected: string) =>
    new FirebreakError(
      "CONFIG_INVALID",
      `resource '${resourceName}': connection.${field} must be ${expected}`,
    );
  if (!SAFE_IDENTIFIER.test(controlDatabase))
    throw invalid("controlDatabase", "a plain database name ([A-Za-z0-9_])");
  if (!ACCOUNT_HOST.test(userHost)) throw invalid("userHost", "a host, address or '%' pattern");
  if (database !== null && !SAFE_IDENTIFIER.test(database))
    throw invalid("database", "a plain database name ([A-Za-z0-9_])");
  return { controlDatabase, userHost, database };
}

/** The MariaDB roles and privileges a Firebreak role maps to; refuses anything it cannot quote or does not know. */
function mappingOf(resourceName: string, resource: MariadbResource, role: string, controlDatabase: string) {
  const settings = resource.roles[role];
  if (settings === undefined) {
    throw new FirebreakError("CONFIG_INVALID", `resource '${resourceName}' has no role '${role}'`);
  }
  const roles = settings.grants ?? [];
  for (const name of roles) {
    if (!SAFE_IDENTIFIER.test(name)) {
      throw new FirebreakError(
        "CONFIG_INVALID",
        `resource '${resourceName}' role '${role}': MariaDB role ${JSON.stringify(name)} refused: only letters, digits and '_'`,
      );
    }
  }
  const privileges = (settings.privileges ?? []).map((entry) => parsePrivilege(entry, controlDatabase));
  if (roles.length === 0 && privileges.length === 0) {
    throw new FirebreakError(
      "CONFIG_INVALID",
      `role '${role}' of ${resourceName} maps to no MariaDB role or privilege (roles.${role}.grants or .privileges)`,
    );
  }
  return { roles, privileges };
}

interface Target {
  url: string;
  pool: Pool;
  host: string;
  port: number;
  /** Set once the control database is known to exist, to save a statement per issue. */
  controlReady: Set<string>;
}

/** Never repeated in an error: a URL may hold the admin password. */
function parseAdminUrl(resourceName: string, text: string) {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new FirebreakError(
      "CONFIG_INVALID",
      `resource '${resourceName}': connection.url is not a mysql:// URL`,
    );
  }
  if (url.protocol !== "mysql:" && url.protocol !== "mariadb:") {
    throw new FirebreakError(
      "CONFIG_INVALID",
      `resource '${resourceName}': connection.url is not a mysql:// URL`,
    );
  }
  return {
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
  };
}

/** Where people connect: the resource's network address when it has one, else the admin URL's host. */
function endpointOf(adminHost: string, adminPort: number, resource: MariadbResource) {
  const match = resource.address ? /^(.*):(\d+)$/.exec(resource.address) : null;
  if (match?.[1] && match[2]) return { host: match[1].replace(/^\[|\]$/g, ""), port: Number(match[2]) };
  return { host: adminHost, port: adminPort };
}

/** The driver's error name (ER_…), never its message: messages can echo statement text. */
function driverCode(error: unknown): string | null {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && /^[A-Z0-9_]{1,64}$/.test(code) ? code : null;
}

type Connection = PoolConnection;

async function run(connection: Connection, sql: string, values: unknown[] = []) {
  const [rows] = await connection.query({ sql, values, timeout: STATEMENT_TIMEOUT_MS });
  return rows;
}

async function rowsOf<T>(connection: Connection, sql: string, values: unknown[] = []): Promise<T[]> {
  return (await run(connection, sql, values)) as T[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Just-in-time MariaDB accounts. At activation an account unique to the grant is created with a
 * random password, the mapped MariaDB roles (set as its default role) and/or strictly parsed
 * privileges, and a one-shot EVENT in the control database that drops the account and kills its
 * sessions at the grant's end, so MariaDB itself refuses the account after expiry even when
 * Firebreak is down. At expiry or revoke: lock, kill every session, drop the event, drop the
 * account. See NOTES.md.
 */
export function createMariadbConnector(deps: ConnectorDeps): CredentialConnector {
  const targets = new Map<string, Target>();

  function target(resourceName: string, resource: MariadbResource): Target {
    const ref = resource.connection?.url;
    if (!ref) {
      throw new FirebreakError(
        "CONFIG_INVALID",
        `resource '${resourceName}' has no connection.url for its admin login`,
      );
    }
    const isReference = ref.startsWith("env:") || ref.startsWith("file:");
    const url = isReference ? deps.secret(ref) : ref;
    const existing = targets.get(resourceName);
    if (existing?.url === url) return existing;
    const parsed = parseAdminUrl(resourceName, url);
    if (!isReference && parsed.password !== "") {
      throw new FirebreakError(
        "CONFIG_INVALID",
        `resource '${resourceName}': connection.url holds a password in the configuration; use an env: or file: reference`,
      );
    }
    if (existing) {
      // The configuration changed under a running pool: the old one must not linger.
      targets.delete(resourceName);
      existing.pool.end().catch(() => {});
    }
    const pool = mysql.createPool({
      host: parsed.host,
      port: parsed.port,
      user: parsed.user,
      password: parsed.password,
      connectionLimit: 4,
      maxIdle: 4,
      idleTimeout: 10_000,
      connectTimeout: 5_000,
      multipleStatements: false,
      enableKeepAlive: true,
    });
    const created: Target = { url, pool, host: parsed.host, port: parsed.port, controlReady: new Set() };
    targets.set(resourceName, created);
    return created;
  }

  /** Runs `work` on one admin connection; driver errors become CONNECTOR_FAILED with the error name only. */
  async function withConnection<T>(
    resourceName: string,
    resource: MariadbResource,
    action: string,
    work: (connection: Connection, target: Target) => Promise<T>,
  ): Promise<T> {
    const current = target(resourceName, resource);
    let connection: Connection;
    try {
      connection = await current.pool.getConnection();
    } catch (error) {
      const code = driverCode(error);
      throw new FirebreakError(
        "CONNECTOR_FAILED",
        `cannot reach MariaDB for ${resourceName}${code ? ` (${code})` : ""}`,
      );
    }
    try {
      return await work(connection, current);
    } catch (error) {
      if (error instanceof FirebreakError) throw error;
      const code = driverCode(error);
      throw new FirebreakError(
        "CONNECTOR_FAILED",
        `MariaDB refused to ${action} on ${resourceName}${code ? ` (${code})` : ""}`,
      );
    } finally {
      connection.release();
    }
  }

  /**
   * Takes an account away, in the order that leaves no gap: lock (no new logins), kill every
   * session, then drop the expiry event, the bundle role and the account. Every step is a no-op
   * when its object is already gone, so a crash anywhere is repaired by running it again.
   */
  async function closeAccount(connection: Connection, name: string, controlDatabases: readonly string[]) {
    const hosts = await rowsOf<{ host: string }>(
      connection,
      "SELECT Host AS host FROM mysql.user WHERE User = ? AND is_role = _binary'N'",
      [name],
    );
    for (const { host } of hosts)
      await run(connection, `ALTER USER IF EXISTS ${account(name, host)} ACCOUNT LOCK`);
    await run(connection, `KILL CONNECTION USER ${quoteString(name)}`);
    // A killed thread leaves the process list a moment later; wait (bounded) so verification sees it gone.
    for (let waited = 0; waited < 80; waited++) {
      const left = await rowsOf(connection, "SELECT 1 FROM information_schema.PROCESSLIST WHERE USER = ?", [
        name,
      ]);
      if (left.length === 0) break;
      await sleep(25);
    }
    for (const database of new Set(controlDatabases)) {
      await run(
        connection,
        `DROP EVENT IF EXISTS ${quoteIdentifier(database)}.${quoteIdentifier(expiryEventFor(name))}`,
      );
    }
    await run(connection, `DROP ROLE IF EXISTS ${quoteIdentifier(bundleRoleFor(name))}`);
    for (const { host } of hosts) await run(connection, `DROP USER IF EXISTS ${account(name, host)}`);
  }

  function managedName(resourceName: string, externalId: string): string {
    if (!MANAGED_NAME.test(externalId)) {
      throw new FirebreakError(
        "CONNECTOR_FAILED",
        `refusing to revoke ${JSON.stringify(externalId.slice(0, 100))} on ${resourceName}: not an account name Firebreak creates`,
      );
    }
    return externalId;
  }

  /** The control databases an account's event may be in: the one recorded at issue, and today's setting. */
  function controlDatabasesOf(resourceName: string, context: RevokeContext<"mariadb">): string[] {
    const current = settingsOf(resourceName, context.resource).controlDatabase;
    const recorded = context.detail.controlDatabase;
    return typeof recorded === "string" && SAFE_IDENTIFIER.test(recorded) ? [recorded, current] : [current];
  }

  return connectorForType<"mariadb">({
    kind: "mariadb",
    available: true,
    plannedExternalId: (grantId, user, resource) => accountNameFor(grantId, user, resource?.namePrefix),

    async issue(context: IssueContext<"mariadb">) {
      const { resourceName, resource } = context;
      const name = accountNameFor(context.grantId, context.user, resource.namePrefix);
      const settings = settingsOf(resourceName, resource);
      const mapping = mappingOf(resourceName, resource, context.role, settings.controlDatabase);
      // The event fires on the server's clock; a relative delay keeps clock skew between hosts out of it.
      // CURRENT_TIMESTAMP is whole seconds (up to 1 s behind), hence one second more than is left:
      // the event never fires before the end, and at most about two seconds after it.
      const secondsLeft = Math.ceil((context.endsAt - deps.now()) / 1000);
      if (secondsLeft < 1) {
        throw new FirebreakError("CONNECTOR_FAILED", `the grant ${context.grantId} has already ended`);
      }
      const password = randomBytes(24).toString("base64url");
      const user = account(name, settings.userHost);
      const bundle = mapping.roles.length > 1 ? bundleRoleFor(name) : null;
      const control = quoteIdentifier(settings.controlDatabase);
      const event = `${control}.${quoteIdentifier(expiryEventFor(name))}`;

      const endpoint = await withConnection(
        resourceName,
        resource,
        "create the account",
        async (connection, current) => {
          const [state] = await rowsOf<{ scheduler: string; existing: number }>(
            connection,
            "SELECT @@GLOBAL.event_scheduler AS scheduler, (SELECT COUNT(*) FROM mysql.user WHERE User = ? AND is_role = _binary'N') AS existing",
            [name],
          );
          if (state?.scheduler !== "ON") {
            throw new FirebreakError(
              "CONNECTOR_FAILED",
              `MariaDB for ${resourceName} has event_scheduler=${state?.scheduler ?? "unknown"}: it could not expire the account on its own if Firebreak were down; set event_scheduler=ON in the server configuration`,
            );
          }
          if (!current.controlReady.has(settings.controlDatabase)) {
            await run(connection, `CREATE DATABASE IF NOT EXISTS ${control}`);
            current.controlReady.add(settings.controlDatabase);
          }
          // Issuing again for the same grant (after a crash) starts from a clean slate.
          if (Number(state.existing) > 0) await closeAccount(connection, name, [settings.controlDatabase]);
          try {
            // The backstop goes in first: from here on, whatever else happens, MariaDB drops the account at the end.
            const expire = [
              `DROP USER IF EXISTS ${user}`,
              `KILL CONNECTION USER ${quoteString(name)}`,
              ...(bundle ? [`DROP ROLE IF EXISTS ${quoteIdentifier(bundle)}`] : []),
            ];
            await run(
              connection,
              `CREATE OR REPLACE EVENT ${event} ON SCHEDULE AT CURRENT_TIMESTAMP + INTERVAL ${secondsLeft + 1} SECOND ON COMPLETION NOT PRESERVE COMMENT ${quoteString(`firebreak: expire ${name}`)} DO BEGIN ${expire.join("; ")}; END`,
            );
            await run(
              connection,
              `CREATE USER ${user} IDENTIFIED BY PASSWORD ${quoteString(nativePasswordHash(password))}`,
            );
            if (bundle) {
              await run(connection, `CREATE OR REPLACE ROLE ${quoteIdentifier(bundle)}`);
              for (const role of mapping.roles)
                await run(connection, `GRANT ${quoteIdentifier(role)} TO ${quoteIdentifier(bundle)}`);
            }
            const defaultRole = bundle ?? mapping.roles[0];
            if (defaultRole !== undefined) {
              await run(connection, `GRANT ${quoteIdentifier(defaultRole)} TO ${user}`);
              await run(connection, `SET DEFAULT ROLE ${quoteIdentifier(defaultRole)} FOR ${user}`);
            }
            for (const privilege of mapping.privileges) {
              await run(connection, grantStatement(privilege, user));
            }
          } catch (error) {
            // Never leave half an account behind; the original failure is what the caller needs to see.
            await closeAccount(connection, name, [settings.controlDatabase]).catch(() => {});
            throw error;
          }
          return endpointOf(current.host, current.port, resource);
        },
      );

      return {
        externalId: name,
        detail: {
          username: name,
          host: endpoint.host,
          port: endpoint.port,
          ...(settings.database ? { database: settings.database } : {}),
          accountHost: settings.userHost,
          validUntil: new Date(context.endsAt).toISOString(),
          roles: mapping.roles,
          privileges: mapping.privileges.map((p) => `${p.privileges.join(", ")} ON ${grantTarget(p)}`),
          controlDatabase: settings.controlDatabase,
          expiryEvent: expiryEventFor(name),
        },
        secret: password,
      };
    },

    async revoke(context: RevokeContext<"mariadb">) {
      const name = managedName(context.resourceName, context.externalId);
      const controlDatabases = controlDatabasesOf(context.resourceName, context);
      await withConnection(context.resourceName, context.resource, "drop the account", (connection) =>
        closeAccount(connection, name, controlDatabases),
      );
    },

    async verifyRevoked(context: RevokeContext<"mariadb">) {
      const name = managedName(context.resourceName, context.externalId);
      return withConnection(
        context.resourceName,
        context.resource,
        "check the account",
        async (connection) => {
          const accounts = await rowsOf(connection, "SELECT 1 FROM mysql.user WHERE User = ?", [name]);
          const sessions = await rowsOf(
            connection,
            "SELECT 1 FROM information_schema.PROCESSLIST WHERE USER = ?",
            [name],
          );
          return accounts.length === 0 && sessions.length === 0;
        },
      );
    },

    async usage(resourceName: string, resource: MariadbResource, externalId: string) {
      const name = managedName(resourceName, externalId);
      return withConnection(resourceName, resource, "look up the account's use", async (connection) => {
        const sessions = await rowsOf(
          connection,
          "SELECT 1 FROM information_schema.PROCESSLIST WHERE USER = ?",
          [name],
        );
        // Per-account login counters exist only with userstat=ON (information_schema.USER_STATISTICS).
        const [state] = await rowsOf<{ userstat: number | string }>(
          connection,
          "SELECT @@GLOBAL.userstat AS userstat",
        );
        let connections: number | null = null;
        if (Number(state?.userstat) === 1) {
          const [row] = await rowsOf<{ total: number | string }>(
            connection,
            "SELECT COALESCE(SUM(TOTAL_CONNECTIONS), 0) AS total FROM information_schema.USER_STATISTICS WHERE USER = ?",
            [name],
          );
          connections = Number(row?.total ?? 0);
        }
        return { liveSessions: sessions.length, connections };
      });
    },

    async listManaged(resourceName: string, resource: MariadbResource) {
      return withConnection(resourceName, resource, "list accounts", async (connection) => {
        // `_` is a LIKE wildcard: without the escape `fb_%` would also match `fbx…`.
        const pattern = `${(resource.namePrefix ?? DEFAULT_PREFIX).replace(/[|_%]/g, "|$&")}%`;
        const rows = await rowsOf<{ name: string }>(
          connection,
          "SELECT DISTINCT User AS name FROM mysql.user WHERE User LIKE ? ESCAPE '|' AND is_role = _binary'N' ORDER BY User",
          [pattern],
        );
        return rows.map((row) => row.name);
      });
    },

    async close() {
      const pools = [...targets.values()].map((t) => t.pool.end().catch(() => {}));
      targets.clear();
      await Promise.all(pools);
    },
  });
}

/** A GRANT rebuilt from the parsed privilege: our own keywords, a quoted target, a quoted account. */
function grantStatement(privilege: ParsedPrivilege, user: string): string {
  return `GRANT ${privilege.privileges.join(", ")} ON ${grantTarget(privilege)} TO ${user}`;
}

import { randomBytes } from "node:crypto";
import pg from "pg";
import type { ResourceConfigOf } from "../../config/schema.js";
import { FirebreakError } from "../../errors.js";
import { connectorForType } from "../../plugins/connector-for-type.js";
import type {
  ConnectorDeps,
  CredentialConnector,
  IssueContext,
  RevokeContext,
} from "../../plugins/contracts.js";
import { scramVerifier } from "./scram.js";

type PostgresResource = ResourceConfigOf<"postgres">;

/** Every login role Firebreak creates starts with this (or the resource's `namePrefix`); the reconciler looks for nothing else. */
export const DEFAULT_PREFIX = "fb_";
const MAX_IDENTIFIER_BYTES = 63;
/** The only role names this connector creates, and so the only ones it will close. */
const SAFE_ROLE = /^[a-z][a-z0-9_]{0,62}$/;

/**
 * The login role for one grant: `fb_<user>_<grant id>`, lowercase letters, digits and `_` only,
 * at most 63 bytes. The grant id part is kept whole (it makes the name unique); the user part is
 * shortened to fit.
 */
export function roleNameFor(grantId: string, user: string, prefix = DEFAULT_PREFIX): string {
  const grantPart = grantId
    .replace(/^grt_/, "")
    .toLowerCase()
    .replace(/[^a-z0-9]/g, "");
  const room = MAX_IDENTIFIER_BYTES - prefix.length - 1 - grantPart.length;
  const userPart =
    user
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "_")
      .replace(/^_+|_+$/g, "")
      .slice(0, Math.max(0, room)) || "user";
  return `${prefix}${userPart}_${grantPart}`.slice(0, MAX_IDENTIFIER_BYTES);
}

interface Target {
  /** The resolved admin URL and address the pool was made for. */
  key: string;
  pool: pg.Pool;
  host: string;
  port: number;
  database: string;
}

/** The connection fields a user needs, from the resource's address or else the admin URL (never its credentials). */
/** SQLSTATE of CREATE ROLE for a name that exists. */
const DUPLICATE_OBJECT = "42710";

function endpointOf(url: URL, resource: PostgresResource) {
  const [host, port] = resource.address
    ? [resource.address.replace(/:(\d+)$/, ""), Number(/:(\d+)$/.exec(resource.address)?.[1])]
    : [url.hostname, Number(url.port || 5432)];
  return {
    host: host.replace(/^\[|\]$/g, ""),
    port,
    database: decodeURIComponent(url.pathname.replace(/^\//, "")) || "postgres",
  };
}

/**
 * Just-in-time PostgreSQL logins. At activation a login role unique to the grant is created with
 * a random password, `VALID UNTIL` the grant's end (PostgreSQL itself refuses new logins after
 * that, even when Firebreak is down) and membership in the roles the zone role maps to. At expiry
 * or revoke: NOLOGIN first (no new sessions), then every session of the role is terminated, owned
 * objects are dropped or reassigned, and the role is dropped. See NOTES.md.
 */
export function createPostgresConnector(deps: ConnectorDeps): CredentialConnector {
  const targets = new Map<string, Target>();

  function target(resourceName: string, resource: PostgresResource): Target {
    const ref = resource.connection?.url;
    if (!ref)
      throw new FirebreakError(
        "CONNECTOR_FAILED",
        `resource '${resourceName}' has no connection.url for its admin login`,
      );
    const connectionString = ref.startsWith("env:") || ref.startsWith("file:") ? deps.secret(ref) : ref;
    // A configuration reload may move the resource: the pool follows its URL and address.
    const key = `${connectionString}\n${resource.address ?? ""}`;
    const existing = targets.get(resourceName);
    if (existing?.key === key) return existing;
    if (existing) {
      targets.delete(resourceName);
      existing.pool.end().catch(() => {});
    }
    let url: URL;
    try {
      url = new URL(connectionString);
    } catch {
      throw new FirebreakError(
        "CONNECTOR_FAILED",
        `resource '${resourceName}': connection.url is not a postgres:// URL`,
      );
    }
    const pool = new pg.Pool({
      connectionString,
      max: 8,
      connectionTimeoutMillis: 5_000,
      statement_timeout: 10_000,
      idleTimeoutMillis: 10_000,
    });
    pool.on("error", () => {});
    const created = { key, pool, ...endpointOf(url, resource) };
    targets.set(resourceName, created);
    return created;
  }

  /** Runs `work` on one admin connection; driver errors become CONNECTOR_FAILED without their text. */
  async function withClient<T>(
    resourceName: string,
    resource: PostgresResource,
    action: string,
    work: (client: pg.PoolClient) => Promise<T>,
  ): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await target(resourceName, resource).pool.connect();
    } catch (error) {
      if (error instanceof FirebreakError) throw error;
      throw new FirebreakError("CONNECTOR_FAILED", `cannot reach PostgreSQL for ${resourceName}`);
    }
    try {
      return await work(client);
    } catch (error) {
      if (error instanceof FirebreakError) throw error;
      const code = (error as { code?: string }).code;
      throw new FirebreakError(
        "CONNECTOR_FAILED",
        `PostgreSQL refused to ${action} on ${resourceName}${code ? ` (SQLSTATE ${code})` : ""}`,
      );
    } finally {
      client.release();
    }
  }

  /**
   * Why the resource's `reassignTo` cannot work on this target, or null: the role must exist, or
   * REASSIGN OWNED fails and so does every revocation of every grant, for as long as it is missing.
   */
  async function reassignProblem(
    client: pg.PoolClient,
    resourceName: string,
    resource: PostgresResource,
  ): Promise<string | null> {
    if (resource.ownedObjects !== "reassign" || !resource.reassignTo) return null;
    const found = await client.query("select 1 from pg_roles where rolname = $1", [resource.reassignTo]);
    if (found.rowCount !== 0) return null;
    return `resource '${resourceName}': reassignTo names the role '${resource.reassignTo}', which does not exist on the target, so no grant's login role could be dropped at revoke; create that role or change ownedObjects`;
  }

  /**
   * Closes a login role in one round trip: a DO block that, if the role exists, sets NOLOGIN and
   * commits it (no new sessions, even if a later step fails and the close is retried), then
   * terminates its sessions, reassigns or drops what it owns and drops it. Then waits (bounded)
   * for the terminated backends to exit, so verification sees them gone. It must run outside a
   * transaction block (the COMMIT inside the DO block needs that).
   */
  async function closeRole(
    client: pg.PoolClient,
    role: string,
    resourceName: string,
    resource: PostgresResource,
  ) {
    if (!SAFE_ROLE.test(role)) {
      throw new FirebreakError(
        "CONNECTOR_FAILED",
        "refusing to close a role whose name Firebreak could not have created",
      );
    }
    const name = pg.escapeLiteral(role);
    const reassign =
      resource.ownedObjects === "reassign" && resource.reassignTo
        ? `EXECUTE format('REASSIGN OWNED BY %I TO %I', ${name}, ${pg.escapeLiteral(resource.reassignTo)});`
        : "";
    try {
      await client.query(`DO $fb$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${name}) THEN
    EXECUTE format('ALTER ROLE %I NOLOGIN', ${name});
    COMMIT;
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${name} AND pid <> pg_backend_pid();
    ${reassign}
    EXECUTE format('DROP OWNED BY %I', ${name});
    EXECUTE format('DROP ROLE %I', ${name});
  END IF;
END $fb$`);
    } catch (error) {
      // Another replica's revoke dropped the role between the check and this drop (undefined_object):
      // the target lacks the account, which is what a revoke wants (verifyRevoked confirms it).
      // Only when the login itself is gone: a missing reassignTo role is also 42704, and is a failure.
      if ((error as { code?: unknown }).code === "42704") {
        const gone = await client
          .query("select 1 from pg_roles where rolname = $1", [role])
          .then((result) => result.rowCount === 0)
          .catch(() => false);
        if (gone) return;
      }
      // The login is NOLOGIN already (committed first); say why the rest fails, for the alert.
      const problem = reassign
        ? await reassignProblem(client, resourceName, resource).catch(() => null)
        : null;
      if (problem) throw new FirebreakError("RESOURCE_MISCONFIGURED", problem);
      throw error;
    }
    for (let waited = 0; waited < 40; waited++) {
      const left = await client.query("select 1 from pg_stat_activity where usename = $1", [role]);
      if (left.rowCount === 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  return connectorForType<"postgres">({
    kind: "postgres",
    available: true,
    plannedExternalId: (grantId, user, resource) => roleNameFor(grantId, user, resource?.namePrefix),

    async issue(context: IssueContext<"postgres">) {
      const role = roleNameFor(context.grantId, context.user, context.resource.namePrefix);
      const memberOf = context.resource.roles[context.role]?.grants ?? [];
      if (memberOf.length === 0) {
        throw new FirebreakError(
          "CONNECTOR_FAILED",
          `role '${context.role}' of ${context.resourceName} maps to no PostgreSQL role (roles.${context.role}.grants)`,
        );
      }
      const password = randomBytes(24).toString("base64url");
      const validUntil = new Date(context.endsAt).toISOString();
      await withClient(context.resourceName, context.resource, "create the login role", async (client) => {
        // A grant that could never be closed again is not opened (activation checks this first too).
        const problem = await reassignProblem(client, context.resourceName, context.resource);
        if (problem) throw new FirebreakError("RESOURCE_MISCONFIGURED", problem);
        // One round trip (the simple protocol runs the statements in order, every value a quoted
        // literal or identifier): the role and its comment commit together or not at all.
        const create = [
          "BEGIN",
          `CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD ${pg.escapeLiteral(scramVerifier(password))} VALID UNTIL ${pg.escapeLiteral(validUntil)} IN ROLE ${memberOf.map((r) => pg.escapeIdentifier(r)).join(", ")}`,
          `COMMENT ON ROLE ${pg.escapeIdentifier(role)} IS ${pg.escapeLiteral(`firebreak grant ${context.grantId} for ${context.user}`)}`,
          "COMMIT",
        ].join(";\n");
        const createRole = async () => {
          try {
            await client.query(create);
          } catch (error) {
            await client.query("ROLLBACK").catch(() => {});
            throw error;
          }
        };
        try {
          await createRole();
        } catch (error) {
          if ((error as { code?: string }).code !== DUPLICATE_OBJECT) throw error;
          // Issuing again for the same grant (after a crash) starts from a clean slate: the old
          // login (its password, its sessions) is closed first. Only then, so a first issue costs
          // one round trip.
          await closeRole(client, role, context.resourceName, context.resource);
          await createRole();
        }
      });
      const endpoint = target(context.resourceName, context.resource);
      return {
        externalId: role,
        detail: {
          username: role,
          host: endpoint.host,
          port: endpoint.port,
          database: endpoint.database,
          memberOf,
          validUntil,
        },
        secret: password,
      };
    },

    async revoke(context: RevokeContext<"postgres">) {
      await withClient(context.resourceName, context.resource, "drop the login role", (client) =>
        closeRole(client, context.externalId, context.resourceName, context.resource),
      );
    },

    async verifyRevoked(context: RevokeContext<"postgres">) {
      return withClient(context.resourceName, context.resource, "check the login role", async (client) => {
        const left = await client.query<{ n: number }>(
          "select (select count(*) from pg_roles where rolname = $1) + (select count(*) from pg_stat_activity where usename = $1) as n",
          [context.externalId],
        );
        return Number(left.rows[0]?.n) === 0;
      });
    },

    async checkTarget(resourceName: string, resource: PostgresResource) {
      if (resource.ownedObjects !== "reassign" || !resource.reassignTo) return [];
      const problem = await withClient(resourceName, resource, "look up the reassignTo role", (client) =>
        reassignProblem(client, resourceName, resource),
      );
      return problem ? [problem] : [];
    },

    async usage(resourceName: string, resource: PostgresResource, externalId: string) {
      // PostgreSQL counts no logins per role; only live sessions can be seen (log_connections aside).
      return withClient(resourceName, resource, "look up the role's sessions", async (client) => {
        const live = await client.query<{ n: string }>(
          "select count(*) as n from pg_stat_activity where usename = $1",
          [externalId],
        );
        return { liveSessions: Number(live.rows[0]?.n ?? 0), connections: null };
      });
    },

    async listManaged(resourceName: string, resource: PostgresResource) {
      return withClient(resourceName, resource, "list login roles", async (client) => {
        const prefix = (resource.namePrefix ?? DEFAULT_PREFIX).replace(/_/g, "\\_");
        const result = await client.query<{ rolname: string }>(
          "select rolname from pg_roles where rolname like $1 order by rolname",
          [`${prefix}%`],
        );
        return result.rows.map((r) => r.rolname);
      });
    },

    async close() {
      const pools = [...targets.values()].map((t) => t.pool.end().catch(() => {}));
      targets.clear();
      await Promise.all(pools);
    },
  });
}

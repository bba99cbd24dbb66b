import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResourceConfig } from "../../config/schema.js";
import { isFirebreakError } from "../../errors.js";
import type { ConnectorDeps } from "../../plugins/contracts.js";
import { createPostgresConnector } from "./postgres.connector.js";

/**
 * `ownedObjects: reassign` with a `reassignTo` role that does not exist on the target, against
 * the machine's real PostgreSQL: REASSIGN OWNED fails, so every revocation of every grant would
 * fail forever. The connector says so when asked (`checkTarget`), refuses to issue, and a
 * revocation that meets it says why (after the login is already NOLOGIN).
 */
const SOCKET = "/var/run/postgresql";
const DATABASE = "postgres";
const suffix = randomBytes(3).toString("hex");
const PREFIX = `r${suffix.slice(0, 4)}_`;
const OWNER = `jfx${suffix}_owner`;
const HEIR = `jfx${suffix}_heir`;

const deps: ConnectorDeps = {
  secret: (ref) => {
    throw new Error(`no secrets in this test (${ref})`);
  },
  keys: { getOrCreate: async () => ({ privateKey: "", publicKey: "" }) },
  now: () => Date.now(),
};

function resource(overrides: Partial<ResourceConfig> = {}): ResourceConfig {
  return {
    zone: "payments-db",
    type: "postgres",
    connection: { url: `postgres://postgres@localhost/${DATABASE}?host=${SOCKET}` },
    namePrefix: PREFIX,
    ownedObjects: "reassign",
    reassignTo: HEIR,
    roles: { admin: { grants: [OWNER] } },
    ...overrides,
  } as ResourceConfig;
}

async function admin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: SOCKET, user: "postgres", database: DATABASE });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const loginRoles = () =>
  admin(async (c) =>
    (
      await c.query<{ rolname: string; rolcanlogin: boolean }>(
        "select rolname, rolcanlogin from pg_roles where starts_with(rolname, $1) order by rolname",
        [PREFIX],
      )
    ).rows.map((r) => `${r.rolname} ${r.rolcanlogin ? "LOGIN" : "NOLOGIN"}`),
  );

async function failure(work: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await work;
  } catch (error) {
    if (isFirebreakError(error)) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error("expected a failure");
}

const connector = createPostgresConnector(deps);
const context = (grantId: string) => ({
  grantId,
  user: "alice",
  zone: "payments-db",
  resourceName: "payments-pg",
  resource: resource(),
  role: "admin",
  startsAt: Date.now(),
  endsAt: Date.now() + 600_000,
  sourceZone: null,
  sourceCidrs: [],
  clientAddress: null,
  publicKey: null,
});

beforeAll(async () => {
  await admin((c) => c.query(`CREATE ROLE ${OWNER} NOLOGIN`));
});

afterAll(async () => {
  await connector.close();
  await admin(async (c) => {
    for (const role of (
      await c.query<{ rolname: string }>("select rolname from pg_roles where starts_with(rolname, $1)", [
        PREFIX,
      ])
    ).rows)
      await c.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role.rolname)}`);
    await c.query(`DROP ROLE IF EXISTS ${HEIR}`);
    await c.query(`DROP ROLE IF EXISTS ${OWNER}`);
  });
});

describe("PostgreSQL reassignTo against the real server", () => {
  it("names a reassignTo role the target does not have, and nothing when it exists or is not used", async () => {
    expect(await connector.checkTarget?.("payments-pg", resource())).toEqual([
      `resource 'payments-pg': reassignTo names the role '${HEIR}', which does not exist on the target, so no grant's login role could be dropped at revoke; create that role or change ownedObjects`,
    ]);
    expect(await connector.checkTarget?.("payments-pg", resource({ ownedObjects: "drop" }))).toEqual([]);
    await admin((c) => c.query(`CREATE ROLE ${HEIR} NOLOGIN`));
    try {
      expect(await connector.checkTarget?.("payments-pg", resource())).toEqual([]);
    } finally {
      await admin((c) => c.query(`DROP ROLE ${HEIR}`));
    }
  });

  it("refuses to issue a login it could never drop, and creates nothing", async () => {
    const refused = await failure(connector.issue(context("grt_reassign0001")));
    expect(refused.code).toBe("RESOURCE_MISCONFIGURED");
    expect(refused.message).toContain(`'${HEIR}', which does not exist on the target`);
    expect(await loginRoles()).toEqual([]);
  });

  it("a revocation that meets a missing reassignTo leaves the login NOLOGIN and says why; it succeeds once the role exists", async () => {
    await admin((c) => c.query(`CREATE ROLE ${HEIR} NOLOGIN`));
    const issued = await connector.issue(context("grt_reassign0002"));
    // The role disappears while the grant is open: someone dropped it, or restored an old target.
    await admin((c) => c.query(`DROP ROLE ${HEIR}`));
    const revoke = { ...context("grt_reassign0002"), externalId: issued.externalId, detail: issued.detail };
    const refused = await failure(connector.revoke(revoke));
    expect(refused).toEqual({
      code: "RESOURCE_MISCONFIGURED",
      message: expect.stringContaining(`reassignTo names the role '${HEIR}'`),
    });
    expect(await loginRoles()).toEqual([`${issued.externalId} NOLOGIN`]);
    expect(await connector.verifyRevoked(revoke)).toBe(false);

    await admin((c) => c.query(`CREATE ROLE ${HEIR} NOLOGIN`));
    await connector.revoke(revoke);
    expect(await connector.verifyRevoked(revoke)).toBe(true);
    expect(await loginRoles()).toEqual([]);
    await admin((c) => c.query(`DROP ROLE ${HEIR}`));
  });
});

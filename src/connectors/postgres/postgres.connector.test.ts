import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResourceConfig } from "../../config/schema.js";
import { isFirebreakError } from "../../errors.js";
import type { ConnectorDeps } from "../../plugins/contracts.js";
import { createPostgresConnector, roleNameFor } from "./postgres.connector.js";

/**
 * Against the machine's real PostgreSQL. Issued logins connect over TCP to the database
 * `firebreak_pwtest`, for which pg_hba.conf requires a password (.ci/run sets that up); the admin
 * side uses the local socket. The first test proves the password requirement holds, so the
 * login assertions below mean something.
 */
const SOCKET = "/var/run/postgresql";
const DATABASE = "firebreak_pwtest";
const suffix = randomBytes(3).toString("hex");
const PREFIX = `t${suffix.slice(0, 4)}_`;
const OWNER = `payments_owner_${suffix}`;
const READER = `payments_reader_${suffix}`;

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
    address: "127.0.0.1:5432",
    connection: { url: `postgres://postgres@localhost/${DATABASE}?host=${SOCKET}` },
    namePrefix: PREFIX,
    roles: { admin: { grants: [OWNER] }, read: { grants: [READER] } },
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

async function login(user: string, password: string): Promise<pg.Client> {
  const client = new pg.Client({
    host: "127.0.0.1",
    port: 5432,
    user,
    password,
    database: DATABASE,
    connectionTimeoutMillis: 5000,
  });
  client.on("error", () => {});
  await client.connect();
  return client;
}

async function loginFails(user: string, password: string): Promise<string> {
  try {
    const client = await login(user, password);
    await client.end();
    return "logged in";
  } catch (error) {
    return (error as { code?: string }).code ?? "failed";
  }
}

const roles = () =>
  admin(async (c) =>
    (await c.query<{ rolname: string }>("select rolname from pg_roles order by rolname")).rows.map(
      (r) => r.rolname,
    ),
  );

let grantCounter = 0;
const grantId = () => `grt_${Date.now().toString(36)}${randomBytes(8).toString("hex")}${grantCounter++}`;
const window = (ms: number) => ({ startsAt: Date.now(), endsAt: Date.now() + ms });

describe("postgres connector (real PostgreSQL)", () => {
  const connector = createPostgresConnector(deps);

  beforeAll(async () => {
    await admin(async (c) => {
      await c.query(`CREATE ROLE ${OWNER} NOLOGIN`);
      await c.query(`CREATE ROLE ${READER} NOLOGIN`);
      await c.query(`CREATE SCHEMA s_${suffix} AUTHORIZATION ${OWNER}`);
      await c.query(`CREATE TABLE s_${suffix}.payments (id int primary key, amount int)`);
      await c.query(`ALTER TABLE s_${suffix}.payments OWNER TO ${OWNER}`);
      await c.query(`INSERT INTO s_${suffix}.payments VALUES (1, 100)`);
      await c.query(`GRANT USAGE ON SCHEMA s_${suffix} TO ${READER}`);
      await c.query(`GRANT SELECT ON s_${suffix}.payments TO ${READER}`);
    });
  });

  afterAll(async () => {
    await connector.close();
    await admin(async (c) => {
      for (const role of (
        await c.query<{ rolname: string }>("select rolname from pg_roles where rolname like $1", [
          `${PREFIX.replace("_", "\\_")}%`,
        ])
      ).rows) {
        await c.query(`DROP OWNED BY ${pg.escapeIdentifier(role.rolname)}`);
        await c.query(`DROP ROLE ${pg.escapeIdentifier(role.rolname)}`);
      }
      await c.query(`DROP SCHEMA IF EXISTS s_${suffix} CASCADE`);
      await c.query(`DROP OWNED BY ${OWNER}`);
      await c.query(`DROP ROLE IF EXISTS ${OWNER}`);
      await c.query(`DROP OWNED BY ${READER}`);
      await c.query(`DROP ROLE IF EXISTS ${READER}`);
    });
  });

  it("runs against a database that really checks passwords", async () => {
    expect(await loginFails("postgres", "not-the-password")).toBe("28P01");
  });

  it("names roles within 63 bytes, from safe characters, deterministically", () => {
    const id = "grt_mx1abcde0123456789abcdef";
    const name = roleNameFor(id, `Ünïcode "user"; DROP ROLE postgres; --${"x".repeat(200)}`);
    expect(name).toMatch(/^fb_[a-z0-9_]+$/);
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(name.endsWith("mx1abcde0123456789abcdef")).toBe(true);
    expect(roleNameFor(id, "alice")).toBe(roleNameFor(id, "alice"));
    expect(roleNameFor(id, "alice")).not.toBe(roleNameFor("grt_mx1abcde0123456789abcdee", "alice"));
  });

  it("issues a login that works through role membership, expires with the grant, and is gone after revoke", async () => {
    const id = grantId();
    const { startsAt, endsAt } = window(60_000);
    const context = {
      grantId: id,
      user: "alice",
      zone: "payments-db",
      resourceName: "payments-pg",
      resource: resource(),
      role: "read",
      startsAt,
      endsAt,
      sourceZone: null,
      sourceCidrs: [],
      clientAddress: null,
      publicKey: null,
    };
    const issued = await connector.issue(context);
    expect(issued.externalId).toBe(connector.plannedExternalId(id, "alice", resource()));
    expect(issued.detail).toMatchObject({
      username: issued.externalId,
      host: "127.0.0.1",
      port: 5432,
      database: DATABASE,
    });
    expect(JSON.stringify(issued.detail)).not.toContain(issued.secret as string);

    const stored = await admin((c) =>
      c.query("select rolvaliduntil, rolpassword, rolcanlogin, rolsuper from pg_authid where rolname = $1", [
        issued.externalId,
      ]),
    );
    expect(new Date(stored.rows[0].rolvaliduntil).getTime()).toBe(endsAt);
    expect(stored.rows[0].rolpassword).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(stored.rows[0]).toMatchObject({ rolcanlogin: true, rolsuper: false });

    expect(await loginFails(issued.externalId, "wrong-password")).toBe("28P01");
    const session = await login(issued.externalId, issued.secret as string);
    // Privileges arrive only through membership in the mapped role.
    expect((await session.query(`select amount from s_${suffix}.payments`)).rows).toEqual([{ amount: 100 }]);
    await expect(session.query(`delete from s_${suffix}.payments`)).rejects.toMatchObject({ code: "42501" });
    expect(await connector.listManaged("payments-pg", resource())).toContain(issued.externalId);

    const revokeContext = {
      grantId: id,
      user: "alice",
      resourceName: "payments-pg",
      resource: resource(),
      externalId: issued.externalId,
      detail: issued.detail,
    };
    expect(await connector.verifyRevoked(revokeContext)).toBe(false);
    await connector.revoke(revokeContext);
    // The session opened during the grant is cut, not left holding the role's privileges.
    await expect(session.query("select 1")).rejects.toBeTruthy();
    expect(await connector.verifyRevoked(revokeContext)).toBe(true);
    expect(await loginFails(issued.externalId, issued.secret as string)).not.toBe("logged in");
    expect(await connector.listManaged("payments-pg", resource())).not.toContain(issued.externalId);
    // Revoking again is harmless.
    await connector.revoke(revokeContext);
  });

  it("lets PostgreSQL itself refuse new logins after the window, even with no revoke (VALID UNTIL)", async () => {
    const id = grantId();
    const context = {
      grantId: id,
      user: "bob",
      zone: "payments-db",
      resourceName: "payments-pg",
      resource: resource(),
      role: "read",
      startsAt: Date.now(),
      endsAt: Date.now() + 1500,
      sourceZone: null,
      sourceCidrs: [],
      clientAddress: null,
      publicKey: null,
    };
    const issued = await connector.issue(context);
    const session = await login(issued.externalId, issued.secret as string);
    await session.end();
    await new Promise((r) => setTimeout(r, 2000));
    expect(await loginFails(issued.externalId, issued.secret as string)).toBe("28P01");
    await connector.revoke({
      grantId: id,
      user: "bob",
      resourceName: "payments-pg",
      resource: resource(),
      externalId: issued.externalId,
      detail: {},
    });
  });

  it("drops or reassigns objects the login created, as the resource says", async () => {
    for (const mode of ["drop", "reassign"] as const) {
      const id = grantId();
      const res = resource(mode === "reassign" ? { ownedObjects: "reassign", reassignTo: OWNER } : {});
      const issued = await connector.issue({
        grantId: id,
        user: "carol",
        zone: "payments-db",
        resourceName: "payments-pg",
        resource: res,
        role: "admin",
        ...window(60_000),
        sourceZone: null,
        sourceCidrs: [],
        clientAddress: null,
        publicKey: null,
      });
      const session = await login(issued.externalId, issued.secret as string);
      // Created without SET ROLE, so the grant's own login owns it.
      await session.query(`create table s_${suffix}.made_${mode} (x int)`);
      await session.end();
      await connector.revoke({
        grantId: id,
        user: "carol",
        resourceName: "payments-pg",
        resource: res,
        externalId: issued.externalId,
        detail: {},
      });
      const owner = await admin((c) =>
        c.query("select tableowner from pg_tables where schemaname = $1 and tablename = $2", [
          `s_${suffix}`,
          `made_${mode}`,
        ]),
      );
      if (mode === "drop") expect(owner.rows).toEqual([]);
      else expect(owner.rows).toEqual([{ tableowner: OWNER }]);
    }
  });

  it("is idempotent when issuing again for the same grant (after a crash)", async () => {
    const id = grantId();
    const context = {
      grantId: id,
      user: "dave",
      zone: "payments-db",
      resourceName: "payments-pg",
      resource: resource(),
      role: "read",
      ...window(60_000),
      sourceZone: null,
      sourceCidrs: [],
      clientAddress: null,
      publicKey: null,
    };
    const first = await connector.issue(context);
    const second = await connector.issue(context);
    expect(second.externalId).toBe(first.externalId);
    expect(await loginFails(first.externalId, first.secret as string)).toBe("28P01");
    const session = await login(second.externalId, second.secret as string);
    await session.end();
    await connector.revoke({
      grantId: id,
      user: "dave",
      resourceName: "payments-pg",
      resource: resource(),
      externalId: second.externalId,
      detail: {},
    });
  });

  it("counts a login that is already gone as revoked, also when two replicas revoke it at once", async () => {
    const id = grantId();
    const issued = await connector.issue({
      grantId: id,
      user: "erin",
      zone: "payments-db",
      resourceName: "payments-pg",
      resource: resource(),
      role: "read",
      ...window(60_000),
      sourceZone: null,
      sourceCidrs: [],
      clientAddress: null,
      publicKey: null,
    });
    const revoke = {
      grantId: id,
      user: "erin",
      resourceName: "payments-pg",
      resource: resource(),
      externalId: issued.externalId,
      detail: {},
    };
    const outcomes = await Promise.allSettled([connector.revoke(revoke), connector.revoke(revoke)]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled"]);
    expect(await roles()).not.toContain(issued.externalId);
    // Again, when nothing is left on the target: still revoked, and verified.
    await connector.revoke(revoke);
    expect(await connector.verifyRevoked(revoke)).toBe(true);
  });

  it("quotes hostile target role names: the attempt fails and the role list is unchanged", async () => {
    const before = await roles();
    for (const hostile of [
      `x"; DROP ROLE postgres; --`,
      `' OR 1=1 --`,
      "pg_read_all_data\u0000",
      `${"a".repeat(63)}`,
    ]) {
      const res = resource({ roles: { admin: { grants: [hostile] } } } as Partial<ResourceConfig>);
      const error = await connector
        .issue({
          grantId: grantId(),
          user: `eve"; DROP ROLE postgres; --`,
          zone: "payments-db",
          resourceName: "payments-pg",
          resource: res,
          role: "admin",
          ...window(60_000),
          sourceZone: null,
          sourceCidrs: [],
          clientAddress: null,
          publicKey: null,
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(isFirebreakError(error) && error.code).toBe("CONNECTOR_FAILED");
      // Driver text never reaches the caller.
      expect((error as Error).message).not.toMatch(/syntax|DROP ROLE/);
    }
    expect(await roles()).toEqual(before);
    expect(before).toContain("postgres");
  });
});

import { randomBytes } from "node:crypto";
import mysql, { type Connection } from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ResourceConfig } from "../../config/schema.js";
import { resolveSecret } from "../../config/secrets.js";
import { isFirebreakError } from "../../errors.js";
import type {
  ConnectorDeps,
  CredentialConnector,
  IssueContext,
  IssuedCredential,
  RevokeContext,
} from "../../plugins/contracts.js";
import {
  accountNameFor,
  bundleRoleFor,
  createMariadbConnector,
  expiryEventFor,
  MAX_USER_NAME_LENGTH,
  nativePasswordHash,
} from "./mariadb.connector.js";

/**
 * Runs against the MariaDB on this machine (override with FIREBREAK_TEST_MARIADB_URL). An
 * unreachable server fails the suite: a skipped connector test would claim coverage it does not have.
 */
const ADMIN_URL = process.env.FIREBREAK_TEST_MARIADB_URL ?? "mysql://root@127.0.0.1:3306/";
const SERVER = new URL(ADMIN_URL);

// Everything this file creates carries the tag, so parallel runs never meet and afterAll finds it all.
const tag = randomBytes(3).toString("hex");
const prefix = `t${tag}_`;
const shop = `fbt_${tag}_shop`;
/** Matches `fbt_<tag>_shop` when `_` is read as GRANT's one-character wildcard. */
const lookalike = `fbt0${tag}0shop`;
const control = `fbt_${tag}_ctl`;
const reader = `fbt_${tag}_reader`;
const writer = `fbt_${tag}_writer`;
const urlVariable = `FBT_MARIADB_URL_${tag.toUpperCase()}`;

/**
 * A refused login: ER_ACCESS_DENIED_ERROR, or ER_ACCESS_DENIED_NO_PASSWORD_ERROR, which MariaDB sends
 * instead for an unknown account after an authentication-plugin switch. Either is "access denied".
 */
const ACCESS_DENIED = [1045, 1698];
const TABLE_ACCESS_DENIED = 1142;
const DB_ACCESS_DENIED = 1044;
const SPECIFIC_ACCESS_DENIED = 1227;

let admin: Connection;
let connector: CredentialConnector;

const deps: ConnectorDeps = {
  secret: (ref) => resolveSecret(ref),
  keys: {
    getOrCreate: async () => {
      throw new Error("the MariaDB connector has no keys");
    },
  },
  now: () => Date.now(),
};

function resource(
  connection: Record<string, string> = {},
  roles: ResourceConfig["roles"] = {},
): ResourceConfig {
  return {
    zone: "data",
    type: "mariadb",
    namePrefix: prefix,
    connection: { url: `env:${urlVariable}`, controlDatabase: control, database: shop, ...connection },
    roles: {
      read: { grants: [reader] },
      write: { grants: [reader, writer] },
      narrow: { privileges: [`SELECT ON ${shop}.items`] },
      direct: { privileges: [`SELECT, INSERT ON ${shop}.*`] },
      ...roles,
    },
  };
}

let grantCounter = 0;
function newGrantId(): string {
  grantCounter += 1;
  return `grt_${tag}${String(grantCounter).padStart(4, "0")}${randomBytes(8).toString("hex")}`;
}

function issueContext(role: string, overrides: Partial<IssueContext> = {}): IssueContext {
  const now = Date.now();
  return {
    grantId: newGrantId(),
    user: "alice",
    zone: "data",
    resourceName: "shop-db",
    resource: resource(),
    role,
    startsAt: now,
    endsAt: now + 10 * 60_000,
    sourceZone: null,
    sourceCidrs: [],
    clientAddress: null,
    publicKey: null,
    ...overrides,
  };
}

function revokeContext(context: IssueContext, issued: IssuedCredential): RevokeContext {
  return {
    grantId: context.grantId,
    user: context.user,
    resourceName: context.resourceName,
    resource: context.resource,
    externalId: issued.externalId,
    detail: issued.detail,
  };
}

async function login(user: string, password: string): Promise<Connection> {
  const session = await mysql.createConnection({
    host: SERVER.hostname,
    port: Number(SERVER.port || 3306),
    user,
    password,
    connectTimeout: 5_000,
  });
  // A killed session reports its end as an 'error' event; without a listener that would crash the run.
  session.on("error", () => {});
  return session;
}

/** The server's error number for a failed login, or null when the login worked. */
async function loginFailure(user: string, password: string): Promise<number | null> {
  try {
    const session = await login(user, password);
    await session.end();
    return null;
  } catch (error) {
    return (error as { errno?: number }).errno ?? -1;
  }
}

/** The server's error number for a failed statement, or null when it worked. */
async function statementFailure(session: Connection, sql: string): Promise<number | null> {
  try {
    await session.query(sql);
    return null;
  } catch (error) {
    return (error as { errno?: number }).errno ?? -1;
  }
}

async function rows<T>(sql: string, values: unknown[] = []): Promise<T[]> {
  const [result] = await admin.query(sql, values);
  return result as T[];
}

async function accountsNamed(name: string) {
  return rows<{ host: string }>("SELECT Host AS host FROM mysql.user WHERE User = ?", [name]);
}

async function eventsIn(database: string) {
  return rows<{ name: string }>(
    "SELECT EVENT_NAME AS name FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY 1",
    [database],
  );
}

/** Every account and role on the server: what hostile input must leave exactly as it was. */
async function serverAccounts(): Promise<string> {
  const all = await rows<{ user: string; host: string; role: string }>(
    "SELECT User AS user, Host AS host, is_role AS role FROM mysql.user ORDER BY User, Host",
  );
  return JSON.stringify(all);
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(isFirebreakError(error) ? error.code : error).toBe(code);
    return (error as Error).message;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  try {
    admin = await mysql.createConnection(ADMIN_URL);
  } catch (error) {
    throw new Error(
      `MariaDB is not reachable at ${SERVER.host} (${(error as { code?: string }).code ?? "unknown error"}); these tests need it and never skip`,
    );
  }
  // Firebreak requires the scheduler for its expiry backstop; production sets it in the server configuration.
  await admin.query("SET GLOBAL event_scheduler = ON");
  for (const database of [shop, lookalike]) {
    await admin.query(`CREATE DATABASE \`${database}\``);
    await admin.query(`CREATE TABLE \`${database}\`.items (id INT PRIMARY KEY, name VARCHAR(40))`);
    await admin.query(`INSERT INTO \`${database}\`.items VALUES (1, 'kettle'), (2, 'teapot')`);
  }
  await admin.query(`CREATE TABLE \`${shop}\`.other (id INT PRIMARY KEY)`);
  // `\_`: in `db.*` GRANT reads `_` as a wildcard, and unescaped these roles would also cover the look-alike.
  const shopPattern = shop.replace(/_/g, "\\_");
  await admin.query(`CREATE ROLE \`${reader}\``);
  await admin.query(`GRANT SELECT ON \`${shopPattern}\`.* TO \`${reader}\``);
  await admin.query(`CREATE ROLE \`${writer}\``);
  await admin.query(`GRANT INSERT, UPDATE ON \`${shopPattern}\`.* TO \`${writer}\``);
  process.env[urlVariable] = ADMIN_URL;
  connector = createMariadbConnector(deps);
});

afterAll(async () => {
  await connector?.close();
  if (!admin) return;
  const leftovers = await rows<{ user: string; host: string }>(
    "SELECT User AS user, Host AS host FROM mysql.user WHERE User LIKE ? AND is_role = _binary'N'",
    [`${prefix.replace("_", "\\_")}%`],
  );
  for (const { user, host } of leftovers) {
    await admin.query("KILL CONNECTION USER ?", [user]);
    await admin.query("DROP USER IF EXISTS ?@?", [user, host]);
  }
  for (const database of [shop, lookalike, control])
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
  for (const role of [reader, writer]) await admin.query(`DROP ROLE IF EXISTS \`${role}\``);
  delete process.env[urlVariable];
  await admin.end();
});

describe("account names", () => {
  it("are deterministic, prefixed, at most 80 characters of [a-z0-9_], and unique per grant", () => {
    const grant = "grt_mi3k2a9f4c1b8e0d7a6f3e2d";
    expect(accountNameFor(grant, "alice")).toBe("fb_alice_mi3k2a9f4c1b8e0d7a6f3e2d");
    expect(accountNameFor(grant, "alice")).toBe(accountNameFor(grant, "alice"));
    expect(accountNameFor(grant, "alice", "ops_")).toBe("ops_alice_mi3k2a9f4c1b8e0d7a6f3e2d");
    const odd = [
      accountNameFor(grant, "x'; DROP USER root; --"),
      accountNameFor(grant, "Ω".repeat(200)),
      accountNameFor(grant, `${"very.long.name@example.com-".repeat(10)}`),
      accountNameFor("grt_x'; DROP USER root; --", "alice"),
      accountNameFor("g".repeat(500), "alice"),
    ];
    for (const name of odd) {
      expect(name).toMatch(/^fb_[a-z0-9_]+$/);
      expect(name.length).toBeLessThanOrEqual(MAX_USER_NAME_LENGTH);
    }
    expect(odd[0]).toBe("fb_x_drop_user_root_mi3k2a9f4c1b8e0d7a6f3e2d");
    expect(odd[1]).toBe("fb_user_mi3k2a9f4c1b8e0d7a6f3e2d");
    // Grants whose ids differ only where sanitising would erase the difference still get their own account.
    expect(accountNameFor("grt_a-b", "alice")).not.toBe(accountNameFor("grt_ab", "alice"));
    expect(accountNameFor("ab", "alice")).not.toBe(accountNameFor("grt_ab", "alice"));
    expect(accountNameFor("grt_one", "a_b")).not.toBe(accountNameFor("grt_b_one", "a"));
    expect(expiryEventFor(odd[2] ?? "").length).toBeLessThanOrEqual(64);
  });

  it("plannedExternalId is the name issue creates", async () => {
    const context = issueContext("read");
    const planned = connector.plannedExternalId(context.grantId, context.user, context.resource);
    const issued = await connector.issue(context);
    expect(issued.externalId).toBe(planned);
    expect(planned.startsWith(prefix)).toBe(true);
    await connector.revoke(revokeContext(context, issued));
  });
});

describe("issue", () => {
  it("creates a login with exactly the mapped MariaDB role, set as its default", async () => {
    const context = issueContext("read");
    const issued = await connector.issue(context);
    const secret = issued.secret ?? "";
    expect(secret.length).toBeGreaterThanOrEqual(24);
    expect(secret).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(issued.detail).toMatchObject({
      username: issued.externalId,
      host: SERVER.hostname,
      port: Number(SERVER.port || 3306),
      database: shop,
      accountHost: "%",
      roles: [reader],
    });
    expect(JSON.stringify(issued.detail)).not.toContain(secret);

    // Only the hash is stored; the clear password never reached the server.
    const [stored] = await rows<{ hash: string }>(
      "SELECT authentication_string AS hash FROM mysql.user WHERE User = ?",
      [issued.externalId],
    );
    expect(stored?.hash).toBe(nativePasswordHash(secret));
    const [grants] = await admin.query(`SHOW GRANTS FOR ?@'%'`, [issued.externalId]);
    const lines = (grants as Record<string, string>[])
      .map((row) => Object.values(row)[0] ?? "")
      .map((line) => line.replace(/PASSWORD '\*[0-9A-F]{40}'/, "PASSWORD <hash>"))
      .sort();
    const who = `\`${issued.externalId}\`@\`%\``;
    expect(lines).toEqual(
      [
        `GRANT \`${reader}\` TO ${who}`,
        `GRANT USAGE ON *.* TO ${who} IDENTIFIED BY PASSWORD <hash>`,
        `SET DEFAULT ROLE \`${reader}\` FOR ${who}`,
      ].sort(),
    );

    const session = await login(issued.externalId, secret);
    try {
      const [role] = await session.query("SELECT CURRENT_ROLE() AS role");
      expect(role).toEqual([{ role: reader }]);
      const [items] = await session.query(`SELECT name FROM \`${shop}\`.items ORDER BY id`);
      expect(items).toEqual([{ name: "kettle" }, { name: "teapot" }]);
      expect(await statementFailure(session, `INSERT INTO \`${shop}\`.items VALUES (3, 'cup')`)).toBe(
        TABLE_ACCESS_DENIED,
      );
      expect(await statementFailure(session, `DROP TABLE \`${shop}\`.items`)).toBe(TABLE_ACCESS_DENIED);
      expect(await statementFailure(session, `SELECT * FROM \`${lookalike}\`.items`)).toBe(
        TABLE_ACCESS_DENIED,
      );
      expect(await statementFailure(session, "CREATE USER evil@'%'")).toBe(SPECIFIC_ACCESS_DENIED);
      expect(await statementFailure(session, "SELECT * FROM mysql.user")).toBe(TABLE_ACCESS_DENIED);
    } finally {
      await session.end();
    }
    expect(await eventsIn(control)).toContainEqual({ name: expiryEventFor(issued.externalId) });
    await connector.revoke(revokeContext(context, issued));
  });

  it("bundles several mapped roles into one default role, so all of them are active at login", async () => {
    const context = issueContext("write");
    const issued = await connector.issue(context);
    const session = await login(issued.externalId, issued.secret ?? "");
    try {
      const [role] = await session.query("SELECT CURRENT_ROLE() AS role");
      expect(role).toEqual([{ role: bundleRoleFor(issued.externalId) }]);
      await session.query(`INSERT INTO \`${shop}\`.items VALUES (10, 'mug')`);
      const [count] = await session.query(`SELECT COUNT(*) AS n FROM \`${shop}\`.items`);
      expect(count).toEqual([{ n: 3 }]);
      expect(await statementFailure(session, `DELETE FROM \`${shop}\`.items WHERE id = 10`)).toBe(
        TABLE_ACCESS_DENIED,
      );
      expect(await statementFailure(session, `DROP TABLE \`${shop}\`.items`)).toBe(TABLE_ACCESS_DENIED);
    } finally {
      await session.end();
      await admin.query(`DELETE FROM \`${shop}\`.items WHERE id = 10`);
    }
    await connector.revoke(revokeContext(context, issued));
    // The bundle role goes with the account.
    expect(await accountsNamed(bundleRoleFor(issued.externalId))).toEqual([]);
  });

  it("grants parsed privileges on one table, and nothing else", async () => {
    const context = issueContext("narrow");
    const issued = await connector.issue(context);
    const session = await login(issued.externalId, issued.secret ?? "");
    try {
      await session.query(`SELECT * FROM \`${shop}\`.items`);
      expect(await statementFailure(session, `SELECT * FROM \`${shop}\`.other`)).toBe(TABLE_ACCESS_DENIED);
      expect(await statementFailure(session, `INSERT INTO \`${shop}\`.items VALUES (3, 'cup')`)).toBe(
        TABLE_ACCESS_DENIED,
      );
    } finally {
      await session.end();
    }
    await connector.revoke(revokeContext(context, issued));
  });

  it("grants database privileges on that database only: '_' in its name is not a wildcard", async () => {
    const context = issueContext("direct");
    const issued = await connector.issue(context);
    const session = await login(issued.externalId, issued.secret ?? "");
    try {
      await session.query(`INSERT INTO \`${shop}\`.items VALUES (20, 'jug')`);
      await session.query(`SELECT * FROM \`${shop}\`.other`);
      expect(await statementFailure(session, `SELECT * FROM \`${lookalike}\`.items`)).toBe(
        TABLE_ACCESS_DENIED,
      );
      expect(await statementFailure(session, `USE \`${lookalike}\``)).toBe(DB_ACCESS_DENIED);
      expect(await statementFailure(session, `DROP TABLE \`${shop}\`.items`)).toBe(TABLE_ACCESS_DENIED);
    } finally {
      await session.end();
      await admin.query(`DELETE FROM \`${shop}\`.items WHERE id = 20`);
    }
    await connector.revoke(revokeContext(context, issued));
  });

  it("is idempotent: a repeated issue for the same grant leaves one account, with only the new password", async () => {
    const context = issueContext("read");
    const first = await connector.issue(context);
    const firstSession = await login(first.externalId, first.secret ?? "");
    const second = await connector.issue(context);
    expect(second.externalId).toBe(first.externalId);
    expect(second.secret).not.toBe(first.secret);
    expect(await accountsNamed(first.externalId)).toEqual([{ host: "%" }]);
    const events = (await eventsIn(control)).filter((e) => e.name === expiryEventFor(first.externalId));
    expect(events).toHaveLength(1);
    expect(ACCESS_DENIED).toContain(await loginFailure(first.externalId, first.secret ?? ""));
    expect(await loginFailure(second.externalId, second.secret ?? "")).toBeNull();
    // A session opened with the replaced password does not survive the re-issue.
    expect(await statementFailure(firstSession, "SELECT 1")).not.toBeNull();
    await firstSession.end().catch(() => {});
    await connector.revoke(revokeContext(context, second));
  });

  it("refuses to issue when the event scheduler is off, and creates nothing", async () => {
    const before = await serverAccounts();
    await admin.query("SET GLOBAL event_scheduler = OFF");
    try {
      const message = await expectCode(connector.issue(issueContext("read")), "CONNECTOR_FAILED");
      expect(message).toMatch(/event_scheduler=OFF/);
    } finally {
      await admin.query("SET GLOBAL event_scheduler = ON");
    }
    expect(await serverAccounts()).toBe(before);
  });

  it("refuses a grant that has already ended", async () => {
    const now = Date.now();
    await expectCode(
      connector.issue(issueContext("read", { startsAt: now - 60_000, endsAt: now - 1 })),
      "CONNECTOR_FAILED",
    );
  });

  it("refuses a role that maps to nothing", async () => {
    const context = issueContext("empty", { resource: resource({}, { empty: { description: "nothing" } }) });
    await expectCode(connector.issue(context), "CONFIG_INVALID");
  });
});

describe("revoke", () => {
  it("kills open sessions, drops the account and its event, and proves the login is gone", async () => {
    const context = issueContext("write");
    const issued = await connector.issue(context);
    const secret = issued.secret ?? "";
    const session = await login(issued.externalId, secret);
    const running = session.query("SELECT SLEEP(30)").then(
      () => "finished",
      () => "killed",
    );
    await sleep(100);
    expect(await connector.listManaged("shop-db", context.resource)).toContain(issued.externalId);
    expect(await connector.verifyRevoked(revokeContext(context, issued))).toBe(false);

    await connector.revoke(revokeContext(context, issued));

    expect(await running).toBe("killed");
    expect(await statementFailure(session, "SELECT 1")).not.toBeNull();
    expect(ACCESS_DENIED).toContain(await loginFailure(issued.externalId, secret));
    expect(await accountsNamed(issued.externalId)).toEqual([]);
    expect(
      await rows("SELECT 1 FROM information_schema.PROCESSLIST WHERE USER = ?", [issued.externalId]),
    ).toEqual([]);
    expect((await eventsIn(control)).map((e) => e.name)).not.toContain(expiryEventFor(issued.externalId));
    expect(await connector.listManaged("shop-db", context.resource)).not.toContain(issued.externalId);
    expect(await connector.verifyRevoked(revokeContext(context, issued))).toBe(true);
    // Already gone: revoking again succeeds and changes nothing.
    await connector.revoke(revokeContext(context, issued));
    expect(await connector.verifyRevoked(revokeContext(context, issued))).toBe(true);
  });

  it("works for the reconciler, which knows only the account name", async () => {
    const context = issueContext("read");
    const issued = await connector.issue(context);
    const stale = {
      grantId: "",
      user: "",
      resourceName: "shop-db",
      resource: context.resource,
      externalId: issued.externalId,
      detail: {},
    };
    await connector.revoke(stale);
    expect(await connector.verifyRevoked(stale)).toBe(true);
    expect((await eventsIn(control)).map((e) => e.name)).not.toContain(expiryEventFor(issued.externalId));
  });

  it("listManaged escapes '_' in the prefix: a look-alike account is not Firebreak's", async () => {
    const decoy = `t${tag}x_decoy`;
    await admin.query("CREATE USER ?@'%'", [decoy]);
    try {
      const context = issueContext("read");
      const issued = await connector.issue(context);
      const managed = await connector.listManaged("shop-db", context.resource);
      expect(managed).toContain(issued.externalId);
      expect(managed).not.toContain(decoy);
      for (const name of managed) expect(name.startsWith(prefix)).toBe(true);
      await connector.revoke(revokeContext(context, issued));
    } finally {
      await admin.query("DROP USER IF EXISTS ?@'%'", [decoy]);
    }
  });
});

describe("backstop", () => {
  it("MariaDB itself refuses the account after the grant's end and cuts its open session, with Firebreak stopped", async () => {
    const firebreak = createMariadbConnector(deps);
    const now = Date.now();
    const context = issueContext("read", { startsAt: now, endsAt: now + 3_000 });
    const issued = await firebreak.issue(context);
    const secret = issued.secret ?? "";
    const session = await login(issued.externalId, secret);
    await session.query(`SELECT COUNT(*) FROM \`${shop}\`.items`);
    // Firebreak is gone from here on: no connector, no pool, nothing of ours runs.
    await firebreak.close();

    await sleep(context.endsAt - 500 - Date.now());
    expect(await loginFailure(issued.externalId, secret)).toBeNull();

    await sleep(context.endsAt - Date.now());
    let refusedAfter: number | null = null;
    while (Date.now() < context.endsAt + 5_000) {
      if (ACCESS_DENIED.includes((await loginFailure(issued.externalId, secret)) ?? 0)) {
        refusedAfter = Date.now() - context.endsAt;
        break;
      }
      await sleep(100);
    }
    console.log(`backstop: new logins refused ${refusedAfter} ms after the grant's end`);
    expect(refusedAfter).not.toBeNull();
    // The event drops the account and then kills its sessions; give the kill a moment to land.
    await sleep(300);
    expect(await statementFailure(session, "SELECT 1")).not.toBeNull();
    await session.end().catch(() => {});
    expect(await accountsNamed(issued.externalId)).toEqual([]);
    expect(
      await rows("SELECT 1 FROM information_schema.PROCESSLIST WHERE USER = ?", [issued.externalId]),
    ).toEqual([]);
    // ON COMPLETION NOT PRESERVE: the one-shot event removed itself.
    expect((await eventsIn(control)).map((e) => e.name)).not.toContain(expiryEventFor(issued.externalId));
    expect(await connector.verifyRevoked(revokeContext(context, issued))).toBe(true);
  });
});

describe("hostile input", () => {
  const attack = "x'; DROP USER root; --";

  it.each([
    ["a role grant", { hostile: { grants: [attack] } }],
    ["a role grant with a backquote", { hostile: { grants: ["a`b"] } }],
    ["a role grant with a semicolon", { hostile: { grants: [`${reader};DROP USER root`] } }],
    ["a role grant with a quote", { hostile: { grants: [`${reader}' OR '1`] } }],
    [
      "a privilege with a second statement",
      { hostile: { privileges: [`SELECT ON ${shop}.*; DROP USER root`] } },
    ],
    ["a privilege with a quoted name", { hostile: { privileges: ["SELECT ON `x`; DROP USER root; --`.*"] } }],
    [
      "a privilege naming another account",
      { hostile: { privileges: [`SELECT ON ${shop}.* TO 'root'@'%'`] } },
    ],
    ["a privilege with GRANT OPTION", { hostile: { privileges: [`SELECT ON ${shop}.* WITH GRANT OPTION`] } }],
    ["a privilege on everything", { hostile: { privileges: ["ALL ON *.*"] } }],
    ["a privilege on the accounts table", { hostile: { privileges: ["INSERT ON mysql.user"] } }],
    ["a privilege on the expiry events", { hostile: { privileges: [`EVENT, DROP ON ${control}.*`] } }],
    ["a valid privilege beside a hostile one", { hostile: { privileges: [`SELECT ON ${shop}.*`, attack] } }],
  ] satisfies [string, ResourceConfig["roles"]][])(
    "refuses %s and leaves the server's accounts unchanged",
    async (_what, roles) => {
      const before = await serverAccounts();
      const context = issueContext("hostile", { resource: resource({}, roles) });
      await expectCode(connector.issue(context), "CONFIG_INVALID");
      expect(await serverAccounts()).toBe(before);
      const planned = connector.plannedExternalId(context.grantId, context.user, context.resource);
      expect((await eventsIn(control)).map((e) => e.name)).not.toContain(expiryEventFor(planned));
    },
  );

  it.each([
    ["userHost", { userHost: `%'; DROP USER root; --` }],
    ["controlDatabase", { controlDatabase: "x`; DROP DATABASE mysql; --" }],
    ["database", { database: "shop'; --" }],
  ])("refuses a hostile connection.%s", async (_field, connection) => {
    const before = await serverAccounts();
    await expectCode(
      connector.issue(issueContext("read", { resource: resource(connection) })),
      "CONFIG_INVALID",
    );
    expect(await serverAccounts()).toBe(before);
  });

  it("refuses to revoke or check an account name that is not one of Firebreak's", async () => {
    const before = await serverAccounts();
    const context = {
      grantId: "",
      user: "",
      resourceName: "shop-db",
      resource: resource(),
      externalId: "x'@'%'; DROP USER root; --",
      detail: { controlDatabase: "mysql`; DROP DATABASE mysql; --" },
    };
    await expectCode(connector.revoke(context), "CONNECTOR_FAILED");
    await expectCode(connector.verifyRevoked(context), "CONNECTOR_FAILED");
    expect(await serverAccounts()).toBe(before);
  });

  it.each([
    [attack, `grt_${tag}hostile0001aaaaaaaaaaaaaaaa`],
    ["bob`); DROP TABLE items; --", `grt_${tag}hostile0002bbbbbbbbbbbbbbbb`],
    ["Ω'\"\\%_*", `grt_${tag}hostile0003cccccccccccccccc`],
    ["alice", "grt_x'; DROP USER root; --"],
  ])("quotes a hostile user %j / grant %j into a safe account name", async (user, grantId) => {
    const before = await serverAccounts();
    const context = issueContext("read", { user, grantId });
    const issued = await connector.issue(context);
    expect(issued.externalId).toMatch(new RegExp(`^${prefix}[a-z0-9_]+$`));
    expect(await loginFailure(issued.externalId, issued.secret ?? "")).toBeNull();
    await connector.revoke(revokeContext(context, issued));
    expect(await serverAccounts()).toBe(before);
    const [table] = await rows(`SELECT COUNT(*) AS n FROM \`${shop}\`.items`);
    expect(table).toEqual({ n: 2 });
  });
});

describe("configuration", () => {
  it("fails with CONNECTOR_FAILED, without the password, when the server cannot be reached", async () => {
    const variable = `${urlVariable}_DOWN`;
    process.env[variable] = "mysql://root:hunter2secret@127.0.0.1:1/";
    try {
      const context = issueContext("read", { resource: resource({ url: `env:${variable}` }) });
      const message = await expectCode(connector.issue(context), "CONNECTOR_FAILED");
      expect(message).not.toContain("hunter2secret");
      expect(message).toMatch(/cannot reach MariaDB/);
    } finally {
      delete process.env[variable];
    }
  });

  it("refuses an admin password written in the configuration itself", async () => {
    const context = issueContext("read", {
      resource: resource({ url: "mysql://root:hunter2secret@127.0.0.1:3306/" }),
    });
    const message = await expectCode(connector.issue(context), "CONFIG_INVALID");
    expect(message).not.toContain("hunter2secret");
  });
});

describe("latency", () => {
  it("prints issue and revoke p50/p99 over 50 grants", async () => {
    const issueTimes: number[] = [];
    const revokeTimes: number[] = [];
    const verifiedTimes: number[] = [];
    for (let run = 0; run < 50; run++) {
      const context = issueContext("write");
      let started = performance.now();
      const issued = await connector.issue(context);
      issueTimes.push(performance.now() - started);
      started = performance.now();
      await connector.revoke(revokeContext(context, issued));
      revokeTimes.push(performance.now() - started);
      expect(await connector.verifyRevoked(revokeContext(context, issued))).toBe(true);
      verifiedTimes.push(performance.now() - started);
    }
    const report = (label: string, times: number[]) => {
      const sorted = [...times].sort((a, b) => a - b);
      return `${label}: p50 ${percentile(sorted, 50).toFixed(1)} ms, p99 ${percentile(sorted, 99).toFixed(1)} ms`;
    };
    console.log(
      [
        "MariaDB connector latency over 50 grants (two mapped roles):",
        report("  issue", issueTimes),
        report("  revoke", revokeTimes),
        report("  revoke + verifyRevoked", verifiedTimes),
      ].join("\n"),
    );
  });
});

/**
 * Hostile input against the real targets, through a real server process (issue 3, point 8):
 * resource role mappings written with quotes, semicolons and comments are refused or quoted, never
 * executed. Each injection names roles and accounts carrying this file's tag, so if one ran, the
 * before/after snapshot of the targets would show it (a canary dropped, an account created).
 */

import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  activateGrant,
  configText,
  createMariaFixture,
  createPgFixture,
  dropMariaAccounts,
  dropPgAccounts,
  type JitServer,
  MARIADB_ADMIN_URL,
  type MariaFixture,
  mariaAccounts,
  PG_ADMIN_URL,
  type PgFixture,
  pgAccounts,
  pgLogin,
  policy,
  startJitServer,
  uniqueTag,
  withMariaAdmin,
  withPgAdmin,
} from "../support/jit.js";
import { killAllProcesses } from "../support/process.js";
import { createUserKeyPair } from "../support/sshd.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });
afterAll(killAllProcesses);

const tag = uniqueTag();
const PREFIX = `jh${tag}_`;
/** Must survive every attempt. */
const CANARY = `jfx${tag}_canary`;
/** Must never come to exist. */
const EVIL = `jfx${tag}_evil`;
/** A real PostgreSQL role whose name needs quoting: mapping onto it must work, quoted. */
const ODD_ROLE = `jfx${tag}"odd; role`;

let pgFixture: PgFixture;
let mariaFixture: MariaFixture;
let server: JitServer;

/** Role mappings that would be SQL if pasted into a statement; each is the whole role's mapping. */
const PG_INJECTIONS: Record<string, string[]> = {
  "pg-drop": [`x"; DROP ROLE ${CANARY}; --`],
  "pg-create": [`${pgFixtureReader()}", "pg_read_all_data`, `x"; CREATE ROLE ${EVIL} SUPERUSER LOGIN; --`],
  "pg-comment": [`${pgFixtureReader()}/* */, pg_write_all_data`],
};
/** MariaDB role names are quoted by the connector and refused by the server at activation. */
const MARIA_INJECTIONS: Record<string, { grants?: string[]; privileges?: string[] }> = {
  "my-role": { grants: [`r\`; DROP USER '${CANARY}'@'%'; --`] },
};
/** Privilege lists and SSH principals that no connector could run are refused when the file is loaded. */
const MARIA_REFUSED_AT_LOAD: Record<string, { grants?: string[]; privileges?: string[] }> = {
  "my-priv": { privileges: [`SELECT ON *.* TO '${EVIL}'@'%' IDENTIFIED BY 'x'; DROP USER '${CANARY}'@'%'`] },
  "my-quote": { privileges: [`SELECT ON \`${tag}\`.* WITH GRANT OPTION`] },
  "my-comment": { privileges: [`SELECT ON mysql.* -- `] },
};
const SSH_INJECTIONS: Record<string, string[]> = {
  "ssh-comma": ["ops,root"],
  "ssh-option": ["ops -O permit-port-forwarding"],
  "ssh-newline": ["ops\nroot"],
};

function pgFixtureReader() {
  return `jfx${tag}_reader`;
}

function config(options: { namePrefix?: string; withRefusedAtLoad?: boolean } = {}) {
  const maria = options.withRefusedAtLoad
    ? { ...MARIA_INJECTIONS, ...MARIA_REFUSED_AT_LOAD }
    : MARIA_INJECTIONS;
  const ssh = options.withRefusedAtLoad ? SSH_INJECTIONS : { "ssh-fine": ["ops"] };
  return configText({
    directory: {
      users: {
        alice: { groups: ["sre"] },
        carol: { groups: ["leads"] },
        // A name legal in the directory but not in SQL: the login role's name must still be safe.
        "o.brien@evil-corp": { groups: ["sre"] },
      },
    },
    zones: { "hz-pg": {}, "hz-maria": {}, "hz-ssh": {} },
    resources: {
      "hostile-pg": {
        zone: "hz-pg",
        type: "postgres",
        connection: { url: PG_ADMIN_URL },
        namePrefix: options.namePrefix ?? PREFIX,
        roles: {
          quoted: { grants: [ODD_ROLE] },
          ...Object.fromEntries(Object.entries(PG_INJECTIONS).map(([role, grants]) => [role, { grants }])),
        },
      },
      "hostile-maria": {
        zone: "hz-maria",
        type: "mariadb",
        connection: { url: MARIADB_ADMIN_URL, controlDatabase: mariaFixture.control },
        namePrefix: PREFIX,
        roles: maria,
      },
      "hostile-hosts": {
        zone: "hz-ssh",
        type: "ssh",
        roles: Object.fromEntries(Object.entries(ssh).map(([role, principals]) => [role, { principals }])),
      },
    },
    breakGlass: [
      policy("pg", "hz-pg", ["quoted", ...Object.keys(PG_INJECTIONS)], { approvals: false }),
      policy("maria", "hz-maria", Object.keys(maria), { approvals: false }),
      policy("ssh", "hz-ssh", Object.keys(ssh), { approvals: false }),
    ],
  });
}

/** The targets as far as this file can have touched them: every role or account carrying its tag, and root's. */
async function snapshot() {
  const pgRoles = await withPgAdmin(async (client) => {
    const rows = await client.query<{ line: string }>(
      `select r.rolname || ' login=' || r.rolcanlogin || ' super=' || r.rolsuper || ' in=' ||
         coalesce((select string_agg(g.rolname, ',' order by g.rolname) from pg_auth_members m
                   join pg_roles g on g.oid = m.roleid where m.member = r.oid), '') as line
       from pg_roles r where strpos(r.rolname, $1) > 0 or r.rolname = 'postgres' order by r.rolname`,
      [tag],
    );
    return rows.rows.map((r) => r.line);
  });
  const mariaUsers = await withMariaAdmin(async (connection) => {
    const [rows] = await connection.query(
      "SELECT CONCAT(User, '@', Host, ' role=', is_role) AS line FROM mysql.user WHERE INSTR(User, ?) > 0 OR User = 'root' ORDER BY 1",
      [tag],
    );
    return (rows as { line: string }[]).map((r) => r.line);
  });
  return { pgRoles, mariaUsers };
}

beforeAll(async () => {
  pgFixture = await createPgFixture(tag);
  mariaFixture = await createMariaFixture(tag);
  await withPgAdmin(async (client) => {
    await client.query(`CREATE ROLE ${CANARY} NOLOGIN`);
    await client.query(`CREATE ROLE ${pg.escapeIdentifier(ODD_ROLE)} NOLOGIN`);
    await client.query(`GRANT SELECT ON ${pgFixture.table} TO ${pg.escapeIdentifier(ODD_ROLE)}`);
    await client.query(
      `GRANT USAGE ON SCHEMA ${pgFixture.table.split(".")[0]} TO ${pg.escapeIdentifier(ODD_ROLE)}`,
    );
  });
  await withMariaAdmin((connection) => connection.query(`CREATE USER '${CANARY}'@'%' ACCOUNT LOCK`));
  server = await startJitServer(config());
});

afterAll(async () => {
  await server?.close();
  await dropPgAccounts(PREFIX);
  await dropMariaAccounts(PREFIX);
  await withPgAdmin(async (client) => {
    await client.query(`DROP OWNED BY ${pg.escapeIdentifier(ODD_ROLE)}`).catch(() => {});
    await client.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(ODD_ROLE)}`);
    await client.query(`DROP ROLE IF EXISTS ${CANARY}`);
    await client.query(`DROP ROLE IF EXISTS ${EVIL}`);
  });
  await withMariaAdmin(async (connection) => {
    await connection.query(`DROP USER IF EXISTS '${CANARY}'@'%'`);
    await connection.query(`DROP USER IF EXISTS '${EVIL}'@'%'`);
  });
  await pgFixture?.drop();
  await mariaFixture?.drop();
});

describe("hostile role mappings against the real targets", () => {
  it("refuses every injection at activation and leaves the targets' roles and accounts as they were", async () => {
    const before = await snapshot();
    expect(before.pgRoles.some((line) => line.startsWith(`${CANARY} `))).toBe(true);
    expect(before.mariaUsers).toContain(`${CANARY}@% role=N`);
    const alice = await server.as("alice");
    const key = await createUserKeyPair(`${server.directory}/alice-key`);

    const attempts = [
      ...Object.keys(PG_INJECTIONS).map((role) => ({ zone: "hz-pg", role })),
      ...Object.keys(MARIA_INJECTIONS).map((role) => ({ zone: "hz-maria", role })),
    ];
    const problems: string[] = [];
    for (const attempt of attempts) {
      const request = await alice.ok("POST", "/v1/requests", {
        zone: attempt.zone,
        role: attempt.role,
        reason: "testing what a careless mapping does",
      });
      const activated = await alice.call("POST", `/v1/requests/${request.id}/activate`, {
        publicKey: attempt.zone === "hz-ssh" ? key.publicKey : undefined,
      });
      const code = activated.body?.error?.code;
      if (activated.status !== 502 || code !== "CONNECTOR_FAILED")
        problems.push(`${attempt.zone}/${attempt.role}: ${activated.status} ${activated.text.slice(0, 200)}`);
      // Firebreak's own reason, never the driver's text or a statement.
      if (/syntax|SQLSTATE 42601|ER_PARSE_ERROR|\n\s+at /.test(activated.text))
        problems.push(
          `${attempt.zone}/${attempt.role}: the reply shows a statement was parsed: ${activated.text}`,
        );
      // The grant that was started is closed again, verified.
      const grant = (await alice.ok("GET", `/v1/requests/${request.id}`)).grantId;
      const view = await alice.ok("GET", `/v1/grants/${grant}`);
      if (view.state !== "revoked" || view.revocation.status !== "verified")
        problems.push(
          `${attempt.zone}/${attempt.role}: grant ${view.state}, revocation ${view.revocation.status}`,
        );
    }
    expect(problems).toEqual([]);

    expect(await snapshot()).toEqual(before);
    expect(await pgAccounts(PREFIX)).toEqual([]);
    expect(await mariaAccounts(PREFIX)).toEqual([]);
    const alerts = (await server.admin.ok("GET", "/v1/audit?type=alert.raised&limit=1000")).events;
    expect(
      alerts.filter((e: { context: { alert: string } }) => e.context.alert === "issuance-failed"),
    ).toHaveLength(attempts.length);
  });

  it("refuses at load the privilege lists and SSH principals no connector could run, naming each, and keeps the running configuration", async () => {
    const before = await snapshot();
    await server.writeConfig(config({ withRefusedAtLoad: true }));
    const refused = await server.admin.call("POST", "/v1/config/reload");
    expect({ status: refused.status, code: refused.body?.error?.code }).toEqual({
      status: 422,
      code: "CONFIG_INVALID",
    });
    const paths = (refused.body.error.details.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(
      [
        ...Object.keys(MARIA_REFUSED_AT_LOAD).map(
          (role) => `resources.hostile-maria.roles.${role}.privileges[0]`,
        ),
        ...Object.keys(SSH_INJECTIONS).map((role) => `resources.hostile-hosts.roles.${role}.principals[0]`),
      ].sort(),
    );
    await server.writeConfig(config());
    expect(await snapshot()).toEqual(before);
    // Still serving the previous configuration.
    const zones = (await server.admin.ok("GET", "/v1/zones")).zones.map((z: { name: string }) => z.name);
    expect(zones).toEqual(expect.arrayContaining(["hz-pg", "hz-maria", "hz-ssh"]));
  });

  it("quotes a PostgreSQL role name that needs it: membership works, nothing else is touched", async () => {
    const before = await snapshot();
    const grant = await activateGrant(server, { user: "o.brien@evil-corp", zone: "hz-pg", role: "quoted" });
    const owner = await server.as("o.brien@evil-corp");
    const credential = (await owner.ok("POST", `/v1/grants/${grant.id}/credential`)).credentials[0];
    const username = String(credential.detail.username);
    // The user's name became safe characters; the grant id keeps it unique.
    expect(username).toMatch(new RegExp(`^${PREFIX}o_brien_evil_corp_[a-z0-9]+$`));
    const session = await pgLogin(username, credential.secret);
    const memberships = await session.query<{ rolname: string }>(
      "select b.rolname from pg_auth_members m join pg_roles b on b.oid = m.roleid join pg_roles u on u.oid = m.member where u.rolname = current_user",
    );
    expect(memberships.rows).toEqual([{ rolname: ODD_ROLE }]);
    expect((await session.query(`select amount from ${pgFixture.table}`)).rows).toEqual([{ amount: 100 }]);
    await session.end();

    await owner.ok("POST", `/v1/grants/${grant.id}/revoke`, { reason: "done" });
    expect(await snapshot()).toEqual(before);
  });

  it("refuses a configuration whose name prefix is SQL, and keeps the running one", async () => {
    const reload = async (namePrefix: string) => {
      await server.writeConfig(config({ namePrefix }));
      return server.admin.call("POST", "/v1/config/reload");
    };
    for (const prefix of [`x'; DROP ROLE ${CANARY}; --`, 'fb"_', "FB_", "fb%_", ""]) {
      const refused = await reload(prefix);
      expect({ prefix, status: refused.status, code: refused.body?.error?.code }).toEqual({
        prefix,
        status: 422,
        code: "CONFIG_INVALID",
      });
    }
    await server.writeConfig(config());
    // The running configuration still issues under the real prefix.
    const grant = await activateGrant(server, { user: "alice", zone: "hz-pg", role: "quoted" });
    expect((await pgAccounts(PREFIX)).length).toBe(1);
    await (await server.as("alice")).ok("POST", `/v1/grants/${grant.id}/revoke`, { reason: "done" });
    expect(await pgAccounts(PREFIX)).toEqual([]);
  });
});

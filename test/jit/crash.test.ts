/**
 * Crash safety of issuance (issue 3, point 6) with a real server process and kill -9: issuance
 * records its intent before it touches a target and its completion after, so a kill between the two
 * leaves nothing untracked. After each restart every account under the resources' prefix is either
 * tracked by a live grant or gone, what the reconciler removed is named in `credential.reconciled`
 * events, and the audit chain verifies.
 */
import { randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { accountNameFor } from "../../src/connectors/mariadb/mariadb.connector.js";
import { roleNameFor } from "../../src/connectors/postgres/postgres.connector.js";
import {
  type AuditEvent,
  auditEvents,
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
  PG_DATABASE,
  PG_SOCKET,
  type PgFixture,
  pgAccounts,
  pgLoginOutcome,
  policy,
  sleep,
  startJitServer,
  uniqueTag,
  waitFor,
  withMariaAdmin,
  withPgAdmin,
} from "../support/jit.js";
import { killAllProcesses } from "../support/process.js";

vi.setConfig({ testTimeout: 90_000, hookTimeout: 90_000 });
afterAll(killAllProcesses);

const tag = uniqueTag();
const PREFIX = `jc${tag}_`;
const USERS = ["u1", "u2", "u3", "u4"];
const ROUNDS = 3;

let pgFixture: PgFixture;
let mariaFixture: MariaFixture;
let server: JitServer;

function config() {
  const directory = {
    users: {
      alice: { groups: ["sre"] },
      carol: { groups: ["leads"] },
      erin: { groups: ["security"] },
      ...Object.fromEntries(USERS.map((user) => [user, { groups: ["sre"] }])),
    },
  };
  return configText({
    directory,
    zones: { vault: {} },
    resources: {
      "vault-pg": {
        zone: "vault",
        type: "postgres",
        connection: { url: PG_ADMIN_URL },
        namePrefix: PREFIX,
        roles: { admin: { grants: [pgFixture.reader] } },
      },
      "vault-maria": {
        zone: "vault",
        type: "mariadb",
        connection: { url: MARIADB_ADMIN_URL, controlDatabase: mariaFixture.control },
        namePrefix: PREFIX,
        roles: { admin: { grants: [mariaFixture.reader] } },
      },
    },
    // No approvals: every request is approved at once, so activations can be fired together.
    breakGlass: [policy("vault-admin", "vault", ["admin"], { duration: "10m", approvals: false })],
  });
}

beforeAll(async () => {
  pgFixture = await createPgFixture(tag);
  mariaFixture = await createMariaFixture(tag);
  server = await startJitServer(config());
});

afterAll(async () => {
  await server?.close();
  await dropPgAccounts(PREFIX);
  await dropMariaAccounts(PREFIX);
  await pgFixture?.drop();
  await mariaFixture?.drop();
});

interface EffectRow {
  id: string;
  grant_id: string;
  resource: string;
  state: string;
  detail_json: string;
  grant_state: string;
  user_name: string;
}

/** Firebreak's own record of every credential effect, read from its database file. */
function effectRows(): EffectRow[] {
  const sqlite = new Database(server.dbPath, { readonly: true, fileMustExist: true });
  try {
    return sqlite
      .prepare(
        `select e.id, e.grant_id, e.resource, e.state, e.detail_json, g.state as grant_state, g.user_name
         from grant_effects e join grants g on g.id = e.grant_id order by e.created_at`,
      )
      .all() as EffectRow[];
  } finally {
    sqlite.close();
  }
}

/** Sequence numbers of the audit events written so far, read from the file while the server is down. */
function auditSeqsOnDisk(): number[] {
  const sqlite = new Database(server.dbPath, { readonly: true, fileMustExist: true });
  try {
    return (sqlite.prepare("select seq from audit_events").all() as { seq: number }[]).map((r) => r.seq);
  } finally {
    sqlite.close();
  }
}

async function accountsOnTargets() {
  return { "vault-pg": await pgAccounts(PREFIX), "vault-maria": await mariaAccounts(PREFIX) };
}

/**
 * The invariant after a restart: nothing left half done, and every account on a target under the
 * prefix belongs to a live grant whose effect is recorded as issued (and every such effect's
 * account exists).
 */
async function expectNothingOrphaned() {
  const rows = effectRows();
  expect(rows.filter((r) => r.state === "intent")).toEqual([]);
  const onTargets = await accountsOnTargets();
  for (const resource of ["vault-pg", "vault-maria"] as const) {
    const tracked = rows
      .filter((r) => r.resource === resource && r.grant_state === "active" && r.state === "issued")
      .map((r) => String((JSON.parse(r.detail_json) as { externalId?: string }).externalId));
    expect([...onTargets[resource]].sort(), resource).toEqual([...tracked].sort());
  }
  expect(await server.admin.ok("GET", "/v1/audit/verify")).toMatchObject({ ok: true, firstBadSeq: null });
}

/**
 * What disappeared from the targets across a restart is accounted for: each account is named by
 * the close of its grant (`credential.revoked`) or by the reconciler (`credential.reconciled`), and
 * the reconciler names nothing that did not disappear.
 */
function expectRemovalsNamed(
  before: Record<string, string[]>,
  after: Record<string, string[]>,
  events: AuditEvent[],
  sinceSeq: number,
) {
  for (const resource of Object.keys(before)) {
    const removed = (before[resource] ?? []).filter((name) => !(after[resource] ?? []).includes(name));
    const named = (type: string) =>
      events
        .filter((e) => e.seq > sinceSeq && e.type === type && e.resource === resource)
        .map((e) => String(e.context.externalId));
    const reconciled = named("credential.reconciled");
    const revoked = named("credential.revoked");
    expect(
      removed.filter((name) => !reconciled.includes(name) && !revoked.includes(name)),
      resource,
    ).toEqual([]);
    expect(
      reconciled.filter((name) => !removed.includes(name)),
      resource,
    ).toEqual([]);
  }
}

async function revokeAllActive() {
  const active = await server.admin.ok("GET", "/v1/grants?state=active&limit=500");
  for (const grant of active.grants as { id: string }[]) {
    const closed = await server.admin.ok("POST", `/v1/grants/${grant.id}/revoke`, { reason: "round over" });
    expect(closed.revocation.status).toBe("verified");
  }
}

describe("kill -9 during issuance", () => {
  it("between the PostgreSQL role's creation and its completion record: the role is tracked after restart, never orphaned", async () => {
    const alice = await server.as("alice");
    const request = await alice.ok("POST", "/v1/requests", {
      resource: "vault-pg",
      role: "admin",
      reason: "the primary is down and needs a hand",
    });
    expect(request.state).toBe("approved");

    // Two locks make the window observable: PostgreSQL holds the server at CREATE ROLE until the
    // test has taken SQLite's write lock; then the role is created and the completion record
    // blocks on SQLite (busy_timeout 5 s), and the server is killed in exactly that state.
    const sqlite = new Database(server.dbPath, { fileMustExist: true });
    sqlite.pragma("busy_timeout = 10000");
    const authid = new pg.Client({ host: PG_SOCKET, user: "postgres", database: PG_DATABASE });
    await authid.connect();
    let holdingAuthid = false;
    let role = "";
    try {
      await authid.query("BEGIN");
      await authid.query("LOCK TABLE pg_catalog.pg_authid IN SHARE MODE");
      holdingAuthid = true;
      const activation = alice
        .call("POST", `/v1/requests/${request.id}/activate`, {})
        .catch((error) => error);

      const intent = await waitFor(
        async () =>
          sqlite
            .prepare(
              `select e.id, e.grant_id, g.user_name from grant_effects e join grants g on g.id = e.grant_id
               where e.resource = 'vault-pg' and e.state = 'intent'`,
            )
            .get() as { id: string; grant_id: string; user_name: string } | undefined,
        { intervalMs: 2, timeoutMs: 10_000, what: "the intent record" },
      );
      role = roleNameFor(intent.grant_id, intent.user_name, PREFIX);
      // The server is at CREATE ROLE, waiting for the lock: the intent is on record, the role not yet.
      await waitFor(
        () =>
          withPgAdmin(async (client) => {
            const waiting = await client.query(
              "select 1 from pg_locks where not granted and relation = 'pg_catalog.pg_authid'::regclass",
            );
            return (waiting.rowCount ?? 0) > 0;
          }),
        { intervalMs: 10, timeoutMs: 10_000, what: "the server's CREATE ROLE to wait for the lock" },
      );
      expect(await pgAccounts(PREFIX)).not.toContain(role);

      sqlite.exec("BEGIN IMMEDIATE");
      await authid.query("COMMIT");
      holdingAuthid = false;
      await waitFor(async () => (await pgAccounts(PREFIX)).includes(role), {
        intervalMs: 10,
        timeoutMs: 4_000,
        what: `role ${role} on PostgreSQL`,
      });
      await server.kill();
      // Killed inside the window: the role exists, Firebreak's record still says intent.
      const state = sqlite.prepare("select state from grant_effects where id = ?").get(intent.id) as {
        state: string;
      };
      expect(state.state).toBe("intent");
      expect(await activation).toBeInstanceOf(Error);
    } finally {
      if (holdingAuthid) await authid.query("ROLLBACK").catch(() => {});
      await authid.end().catch(() => {});
      if (sqlite.inTransaction) sqlite.exec("ROLLBACK");
      sqlite.close();
    }

    // Stale privilege of another kind: accounts under the prefix that no grant ever recorded
    // (someone copying the naming scheme, a leftover of an older installation).
    const ghost = `${PREFIX}ghost_${randomBytes(4).toString("hex")}`;
    await withPgAdmin((client) => client.query(`CREATE ROLE ${ghost} LOGIN PASSWORD 'ghost-password'`));
    await withMariaAdmin((connection) =>
      connection.query(`CREATE USER '${ghost}'@'%' IDENTIFIED BY 'ghost-password'`),
    );
    const before = await accountsOnTargets();
    expect(before["vault-pg"]).toEqual(expect.arrayContaining([role, ghost]));
    const mark = Math.max(0, ...auditSeqsOnDisk());

    await server.start();
    await expectNothingOrphaned();
    const after = await accountsOnTargets();
    // The role is still there: the restart finished the issuance (the grant is live), and the
    // credential it delivers is the one that works.
    expect(after["vault-pg"]).toContain(role);
    expect(after["vault-pg"]).not.toContain(ghost);
    expect(after["vault-maria"]).not.toContain(ghost);
    const events = await auditEvents(server);
    expectRemovalsNamed(before, after, events, mark);
    const reconciled = events.filter((e) => e.type === "credential.reconciled");
    expect(reconciled.map((e) => [e.actor, e.resource, e.context.externalId])).toEqual(
      expect.arrayContaining([
        ["system:reconciler", "vault-pg", ghost],
        ["system:reconciler", "vault-maria", ghost],
      ]),
    );

    const grantId = effectRows().find((r) => r.resource === "vault-pg")?.grant_id ?? "";
    const grant = await alice.ok("GET", `/v1/grants/${grantId}`);
    expect(grant).toMatchObject({ state: "active", effects: [{ resource: "vault-pg", state: "issued" }] });
    const delivered = await alice.ok("POST", `/v1/grants/${grantId}/credential`);
    const credential = delivered.credentials[0];
    expect(credential.detail.username).toBe(role);
    expect(await pgLoginOutcome(role, credential.secret)).toBe("ok");

    await revokeAllActive();
    expect(await pgAccounts(PREFIX)).toEqual([]);
  });

  it(`at random moments while activations run (${ROUNDS} rounds): after each restart nothing is orphaned`, async () => {
    const hits: string[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const mark = Math.max(0, ...(await auditEvents(server)).map((e) => e.seq));
      const clients = await Promise.all(USERS.map((user) => server.as(user)));
      const requests = await Promise.all(
        clients.map((client) =>
          client.ok("POST", "/v1/requests", {
            zone: "vault",
            role: "admin",
            reason: `round ${round}: the primary is down`,
          }),
        ),
      );
      const known = new Set(effectRows().map((r) => r.id));
      const activations = clients.map((client, index) =>
        client.call("POST", `/v1/requests/${requests[index]?.id}/activate`, {}).catch((error) => error),
      );
      // Issuance starts once the first intent is on record; the kill lands at a random moment after.
      await waitFor(async () => effectRows().some((r) => !known.has(r.id)), {
        intervalMs: 2,
        timeoutMs: 10_000,
        what: "this round's first intent",
      });
      const delay = Math.floor(Math.random() * 120);
      await sleep(delay);
      await server.kill();
      await Promise.all(activations);

      const rows = effectRows();
      const before = await accountsOnTargets();
      // How the kill landed, for the record: an intent whose account already exists was in the window.
      const planned = (r: EffectRow) =>
        r.resource === "vault-pg"
          ? roleNameFor(r.grant_id, r.user_name, PREFIX)
          : accountNameFor(r.grant_id, r.user_name, PREFIX);
      const intents = rows.filter((r) => r.state === "intent");
      const inWindow = intents.filter((r) =>
        (before[r.resource as keyof typeof before] ?? []).includes(planned(r)),
      ).length;
      hits.push(
        `round ${round}: killed ${delay} ms after the first intent; ${intents.length} intent, ${rows.filter((r) => r.state === "issued" && r.grant_state === "active").length} issued, ${inWindow} in the window`,
      );

      await server.start();
      await expectNothingOrphaned();
      expectRemovalsNamed(before, await accountsOnTargets(), await auditEvents(server), mark);
      await revokeAllActive();
      const left = await accountsOnTargets();
      expect(left).toEqual({ "vault-pg": [], "vault-maria": [] });
    }
    console.info(`crash rounds:\n  ${hits.join("\n  ")}`);
  });
});

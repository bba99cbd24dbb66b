/**
 * Verified revocation when closing does not work, through a real server process: a target that
 * cannot be reached (its admin URL pointed at a dead port by a configuration reload) and a drop the
 * target refuses. The grant closes at once, its revocation is `failed`, an alert is raised, the
 * close is retried with backoff, and it is verified once the target is back. Then Firebreak itself
 * goes down: the targets refuse the credentials after the window on their own, and the restarted
 * server finishes the close.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type AuditEvent,
  activateGrant,
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
  mariaLogin,
  mariaLoginOutcome,
  PG_ADMIN_URL,
  type PgFixture,
  pgAccounts,
  pgLogin,
  pgLoginOutcome,
  policy,
  sleep,
  startJitServer,
  uniqueTag,
  waitFor,
  waitForAudit,
  withPgAdmin,
} from "../support/jit.js";
import { killAllProcesses } from "../support/process.js";
import { freePort } from "../support/sshd.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });
afterAll(killAllProcesses);

const tag = uniqueTag();
// One prefix per resource: the reconciler of one resource treats every account under its prefix
// as its own, so two resources on one server must not share one.
const LEDGER_PREFIX = `jr${tag}_`;
const AUDIT_PREFIX = `js${tag}_`;
const SHOP_PREFIX = `jm${tag}_`;
/** A table in another database: a privilege on it makes DROP ROLE fail where DROP OWNED cannot reach. */
const PIN = `jfx${tag}_pin`;

let pgFixture: PgFixture;
let mariaFixture: MariaFixture;
let server: JitServer;
let deadPort: number;

/** What the configuration currently points at; changed by the tests, written whole at each reload. */
const targets = { auditPg: PG_ADMIN_URL, shopMaria: MARIADB_ADMIN_URL };

function config() {
  const pgResource = (zone: string, prefix: string, url: string) => ({
    zone,
    type: "postgres",
    address: "127.0.0.1:5432",
    connection: { url },
    namePrefix: prefix,
    roles: { admin: { grants: [pgFixture.reader] } },
  });
  return configText({
    zones: { ledger: {}, reports: {}, shop: {} },
    resources: {
      "ledger-pg": pgResource("ledger", LEDGER_PREFIX, PG_ADMIN_URL),
      "audit-pg": pgResource("reports", AUDIT_PREFIX, targets.auditPg),
      "shop-maria": {
        zone: "shop",
        type: "mariadb",
        connection: {
          url: targets.shopMaria,
          controlDatabase: mariaFixture.control,
          database: mariaFixture.database,
        },
        namePrefix: SHOP_PREFIX,
        roles: { admin: { grants: [mariaFixture.reader] } },
      },
    },
    breakGlass: [
      policy("ledger-admin", "ledger", ["admin"], { duration: "10m" }),
      policy("reports-admin", "reports", ["admin"], { duration: "10m" }),
      policy("shop-admin", "shop", ["admin"], { duration: "10m" }),
    ],
  });
}

// Reloads run one at a time, each writing the whole current state, so concurrent tests compose.
let reloading: Promise<void> = Promise.resolve();
function reload(change: () => void): Promise<void> {
  const next = reloading.then(async () => {
    change();
    await server.reload(config());
  });
  reloading = next.catch(() => {});
  return next;
}

beforeAll(async () => {
  pgFixture = await createPgFixture(tag);
  mariaFixture = await createMariaFixture(tag);
  deadPort = await freePort();
  server = await startJitServer(config());
});

afterAll(async () => {
  await server?.close();
  await withPgAdmin((client) => client.query(`DROP TABLE IF EXISTS ${PIN}`), "postgres");
  for (const prefix of [LEDGER_PREFIX, AUDIT_PREFIX]) await dropPgAccounts(prefix);
  await dropMariaAccounts(SHOP_PREFIX);
  await pgFixture?.drop();
  await mariaFixture?.drop();
});

async function deliver(user: string, grantId: string) {
  const delivered = await (await server.as(user)).ok("POST", `/v1/grants/${grantId}/credential`);
  const credential = delivered.credentials.find((c: { secret: string | null }) => c.secret !== null);
  return { username: String(credential.detail.username), password: String(credential.secret) };
}

const alerts = async (grantId: string) =>
  (await auditEvents(server, grantId)).filter(
    (e) => e.type === "alert.raised" && e.context.alert === "revocation-failed",
  );

/**
 * Revokes as the owner and checks the immediate answer: the grant is closed, its revocation
 * failed and scheduled again, an alert raised. Then waits for the first retry to fail too and
 * checks that it waited longer (backoff).
 */
async function revokeAndExpectRetries(user: string, grantId: string): Promise<AuditEvent[]> {
  const revoked = await (await server.as(user)).ok("POST", `/v1/grants/${grantId}/revoke`, {
    reason: "incident over",
  });
  expect(revoked).toMatchObject({ state: "revoked", revocation: { status: "failed", attempts: 1 } });
  expect(revoked.revocation.nextAttemptAt).not.toBeNull();
  const listed = await server.admin.ok("GET", "/v1/grants?state=revoked");
  expect(listed.grants.find((g: { id: string }) => g.id === grantId)?.revocation.status).toBe("failed");

  const raised = await waitFor(
    async () => {
      const found = await alerts(grantId);
      return found.length >= 2 ? found : null;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: "a second failed attempt" },
  );
  expect(raised.slice(0, 2).map((e) => [e.context.attempts, e.context.retryInSeconds])).toEqual([
    [1, 1],
    [2, 2],
  ]);
  for (const alert of raised) {
    expect(alert).toMatchObject({ actor: "system:firebreak", subject: grantId });
    // The reason, but none of the driver's text: no statement, no URL, no stack frame.
    expect(String(alert.context.message)).not.toMatch(
      /postgres:\/\/|mysql:\/\/|\b(DROP|ALTER) (ROLE|USER|OWNED)\b|\.js:\d|\n/,
    );
  }
  expect(Date.parse(raised[1]?.time ?? "") - Date.parse(raised[0]?.time ?? "")).toBeGreaterThanOrEqual(900);
  const during = await server.admin.ok("GET", `/v1/grants/${grantId}`);
  expect(during.revocation).toMatchObject({ status: "failed" });
  expect(during.revocation.attempts).toBeGreaterThanOrEqual(2);
  return raised;
}

async function expectVerifiedAfterRecovery(grantId: string) {
  const verified = await waitForAudit(server, grantId, "revocation.verified", 20_000);
  const view = await server.admin.ok("GET", `/v1/grants/${grantId}`);
  expect(view).toMatchObject({ state: "revoked", revocation: { status: "verified", nextAttemptAt: null } });
  expect(view.revocation.attempts).toBeGreaterThanOrEqual(3);
  // Nothing more is tried or alerted once verified.
  const alertsBefore = (await alerts(grantId)).length;
  await sleep(1_500);
  expect((await alerts(grantId)).length).toBe(alertsBefore);
  return verified;
}

describe("verified revocation when closing fails", () => {
  it.concurrent("a MariaDB target that cannot be reached: failed, alerted, retried with backoff, verified once back", async () => {
    const grant = await activateGrant(server, { user: "alice", resource: "shop-maria", role: "admin" });
    const { username, password } = await deliver("alice", grant.id);
    const session = await mariaLogin(username, password, mariaFixture.database);

    await reload(() => {
      targets.shopMaria = `mysql://root@127.0.0.1:${deadPort}/`;
    });
    try {
      await revokeAndExpectRetries("alice", grant.id);
      // `failed` is honest: the account still exists and still works on the real server.
      expect(await mariaAccounts(SHOP_PREFIX)).toContain(username);
      expect(await mariaLoginOutcome(username, password)).toBe("ok");
    } finally {
      await reload(() => {
        targets.shopMaria = MARIADB_ADMIN_URL;
      });
    }
    await expectVerifiedAfterRecovery(grant.id);
    expect(await mariaAccounts(SHOP_PREFIX)).not.toContain(username);
    expect(await mariaLoginOutcome(username, password)).not.toBe("ok");
    await expect(session.query("SELECT 1")).rejects.toBeTruthy();
    session.destroy();
  });

  it.concurrent("a PostgreSQL target that cannot be reached: failed, alerted, retried with backoff, verified once back", async () => {
    const grant = await activateGrant(server, { user: "bob", resource: "audit-pg", role: "admin" });
    const { username, password } = await deliver("bob", grant.id);
    const session = await pgLogin(username, password);

    await reload(() => {
      targets.auditPg = `postgres://postgres@127.0.0.1:${deadPort}/firebreak_pwtest`;
    });
    try {
      await revokeAndExpectRetries("bob", grant.id);
      expect(await pgAccounts(AUDIT_PREFIX)).toContain(username);
      expect((await session.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    } finally {
      await reload(() => {
        targets.auditPg = PG_ADMIN_URL;
      });
    }
    await expectVerifiedAfterRecovery(grant.id);
    expect(await pgAccounts(AUDIT_PREFIX)).not.toContain(username);
    expect(await pgLoginOutcome(username, password)).not.toBe("ok");
    await expect(session.query("select 1")).rejects.toBeTruthy();
    await session.end().catch(() => {});
  });

  it.concurrent("a PostgreSQL drop the target refuses: no new logins meanwhile, retried, verified once it can drop", async () => {
    const grant = await activateGrant(server, { user: "alice", resource: "ledger-pg", role: "admin" });
    const { username, password } = await deliver("alice", grant.id);
    // A privilege in another database: DROP OWNED in the resource's database cannot remove it,
    // so DROP ROLE fails until someone removes it there.
    await withPgAdmin(async (client) => {
      await client.query(`CREATE TABLE ${PIN} (id int)`);
      await client.query(`GRANT SELECT ON ${PIN} TO ${username}`);
    }, "postgres");

    try {
      await revokeAndExpectRetries("alice", grant.id);
      expect(await pgAccounts(LEDGER_PREFIX)).toContain(username);
      // The role could not be dropped, but a revoked credential must not open new sessions meanwhile.
      expect(await pgLoginOutcome(username, password)).not.toBe("ok");
    } finally {
      await withPgAdmin((client) => client.query(`DROP TABLE IF EXISTS ${PIN}`), "postgres");
    }
    await expectVerifiedAfterRecovery(grant.id);
    expect(await pgAccounts(LEDGER_PREFIX)).not.toContain(username);
  });

  it("with Firebreak down the targets refuse after the window by themselves; the restarted server finishes the close", async () => {
    const pgGrant = await activateGrant(server, {
      user: "bob",
      resource: "ledger-pg",
      role: "admin",
      duration: "4s",
    });
    const mariaGrant = await activateGrant(server, {
      user: "bob",
      resource: "shop-maria",
      role: "admin",
      duration: "4s",
    });
    const pgLoginDetails = await deliver("bob", pgGrant.id);
    const mariaLoginDetails = await deliver("bob", mariaGrant.id);
    const pgSession = await pgLogin(pgLoginDetails.username, pgLoginDetails.password);
    const mariaSession = await mariaLogin(mariaLoginDetails.username, mariaLoginDetails.password);
    await server.kill();

    // PostgreSQL: VALID UNTIL refuses new logins after the end. MariaDB: the backstop event drops
    // the account and ends its sessions within about two seconds of the end.
    const end = Math.max(Date.parse(pgGrant.endsAt), Date.parse(mariaGrant.endsAt));
    await sleep(Math.max(0, end - Date.now()) + 200);
    expect(await pgLoginOutcome(pgLoginDetails.username, pgLoginDetails.password)).toBe("28P01");
    await waitFor(
      async () =>
        (await mariaLoginOutcome(mariaLoginDetails.username, mariaLoginDetails.password)) !== "ok" &&
        (await mariaAccounts(SHOP_PREFIX)).length === 0,
      { timeoutMs: 5_000, what: "MariaDB's backstop event to drop the account" },
    );
    await expect(mariaSession.query("SELECT 1")).rejects.toBeTruthy();
    mariaSession.destroy();

    await server.start();
    for (const grant of [pgGrant, mariaGrant]) {
      const view = await server.admin.ok("GET", `/v1/grants/${grant.id}`);
      expect(view).toMatchObject({ state: "expired", revocation: { status: "verified" } });
    }
    // The PostgreSQL session left open while Firebreak was down is cut by the restarted server.
    await expect(pgSession.query("select 1")).rejects.toBeTruthy();
    await pgSession.end().catch(() => {});
    expect(await pgAccounts(LEDGER_PREFIX)).toEqual([]);
    expect(await server.admin.ok("GET", "/v1/audit/verify")).toMatchObject({ ok: true });
  });
});

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { expectError, expectStatus, startTestApp, type TestApp } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";
import { dropPgAccounts, PG_ADMIN_URL, pgAccounts, uniqueTag, withPgAdmin } from "../support/jit.js";

/**
 * A PostgreSQL resource whose `reassignTo` names a role the target does not have passed
 * `validate` and made every revocation fail forever. Now the server asks the target at start
 * (alert.raised), and refuses activation on that resource with RESOURCE_MISCONFIGURED before
 * anything is created, until the role exists.
 */
const tag = uniqueTag();
const PREFIX = `ra${tag}_`;
const OWNER = `jfx${tag}_owner`;
const HEIR = `jfx${tag}_heir`;

const CONFIG = `version: 1
directory:
  users:
    alice: { groups: [sre] }
zones:
  payments: {}
resources:
  payments-pg:
    zone: payments
    type: postgres
    connection: { url: env:PAYMENTS_PG_ADMIN_URL }
    namePrefix: ${PREFIX}
    ownedObjects: reassign
    reassignTo: ${HEIR}
    roles:
      admin: { grants: [${OWNER}] }
breakGlass:
  - name: payments-now
    zone: payments
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
`;

beforeAll(async () => {
  await withPgAdmin((c) => c.query(`CREATE ROLE ${OWNER} NOLOGIN`));
});
afterAll(async () => {
  await dropPgAccounts(PREFIX);
  await withPgAdmin(async (c) => {
    await c.query(`DROP ROLE IF EXISTS ${HEIR}`);
    await c.query(`DROP ROLE IF EXISTS ${OWNER}`);
  });
});

describe.each(DIALECTS)("a reassignTo role missing on the target, with Firebreak on %s", (dialect) => {
  let t: TestApp;
  let started: TestApp | null = null;

  beforeEach(async () => {
    started = null;
    t = await startTestApp(dialect, { config: CONFIG, env: { PAYMENTS_PG_ADMIN_URL: PG_ADMIN_URL } });
    started = t;
  });

  afterEach(async () => {
    await withPgAdmin((c) => c.query(`DROP ROLE IF EXISTS ${HEIR}`));
    if (!started) return;
    const errors = started.serverErrors;
    await started.close();
    // The misconfiguration is logged, as it should be; nothing else went wrong.
    expect(errors.filter((line) => !line.startsWith("resource misconfigured"))).toEqual([]);
  });

  it("is raised at start, refuses activation until the role exists, then grants and revokes as usual", async () => {
    const alerts = async () =>
      (await t.auditEvents()).filter(
        (e) => e.type === "alert.raised" && e.context.alert === "resource-misconfigured",
      );
    const raised = await alerts();
    expect(raised).toHaveLength(1);
    expect(raised[0]).toMatchObject({ actor: "system:firebreak", zone: "payments", resource: "payments-pg" });
    expect(raised[0]?.context.problems).toEqual([
      `resource 'payments-pg': reassignTo names the role '${HEIR}', which does not exist on the target, so no grant's login role could be dropped at revoke; create that role or change ownedObjects`,
    ]);
    expect(t.serverErrors.some((line) => line.startsWith("resource misconfigured"))).toBe(true);

    const asked = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "payments", role: "admin", reason: "payments stuck" },
    });
    expectStatus(asked, 201);
    expect(asked.body.state).toBe("approved");
    const refused = await t.call("POST", `/v1/requests/${asked.body.id}/activate`, { as: "alice" });
    expectError(refused, 503, "RESOURCE_MISCONFIGURED");
    expect(refused.body.error.message).toContain(`'${HEIR}', which does not exist on the target`);
    // Nothing was opened: no grant, no login on the target, the request still waits.
    expect(await t.count("grants")).toBe(0);
    expect(await pgAccounts(PREFIX)).toEqual([]);
    expect((await t.call("GET", `/v1/requests/${asked.body.id}`, { as: "alice" })).body.state).toBe(
      "approved",
    );
    expect((await alerts()).at(-1)?.context).toMatchObject({ request: asked.body.id });

    await withPgAdmin((c) => c.query(`CREATE ROLE ${HEIR} NOLOGIN`));
    const activated = await t.call("POST", `/v1/requests/${asked.body.id}/activate`, { as: "alice" });
    expectStatus(activated, 201);
    expect(await pgAccounts(PREFIX)).toHaveLength(1);
    const revoked = await t.call("POST", `/v1/grants/${activated.body.id}/revoke`, {
      as: "admin",
      body: { reason: "done" },
    });
    expectStatus(revoked, 200);
    expect(revoked.body.revocation.status).toBe("verified");
    expect(await pgAccounts(PREFIX)).toEqual([]);
  });
});

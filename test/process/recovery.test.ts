import { join } from "node:path";
import { afterAll, describe, expect, test, vi } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../support/databases.js";
import {
  type ApiClient,
  apiClient,
  describeResult,
  HttpFailure,
  killAllProcesses,
  type ProcessGroup,
  parseJson,
  processGroup,
  sleep,
  sleepUntil,
  temporaryDirectory,
  waitFor,
  writeText,
} from "../support/process.js";
import { GOOD_JUSTIFICATION, processTestConfig } from "./fixtures.js";

type RequestView = { id: string; state: string; next: string; grantId: string | null };
type GrantView = {
  id: string;
  state: string;
  endsAt: string;
  revocation: { status: string };
};
type AuditEvent = { seq: number; type: string; subject: string | null; actor: string };

// Real processes on a shared machine: generous limits, so load slows these tests but never fails them.
vi.setConfig({ testTimeout: 90_000 });
afterAll(killAllProcesses);

/** A server on a fresh migrated database, with an administrator client and a lead who approves. */
async function arrange(
  group: ProcessGroup,
  database: TestDatabase,
  remove: (fn: () => Promise<void>) => void,
) {
  const directory = await temporaryDirectory();
  remove(directory.remove);
  const config = await writeText(join(directory.path, "firebreak.yaml"), processTestConfig());
  const server = await group.startServer({ config, db: database.url });
  expect(server.admin, "a first start prints the administrator's token").not.toBeNull();
  const admin = apiClient(server.url, server.admin?.token ?? "");
  const addUser = async (name: string, groups: string[]) =>
    apiClient(server.url, (await admin.post<{ token: string }>("/v1/users", { name, groups })).token);
  const lead = await addUser("lead", ["leads"]);
  return { config, server, admin, lead, addUser };
}

async function grantsOf(database: TestDatabase) {
  return database.handle.db.selectFrom("grants").selectAll().execute();
}

async function auditEvents(admin: ApiClient, query: string): Promise<AuditEvent[]> {
  return (await admin.get<{ events: AuditEvent[] }>(`/v1/audit?limit=1000&${query}`)).events;
}

describe.concurrent.each(DIALECTS)("crash recovery on %s", (dialect) => {
  test("after kill -9, windows and pending expiries that passed while it was down are finished before it serves", async ({
    onTestFinished,
  }) => {
    const database = await createTestDatabase(dialect);
    onTestFinished(database.drop);
    // Hooks run last-registered first: processes end before their database is dropped.
    const group = processGroup();
    onTestFinished(group.killAll);
    const { config, server, admin, lead, addUser } = await arrange(group, database, onTestFinished);

    const ana = await addUser("ana", ["sre"]);
    const ben = await addUser("ben", ["sre"]);
    const cy = await addUser("cy", ["sre"]);

    // Requests and approvals first, activations last, the long window first and the shortest last,
    // so the server is killed well before any window ends and the dead server closed nothing.
    const planned = [
      { who: ben, role: "operator", duration: "1h" },
      { who: cy, role: "admin", duration: "3s" },
      { who: ben, role: "admin", duration: "3s" },
      { who: ana, role: "operator", duration: "2s" },
      { who: ana, role: "admin", duration: "2s" },
    ];
    const requests: { who: ApiClient; request: RequestView; duration: string }[] = [];
    for (const plan of planned) {
      const request = await plan.who.post<RequestView>("/v1/requests", {
        zone: "vault",
        role: plan.role,
        duration: plan.duration,
        ...GOOD_JUSTIFICATION,
      });
      expect(request.state).toBe("pending");
      await lead.post(`/v1/requests/${request.id}/approve`, { comment: "go" });
      requests.push({ who: plan.who, request, duration: plan.duration });
    }
    // Two requests on the policy with a 3 s pending expiry: one left pending, one approved but
    // never activated. Both must lapse.
    const pending = await ana.post<RequestView>("/v1/requests", {
      zone: "ops",
      role: "operator",
      reason: "x",
    });
    const approvedOnly = await ben.post<RequestView>("/v1/requests", {
      zone: "ops",
      role: "operator",
      reason: "y",
    });
    expect((await lead.post<RequestView>(`/v1/requests/${approvedOnly.id}/approve`, {})).state).toBe(
      "approved",
    );

    const grants: GrantView[] = [];
    for (const { who, request } of requests)
      grants.push(await who.post<GrantView>(`/v1/requests/${request.id}/activate`, {}));
    for (const grant of grants) expect(grant.state).toBe("active");

    server.signal("SIGKILL");
    const exit = await server.exited;
    const killedAt = Date.now();
    expect(exit.signal).toBe("SIGKILL");

    const shortGrants = grants.filter((g) => Date.parse(g.endsAt) - killedAt < 60_000);
    const longGrant = grants.find((g) => Date.parse(g.endsAt) - killedAt > 60_000);
    expect(shortGrants).toHaveLength(4);
    expect(longGrant).toBeDefined();
    const firstEnd = Math.min(...shortGrants.map((g) => Date.parse(g.endsAt)));
    expect(killedAt, "the server must die before any window ends, or this tests nothing").toBeLessThan(
      firstEnd,
    );

    // What the dead server left behind: every grant still active, both requests still waiting.
    const atDeath = await grantsOf(database);
    expect(atDeath.map((g) => g.state)).toEqual(grants.map(() => "active"));
    const lapsing = await database.handle.db
      .selectFrom("requests")
      .select(["id", "state", "lapses_at"])
      .where("id", "in", [pending.id, approvedOnly.id])
      .execute();
    expect(lapsing.map((r) => r.state).sort()).toEqual(["approved", "pending"]);
    for (const row of lapsing) expect(row.lapses_at ?? 0).toBeGreaterThan(killedAt);

    const lastDue = Math.max(
      ...shortGrants.map((g) => Date.parse(g.endsAt)),
      ...lapsing.map((r) => r.lapses_at ?? 0),
    );
    await sleepUntil(lastDue, 300);

    // Nothing happened while it was down.
    expect((await grantsOf(database)).filter((g) => g.state === "active")).toHaveLength(grants.length);

    const restartedAt = Date.now();
    const restarted = await group.spawnServer({ config, db: database.url }).started;
    expect(restarted.admin, "the administrator exists already; no second token").toBeNull();

    // The server prints its address only once it listens, and it listens only after recovery:
    // before anyone could ask /readyz, the database must already show the work done.
    const after = await grantsOf(database);
    for (const grant of shortGrants) {
      const row = after.find((g) => g.id === grant.id);
      expect(row?.state, `${grant.id} (window ended while the server was dead)`).toBe("expired");
      // Closed by the restarted process, on its own, before it served anyone.
      expect(row?.closed_by).toMatch(/^system:/);
      expect(row?.closed_at ?? 0).toBeGreaterThanOrEqual(restartedAt);
      expect(row?.revocation_status, `${grant.id} revocation`).toBe("verified");
    }
    expect(after.find((g) => g.id === longGrant?.id)?.state, "a grant still inside its window").toBe(
      "active",
    );
    const effects = await database.handle.db
      .selectFrom("grant_effects")
      .select(["grant_id", "state"])
      .execute();
    for (const effect of effects)
      expect(effect.state, `effect of ${effect.grant_id}`).toBe(
        effect.grant_id === longGrant?.id ? "issued" : "closed",
      );
    const requestStates = await database.handle.db
      .selectFrom("requests")
      .select(["id", "state"])
      .where("id", "in", [pending.id, approvedOnly.id])
      .execute();
    expect(requestStates.map((r) => r.state)).toEqual(["lapsed", "lapsed"]);

    const readyz = await fetch(`${restarted.url}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toMatchObject({ status: "ready" });

    // The same seen from outside: the API, the audit trail, and `firebreak audit verify`.
    const adminAgain = apiClient(restarted.url, admin.token);
    for (const grant of shortGrants) {
      const view = await adminAgain.get<GrantView>(`/v1/grants/${grant.id}`);
      expect(view).toMatchObject({ state: "expired", revocation: { status: "verified" } });
      const types = (await auditEvents(adminAgain, `subject=${grant.id}`)).map((e) => e.type);
      expect(types).toEqual(
        expect.arrayContaining([
          "grant.activated",
          "grant.expired",
          "credential.revoked",
          "revocation.verified",
        ]),
      );
      expect(types.filter((t) => t === "grant.expired")).toHaveLength(1);
    }
    for (const request of [pending, approvedOnly]) {
      const types = (await auditEvents(adminAgain, `subject=${request.id}`)).map((e) => e.type);
      expect(types.filter((t) => t === "request.lapsed")).toHaveLength(1);
    }

    const verify = await group.cli(["audit", "verify"], { url: restarted.url, token: admin.token });
    expect(verify.code, describeResult(verify)).toBe(0);
    expect(verify.stdout).toMatch(/^OK: \d+ events, chain intact/);
    const verifyJson = await group.cli(["--json", "audit", "verify"], {
      url: restarted.url,
      token: admin.token,
    });
    expect(verifyJson.code, describeResult(verifyJson)).toBe(0);
    expect(parseJson(verifyJson)).toMatchObject({ ok: true, firstBadSeq: null });

    // A clean stop after all that: SIGTERM ends the server with exit code 0.
    expect(await restarted.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });

  test("a grant whose connector answer was lost in the crash is revoked and verified after restart", async ({
    onTestFinished,
  }) => {
    const database = await createTestDatabase(dialect);
    onTestFinished(database.drop);
    const group = processGroup();
    onTestFinished(group.killAll);
    const { config, server, admin, lead, addUser } = await arrange(group, database, onTestFinished);
    const dee = await addUser("dee", ["sre"]);
    const request = await dee.post<RequestView>("/v1/requests", {
      zone: "vault",
      role: "admin",
      duration: "2s",
      ...GOOD_JUSTIFICATION,
    });
    await lead.post(`/v1/requests/${request.id}/approve`, {});
    const grant = await dee.post<GrantView>(`/v1/requests/${request.id}/activate`, {});
    server.signal("SIGKILL");
    await server.exited;

    // The state a kill leaves between the activation's commit and the connector's answer being
    // recorded: the effect is still the intent written with the grant. The connector may well
    // have issued the credential, so it must be taken away and proven gone.
    await database.handle.db
      .updateTable("grant_effects")
      .set({ state: "intent", detail_json: "{}" })
      .where("grant_id", "=", grant.id)
      .execute();
    await sleepUntil(Date.parse(grant.endsAt), 300);

    const restarted = await group.spawnServer({ config, db: database.url }).started;
    const row = await database.handle.db
      .selectFrom("grants")
      .selectAll()
      .where("id", "=", grant.id)
      .executeTakeFirstOrThrow();
    expect(row.state).toBe("expired");
    const effects = await database.handle.db
      .selectFrom("grant_effects")
      .select("state")
      .where("grant_id", "=", grant.id)
      .execute();
    expect(effects.map((e) => e.state)).toEqual(["closed"]);
    const types = (await auditEvents(apiClient(restarted.url, admin.token), `subject=${grant.id}`)).map(
      (e) => e.type,
    );
    expect(types).toContain("revocation.verified");
    // The grant's own record must say what the audit trail says: revoked and verified.
    expect(row.revocation_status).toBe("verified");
  });

  test("SIGKILL at a random moment during a burst: the chain verifies and no grant outlives its window", async ({
    onTestFinished,
  }) => {
    const database = await createTestDatabase(dialect);
    onTestFinished(database.drop);
    // Hooks run last-registered first: processes end before their database is dropped.
    const group = processGroup();
    onTestFinished(group.killAll);
    const { config, server, admin, lead } = await arrange(group, database, onTestFinished);

    const killAfterMs = Math.floor(Math.random() * 1200);
    let dead = false;
    let activated = 0;
    const refusals: string[] = [];
    // Each step is its own transaction on the server; three workers keep several in flight, so
    // the kill lands between, inside or during the commit of them.
    async function worker(id: number) {
      for (let i = 0; !dead; i++) {
        try {
          const { token } = await admin.post<{ token: string }>("/v1/users", {
            name: `burst-${id}-${i}`,
            groups: ["sre"],
          });
          const user = apiClient(server.url, token);
          const request = await user.post<RequestView>("/v1/requests", {
            zone: "vault",
            role: i % 2 === 0 ? "admin" : "operator",
            duration: `${1 + ((id + i) % 3)}s`,
            ...GOOD_JUSTIFICATION,
          });
          await lead.post(`/v1/requests/${request.id}/approve`, {});
          await user.post(`/v1/requests/${request.id}/activate`, {});
          activated++;
        } catch (error) {
          // A refusal the server answered is a bug (nothing here conflicts); a dropped connection
          // is the kill.
          if (error instanceof HttpFailure && !dead) refusals.push(error.message);
          if (!server.alive() || dead) return;
          await sleep(10);
        }
      }
    }
    const workers = [worker(0), worker(1), worker(2)];
    // The random moment is counted from the first activation, so a slow machine still kills
    // mid-burst rather than before anything happened.
    await waitFor(async () => activated > 0 || refusals.length > 0, {
      timeoutMs: 30_000,
      what: "a first grant",
    });
    await sleep(killAfterMs);
    server.signal("SIGKILL");
    await server.exited;
    dead = true;
    await Promise.all(workers);
    const context = `killed ${killAfterMs} ms after the first activation, ${activated} activations acknowledged`;
    expect(refusals, context).toEqual([]);

    const atDeath = await grantsOf(database);
    expect(atDeath.length, `${context}: the burst must have created grants`).toBeGreaterThan(0);
    expect(atDeath.length).toBeGreaterThanOrEqual(activated);
    await sleepUntil(Math.max(...atDeath.map((g) => g.ends_at)), 300);

    const restarted = await group.spawnServer({ config, db: database.url }).started;
    const now = Date.now();
    const after = await grantsOf(database);
    expect(after.map((g) => g.id).sort()).toEqual(atDeath.map((g) => g.id).sort());
    for (const grant of after) {
      expect(grant.ends_at).toBeLessThan(now);
      expect(grant.state, `${context}: ${grant.id} ended at ${grant.ends_at}`).toBe("expired");
      expect(grant.revocation_status, `${context}: ${grant.id}`).toBe("verified");
    }
    const unfinished = await database.handle.db
      .selectFrom("grant_effects")
      .select(["grant_id", "state"])
      .where("state", "!=", "closed")
      .execute();
    expect(unfinished, context).toEqual([]);
    // A request is active exactly while its grant is; none may be left active without one.
    const activeRequests = await database.handle.db
      .selectFrom("requests")
      .select(["id", "state"])
      .where("state", "=", "active")
      .execute();
    expect(activeRequests, context).toEqual([]);
    const expiredRequests = await database.handle.db
      .selectFrom("requests")
      .select("id")
      .where("state", "=", "expired")
      .execute();
    expect(expiredRequests.map((r) => r.id).sort()).toEqual(after.map((g) => g.request_id).sort());

    // Each grant's activation and expiry each committed with exactly one audit event.
    const adminAgain = apiClient(restarted.url, admin.token);
    const activatedEvents = await auditEvents(adminAgain, "type=grant.activated");
    const expiredEvents = await auditEvents(adminAgain, "type=grant.expired");
    expect(activatedEvents.map((e) => e.subject).sort()).toEqual(after.map((g) => g.id).sort());
    expect(expiredEvents.map((e) => e.subject).sort()).toEqual(after.map((g) => g.id).sort());

    const verify = await group.cli(["audit", "verify"], { url: restarted.url, token: admin.token });
    expect(verify.code, `${context}\n${describeResult(verify)}`).toBe(0);
    expect(verify.stdout).toMatch(/^OK: \d+ events, chain intact/);
  });
});

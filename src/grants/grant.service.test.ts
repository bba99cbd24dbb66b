import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../../test/support/databases.js";
import { codeOf, compiledRuntime, events, person } from "../../test/support/service-fixtures.js";
import type { ResourceType } from "../config/schema.js";
import { type DatabaseHandle, openDatabase } from "../db/database.js";
import { createTransactionRunner } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import type { CredentialConnector, IssueContext, NetworkEnforcer, PathSpec } from "../plugins/contracts.js";
import type { ConnectorRegistry } from "../plugins/registry.js";
import { findRequest } from "../requests/request.repo.js";
import { createRequestService } from "../requests/request.service.js";
import { createSecretBox } from "../secrets/secret-box.js";
import { createManualClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";
import { createSignalService } from "../signals/signal.service.js";
import type { Principal } from "../users/user.service.js";
import { createEffectRunner, PATH_CONNECTOR_PREFIX } from "./effects.js";
import { createExpiryScheduler } from "./expiry.scheduler.js";
import { CLOSER_GRACE_MS, closeGrant, findGrant, type GrantRecord, listEffects } from "./grant.repo.js";
import { createGrantService } from "./grant.service.js";

const T0 = Date.parse("2026-12-01T02:00:00.000Z");
const MINUTE = 60_000;
const PATH = `${PATH_CONNECTOR_PREFIX}log`;
const REASON = "primary is down, failing over to the replica";

const CONFIG = `version: 1
auditors: [group:security]
directory:
  users:
    alice: { groups: [sre] }
    bob: { groups: [sre] }
    carol: { groups: [leads] }
    dave: { groups: [leads, security] }
    erin: { groups: [security] }
    frank: { groups: [dev] }
zones:
  vault: {}
  cache: {}
resources:
  vault-db:
    zone: vault
    type: log
    address: 10.40.0.5:5432
    roles:
      admin: { grants: [vault_owner] }
  cache-host:
    zone: cache
    type: log
    roles:
      flush: { grants: [cache_flush] }
breakGlass:
  - name: vault-emergency
    zone: vault
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
    review: { within: 72h, by: [group:security] }
  - name: cache-flush
    zone: cache
    roles: [flush]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
    autoApprove: { when: "signals.incident.severity == 1" }
`;

const alice = person("alice", ["sre"]);
const bob = person("bob", ["sre"]);
const carol = person("carol", ["leads"]);
const dave = person("dave", ["leads", "security"], { isAuditor: true });
const erin = person("erin", ["security"], { isAuditor: true });
const frank = person("frank", ["dev"]);
const admin = person("admin", [], { isAdmin: true });

type Gate = { entered: Promise<void>; release: () => void; wait: () => Promise<void> };
/** Holds a call where it is until released, and says when it got there: interleavings without sleeps. */
function createGate(): Gate {
  let entered!: () => void;
  let release!: () => void;
  const reached = new Promise<void>((resolve) => {
    entered = resolve;
  });
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    entered: reached,
    release,
    wait: async () => {
      entered();
      await released;
    },
  };
}

/**
 * A credential target that keeps the connector contract: issuing is idempotent per grant, revoking
 * what is gone succeeds, and verification reports what the target really holds. It can be told to
 * refuse issuing, to be unreachable when revoking, or to accept a revoke and keep the login anyway.
 */
function createFakeTarget(kind: ResourceType) {
  const accounts = new Map<string, string>();
  const calls: { operation: "issue" | "revoke" | "verify"; externalId: string }[] = [];
  const secrets: string[] = [];
  const behaviour = {
    refuseIssue: false,
    unreachable: false,
    keepsLogin: false,
    withSecret: true,
    beforeIssue: null as ((context: IssueContext) => Promise<void>) | null,
    beforeRevoke: null as (() => Promise<void>) | null,
  };
  const connector: CredentialConnector = {
    kind,
    available: true,
    plannedExternalId: (grantId) => `fb_${grantId}`,
    async issue(context) {
      const externalId = connector.plannedExternalId(context.grantId, context.user);
      calls.push({ operation: "issue", externalId });
      await behaviour.beforeIssue?.(context);
      if (behaviour.refuseIssue) throw new FirebreakError("CONNECTOR_FAILED", "the target refused the login");
      accounts.set(externalId, context.grantId);
      const secret = behaviour.withSecret ? `pw-${randomBytes(12).toString("hex")}` : null;
      if (secret) secrets.push(secret);
      return { externalId, detail: { login: externalId, host: "10.40.0.5" }, secret };
    },
    async revoke(context) {
      calls.push({ operation: "revoke", externalId: context.externalId });
      await behaviour.beforeRevoke?.();
      if (behaviour.unreachable) throw new FirebreakError("CONNECTOR_FAILED", "the target cannot be reached");
      if (!behaviour.keepsLogin) accounts.delete(context.externalId);
    },
    async verifyRevoked(context) {
      calls.push({ operation: "verify", externalId: context.externalId });
      return !accounts.has(context.externalId);
    },
    listManaged: async () => [...accounts.keys()],
    close: async () => {},
  };
  const count = (operation: "issue" | "revoke" | "verify") =>
    calls.filter((call) => call.operation === operation).length;
  return { connector, accounts, calls, secrets, behaviour, count };
}
type FakeTarget = ReturnType<typeof createFakeTarget>;

/** An enforcer that keeps its contract: idempotent per grant, and `close` throws while the path may be open. */
function createFakeEnforcer() {
  const open = new Map<string, PathSpec>();
  const behaviour = { refuseClose: false, beforeOpen: null as ((path: PathSpec) => Promise<void>) | null };
  const enforcer: NetworkEnforcer = {
    kind: "log",
    async open(path) {
      await behaviour.beforeOpen?.(path);
      open.set(path.grantId, path);
      return { ruleId: `rule-${path.grantId}` };
    },
    async close(grantId) {
      if (behaviour.refuseClose)
        throw new FirebreakError("CONNECTOR_FAILED", "the agents have not confirmed");
      open.delete(grantId);
      return undefined;
    },
  };
  return { enforcer, open, behaviour };
}
type FakeEnforcer = ReturnType<typeof createFakeEnforcer>;

const MASTER_KEY = randomBytes(32);
const runtime = compiledRuntime(CONFIG);

/**
 * One Firebreak process's grant lifecycle, wired as the composition root wires it, on `db`, with
 * fakes for the targets. Two of these on two handles of one database are two processes.
 */
function createProcess(
  db: Db,
  clock: ReturnType<typeof createManualClock>,
  target: FakeTarget = createFakeTarget("log"),
  path: FakeEnforcer = createFakeEnforcer(),
) {
  const inTransaction = createTransactionRunner({ db, clock, bus: createEventBus() });
  const signals = createSignalService({
    db,
    clock,
    inTransaction,
    config: () => runtime.config,
    sources: () => ({ alertmanager: null, pagerduty: null, generic: null }),
  });
  const requests = createRequestService({
    db,
    clock,
    inTransaction,
    current: () => runtime,
    signals,
    sourceZoneOf: () => null,
  });
  // Every kind gets a fake of its own, so a grant reaching the wrong connector shows in its calls.
  const connectors: ConnectorRegistry = {
    log: target.connector,
    postgres: createFakeTarget("postgres").connector,
    mariadb: createFakeTarget("mariadb").connector,
    ssh: createFakeTarget("ssh").connector,
  };
  const heard = { activated: [] as string[], closed: [] as string[], retries: 0 };
  const grants = createGrantService({
    db,
    clock,
    inTransaction,
    current: () => runtime,
    effects: createEffectRunner({ connectors, enforcer: path.enforcer, config: () => runtime.config }),
    enforcerKind: path.enforcer.kind,
    box: createSecretBox(MASTER_KEY),
    requests,
    signals,
    listener: {
      activated: (grant) => heard.activated.push(grant.id),
      closed: (grant) => heard.closed.push(grant.id),
      retryScheduled: () => {
        heard.retries++;
      },
    },
  });
  const scheduler = createExpiryScheduler({
    db,
    clock,
    inTransaction,
    grants,
    requests,
    onError: (error) => {
      throw error;
    },
  });
  return { db, clock, inTransaction, signals, requests, grants, scheduler, target, path, heard };
}
type Process = ReturnType<typeof createProcess>;

/**
 * Locks a grant's effect rows from a connection of its own, so that transactions updating them
 * queue behind it; released once `count` of them are waiting, they then run in turn.
 */
async function holdRows(url: string, grantId: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("BEGIN");
  await client.query("SELECT id FROM grant_effects WHERE grant_id = $1 FOR UPDATE", [grantId]);
  return {
    async releaseWhenWaiting(count: number) {
      try {
        for (let polls = 0; ; polls++) {
          // Statistics are read once per transaction unless the snapshot is dropped.
          await client.query("SELECT pg_stat_clear_snapshot()");
          const { rows } = await client.query<{ waiting: number }>(
            "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
          );
          if ((rows[0]?.waiting ?? 0) >= count) break;
          if (polls > 500) throw new Error(`only ${rows[0]?.waiting} transactions reached the rows`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        await client.query("COMMIT");
      } finally {
        await client.end();
      }
    },
  };
}

/** Locks one row from a connection of its own until `count` transactions wait on it. */
async function holdRow(url: string, table: "requests" | "grants", id: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("BEGIN");
  await client.query(`SELECT id FROM ${table} WHERE id = $1 FOR UPDATE`, [id]);
  return {
    async releaseWhenWaiting(count: number) {
      try {
        for (let polls = 0; ; polls++) {
          await client.query("SELECT pg_stat_clear_snapshot()");
          const { rows } = await client.query<{ waiting: number }>(
            "SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
          );
          if ((rows[0]?.waiting ?? 0) >= count) break;
          if (polls > 500) throw new Error(`only ${rows[0]?.waiting} transactions reached the row`);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        await client.query("COMMIT");
      } finally {
        await client.end();
      }
    },
  };
}

/** Each effect's state by connector: the order of a grant's effects is not defined. */
async function statesOf(db: Db, grantId: string): Promise<Record<string, string>> {
  return Object.fromEntries((await listEffects(db, grantId)).map((e) => [e.connector, e.state]));
}

/** An approved vault-emergency request of `who`'s, activated. */
async function activeGrant(process: Process, who: Principal = alice): Promise<GrantRecord> {
  const request = await process.requests.create(who, { zone: "vault", role: "admin", reason: REASON }, null);
  await process.requests.approve(carol, request.id, null);
  return process.grants.activate(who, request.id, []);
}

describe.each(DIALECTS)("grant lifecycle on %s", (dialect) => {
  let database: TestDatabase | undefined;
  const handles: DatabaseHandle[] = [];
  let clock: ReturnType<typeof createManualClock>;
  let one: Process;

  /**
   * A second process on the same database with its own connection pool, by default on the same
   * targets. Replicas share PostgreSQL only (SPEC); on SQLite the second one shares the process's
   * connection, as a second service instance in one process would.
   */
  function secondProcess(target = one.target, path = one.path): Process {
    if (dialect === "sqlite") return createProcess(one.db, clock, target, path);
    const handle = openDatabase((database as TestDatabase).url);
    handles.push(handle);
    return createProcess(handle.db, clock, target, path);
  }

  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    clock = createManualClock(T0);
    one = createProcess(database.handle.db, clock);
  });
  afterEach(async () => {
    for (const handle of handles.splice(0)) await handle.close();
    await database?.drop();
  });

  it("records every intent and the activation before any target is touched, then issues", async () => {
    // What the database holds at the moment each target is first touched.
    const seen: Record<string, { own: string | undefined; connectors: string[]; events: string[] }> = {};
    const look = async (connector: string, grantId: string) => {
      const now = await statesOf(one.db, grantId);
      seen[connector] = {
        own: now[connector],
        connectors: Object.keys(now).sort(),
        events: (await events(one.db)).map((e) => e.type),
      };
    };
    one.target.behaviour.beforeIssue = (context) => look("log", context.grantId);
    one.path.behaviour.beforeOpen = (path) => look(PATH, path.grantId);

    const grant = await activeGrant(one);

    for (const connector of ["log", PATH]) {
      expect(seen[connector]?.own).toBe("intent");
      expect(seen[connector]?.connectors).toEqual(["log", PATH]);
      expect(seen[connector]?.events.slice(0, 3)).toEqual([
        "request.created",
        "request.approved",
        "grant.activated",
      ]);
    }
    expect(await statesOf(one.db, grant.id)).toEqual({ log: "issued", [PATH]: "issued" });
    const effects = await listEffects(one.db, grant.id);
    expect(effects.find((e) => e.connector === "log")?.detail.externalId).toBe(`fb_${grant.id}`);
    expect(effects.find((e) => e.connector === PATH)?.detail.externalId).toBe(`rule-${grant.id}`);
    const types = (await events(one.db)).map((e) => e.type);
    expect(types.slice(0, 3)).toEqual(["request.created", "request.approved", "grant.activated"]);
    expect(types.slice(3).sort()).toEqual(["credential.issued", "flow.opened"]);
    expect(one.heard.activated).toEqual([grant.id]);
    // Sealed at rest and never audited.
    const [secret] = one.target.secrets;
    expect(secret).toBeDefined();
    for (const effect of effects) expect(effect.secretEnc ?? "").not.toContain(secret);
    expect(effects.find((e) => e.connector === "log")?.secretEnc).not.toBeNull();
    expect(JSON.stringify(await events(one.db))).not.toContain(secret);
  });

  it("closes the grant, raises an alert and takes back what was started when issuing fails", async () => {
    one.target.behaviour.refuseIssue = true;
    const request = await one.requests.create(alice, { zone: "vault", role: "admin", reason: REASON }, null);
    await one.requests.approve(carol, request.id, null);

    expect(await codeOf(one.grants.activate(alice, request.id, []))).toBe("CONNECTOR_FAILED");

    const [listed] = await one.grants.list(admin, {});
    const grant = await findGrant(one.db, listed?.id ?? "");
    expect(grant).toMatchObject({
      state: "revoked",
      closedBy: "system:firebreak",
      revocationStatus: "verified",
    });
    expect(grant?.closeReason).toMatch(/^issuance failed: the target refused the login/);
    expect((await findRequest(one.db, request.id))?.state).toBe("revoked");
    const alert = (await events(one.db, "alert.raised"))[0];
    expect(alert?.context).toMatchObject({ alert: "issuance-failed", grant: grant?.id });
    const types = (await events(one.db)).map((e) => e.type).slice(-5);
    expect(types.slice(0, 2)).toEqual(["alert.raised", "grant.revoked"]);
    expect(types.slice(2, 4).sort()).toEqual(["credential.revoked", "flow.closed"]);
    expect(types[4]).toBe("revocation.verified");
    // The failed credential is revoked all the same (the target may hold it), and so is the path.
    expect(await statesOf(one.db, grant?.id ?? "")).toEqual({ log: "closed", [PATH]: "closed" });
    expect(one.target.count("revoke")).toBe(1);
    expect(one.path.open.size).toBe(0);
    expect(one.heard.closed).toEqual([grant?.id]);
  });

  it("closes a grant exactly once when expiry and revokes race in two processes", async () => {
    const two = secondProcess();
    for (let round = 0; round < 3; round++) {
      const grant = await activeGrant(one);
      clock.set(grant.endsAt);
      const outcomes = await Promise.allSettled([
        one.grants.closeMany([grant.id], "expired", "system:scheduler", "the grant's window ended"),
        two.grants.closeMany([grant.id], "expired", "system:scheduler", "the grant's window ended"),
        one.grants.revoke(alice, grant.id, "done with it"),
        two.grants.revoke(admin, grant.id, "done with it"),
      ]);
      for (const outcome of outcomes) {
        if (outcome.status === "rejected") {
          expect(outcome.reason).toBeInstanceOf(FirebreakError);
          expect((outcome.reason as FirebreakError).code).toBe("INVALID_STATE");
        }
      }
      const closes = (await events(one.db)).filter(
        (e) => e.subject === grant.id && (e.type === "grant.expired" || e.type === "grant.revoked"),
      );
      expect(closes).toHaveLength(1);
      expect(
        (await events(one.db, "revocation.verified")).filter((e) => e.subject === grant.id),
      ).toHaveLength(1);
      expect(
        one.target.calls.filter((c) => c.operation === "revoke" && c.externalId === `fb_${grant.id}`),
      ).toHaveLength(1);
      expect([...one.heard.closed, ...two.heard.closed].filter((id) => id === grant.id)).toHaveLength(1);
      clock.advance(MINUTE);
    }
  });

  it("activates the same approved request on two processes at once: one grant, the other refused 409", async () => {
    const two = secondProcess();
    for (let round = 0; round < 3; round++) {
      const request = await one.requests.create(
        alice,
        { zone: "vault", role: "admin", reason: REASON },
        null,
      );
      await one.requests.approve(carol, request.id, null);
      const loads = [one.requests.load, two.requests.load] as const;
      if (dialect === "postgres") {
        // Both transactions read the approved request (and find no active grant) before either
        // inserts: the unique active key is what decides. SQLite runs one transaction at a time.
        let arrived = 0;
        let release!: () => void;
        const together = new Promise<void>((resolve) => {
          release = resolve;
        });
        for (const process of [one, two]) {
          const load = process.requests.load;
          process.requests.load = async (...args) => {
            const loaded = await load(...args);
            if (++arrived === 2) release();
            await together;
            return loaded;
          };
        }
      }
      const outcomes = await Promise.allSettled([
        one.grants.activate(alice, request.id, []),
        two.grants.activate(alice, request.id, []),
      ]);
      const made = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
      const refused = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason] : []));
      expect(made).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toBeInstanceOf(FirebreakError);
      expect((refused[0] as FirebreakError).status).toBe(409);
      expect(["DUPLICATE_GRANT", "INVALID_STATE"]).toContain((refused[0] as FirebreakError).code);
      expect(
        (await events(one.db, "grant.activated")).filter((e) => e.context.request === request.id),
      ).toHaveLength(1);
      [one.requests.load, two.requests.load] = loads;
      await one.grants.revoke(alice, made[0]?.id ?? "", "done with it");
      clock.advance(MINUTE);
    }
  });

  it("reminds approvers and alerts an overdue review once when two schedulers' passes find them due", async () => {
    const two = secondProcess();
    const passes = async (table: "requests" | "grants", id: string) => {
      // On PostgreSQL both passes read the due row before either claims it: the row is held until
      // both wait on it. SQLite runs one transaction at a time, so the race is the order.
      const hold = dialect === "postgres" ? await holdRow((database as TestDatabase).url, table, id) : null;
      const both = Promise.all([one.scheduler.runDue(), two.scheduler.runDue()]);
      await hold?.releaseWhenWaiting(2);
      return both;
    };
    const request = await one.requests.create(alice, { zone: "vault", role: "admin", reason: REASON }, null);
    const row = await one.db
      .selectFrom("requests")
      .select("remind_at")
      .where("id", "=", request.id)
      .executeTakeFirst();
    expect(row?.remind_at).toBeGreaterThan(clock.now());
    clock.set(row?.remind_at ?? 0);
    await passes("requests", request.id);
    expect((await events(one.db, "request.reminder")).filter((e) => e.subject === request.id)).toHaveLength(
      1,
    );

    await one.requests.approve(carol, request.id, null);
    const grant = await one.grants.activate(alice, request.id, []);
    await one.grants.revoke(alice, grant.id, "done with it");
    clock.set((await findGrant(one.db, grant.id))?.reviewDueAt ?? 0);
    await passes("grants", grant.id);
    const alerts = (await events(one.db, "alert.raised")).filter(
      (e) => e.context.alert === "review-overdue" && e.subject === grant.id,
    );
    expect(alerts).toHaveLength(1);
  });

  it("retries a revocation the target did not take with backoff, alerting each time, until verified", async () => {
    const grant = await activeGrant(one);
    one.target.behaviour.keepsLogin = true;
    clock.advance(5 * MINUTE);
    const revokedAt = clock.now();

    const revoked = await one.grants.revoke(alice, grant.id, "done with it");
    expect(revoked).toMatchObject({
      state: "revoked",
      revocationStatus: "failed",
      revocationAttempts: 1,
      revocationNextAt: revokedAt + 1000,
    });
    expect(one.heard.retries).toBe(1);
    const alerts = async () =>
      (await events(one.db, "alert.raised")).map((e) => ({
        attempts: e.context.attempts,
        retryInSeconds: e.context.retryInSeconds,
        message: e.context.message,
      }));
    expect(await alerts()).toEqual([
      { attempts: 1, retryInSeconds: 1, message: "access on vault-db still works after revoking it" },
    ]);

    // Not before its time: a pass a moment early leaves it alone.
    clock.set(revokedAt + 999);
    await one.scheduler.runDue();
    expect(one.target.count("revoke")).toBe(1);

    clock.set(revokedAt + 1000);
    await one.scheduler.runDue();
    expect(await findGrant(one.db, grant.id)).toMatchObject({
      revocationStatus: "failed",
      revocationAttempts: 2,
      revocationNextAt: revokedAt + 1000 + 2000,
    });
    expect((await alerts()).map((a) => a.retryInSeconds)).toEqual([1, 2]);

    one.target.behaviour.keepsLogin = false;
    clock.set(revokedAt + 3000);
    await one.scheduler.runDue();
    expect(await findGrant(one.db, grant.id)).toMatchObject({
      revocationStatus: "verified",
      revocationAttempts: 3,
      revocationNextAt: null,
    });
    expect(one.target.accounts.size).toBe(0);
    expect(one.path.open.size).toBe(0);
    expect(await statesOf(one.db, grant.id)).toEqual({ log: "closed", [PATH]: "closed" });
    for (const type of ["credential.revoked", "flow.closed", "revocation.verified"])
      expect(await events(one.db, type)).toHaveLength(1);

    // Verified is final: later passes touch nothing.
    clock.advance(10 * MINUTE);
    await one.scheduler.runDue();
    expect(one.target.count("revoke")).toBe(3);
  });

  it("backs off 1s, 2s, 4s … up to five minutes while the target stays unreachable", async () => {
    const grant = await activeGrant(one);
    one.target.behaviour.unreachable = true;
    await one.grants.revoke(alice, grant.id, "done with it");
    const delays: number[] = [];
    for (let attempt = 0; attempt < 11; attempt++) {
      const row = await findGrant(one.db, grant.id);
      delays.push(((row?.revocationNextAt ?? 0) - clock.now()) / 1000);
      clock.set(row?.revocationNextAt ?? 0);
      await one.scheduler.runDue();
    }
    expect(delays).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    const last = (await events(one.db, "alert.raised")).at(-1);
    expect(last?.context).toMatchObject({
      alert: "revocation-failed",
      message: "the target cannot be reached",
    });
  });

  it("retries a due revocation in one replica only when several passes find it due", async () => {
    const grant = await activeGrant(one);
    one.target.behaviour.unreachable = true;
    await one.grants.revoke(alice, grant.id, "done with it");
    one.target.behaviour.unreachable = false;
    clock.advance(1000);

    // The first pass's retry is held inside the target; meanwhile another replica's pass runs.
    const gate = createGate();
    one.target.behaviour.beforeRevoke = async () => {
      one.target.behaviour.beforeRevoke = null;
      await gate.wait();
    };
    const first = one.scheduler.runDue();
    await gate.entered;
    const two = secondProcess();
    await two.scheduler.runDue();
    gate.release();
    await first;

    expect(one.target.count("revoke")).toBe(2);
    expect(await events(one.db, "revocation.verified")).toHaveLength(1);
    expect(await events(one.db, "credential.revoked")).toHaveLength(1);
    expect(await findGrant(one.db, grant.id)).toMatchObject({
      revocationStatus: "verified",
      revocationAttempts: 2,
      revocationNextAt: null,
    });
  });

  it("keeps the scheduler off a revocation its closer is still doing, within the grace period", async () => {
    const grant = await activeGrant(one);
    const gate = createGate();
    one.target.behaviour.beforeRevoke = gate.wait;
    const revoking = one.grants.revoke(alice, grant.id, "done with it");
    await gate.entered;
    const closedAt = clock.now();
    expect(await findGrant(one.db, grant.id)).toMatchObject({
      state: "revoked",
      revocationStatus: "pending",
      revocationNextAt: closedAt + CLOSER_GRACE_MS,
    });

    clock.set(closedAt + CLOSER_GRACE_MS - 1);
    await one.scheduler.runDue();
    expect(one.target.count("revoke")).toBe(1);

    one.target.behaviour.beforeRevoke = null;
    gate.release();
    expect(await revoking).toMatchObject({ revocationStatus: "verified", revocationNextAt: null });
    clock.set(closedAt + CLOSER_GRACE_MS);
    await one.scheduler.runDue();
    expect(one.target.count("revoke")).toBe(1);
    expect(await events(one.db, "credential.revoked")).toHaveLength(1);
  });

  it("finishes the revocation of a closer that died, once its grace period is over", async () => {
    const grant = await activeGrant(one);
    // What a closer that crashed after committing the close leaves behind.
    await one.inTransaction((unit) =>
      closeGrant(unit.tx, grant.id, {
        state: "revoked",
        now: unit.now,
        reason: "done with it",
        closedBy: "alice",
        revocationStatus: "pending",
      }),
    );
    const restarted = secondProcess();
    clock.advance(CLOSER_GRACE_MS - 1);
    await restarted.scheduler.runDue();
    expect(one.target.count("revoke")).toBe(0);
    clock.advance(1);
    await restarted.scheduler.runDue();
    expect(await findGrant(one.db, grant.id)).toMatchObject({ revocationStatus: "verified" });
    expect(one.target.accounts.size).toBe(0);
  });

  it("finishes half-issued intents after a crash, and takes back those of a grant whose window passed", async () => {
    const gate = createGate();
    one.target.behaviour.beforeIssue = gate.wait;
    const request = await one.requests.create(alice, { zone: "vault", role: "admin", reason: REASON }, null);
    await one.requests.approve(carol, request.id, null);
    // The process dies while the connector is working: the activation never returns.
    void one.grants.activate(alice, request.id, []).catch(() => {});
    await gate.entered;
    const [grant] = await one.grants.list(admin, {});
    expect((await statesOf(one.db, grant?.id ?? "")).log).toBe("intent");

    const restarted = secondProcess(createFakeTarget("log"), createFakeEnforcer());
    expect(await restarted.scheduler.finishUnfinished()).toBe(1);
    expect(await statesOf(one.db, grant?.id ?? "")).toEqual({ log: "issued", [PATH]: "issued" });
    expect(restarted.target.accounts.has(`fb_${grant?.id}`)).toBe(true);

    // One whose window ends before the restart: left to the expiry pass, which closes and revokes it.
    const late = createGate();
    restarted.target.behaviour.beforeIssue = late.wait;
    const bobs = await restarted.requests.create(bob, { zone: "vault", role: "admin", reason: REASON }, null);
    await restarted.requests.approve(carol, bobs.id, null);
    void restarted.grants.activate(bob, bobs.id, []).catch(() => {});
    await late.entered;
    const bobsGrant = (await restarted.grants.list(admin, { mine: false })).find((g) => g.user === "bob");
    clock.set(bobsGrant?.endsAt ?? 0);
    const third = secondProcess(restarted.target, createFakeEnforcer());
    third.target.behaviour.beforeIssue = null;
    expect(await third.scheduler.finishUnfinished()).toBe(0);
    expect(third.target.count("issue")).toBe(2);
    await third.scheduler.runDue();
    expect(await findGrant(one.db, bobsGrant?.id ?? "")).toMatchObject({
      state: "expired",
      revocationStatus: "verified",
    });
    expect(await statesOf(one.db, bobsGrant?.id ?? "")).toEqual({ log: "closed", [PATH]: "closed" });
    // The intent's planned name is what was revoked: nothing the connector may have created survives.
    expect(third.target.calls).toContainEqual({ operation: "revoke", externalId: `fb_${bobsGrant?.id}` });
  });

  it("shows a secret once to the grant's owner and wipes it in the same transaction; refusals are audited", async () => {
    const grant = await activeGrant(one);
    const [secret] = one.target.secrets;

    const first = await one.grants.deliverCredential(alice, grant.id);
    expect(first.credentials).toEqual([
      {
        resource: "vault-db",
        connector: "log",
        state: "issued",
        detail: { login: `fb_${grant.id}`, host: "10.40.0.5", externalId: `fb_${grant.id}` },
        secret,
      },
    ]);
    expect((await listEffects(one.db, grant.id)).map((e) => e.secretEnc)).toEqual([null, null]);

    expect(await codeOf(one.grants.deliverCredential(alice, grant.id))).toBe("ALREADY_DELIVERED");
    expect(await codeOf(one.grants.deliverCredential(erin, grant.id))).toBe("FORBIDDEN");
    expect(await codeOf(one.grants.deliverCredential(frank, grant.id))).toBe("NOT_FOUND");
    expect((await events(one.db, "credential.delivered")).map((e) => e.actor)).toEqual(["alice"]);
    expect(
      (await events(one.db, "credential.delivery_refused")).map((e) => [e.actor, e.context.reason]),
    ).toEqual([
      ["alice", "ALREADY_DELIVERED"],
      ["erin", "FORBIDDEN"],
      ["frank", "NOT_FOUND"],
    ]);
    expect(JSON.stringify(await events(one.db))).not.toContain(secret);

    await one.grants.revoke(alice, grant.id, "done with it");
    expect(await codeOf(one.grants.deliverCredential(alice, grant.id))).toBe("INVALID_STATE");
  });

  it("shows a secret to only one of two fetches racing for it", async () => {
    const two = secondProcess();
    const grant = await activeGrant(one);
    const [secret] = one.target.secrets;
    // On PostgreSQL both fetches must have read the rows before either wipes them: hold the rows
    // until both wait on them. SQLite runs one transaction at a time, so the race is the order.
    const hold = dialect === "postgres" ? await holdRows((database as TestDatabase).url, grant.id) : null;
    const racing = Promise.allSettled([
      one.grants.deliverCredential(alice, grant.id),
      two.grants.deliverCredential(alice, grant.id),
    ]);
    await hold?.releaseWhenWaiting(2);
    const results = await racing;

    const shown = results.flatMap((r) => (r.status === "fulfilled" ? r.value.credentials : []));
    expect(shown.map((c) => c.secret)).toEqual([secret]);
    const refused = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
    expect(refused.map((e) => (e instanceof FirebreakError ? e.code : e))).toEqual(["ALREADY_DELIVERED"]);
    expect(await events(one.db, "credential.delivered")).toHaveLength(1);
    expect((await events(one.db, "credential.delivery_refused")).map((e) => e.context.reason)).toEqual([
      "ALREADY_DELIVERED",
    ]);
  });

  it("shows a credential that holds no secret to its owner again", async () => {
    one.target.behaviour.withSecret = false;
    const grant = await activeGrant(one);
    const first = await one.grants.deliverCredential(alice, grant.id);
    const again = await one.grants.deliverCredential(alice, grant.id);
    expect(again.credentials).toEqual(first.credentials);
    expect(first.credentials[0]?.secret).toBeNull();
    expect(await events(one.db, "credential.delivered")).toHaveLength(2);
  });

  it("refuses an auto-approved activation whose condition lapsed, audits it and leaves the request approved", async () => {
    await one.signals.declare("admin", {
      zone: "cache",
      severity: 1,
      title: "cache storm",
      status: "open",
      id: "i1",
    });
    const request = await one.requests.create(alice, { zone: "cache", role: "flush", reason: REASON }, null);
    expect(request).toMatchObject({ state: "approved", autoApproved: true });
    await one.signals.declare("admin", {
      zone: "cache",
      severity: 1,
      title: "cache storm",
      status: "resolved",
      id: "i1",
    });

    expect(await codeOf(one.grants.activate(alice, request.id, []))).toBe("AUTO_APPROVAL_LAPSED");
    expect((await findRequest(one.db, request.id))?.state).toBe("approved");
    const [denied] = await events(one.db, "decision.denied");
    expect(denied?.context).toMatchObject({ stage: "activation", request: request.id });
    expect(await one.grants.list(admin, {})).toEqual([]);
    expect(one.target.calls).toEqual([]);
  });

  it("moves the review's due date with an early end and reviews only ended grants, never by an approver", async () => {
    const request = await one.requests.create(alice, { zone: "vault", role: "admin", reason: REASON }, null);
    await one.requests.approve(dave, request.id, null);
    const grant = await one.grants.activate(alice, request.id, []);
    expect(grant.reviewDueAt).toBe(T0 + 30 * MINUTE + 72 * 60 * MINUTE);
    expect(await codeOf(one.grants.review(erin, grant.id, "accepted", "looks fine"))).toBe("INVALID_STATE");

    clock.advance(10 * MINUTE);
    const revoked = await one.grants.revoke(alice, grant.id, "done early");
    expect(revoked.reviewDueAt).toBe(T0 + 10 * MINUTE + 72 * 60 * MINUTE);
    expect((await findGrant(one.db, grant.id))?.reviewDueAt).toBe(revoked.reviewDueAt);

    expect(await codeOf(one.grants.review(alice, grant.id, "accepted", "mine"))).toBe("REVIEW_NOT_ALLOWED");
    expect(await codeOf(one.grants.review(dave, grant.id, "accepted", "I approved it"))).toBe(
      "REVIEW_NOT_ALLOWED",
    );
    const reviewed = await one.grants.review(erin, grant.id, "flagged", "used for more than the ticket");
    expect(reviewed).toMatchObject({ reviewState: "flagged", reviewer: "erin" });
    expect(await codeOf(one.grants.review(erin, grant.id, "accepted", "again"))).toBe("INVALID_STATE");
    const [completed] = await events(one.db, "review.completed");
    expect(completed?.context).toMatchObject({ verdict: "flagged", overdue: false });
  });
});

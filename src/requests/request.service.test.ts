import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../../test/support/databases.js";
import { codeOf, compiledRuntime, events, person } from "../../test/support/service-fixtures.js";
import { createTransactionRunner } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { createManualClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";
import { createSignalService } from "../signals/signal.service.js";
import { findRequest, listApprovals } from "./request.repo.js";
import { createRequestService } from "./request.service.js";

const T0 = Date.parse("2026-12-01T02:00:00.000Z");
const MINUTE = 60_000;
const REASON = "primary is down, failing over to the replica";

const CONFIG = `version: 1
auditors: [group:security]
directory:
  users:
    alice: { groups: [sre] }
    carol: { groups: [leads] }
    lena: { groups: [leads] }
    erin: { groups: [security] }
    frank: { groups: [dev] }
    sam: { groups: [sre, leads] }
zones:
  vault: {}
  app: {}
  cache: {}
resources:
  vault-db:
    zone: vault
    type: log
    roles:
      admin: { grants: [vault_owner] }
  app-hosts:
    zone: app
    type: log
    roles:
      operator: { principals: [ops] }
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
    pendingExpiry: 15m
  - name: app-operator
    zone: app
    roles: [operator]
    eligible: [group:sre]
    duration: { default: 1h, max: 4h }
    approvals:
      - { from: group:leads, count: 1 }
      - { from: group:security, count: 1 }
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
const carol = person("carol", ["leads"]);
const lena = person("lena", ["leads"]);
const erin = person("erin", ["security"], { isAuditor: true });
const frank = person("frank", ["dev"]);
const sam = person("sam", ["sre", "leads"]);
const admin = person("admin", [], { isAdmin: true });

const runtime = compiledRuntime(CONFIG);

describe.each(DIALECTS)("requests on %s", (dialect) => {
  let database: TestDatabase | undefined;
  let db: Db;
  let clock: ReturnType<typeof createManualClock>;
  let signals: ReturnType<typeof createSignalService>;
  let requests: ReturnType<typeof createRequestService>;
  const decisions: string[] = [];

  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    db = database.handle.db;
    clock = createManualClock(T0);
    const inTransaction = createTransactionRunner({ db, clock, bus: createEventBus() });
    signals = createSignalService({
      db,
      clock,
      inTransaction,
      config: () => runtime.config,
      sources: () => ({ alertmanager: null, pagerduty: null, generic: null }),
    });
    decisions.length = 0;
    requests = createRequestService({
      db,
      clock,
      inTransaction,
      current: () => runtime,
      signals,
      sourceZoneOf: () => null,
      onDecision: (outcome) => decisions.push(outcome),
    });
  });
  afterEach(async () => {
    await database?.drop();
  });

  const vault = { zone: "vault", role: "admin", reason: REASON };

  it("keeps a request pending until an approver approves it, with each step audited", async () => {
    const request = await requests.create(alice, vault, null);
    expect(request).toMatchObject({
      state: "pending",
      policy: "vault-emergency",
      durationMs: 30 * MINUTE,
      approvalSteps: [{ from: ["group:leads"], count: 1 }],
      lapsesAt: T0 + 15 * MINUTE,
      autoApproved: false,
    });
    expect(decisions).toEqual(["needs-approval"]);

    clock.advance(MINUTE);
    const { request: approved, progress } = await requests.approve(carol, request.id, "go ahead");
    expect(approved.state).toBe("approved");
    expect(progress.satisfied).toBe(true);
    expect((await findRequest(db, request.id))?.state).toBe("approved");
    expect((await listApprovals(db, request.id)).map((a) => [a.approver, a.decision])).toEqual([
      ["carol", "approve"],
    ]);
    const audited = await events(db);
    expect(audited.map((e) => [e.type, e.actor])).toEqual([
      ["request.created", "alice"],
      ["request.approved", "carol"],
    ]);
    expect(audited[1]?.context).toMatchObject({ approvers: ["carol"], comment: "go ahead" });

    expect(await codeOf(requests.approve(lena, request.id, null))).toBe("INVALID_STATE");
    expect(await events(db)).toHaveLength(2);
  });

  it("never lets a requester approve or deny their own request, even from an approving group", async () => {
    const request = await requests.create(sam, vault, null);
    expect(await codeOf(requests.approve(sam, request.id, null))).toBe("SELF_APPROVAL");
    expect(await codeOf(requests.deny(sam, request.id, "never mind"))).toBe("SELF_APPROVAL");
    expect((await findRequest(db, request.id))?.state).toBe("pending");
    expect(await listApprovals(db, request.id)).toEqual([]);
    expect((await events(db)).map((e) => e.type)).toEqual(["request.created"]);
  });

  it("tells someone who may not see a request that it does not exist, and refuses a non-approver", async () => {
    const request = await requests.create(alice, vault, null);
    expect(await codeOf(requests.approve(frank, request.id, null))).toBe("NOT_FOUND");
    expect(await codeOf(requests.load(frank, request.id))).toBe("NOT_FOUND");
    // An administrator sees everything but approves only where a step names them.
    expect(await codeOf(requests.approve(admin, request.id, null))).toBe("NOT_AN_APPROVER");
    expect((await findRequest(db, request.id))?.state).toBe("pending");
  });

  it("needs every step filled by a different person, and counts one approver once", async () => {
    const request = await requests.create(alice, { zone: "app", role: "operator", reason: REASON }, null);
    const first = await requests.approve(carol, request.id, null);
    expect(first.request.state).toBe("pending");
    expect(await codeOf(requests.approve(carol, request.id, null))).toBe("ALREADY_DECIDED");
    const second = await requests.approve(erin, request.id, null);
    expect(second.request.state).toBe("approved");
    expect((await events(db)).map((e) => [e.type, e.actor])).toEqual([
      ["request.created", "alice"],
      ["approval.recorded", "carol"],
      ["request.approved", "erin"],
    ]);
    const [recorded] = await events(db, "approval.recorded");
    expect(recorded?.context.remaining).toEqual([
      expect.objectContaining({ from: ["group:security"], remaining: 1 }),
    ]);
  });

  it("lapses a request at its pending expiry: approving it then is refused, and the lapse is on record", async () => {
    const request = await requests.create(alice, vault, null);
    clock.set(T0 + 15 * MINUTE - 1);
    const late = await requests.create(alice, { zone: "app", role: "operator", reason: REASON }, null);
    clock.set(T0 + 15 * MINUTE);

    expect(await codeOf(requests.approve(carol, request.id, null))).toBe("INVALID_STATE");
    expect(await findRequest(db, request.id)).toMatchObject({
      state: "lapsed",
      lapsesAt: null,
      closedReason: "pending expiry reached",
    });
    expect(await listApprovals(db, request.id)).toEqual([]);
    const [lapsed] = await events(db, "request.lapsed");
    expect(lapsed).toMatchObject({ subject: request.id, actor: "system:firebreak" });
    // The other request's expiry has not come yet.
    expect((await requests.approve(carol, late.id, null)).request.state).toBe("pending");
  });

  it("audits a policy denial with its reasons and creates nothing", async () => {
    expect(await codeOf(requests.create(frank, vault, null))).toBe("POLICY_DENIED");
    expect(await requests.list(admin, {})).toEqual([]);
    const [denied] = await events(db, "decision.denied");
    expect(denied).toMatchObject({ actor: "frank", zone: "vault" });
    expect(denied?.context.reasons).toEqual(
      expect.arrayContaining([expect.objectContaining({ code: expect.any(String) })]),
    );
    expect(decisions).toEqual(["deny"]);
  });

  it("approves at once what the incident's signals auto-approve, and says on what basis", async () => {
    const cache = { zone: "cache", role: "flush", reason: REASON };
    expect((await requests.create(alice, cache, null)).state).toBe("pending");
    await signals.declare("admin", {
      zone: "cache",
      severity: 1,
      title: "cache storm",
      status: "open",
      id: "i1",
    });
    const request = await requests.create(sam, cache, null);
    expect(request).toMatchObject({ state: "approved", autoApproved: true });
    const approvedEvents = await events(db, "request.approved");
    expect(approvedEvents.map((e) => [e.actor, e.subject])).toEqual([["system:policy", request.id]]);
    expect(approvedEvents[0]?.context).toMatchObject({
      approvers: [],
      autoApproved: true,
      basis: "autoApprove condition held on these signals",
    });
  });

  it("makes a denial final and lets only the requester or an administrator cancel", async () => {
    const denied = await requests.create(alice, vault, null);
    expect((await requests.deny(carol, denied.id, "not during the freeze")).state).toBe("denied");
    expect(await codeOf(requests.approve(lena, denied.id, null))).toBe("INVALID_STATE");
    expect(await codeOf(requests.cancel(alice, denied.id))).toBe("INVALID_STATE");

    const other = await requests.create(alice, { zone: "app", role: "operator", reason: REASON }, null);
    expect(await codeOf(requests.cancel(carol, other.id))).toBe("FORBIDDEN");
    expect((await requests.cancel(alice, other.id)).state).toBe("cancelled");
    expect((await events(db)).map((e) => e.type)).toEqual([
      "request.created",
      "request.denied",
      "request.created",
      "request.cancelled",
    ]);
  });
});

import { describe, expect, it } from "vitest";
import {
  expectError,
  expectNoInternals,
  expectStatus,
  REASON,
  type Reply,
  randomId,
} from "../support/app.js";
import { freshAppPerTest } from "../support/app-per-test.js";
import { DIALECTS } from "../support/databases.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe.each(DIALECTS)("guards over HTTP on %s", (dialect) => {
  const t = freshAppPerTest(dialect);

  async function declareIncident(zone: string, severity: number) {
    expectStatus(await t.call("POST", "/v1/incidents", { body: { id: `INC-${zone}`, zone, severity } }), 201);
  }

  /** A pending request of alice for admin on vault (one approval from leads). */
  async function pendingVaultRequest(as = "alice"): Promise<string> {
    await declareIncident("vault", 2);
    const created = await t.call("POST", "/v1/requests", {
      as,
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-7" },
    });
    expectStatus(created, 201);
    expect(created.body.state).toBe("pending");
    return created.body.id;
  }

  /** A request that needs two approvals: one from leads, one from security. */
  async function twoStepRequest(): Promise<string> {
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "app", role: "operator", reason: "restart the stuck workers" },
    });
    expectStatus(created, 201);
    expect(created.body.state).toBe("pending");
    return created.body.id;
  }

  /** An approved request needing no approvals (sandbox debug). */
  async function approvedSandboxRequest(as = "alice"): Promise<string> {
    const created = await t.call("POST", "/v1/requests", {
      as,
      body: { zone: "sandbox", role: "debug", reason: "reproduce bug 1234" },
    });
    expectStatus(created, 201);
    expect(created.body.state).toBe("approved");
    return created.body.id;
  }

  async function activeSandboxGrant(as = "alice") {
    const id = await approvedSandboxRequest(as);
    const activated = await t.call("POST", `/v1/requests/${id}/activate`, { as });
    expectStatus(activated, 201);
    return activated.body as { id: string; endsAt: string; requestId: string };
  }

  /** Everything a refused action must leave as it was. */
  async function snapshot(requestId: string) {
    const view = await t.call("GET", `/v1/requests/${requestId}`);
    expectStatus(view, 200);
    return {
      request: view.body,
      requests: await t.count("requests"),
      approvals: await t.count("approvals"),
      grants: await t.count("grants"),
    };
  }

  function refused(reply: Reply, status: number, code: string) {
    expectError(reply, status, code);
    expectNoInternals(reply);
  }

  it("refuses self-approval with SELF_APPROVAL, even to a requester who could approve", async () => {
    const id = await pendingVaultRequest();
    const before = await snapshot(id);
    refused(await t.call("POST", `/v1/requests/${id}/approve`, { as: "alice" }), 403, "SELF_APPROVAL");
    refused(
      await t.call("POST", `/v1/requests/${id}/deny`, { as: "alice", body: { reason: "never mind" } }),
      403,
      "SELF_APPROVAL",
    );
    expect(await snapshot(id)).toEqual(before);

    // sam is eligible (sre) and an approver (leads): his own request still needs someone else.
    const own = await t.call("POST", "/v1/requests", {
      as: "sam",
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-8" },
    });
    expectStatus(own, 201);
    expect(own.body.state).toBe("pending");
    const ownBefore = await snapshot(own.body.id);
    refused(await t.call("POST", `/v1/requests/${own.body.id}/approve`, { as: "sam" }), 403, "SELF_APPROVAL");
    expect(await snapshot(own.body.id)).toEqual(ownBefore);
    // And sam's approval of someone else's request is fine.
    expectStatus(await t.call("POST", `/v1/requests/${id}/approve`, { as: "sam" }), 200);
  });

  it("refuses an approver outside the policy with NOT_AN_APPROVER, and hides the request from strangers", async () => {
    const id = await pendingVaultRequest();
    const before = await snapshot(id);
    // erin (security, an auditor) can see the request but is not among its approvers; neither is admin.
    refused(await t.call("POST", `/v1/requests/${id}/approve`, { as: "erin" }), 403, "NOT_AN_APPROVER");
    refused(await t.call("POST", `/v1/requests/${id}/approve`, { as: "admin" }), 403, "NOT_AN_APPROVER");
    refused(
      await t.call("POST", `/v1/requests/${id}/deny`, { as: "erin", body: { reason: "no" } }),
      403,
      "NOT_AN_APPROVER",
    );
    // frank can neither see nor approve it: to him it does not exist.
    refused(await t.call("POST", `/v1/requests/${id}/approve`, { as: "frank" }), 404, "NOT_FOUND");
    expect(await snapshot(id)).toEqual(before);
  });

  it("refuses a second approval by the same person with ALREADY_DECIDED", async () => {
    const id = await twoStepRequest();
    expectStatus(await t.call("POST", `/v1/requests/${id}/approve`, { as: "carol" }), 200);
    const before = await snapshot(id);
    expect(before.request.state).toBe("pending");
    refused(await t.call("POST", `/v1/requests/${id}/approve`, { as: "carol" }), 409, "ALREADY_DECIDED");
    expect(await snapshot(id)).toEqual(before);
  });

  it("needs two different people for two approval steps; one person in both groups counts once", async () => {
    const id = await twoStepRequest();
    const first = await t.call("GET", `/v1/requests/${id}`);
    expect(first.body.next).toBe(
      "waiting for 1 approval from group:leads and 1 approval from group:security",
    );

    // dave is in leads and in security: his approval fills one step, never both.
    const byDave = await t.call("POST", `/v1/requests/${id}/approve`, { as: "dave" });
    expectStatus(byDave, 200);
    expect(byDave.body.state).toBe("pending");
    const remaining = byDave.body.requires.approvals.filter((s: { remaining: number }) => s.remaining > 0);
    expect(remaining).toHaveLength(1);
    expect(byDave.body.next).toMatch(/^waiting for 1 approval from group:(leads|security)$/);
    refused(await t.call("POST", `/v1/requests/${id}/approve`, { as: "dave" }), 409, "ALREADY_DECIDED");

    // Two leads are still not a lead and a security engineer.
    const other = await twoStepRequest2();
    expectStatus(await t.call("POST", `/v1/requests/${other}/approve`, { as: "carol" }), 200);
    const twoLeads = await t.call("POST", `/v1/requests/${other}/approve`, { as: "lena" });
    expectStatus(twoLeads, 200);
    expect(twoLeads.body.state).toBe("pending");
    expect(twoLeads.body.next).toBe("waiting for 1 approval from group:security");

    // erin can only fill the security step, so dave is counted for leads: approved.
    const byErin = await t.call("POST", `/v1/requests/${id}/approve`, { as: "erin" });
    expectStatus(byErin, 200);
    expect(byErin.body.state).toBe("approved");
    expect(byErin.body.requires.approvals).toEqual([
      { from: ["group:leads"], count: 1, have: ["dave"], remaining: 0 },
      { from: ["group:security"], count: 1, have: ["erin"], remaining: 0 },
    ]);
  });

  /** A second two-step request, from bob, so it does not collide with alice's. */
  async function twoStepRequest2(): Promise<string> {
    const created = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "app", role: "operator", reason: "restart the stuck workers" },
    });
    expectStatus(created, 201);
    return created.body.id;
  }

  it("makes a denial final: approving, denying again or activating afterwards is INVALID_STATE", async () => {
    const id = await pendingVaultRequest();
    const denied = await t.call("POST", `/v1/requests/${id}/deny`, {
      as: "carol",
      body: { reason: "use the runbook instead" },
    });
    expectStatus(denied, 200);
    expect(denied.body).toMatchObject({ state: "denied", closedReason: "use the runbook instead" });
    const before = await snapshot(id);
    refused(await t.call("POST", `/v1/requests/${id}/approve`, { as: "carol" }), 409, "INVALID_STATE");
    refused(await t.call("POST", `/v1/requests/${id}/approve`, { as: "lena" }), 409, "INVALID_STATE");
    refused(
      await t.call("POST", `/v1/requests/${id}/deny`, { as: "lena", body: { reason: "again" } }),
      409,
      "INVALID_STATE",
    );
    refused(await t.call("POST", `/v1/requests/${id}/activate`, { as: "alice" }), 409, "INVALID_STATE");
    refused(await t.call("POST", `/v1/requests/${id}/cancel`, { as: "alice" }), 409, "INVALID_STATE");
    expect(await snapshot(id)).toEqual(before);
  });

  it("refuses activation of a cancelled request with INVALID_STATE", async () => {
    const id = await approvedSandboxRequest();
    const cancelled = await t.call("POST", `/v1/requests/${id}/cancel`, { as: "alice" });
    expectStatus(cancelled, 200);
    expect(cancelled.body.state).toBe("cancelled");
    const before = await snapshot(id);
    refused(await t.call("POST", `/v1/requests/${id}/activate`, { as: "alice" }), 409, "INVALID_STATE");
    refused(await t.call("POST", `/v1/requests/${id}/cancel`, { as: "alice" }), 409, "INVALID_STATE");
    expect(await snapshot(id)).toEqual(before);
    expect(before.grants).toBe(0);
  });

  it("lets only the requester activate or cancel (FORBIDDEN to those who see it, NOT_FOUND to others)", async () => {
    const id = await pendingVaultRequest();
    expectStatus(await t.call("POST", `/v1/requests/${id}/approve`, { as: "carol" }), 200);
    const before = await snapshot(id);
    refused(await t.call("POST", `/v1/requests/${id}/activate`, { as: "carol" }), 403, "FORBIDDEN");
    refused(await t.call("POST", `/v1/requests/${id}/activate`, { as: "admin" }), 403, "FORBIDDEN");
    refused(await t.call("POST", `/v1/requests/${id}/activate`, { as: "bob" }), 404, "NOT_FOUND");
    refused(await t.call("POST", `/v1/requests/${id}/cancel`, { as: "carol" }), 403, "FORBIDDEN");
    refused(await t.call("POST", `/v1/requests/${id}/cancel`, { as: "bob" }), 404, "NOT_FOUND");
    expect(await snapshot(id)).toEqual(before);
    expect(before.request.state).toBe("approved");
  });

  it("lapses a pending request at its pending expiry; approving or activating it then is INVALID_STATE", async () => {
    const id = await pendingVaultRequest();
    const lapsesAt = Date.parse((await t.call("GET", `/v1/requests/${id}`)).body.lapsesAt);
    expect(lapsesAt).toBe(t.clock.now() + 15 * MINUTE);

    t.clock.set(lapsesAt - 1);
    await t.runScheduler();
    expect((await t.call("GET", `/v1/requests/${id}`)).body.state).toBe("pending");

    t.clock.set(lapsesAt);
    await t.runScheduler();
    const lapsed = await snapshot(id);
    expect(lapsed.request).toMatchObject({ state: "lapsed", lapsesAt: null });
    refused(await t.call("POST", `/v1/requests/${id}/approve`, { as: "carol" }), 409, "INVALID_STATE");
    refused(await t.call("POST", `/v1/requests/${id}/activate`, { as: "alice" }), 409, "INVALID_STATE");
    expect(await snapshot(id)).toEqual(lapsed);
    const transitions = ["request.created", "request.approved", "request.denied", "request.lapsed"];
    const types = (await t.auditEvents())
      .filter((e) => e.subject === id && transitions.includes(e.type))
      .map((e) => e.type);
    expect(types).toEqual(["request.created", "request.lapsed"]);
  });

  it("refuses activating an approved request after its pending expiry, even before the scheduler ran", async () => {
    const id = await approvedSandboxRequest();
    const lapsesAt = Date.parse((await t.call("GET", `/v1/requests/${id}`)).body.lapsesAt);
    t.clock.set(lapsesAt);
    refused(await t.call("POST", `/v1/requests/${id}/activate`, { as: "alice" }), 409, "INVALID_STATE");
    expect(await t.count("grants")).toBe(0);
    // The refusal is explained by the state the request is shown in.
    expect((await t.call("GET", `/v1/requests/${id}`)).body.state).toBe("lapsed");
  });

  it("refuses a duration over the maximum with POLICY_DENIED, listing every unmet condition at once", async () => {
    const requestsBefore = await t.count("requests");
    // Only the duration is wrong.
    await declareIncident("vault", 2);
    const tooLong = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-7", duration: "2h" },
    });
    refused(tooLong, 403, "POLICY_DENIED");
    expect(tooLong.body.error.details.reasons).toEqual([
      expect.objectContaining({ code: "DURATION_EXCEEDED", policy: "vault-emergency", expected: HOUR }),
    ]);

    // Everything is wrong: not eligible, outside the bastion, too long, too short a reason, a ticket
    // of the wrong shape, and, with the incident resolved, the CEL condition false.
    const resolved = await t.call("POST", "/v1/incidents", {
      body: { id: "INC-vault", zone: "vault", severity: 2, status: "resolved" },
    });
    expectStatus(resolved, 201);
    const everything = await t.call("POST", "/v1/requests", {
      as: "frank",
      remoteAddress: "10.99.0.7",
      body: { zone: "vault", role: "admin", reason: "because", ticket: "JIRA-12", duration: "2h" },
    });
    refused(everything, 403, "POLICY_DENIED");
    const codes = everything.body.error.details.reasons.map((r: { code: string }) => r.code).sort();
    expect(codes).toEqual(
      [
        "CONDITION_FALSE",
        "DURATION_EXCEEDED",
        "JUSTIFICATION_TOO_SHORT",
        "NOT_ELIGIBLE",
        "SOURCE_ZONE_NOT_ALLOWED",
        "TICKET_MISMATCH",
      ].sort(),
    );
    const sourceReason = everything.body.error.details.reasons.find(
      (r: { code: string }) => r.code === "SOURCE_ZONE_NOT_ALLOWED",
    );
    expect(sourceReason).toMatchObject({ expected: ["bastion"], actual: "office" });

    expect(await t.count("requests")).toBe(requestsBefore);
    // A refusal is a decision too: it is audited with its reasons.
    const denials = (await t.auditEvents()).filter((e) => e.type === "decision.denied");
    expect(denials.map((e) => e.actor)).toEqual(["alice", "frank"]);
    const recorded = (denials[1]?.context.reasons ?? []) as { code: string }[];
    expect(recorded.map((r) => r.code).sort()).toEqual(codes);
  });

  it("refuses a second active grant for the same user, zone and role with DUPLICATE_GRANT", async () => {
    // Two approved requests, made before either is active.
    const first = await approvedSandboxRequest();
    const second = await approvedSandboxRequest();
    expectStatus(await t.call("POST", `/v1/requests/${first}/activate`, { as: "alice" }), 201);
    const before = await snapshot(second);
    refused(await t.call("POST", `/v1/requests/${second}/activate`, { as: "alice" }), 409, "DUPLICATE_GRANT");
    expect(await snapshot(second)).toEqual(before);
    expect(before.request.state).toBe("approved");

    // Asking again while the grant is active is refused at once.
    const third = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "sandbox", role: "debug", reason: "reproduce bug 1234" },
    });
    refused(third, 409, "DUPLICATE_GRANT");
    expect(await t.count("requests")).toBe(before.requests);

    // Someone else may hold the same role at the same time.
    await activeSandboxGrant("bob");
    expect(await t.count("grants")).toBe(2);
  });

  it("blocks the next request while a blocking review is overdue (REVIEW_OVERDUE), and unblocks once reviewed", async () => {
    const grant = await activeSandboxGrant();
    const endsAt = Date.parse(grant.endsAt);
    t.clock.set(endsAt);
    await t.runScheduler();
    const expired = await t.call("GET", `/v1/grants/${grant.id}`);
    const dueAt = Date.parse(expired.body.review.dueAt);
    expect(dueAt).toBe(endsAt + HOUR);

    // Just before the review falls due, asking again is fine.
    t.clock.set(dueAt - 1);
    const early = await approvedSandboxRequest();
    expectStatus(await t.call("POST", `/v1/requests/${early}/cancel`, { as: "alice" }), 200);

    t.clock.set(dueAt);
    const requestsBefore = await t.count("requests");
    const blocked = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "sandbox", role: "debug", reason: "reproduce bug 1234" },
    });
    refused(blocked, 403, "POLICY_DENIED");
    expect(blocked.body.error.details.reasons.map((r: { code: string }) => r.code)).toContain(
      "REVIEW_OVERDUE",
    );
    // It blocks break-glass requests in other zones too.
    const elsewhere = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "cache", role: "flush", reason: "cache poisoned, flushing" },
    });
    refused(elsewhere, 403, "POLICY_DENIED");
    expect(elsewhere.body.error.details.reasons.map((r: { code: string }) => r.code)).toContain(
      "REVIEW_OVERDUE",
    );
    expect(await t.count("requests")).toBe(requestsBefore);
    // Someone else is not blocked by alice's overdue review.
    await approvedSandboxRequest("bob");

    expectStatus(
      await t.call("POST", `/v1/grants/${grant.id}/review`, {
        as: "erin",
        body: { verdict: "flag", notes: "late, and no ticket" },
      }),
      200,
    );
    await approvedSandboxRequest();
  });

  it("refuses a review by the requester or by one of the approvers with REVIEW_NOT_ALLOWED", async () => {
    // dave approves (as a lead) and is also in security, the policy's reviewer group.
    const id = await pendingVaultRequest();
    expectStatus(await t.call("POST", `/v1/requests/${id}/approve`, { as: "dave" }), 200);
    const grant = (await t.call("POST", `/v1/requests/${id}/activate`, { as: "alice" })).body;
    const review = { verdict: "accept", notes: "looks fine to me" };
    refused(
      await t.call("POST", `/v1/grants/${grant.id}/review`, { as: "alice", body: review }),
      403,
      "REVIEW_NOT_ALLOWED",
    );
    refused(
      await t.call("POST", `/v1/grants/${grant.id}/review`, { as: "dave", body: review }),
      403,
      "REVIEW_NOT_ALLOWED",
    );
    // carol is neither reviewer nor owner: the grant does not exist for her.
    refused(
      await t.call("POST", `/v1/grants/${grant.id}/review`, { as: "carol", body: review }),
      404,
      "NOT_FOUND",
    );
    expect((await t.call("GET", `/v1/grants/${grant.id}`)).body.review).toMatchObject({
      state: "due",
      reviewer: null,
    });
    // A use is reviewed once it is over: while the grant is open even the right reviewer waits.
    refused(
      await t.call("POST", `/v1/grants/${grant.id}/review`, { as: "erin", body: review }),
      409,
      "INVALID_STATE",
    );
    // The active grant's revocation is scheduled for its end, not "not-needed".
    expect(grant.revocation.status).toBe("scheduled");
    t.clock.advance(60_000);
    const revoked = await t.call("POST", `/v1/grants/${grant.id}/revoke`, {
      as: "alice",
      body: { reason: "done" },
    });
    expectStatus(revoked, 200);
    // Revoked early, the use is due for review the policy's time after it really ended.
    expect(Date.parse(revoked.body.review.dueAt) - Date.parse(revoked.body.closedAt)).toBe(
      Date.parse(grant.review.dueAt) - Date.parse(grant.endsAt),
    );
    expect(Date.parse(revoked.body.review.dueAt)).toBeLessThan(Date.parse(grant.review.dueAt));
    expectStatus(await t.call("POST", `/v1/grants/${grant.id}/review`, { as: "erin", body: review }), 200);
    refused(
      await t.call("POST", `/v1/grants/${grant.id}/review`, { as: "erin", body: review }),
      409,
      "INVALID_STATE",
    );
  });

  it("refuses activation without a fresh factor when the policy names factors (FACTOR_REQUIRED)", async () => {
    // alice has no factor enrolled: nothing to present, and a code cannot be checked against anything.
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "vault", role: "read", reason: "inspect the ledger" },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({ state: "approved", requires: { factors: ["totp"] } });
    const before = await snapshot(created.body.id);
    refused(
      await t.call("POST", `/v1/requests/${created.body.id}/activate`, { as: "alice" }),
      403,
      "FACTOR_REQUIRED",
    );
    refused(
      await t.call("POST", `/v1/requests/${created.body.id}/activate`, {
        as: "alice",
        body: { totp: "123456" },
      }),
      409,
      "FACTOR_NOT_ENROLLED",
    );
    expect(await snapshot(created.body.id)).toEqual(before);
  });

  it("lets only the owner or an administrator revoke, and only an active grant", async () => {
    const grant = await activeSandboxGrant();
    const reason = { reason: "suspicious" };
    // erin (auditor) sees the grant but may not end it; bob does not see it at all.
    refused(
      await t.call("POST", `/v1/grants/${grant.id}/revoke`, { as: "erin", body: reason }),
      403,
      "FORBIDDEN",
    );
    refused(
      await t.call("POST", `/v1/grants/${grant.id}/revoke`, { as: "bob", body: reason }),
      404,
      "NOT_FOUND",
    );
    expect((await t.call("GET", `/v1/grants/${grant.id}`)).body.state).toBe("active");
    expectStatus(await t.call("POST", `/v1/grants/${grant.id}/revoke`, { as: "admin", body: reason }), 200);
    refused(
      await t.call("POST", `/v1/grants/${grant.id}/revoke`, { as: "admin", body: reason }),
      409,
      "INVALID_STATE",
    );
  });

  it("answers 401 UNAUTHENTICATED without a token or with a bad one", async () => {
    const wellFormedUnknown = `fbk_0123456789abcdef.${"A".repeat(43)}`;
    const tampered = `${t.adminToken.slice(0, -1)}${t.adminToken.endsWith("A") ? "B" : "A"}`;
    const headerSets: Record<string, string>[] = [
      {},
      { authorization: "Bearer" },
      { authorization: "Bearer " },
      { authorization: "Bearer not-a-token" },
      { authorization: `Bearer ${wellFormedUnknown}` },
      { authorization: `Bearer ${tampered}` },
      { authorization: `Basic ${Buffer.from("admin:admin").toString("base64")}` },
      { authorization: `bearer${t.adminToken}` },
    ];
    for (const headers of headerSets) {
      for (const [method, url] of [
        ["GET", "/v1/requests"],
        ["GET", "/v1/whoami"],
        ["POST", "/v1/config/reload"],
        ["GET", "/v1/audit"],
      ] as const) {
        const reply = await t.call(method, url, { as: null, headers });
        refused(reply, 401, "UNAUTHENTICATED");
      }
    }
    const created = await t.call("POST", "/v1/requests", {
      as: null,
      body: { zone: "sandbox", role: "debug", reason: "reproduce bug 1234" },
    });
    refused(created, 401, "UNAUTHENTICATED");
    expect(await t.count("requests")).toBe(0);
  });

  it("never tells a stranger whether someone else's request or grant exists", async () => {
    const grant = await activeSandboxGrant();
    const requestId = grant.requestId;
    const pending = await pendingVaultRequest("bob");
    const strip = (reply: Reply) => ({
      status: reply.status,
      code: reply.body?.error?.code,
      message: reply.body?.error?.message,
    });
    const cases: [string, "GET" | "POST", (id: string) => string, unknown][] = [
      ["req", "GET", (id) => `/v1/requests/${id}`, undefined],
      ["req", "POST", (id) => `/v1/requests/${id}/approve`, undefined],
      ["req", "POST", (id) => `/v1/requests/${id}/deny`, { reason: "no" }],
      ["req", "POST", (id) => `/v1/requests/${id}/cancel`, undefined],
      ["req", "POST", (id) => `/v1/requests/${id}/activate`, undefined],
      ["grt", "GET", (id) => `/v1/grants/${id}`, undefined],
      ["grt", "POST", (id) => `/v1/grants/${id}/revoke`, { reason: "no" }],
      ["grt", "POST", (id) => `/v1/grants/${id}/review`, { verdict: "accept", notes: "ok" }],
    ];
    for (const stranger of ["frank", "bob"]) {
      for (const [kind, method, url, body] of cases) {
        const realId = kind === "req" ? requestId : grant.id;
        const real = await t.call(method, url(realId), { as: stranger, body });
        const invented = await t.call(method, url(randomId(kind as "req" | "grt")), { as: stranger, body });
        refused(real, 404, "NOT_FOUND");
        expect(strip(real), `${stranger} ${method} ${url(":id")}`).toEqual(strip(invented));
      }
    }
    // frank is not an approver of bob's pending vault request either.
    const real = await t.call("GET", `/v1/requests/${pending}`, { as: "frank" });
    const invented = await t.call("GET", `/v1/requests/${randomId("req")}`, { as: "frank" });
    expect(strip(real)).toEqual(strip(invented));

    // Lists leave them out as well.
    const frankRequests = await t.call("GET", "/v1/requests", { as: "frank" });
    expect(frankRequests.body.requests).toEqual([]);
    const frankGrants = await t.call("GET", "/v1/grants", { as: "frank" });
    expect(frankGrants.body.grants).toEqual([]);
    const bobRequests = await t.call("GET", "/v1/requests", { as: "bob" });
    expect(bobRequests.body.requests.map((r: { id: string }) => r.id)).toEqual([pending]);
    // Nothing changed on the way.
    expect((await t.call("GET", `/v1/grants/${grant.id}`)).body.state).toBe("active");
  });

  it("refuses administrative endpoints to non-administrators with FORBIDDEN", async () => {
    // Minting a directory user's first token stores the user; do it before counting.
    await t.token("alice");
    await t.token("erin");
    const users = await t.count("users");
    refused(
      await t.call("POST", "/v1/users", { as: "alice", body: { name: "mallory", groups: ["leads"] } }),
      403,
      "FORBIDDEN",
    );
    refused(await t.call("POST", "/v1/users/carol/tokens", { as: "alice" }), 403, "FORBIDDEN");
    refused(await t.call("POST", "/v1/config/reload", { as: "alice" }), 403, "FORBIDDEN");
    refused(await t.call("GET", "/v1/audit", { as: "alice" }), 403, "FORBIDDEN");
    refused(await t.call("GET", "/v1/audit/verify", { as: "alice" }), 403, "FORBIDDEN");
    refused(
      await t.call("POST", "/v1/incidents", {
        as: "alice",
        body: { id: "INC-1", zone: "vault", severity: 1 },
      }),
      403,
      "FORBIDDEN",
    );
    refused(
      await t.call("GET", "/v1/access?user=bob&zone=vault&role=admin", { as: "alice" }),
      403,
      "FORBIDDEN",
    );
    // An auditor reads the audit log but administers nothing.
    expectStatus(await t.call("GET", "/v1/audit", { as: "erin" }), 200);
    refused(
      await t.call("POST", "/v1/users", { as: "erin", body: { name: "mallory", groups: [] } }),
      403,
      "FORBIDDEN",
    );
    refused(await t.call("POST", "/v1/config/reload", { as: "erin" }), 403, "FORBIDDEN");
    expect(await t.count("users")).toBe(users);
    // No incident was declared by the refused call: vault requests still fail the incident condition.
    const zones = await t.call("GET", "/v1/zones", { as: "alice" });
    const vault = zones.body.zones.find((z: { name: string }) => z.name === "vault");
    expect(vault.openIncidents).toEqual([]);
  });
});

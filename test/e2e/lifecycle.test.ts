import { describe, expect, it } from "vitest";
import { expectStatus, REASON, startTestApp } from "../support/app.js";
import { freshAppPerTest } from "../support/app-per-test.js";
import { DIALECTS } from "../support/databases.js";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe.each(DIALECTS)("lifecycle over HTTP on %s", (dialect) => {
  const t = freshAppPerTest(dialect);

  async function declareIncident(id: string, zone: string, severity: number, status = "open") {
    const reply = await t.call("POST", "/v1/incidents", {
      body: { id, zone, severity, title: "primary database down", status },
    });
    expectStatus(reply, 201);
  }

  async function access(user: string, zone: string, role: string): Promise<boolean> {
    const reply = await t.call("GET", `/v1/access?user=${user}&zone=${zone}&role=${role}`);
    expectStatus(reply, 200);
    return reply.body.allowed;
  }

  const getRequest = (id: string) => t.call("GET", `/v1/requests/${id}`);
  const getGrant = (id: string) => t.call("GET", `/v1/grants/${id}`);

  it("walks incident → request → approval → activation → expiry at the exact moment → review, all audited", async () => {
    await declareIncident("INC-4711", "vault", 2);

    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-4711" },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      state: "pending",
      requester: "alice",
      zone: "vault",
      role: "admin",
      policy: "vault-emergency",
      durationSeconds: 30 * 60,
      ticket: "INC-4711",
      sourceZone: "bastion",
      clientAddress: "127.0.0.1",
      autoApproved: false,
      grantId: null,
      requires: { approvals: [{ from: ["group:leads"], count: 1, have: [], remaining: 1 }], factors: [] },
      next: "waiting for 1 approval from group:leads",
    });
    const requestId: string = created.body.id;
    expect(requestId).toMatch(/^req_/);

    const approved = await t.call("POST", `/v1/requests/${requestId}/approve`, {
      as: "carol",
      body: { comment: "go ahead" },
    });
    expectStatus(approved, 200);
    expect(approved.body.state).toBe("approved");
    expect(approved.body.approvals).toMatchObject([
      { approver: "carol", decision: "approve", comment: "go ahead" },
    ]);
    expect(approved.body.requires.approvals[0]).toMatchObject({ have: ["carol"], remaining: 0 });

    const activatedAt = t.clock.now();
    const activated = await t.call("POST", `/v1/requests/${requestId}/activate`, { as: "alice" });
    expectStatus(activated, 201);
    const grant = activated.body;
    const endsAt = activatedAt + 30 * MINUTE;
    expect(grant).toMatchObject({
      requestId,
      user: "alice",
      zone: "vault",
      role: "admin",
      state: "active",
      secondsLeft: 30 * 60,
      startsAt: new Date(activatedAt).toISOString(),
      endsAt: new Date(endsAt).toISOString(),
      review: { state: "due", overdue: false },
    });
    expect(grant.effects).toContainEqual({
      resource: "vault-pg",
      connector: "log",
      state: "issued",
      address: null,
    });
    expect(grant.effects.every((e: { state: string }) => e.state === "issued")).toBe(true);
    expect((await getRequest(requestId)).body).toMatchObject({ state: "active", grantId: grant.id });
    expect(await access("alice", "vault", "admin")).toBe(true);
    expect(await access("bob", "vault", "admin")).toBe(false);

    // One millisecond before the end: a pass leaves the grant alone and access still holds.
    t.clock.set(endsAt - 1);
    await t.runScheduler();
    const lastMoment = await getGrant(grant.id);
    expect(lastMoment.body).toMatchObject({ state: "active", secondsLeft: 1 });
    expect(await access("alice", "vault", "admin")).toBe(true);

    // At the end exactly: the pass expires it, takes the credential away and proves it is gone.
    t.clock.advance(1);
    expect(await t.runScheduler()).toBeGreaterThanOrEqual(1);
    expect(await access("alice", "vault", "admin")).toBe(false);
    const expired = await getGrant(grant.id);
    expect(expired.body).toMatchObject({
      state: "expired",
      secondsLeft: 0,
      closedAt: new Date(endsAt).toISOString(),
      closedBy: "system:scheduler",
      revocation: { status: "verified", nextAttemptAt: null },
      review: { state: "due", dueAt: new Date(endsAt + 72 * HOUR).toISOString(), overdue: false },
    });
    expect(expired.body.effects).toContainEqual({
      resource: "vault-pg",
      connector: "log",
      state: "closed",
      address: null,
    });
    expect(expired.body.effects.every((e: { state: string }) => e.state === "closed")).toBe(true);
    expect((await getRequest(requestId)).body.state).toBe("expired");

    const dueForErin = await t.call("GET", "/v1/reviews?due=true", { as: "erin" });
    expectStatus(dueForErin, 200);
    expect(dueForErin.body.reviews.map((r: { id: string }) => r.id)).toEqual([grant.id]);

    const reviewed = await t.call("POST", `/v1/grants/${grant.id}/review`, {
      as: "erin",
      body: { verdict: "accept", notes: "failover only, as described in INC-4711" },
    });
    expectStatus(reviewed, 200);
    expect(reviewed.body.review).toMatchObject({ state: "accepted", reviewer: "erin", overdue: false });
    const noneDue = await t.call("GET", "/v1/reviews?due=true", { as: "erin" });
    expect(noneDue.body.reviews).toEqual([]);

    // The audit trail of this request and its grant: every step once, in order, with its context.
    // (Other event kinds, such as a network path opening, may be interleaved.)
    const steps = [
      "request.created",
      "request.approved",
      "grant.activated",
      "credential.issued",
      "grant.expired",
      "credential.revoked",
      "revocation.verified",
      "review.completed",
    ];
    const events = await t.auditEvents();
    const trail = events.filter(
      (e) => (e.subject === requestId || e.subject === grant.id) && steps.includes(e.type),
    );
    expect(trail.map((e) => e.type)).toEqual(steps);
    expect(trail.every((e) => e.zone === "vault")).toBe(true);
    const byType = Object.fromEntries(trail.map((e) => [e.type, e]));
    const requestFacts = {
      purpose: REASON,
      ticket: "INC-4711",
      sourceZone: "bastion",
      clientAddress: "127.0.0.1",
    };
    expect(byType["request.created"]).toMatchObject({ actor: "alice", context: requestFacts });
    expect(byType["request.approved"]).toMatchObject({
      actor: "carol",
      context: { ...requestFacts, approvers: ["carol"], comment: "go ahead" },
    });
    expect(byType["grant.activated"]).toMatchObject({
      actor: "alice",
      context: { ...requestFacts, approvers: ["carol"], grant: grant.id, endsAt: grant.endsAt },
    });
    expect(byType["credential.issued"]).toMatchObject({ resource: "vault-pg", context: { user: "alice" } });
    expect(byType["grant.expired"]).toMatchObject({ actor: "system:scheduler", context: requestFacts });
    expect(byType["credential.revoked"]).toMatchObject({ resource: "vault-pg" });
    expect(byType["review.completed"]).toMatchObject({ actor: "erin", context: { verdict: "accepted" } });
    // The incident the request relied on is part of what the request recorded.
    expect(byType["request.created"]?.context.signals).toMatchObject({
      incident: { open: true, severity: 2, id: "manual:INC-4711" },
    });

    const verified = await t.call("GET", "/v1/audit/verify", { as: "erin" });
    expectStatus(verified, 200);
    expect(verified.body).toMatchObject({ ok: true, count: events.length, firstBadSeq: null });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, index) => index + 1));
  });

  it("auto-approves while a severity-1 incident is open and asks for approval again once it is resolved", async () => {
    await declareIncident("INC-1", "cache", 1);
    const during = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "cache", role: "flush", reason: "cache poisoned, flushing" },
    });
    expectStatus(during, 201);
    expect(during.body).toMatchObject({ state: "approved", autoApproved: true, policy: "cache-flush" });
    expect(during.body.next).toMatch(/^ready/);
    const activated = await t.call("POST", `/v1/requests/${during.body.id}/activate`, { as: "alice" });
    expectStatus(activated, 201);
    // An auto-approved use is still reviewed like any break-glass use.
    expect(activated.body.review.state).toBe("due");

    const [approvedEvent] = (await t.auditEvents()).filter(
      (e) => e.type === "request.approved" && e.subject === during.body.id,
    );
    expect(approvedEvent).toMatchObject({
      actor: "system:policy",
      context: { approvers: [], autoApproved: true },
    });

    await declareIncident("INC-1", "cache", 1, "resolved");
    const after = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "cache", role: "flush", reason: "cache poisoned again" },
    });
    expectStatus(after, 201);
    expect(after.body).toMatchObject({
      state: "pending",
      autoApproved: false,
      next: "waiting for 1 approval from group:leads",
    });

    // A lesser incident does not approve anything by itself either.
    await declareIncident("INC-2", "cache", 2);
    const lesser = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "cache", role: "flush", reason: "cache poisoned, third time" },
    });
    expectStatus(lesser, 201);
    expect(lesser.body).toMatchObject({ state: "pending", autoApproved: false });
  });

  it("approves a request at creation when its policy needs no approval", async () => {
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "sandbox", role: "debug", reason: "reproduce bug 1234", duration: "10m" },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      state: "approved",
      autoApproved: false,
      policy: "sandbox-debug",
      durationSeconds: 600,
      requires: { approvals: [], factors: [] },
    });
    const events = (await t.auditEvents()).filter((e) => e.subject === created.body.id);
    expect(events.map((e) => [e.type, e.actor])).toEqual([
      ["request.created", "alice"],
      ["request.approved", "system:policy"],
    ]);
    const activated = await t.call("POST", `/v1/requests/${created.body.id}/activate`, { as: "alice" });
    expectStatus(activated, 201);
    expect(activated.body).toMatchObject({ state: "active", secondsLeft: 600, effects: [] });
    expect(await access("alice", "sandbox", "debug")).toBe(true);
  });

  it("revokes an active grant at once, verifies the revocation, and still asks for a review", async () => {
    await declareIncident("INC-9", "vault", 1);
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-9", duration: "1h" },
    });
    expect(created.body.state).toBe("approved");
    const grant = (await t.call("POST", `/v1/requests/${created.body.id}/activate`, { as: "alice" })).body;
    t.clock.advance(5 * MINUTE);
    const revoked = await t.call("POST", `/v1/grants/${grant.id}/revoke`, {
      as: "alice",
      body: { reason: "done early" },
    });
    expectStatus(revoked, 200);
    expect(revoked.body).toMatchObject({
      state: "revoked",
      closedBy: "alice",
      closeReason: "done early",
      revocation: { status: "verified" },
      review: { state: "due" },
    });
    expect(revoked.body.effects).toContainEqual({
      resource: "vault-pg",
      connector: "log",
      state: "closed",
      address: null,
    });
    expect(revoked.body.effects.every((e: { state: string }) => e.state === "closed")).toBe(true);
    expect(await access("alice", "vault", "admin")).toBe(false);
    expect((await getRequest(created.body.id)).body.state).toBe("revoked");
    // The expiry that would have come later finds nothing to do.
    t.clock.advance(2 * HOUR);
    await t.runScheduler();
    expect((await getGrant(grant.id)).body.state).toBe("revoked");
    const steps = [
      "grant.activated",
      "credential.issued",
      "grant.revoked",
      "credential.revoked",
      "revocation.verified",
    ];
    const types = (await t.auditEvents())
      .filter((e) => e.subject === grant.id && [...steps, "grant.expired"].includes(e.type))
      .map((e) => e.type);
    expect(types).toEqual(steps);
  });

  it("finishes what fell due while the server was down, before serving again", async () => {
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "sandbox", role: "debug", reason: "reproduce bug 1234" },
    });
    const grant = (await t.call("POST", `/v1/requests/${created.body.id}/activate`, { as: "alice" })).body;
    expect(grant.secondsLeft).toBe(15 * 60);
    const long = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "sandbox", role: "debug", reason: "reproduce bug 1234", duration: "1h" },
    });
    const lasting = (await t.call("POST", `/v1/requests/${long.body.id}/activate`, { as: "bob" })).body;
    await declareIncident("INC-3", "vault", 2);
    const pending = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-3" },
    });
    expect(pending.body).toMatchObject({
      state: "pending",
      lapsesAt: new Date(t.clock.now() + 15 * MINUTE).toISOString(),
    });

    t.clock.advance(20 * MINUTE);
    const restarted = await t.restart();
    // Not a first start: no second administrator token.
    expect(restarted.admin).toBeNull();
    // No scheduler pass was asked for: the start itself expired the grant and lapsed the request.
    // The sandbox zone has no resources, so the grant issued nothing and there is nothing to revoke.
    expect((await getGrant(grant.id)).body).toMatchObject({
      state: "expired",
      revocation: { status: "not-needed" },
    });
    expect((await getRequest(pending.body.id)).body.state).toBe("lapsed");
    expect(await access("alice", "sandbox", "debug")).toBe(false);
    // What had not fallen due is still in force after the restart.
    expect((await getGrant(lasting.id)).body).toMatchObject({ state: "active", secondsLeft: 40 * 60 });
    expect(await access("bob", "sandbox", "debug")).toBe(true);
    const verified = await t.call("GET", "/v1/audit/verify");
    expect(verified.body.ok).toBe(true);
  });

  it("serves /healthz, /readyz and an OpenAPI 3.1 document of the API", async () => {
    const health = await t.call("GET", "/healthz", { as: null });
    expectStatus(health, 200);
    expect(health.body).toEqual({ status: "ok" });
    const ready = await t.call("GET", "/readyz", { as: null });
    expectStatus(ready, 200);
    expect(ready.body).toEqual({ status: "ready", database: "ok" });

    const openApi = await t.call("GET", "/openapi.json", { as: null });
    expectStatus(openApi, 200);
    const document = openApi.body;
    expect(document.openapi).toBe("3.1.0");
    expect(document.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    for (const path of [
      "/v1/requests",
      "/v1/requests/{id}",
      "/v1/requests/{id}/approve",
      "/v1/requests/{id}/deny",
      "/v1/requests/{id}/cancel",
      "/v1/requests/{id}/activate",
      "/v1/grants",
      "/v1/grants/{id}/revoke",
      "/v1/grants/{id}/review",
      "/v1/decisions",
      "/v1/zones",
      "/v1/audit",
      "/v1/audit/verify",
      "/healthz",
      "/readyz",
    ]) {
      expect(Object.keys(document.paths), path).toContain(path);
    }
    const create = document.paths["/v1/requests"].post;
    expect(create.responses["201"].content["application/json"].schema).toBeTypeOf("object");
    expect(create.requestBody.content["application/json"].schema.properties).toHaveProperty("zone");
    expect(create.security).toEqual([{ bearer: [] }]);
    const approve = document.paths["/v1/requests/{id}/approve"].post;
    expect(approve.parameters).toContainEqual(
      expect.objectContaining({ name: "id", in: "path", required: true }),
    );
    expect(document.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    // Every operation documents its error shape.
    type Operation = { responses: Record<string, unknown> };
    const paths = document.paths as Record<string, Record<string, Operation>>;
    for (const [path, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(operation.responses, `${method} ${path}`).toHaveProperty("default");
      }
    }
  });

  it("answers /readyz with 503 until the start has finished its due work", async () => {
    const unstarted = await startTestApp(dialect, { start: false });
    try {
      const starting = await unstarted.app.http.inject({ method: "GET", url: "/readyz" });
      expect(starting.statusCode).toBe(503);
      expect(starting.json()).toEqual({ status: "starting", database: "ok" });
      const live = await unstarted.app.http.inject({ method: "GET", url: "/healthz" });
      expect(live.statusCode).toBe(200);
      await unstarted.app.start(null);
      const ready = await unstarted.app.http.inject({ method: "GET", url: "/readyz" });
      expect(ready.statusCode).toBe(200);
    } finally {
      await unstarted.close();
    }
  });
});

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, expectStatus, REASON, startTestApp, type TestApp } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";
import { type FollowedStream, followEvents, type StreamedEvent } from "../support/events.js";

/** Bounds on how long a stream may take to end after its credential does. */
const CLOSE_WITHIN_MS = 3_000;

/**
 * `/v1/events` over a real socket. Administrators and auditors follow every committed event; anyone
 * else exactly the events about requests and grants that the REST API shows them (404 for the
 * rest), and an open stream ends as soon as the credential that opened it stops authenticating.
 * The periodic re-check is set far beyond the bounds here, so every close below comes from the
 * revocation itself.
 */
describe.each(DIALECTS)("live events on %s", (dialect) => {
  let t: TestApp;
  let base: string;

  beforeAll(async () => {
    t = await startTestApp(dialect, { eventStreamRecheckMs: 600_000 });
    await t.app.http.listen({ host: "127.0.0.1", port: 0 });
    const address = t.app.http.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
  afterAll(async () => {
    const unknownFailures = t?.serverErrors.filter((line) => line.startsWith("request failed")) ?? [];
    await t?.close();
    expect(unknownFailures, "the server answered 500 INTERNAL").toEqual([]);
  });

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const follow = async (user: string) => followEvents(base, bearer(await t.token(user)));

  /** A new token for `user`: its `token.issued` event names them, so it marks a point in their stream. */
  async function mintToken(user: string): Promise<string> {
    const minted = await t.call("POST", `/v1/users/${encodeURIComponent(user)}/tokens`);
    expectStatus(minted, 201);
    return minted.body.token;
  }

  /** Waits until `stream` has decided on every event committed before this call. */
  async function settled(user: string, stream: FollowedStream) {
    const head = (await t.auditEvents()).at(-1)?.seq ?? 0;
    await mintToken(user);
    await stream.waitFor((e) => e.type === "token.issued" && e.context.user === user && e.seq > head);
  }

  it("streams each user exactly the request and grant events REST shows them", async () => {
    const followers = ["admin", "alice", "bob", "carol", "lena", "dave", "erin", "frank", "sam"];
    const streams = new Map<string, FollowedStream>();
    for (const user of followers) streams.set(user, await follow(user));
    const from = (await t.auditEvents()).at(-1)?.seq ?? 0;

    expectStatus(
      await t.call("POST", "/v1/incidents", {
        body: { id: "INC-9", zone: "vault", severity: 2, title: "down" },
      }),
      201,
    );
    // alice: vault admin (approved by a lead), activated; reviewed by security.
    const vaultAdmin = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-9" },
    });
    expectStatus(vaultAdmin, 201);
    expectStatus(
      await t.call("POST", `/v1/requests/${vaultAdmin.body.id}/approve`, { as: "carol", body: {} }),
      200,
    );
    const vaultGrant = await t.call("POST", `/v1/requests/${vaultAdmin.body.id}/activate`, { as: "alice" });
    expectStatus(vaultGrant, 201);
    // alice: vault read under a policy that needs no approval. Leads approve in the vault zone,
    // but not this request: REST hides it from them, and so must the stream.
    const vaultRead = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "vault", role: "read", reason: REASON },
    });
    expectStatus(vaultRead, 201);
    // bob: app operator, two steps (leads, then security); dave sits in both.
    const appOperator = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "app", role: "operator", reason: REASON },
    });
    expectStatus(appOperator, 201);
    expectStatus(
      await t.call("POST", `/v1/requests/${appOperator.body.id}/approve`, { as: "dave", body: {} }),
      200,
    );
    // bob: sandbox, no approval, activated; frank and alice then try to take its credential.
    const sandbox = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "sandbox", role: "debug", reason: REASON },
    });
    expectStatus(sandbox, 201);
    const sandboxGrant = await t.call("POST", `/v1/requests/${sandbox.body.id}/activate`, { as: "bob" });
    expectStatus(sandboxGrant, 201);
    for (const thief of ["frank", "alice"]) {
      expectError(
        await t.call("POST", `/v1/grants/${sandboxGrant.body.id}/credential`, { as: thief, body: {} }),
        404,
        "NOT_FOUND",
      );
    }
    // sam (sre and leads) asks for a cache flush, which leads approve.
    expectStatus(
      await t.call("POST", "/v1/requests", {
        as: "sam",
        body: { zone: "cache", role: "flush", reason: REASON },
      }),
      201,
    );

    const all = (await t.auditEvents()).filter((e) => e.seq > from);
    const last = all.at(-1)?.seq ?? 0;
    try {
      for (const [user, stream] of streams) await settled(user, stream);
    } finally {
      for (const stream of streams.values()) stream.stop();
    }

    /** What REST says `user` may see of the object an event is about (null: about no request or grant). */
    const restAnswers = new Map<string, number>();
    async function restVisible(user: string, event: StreamedEvent): Promise<boolean | null> {
      const grant =
        (event.context.grant as string | undefined) ??
        (event.subject?.startsWith("grt_") ? event.subject : null);
      const request =
        (event.context.request as string | undefined) ??
        (event.subject?.startsWith("req_") ? event.subject : null);
      const url = grant ? `/v1/grants/${grant}` : request ? `/v1/requests/${request}` : null;
      if (url === null) return null;
      const key = `${user} ${url}`;
      if (!restAnswers.has(key)) restAnswers.set(key, (await t.call("GET", url, { as: user })).status);
      const status = restAnswers.get(key);
      expect([200, 404]).toContain(status);
      return status === 200;
    }

    const label = (e: StreamedEvent) => `${e.seq} ${e.type} ${e.subject}`;
    const seenBy = (user: string) =>
      (streams.get(user) as FollowedStream).events.filter((e) => e.seq > from && e.seq <= last).map(label);
    for (const user of followers) {
      const whoami = (await t.call("GET", "/v1/whoami", { as: user })).body;
      const privileged = whoami.isAdmin === true || whoami.isAuditor === true;
      const expected: string[] = [];
      for (const event of all) {
        const rest = await restVisible(user, event);
        // Events about no request or grant: the incident and the like, for administrators and auditors only here.
        if (rest === true || (rest === null && privileged)) expected.push(label(event));
      }
      expect({ user, seen: seenBy(user) }).toEqual({ user, seen: expected });
    }

    // The cases the rule exists for, spelled out.
    const typesSeen = (user: string, subject: string) =>
      (streams.get(user) as FollowedStream).events.filter((e) => e.subject === subject).map((e) => e.type);
    for (const lead of ["carol", "lena", "sam"]) expect(typesSeen(lead, vaultRead.body.id)).toEqual([]);
    expect(typesSeen("alice", vaultRead.body.id)).toEqual(["request.created", "request.approved"]);
    expect(typesSeen("carol", vaultAdmin.body.id)).toEqual(["request.created", "request.approved"]);
    // Approving a request does not show its grant; security (auditors and its reviewers) sees it.
    expect(typesSeen("carol", vaultGrant.body.id)).toEqual([]);
    expect(typesSeen("dave", vaultGrant.body.id)).toContain("grant.activated");
    // A refusal on someone else's grant is not streamed to the refused user: it would name the grant's zone and owner.
    const refusals = (user: string) =>
      (streams.get(user) as FollowedStream).events
        .filter((e) => e.type === "credential.delivery_refused")
        .map((e) => e.actor);
    expect(refusals("frank")).toEqual([]);
    expect(refusals("alice")).toEqual([]);
    expect(refusals("bob")).toEqual(["frank", "alice"]);
    expect(refusals("erin")).toEqual(["frank", "alice"]);
    expect(all.filter((e) => e.type === "credential.delivery_refused").map((e) => e.actor)).toEqual([
      "frank",
      "alice",
    ]);
    expect(seenBy("frank")).toEqual([]);
  });

  it("ends every stream of a user whose tokens are revoked, and no other", async () => {
    const created = await t.call("POST", "/v1/users", { body: { name: "rita", groups: ["sre"] } });
    expectStatus(created, 201);
    const first = await followEvents(base, bearer(created.body.token));
    const second = await followEvents(base, bearer(await mintToken("rita")));
    const bystander = await follow("alice");
    try {
      expectStatus(await t.call("POST", "/v1/users/rita/tokens/revoke"), 200);
      await first.waitForEnd(CLOSE_WITHIN_MS);
      await second.waitForEnd(CLOSE_WITHIN_MS);
      expect(first.comments).toContain("closed: the credential that opened this stream is no longer valid");
      // Nothing committed after the revocation reached the revoked streams.
      const revocation = (await t.auditEvents()).findLast((e) => e.type === "token.revoked");
      expect(first.events.filter((e) => e.seq >= (revocation?.seq ?? 0))).toEqual([]);
      // Someone else's stream carries on.
      await settled("alice", bystander);
      // And the revoked token cannot open a new one.
      const again = await fetch(`${base}/v1/events`, { headers: bearer(created.body.token) });
      expect(again.status).toBe(401);
      await again.body?.cancel();
    } finally {
      for (const stream of [first, second, bystander]) stream.stop();
    }
  });

  it("ends the stream whose token logged out; the same user's other token keeps streaming", async () => {
    const created = await t.call("POST", "/v1/users", { body: { name: "ron", groups: ["sre"] } });
    expectStatus(created, 201);
    const other = await mintToken("ron");
    const leaving = await followEvents(base, bearer(created.body.token));
    const staying = await followEvents(base, bearer(other));
    try {
      expectStatus(
        await t.call("POST", "/v1/auth/logout", { as: { token: created.body.token }, body: {} }),
        200,
      );
      await leaving.waitForEnd(CLOSE_WITHIN_MS);
      await settled("ron", staying);
      expect(staying.comments.some((c) => c.startsWith("closed"))).toBe(false);
    } finally {
      leaving.stop();
      staying.stop();
    }
  });

  it("ends open streams when the server shuts down, instead of holding the shutdown", async () => {
    const stream = await follow("alice");
    try {
      // restart() stops the app (HTTP server included) and starts a new one on the same database.
      await t.restart();
      await stream.waitForEnd(CLOSE_WITHIN_MS);
      expect(stream.comments).toContain("closed: the server is shutting down; reconnect to resume");
    } finally {
      stream.stop();
    }
    await t.app.http.listen({ host: "127.0.0.1", port: 0 });
    const address = t.app.http.server.address();
    base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
});

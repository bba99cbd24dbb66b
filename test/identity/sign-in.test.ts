import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expectError, expectStatus } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";
import { CookieJar, drive, request } from "./browser.js";
import { type IdentityWorld, startIdentityWorld } from "./support.js";

const HOUR = 3_600_000;

/** The API's error shape, read from a page the browser got. */
// biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field in tests
function expectPageError(page: { status: number; json: any }, status: number, code: string) {
  expect({ status: page.status, code: page.json?.error?.code }).toEqual({ status, code });
}

describe.each(DIALECTS)("browser sign-in through a real OIDC provider on %s", (dialect) => {
  let w: IdentityWorld;

  beforeEach(async () => {
    w = await startIdentityWorld(dialect);
    w.provider.accounts.set("sub-olivia", {
      preferred_username: "olivia",
      groups: ["sre", "Payments Leads", "Not A Valid Name!"],
    });
    w.provider.accounts.set("sub-paula", { preferred_username: "paula", groups: ["Payments Leads"] });
  });

  afterEach(async () => {
    const unknownFailures = w.t.serverErrors.filter((line) => line.startsWith("request failed"));
    await w.close();
    expect(unknownFailures, "the server answered 500 INTERNAL").toEqual([]);
  });

  async function tokenCount(user: string): Promise<number> {
    const row = await w.t.app.db
      .selectFrom("api_tokens")
      .select((eb) => eb.fn.countAll<number>().as("count"))
      .where("user_name", "=", user)
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  it("advertises the sign-in to the console", async () => {
    const config = await w.api(new CookieJar(), "GET", "/v1/auth/config");
    expect(config.status).toBe(200);
    expect(config.json).toEqual({
      oidc: {
        enabled: true,
        issuer: w.provider.issuer,
        loginUrl: "/v1/auth/oidc/login",
        deviceStartUrl: "/v1/auth/oidc/device/start",
      },
      session: { lifetimeSeconds: 12 * 3600, csrfCookie: "firebreak_csrf", csrfHeader: "x-firebreak-csrf" },
    });
    // The console's sign-in page asks here for the button to offer.
    const methods = await w.api(new CookieJar(), "GET", "/v1/auth/methods");
    expect(methods.json).toEqual({
      oidc: { url: "/v1/auth/oidc/login", label: `Sign in with ${new URL(w.provider.issuer).host}` },
    });
  });

  it("redirects to the provider with PKCE, state and nonce bound to an httpOnly cookie", async () => {
    const jar = new CookieJar();
    const start = await request(jar, w.url("/v1/auth/oidc/login?returnTo=%2Frequests"));
    expect(start.status).toBe(302);
    const location = new URL(start.headers.get("location") ?? "");
    expect(location.origin).toBe(w.provider.issuer);
    const params = location.searchParams;
    expect(params.get("response_type")).toBe("code");
    expect(params.get("client_id")).toBe("firebreak");
    expect(params.get("redirect_uri")).toBe(`${w.base.origin}/v1/auth/oidc/callback`);
    expect(params.get("code_challenge_method")).toBe("S256");
    expect(params.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(params.get("state")).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(params.get("nonce")).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(params.get("scope")).toBe("openid profile groups");
    const setCookie = start.headers.getSetCookie().join("\n");
    expect(setCookie).toMatch(
      /firebreak_oidc=[^;]+; Path=\/v1\/auth\/oidc\/callback; Max-Age=600; HttpOnly; SameSite=Lax/,
    );
    // Neither the verifier nor the state is readable in the cookie: it is sealed.
    expect(setCookie).not.toContain(params.get("state"));

    for (const returnTo of ["//evil.example/x", "https://evil.example/", "/\\evil.example"]) {
      const refused = await w.api(
        new CookieJar(),
        "GET",
        `/v1/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`,
      );
      expectPageError(refused, 400, "VALIDATION_FAILED");
    }
  });

  it("signs in with the code flow: the user appears with mapped groups, whoami shows them, a session cookie pair is set", async () => {
    const jar = new CookieJar();
    const callback = await w.signInUntilCallback(jar, "sub-olivia", "/requests?state=pending");
    const done = await request(jar, callback);
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe(`${w.base.origin}/requests?state=pending`);
    const cookies = done.headers.getSetCookie().join("\n");
    expect(cookies).toMatch(
      /firebreak_session=fbk_[0-9a-f]{16}\.[^;]+; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict/,
    );
    expect(cookies).toMatch(/firebreak_csrf=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=43200; SameSite=Strict/);
    expect(cookies).toMatch(/firebreak_oidc=; Path=\/v1\/auth\/oidc\/callback; Max-Age=0/);
    expect(jar.attributes(w.base, "firebreak_session")?.httpOnly).toBe(true);
    expect(jar.attributes(w.base, "firebreak_csrf")?.httpOnly).toBe(false);

    const me = await w.api(jar, "GET", "/v1/whoami");
    expect(me.status).toBe(200);
    // "Payments Leads" is mapped to leads; a group that is no valid name and not mapped is dropped.
    expect(me.json).toEqual({ name: "olivia", groups: ["leads", "sre"], isAdmin: false, isAuditor: false });

    const session = await w.api(jar, "GET", "/v1/auth/session");
    expect(session.json).toMatchObject({
      user: "olivia",
      via: "cookie",
      expiresAt: new Date(w.t.clock.now() + 12 * HOUR).toISOString(),
      csrfToken: jar.get(w.base, "firebreak_csrf"),
    });

    const stored = await w.t.app.db
      .selectFrom("users")
      .selectAll()
      .where("name", "=", "olivia")
      .executeTakeFirst();
    expect(stored).toMatchObject({ source: "oidc", is_admin: 0 });
    const identity = await w.t.app.db.selectFrom("user_identities").selectAll().executeTakeFirst();
    expect(identity).toMatchObject({ issuer: w.provider.issuer, subject: "sub-olivia", user_name: "olivia" });

    const events = await w.t.auditEvents();
    const created = events.filter((e) => e.type === "user.created" && e.context.user === "olivia");
    expect(created).toHaveLength(1);
    expect(created[0]?.context).toMatchObject({
      source: "oidc",
      issuer: w.provider.issuer,
      subject: "sub-olivia",
    });
    const signedIn = events.filter((e) => e.type === "user.signed_in");
    expect(signedIn).toHaveLength(1);
    expect(signedIn[0]).toMatchObject({
      actor: "olivia",
      context: {
        issuer: w.provider.issuer,
        subject: "sub-olivia",
        groups: ["leads", "sre"],
        ignoredGroups: ["Not A Valid Name!"],
        channel: "browser",
      },
    });
  });

  it("makes a request eligible by an OIDC group, refreshes groups at every sign-in, and binds the name to the subject", async () => {
    const jar = new CookieJar();
    await w.signIn(jar, "sub-olivia");
    const csrf = jar.get(w.base, "firebreak_csrf") ?? "";
    const body = { zone: "sandbox", role: "debug", reason: "reproduce the checkout bug" };

    const created = await w.api(jar, "POST", "/v1/requests", { json: body, csrf });
    expect({
      status: created.status,
      state: created.json?.state,
      requester: created.json?.requester,
    }).toEqual({
      status: 201,
      state: "approved",
      requester: "olivia",
    });

    // A lead from the provider (mapped group) approves an OIDC user's request that needs a lead.
    const vault = await w.api(jar, "POST", "/v1/requests", {
      json: { zone: "vault", role: "admin", reason: "rotate the vault master" },
      csrf,
    });
    expect(vault.json?.state).toBe("pending");
    const paula = new CookieJar();
    await w.signIn(paula, "sub-paula");
    const approved = await w.api(paula, "POST", `/v1/requests/${vault.json.id}/approve`, {
      json: {},
      csrf: paula.get(w.base, "firebreak_csrf") ?? "",
    });
    expect({ status: approved.status, state: approved.json?.state }).toEqual({
      status: 200,
      state: "approved",
    });

    // The provider drops olivia from sre and renames her; the next sign-in refreshes the groups,
    // and the name stays the one bound to her subject.
    w.provider.accounts.set("sub-olivia", { preferred_username: "alice", groups: ["dev"] });
    const again = new CookieJar();
    await w.signIn(again, "sub-olivia");
    const me = await w.api(again, "GET", "/v1/whoami");
    expect(me.json).toMatchObject({ name: "olivia", groups: ["dev"] });
    // The earlier session is the same user, so it sees the new groups too.
    expect((await w.api(jar, "GET", "/v1/whoami")).json.groups).toEqual(["dev"]);
    const refused = await w.api(again, "POST", "/v1/requests", {
      json: body,
      csrf: again.get(w.base, "firebreak_csrf") ?? "",
    });
    expect(refused.status).toBe(403);
  });

  it("accepts the session cookie on state-changing requests only with the CSRF header from its own origin", async () => {
    const jar = new CookieJar();
    await w.signIn(jar, "sub-olivia");
    const csrf = jar.get(w.base, "firebreak_csrf") ?? "";
    const body = { json: { zone: "sandbox", role: "debug", reason: "reproduce the checkout bug" } };

    // A cross-site form or fetch carries the cookie but cannot read the CSRF cookie.
    expectPageError(await w.api(jar, "POST", "/v1/requests", body), 403, "CSRF_REQUIRED");
    expectPageError(
      await w.api(jar, "POST", "/v1/requests", { ...body, csrf: "x".repeat(43) }),
      403,
      "CSRF_REQUIRED",
    );
    // Another session's CSRF token does not fit this session.
    const other = new CookieJar();
    await w.signIn(other, "sub-paula");
    expectPageError(
      await w.api(jar, "POST", "/v1/requests", { ...body, csrf: other.get(w.base, "firebreak_csrf") ?? "" }),
      403,
      "CSRF_REQUIRED",
    );
    expectPageError(
      await w.api(jar, "POST", "/v1/requests", {
        ...body,
        csrf,
        headers: { origin: "https://evil.example" },
      }),
      403,
      "CSRF_REQUIRED",
    );
    expect(await w.t.count("requests")).toBe(0);

    const accepted = await w.api(jar, "POST", "/v1/requests", {
      ...body,
      csrf,
      headers: { origin: w.base.origin },
    });
    expect(accepted.status).toBe(201);
    // Reads need no header; a bearer token needs none either (browsers never attach it by themselves).
    expect((await w.api(jar, "GET", "/v1/requests")).status).toBe(200);
  });

  it("refuses a tampered state, a missing or forged login cookie, a swapped nonce, and a code from another browser", async () => {
    // State changed on the way back.
    const jar = new CookieJar();
    const callback = await w.signInUntilCallback(jar, "sub-olivia");
    const tampered = new URL(callback);
    tampered.searchParams.set("state", `${callback.searchParams.get("state")}x`);
    const wrongState = await w.api(jar, "GET", tampered.pathname + tampered.search);
    expectPageError(wrongState, 400, "OIDC_STATE_INVALID");
    expect(wrongState.headers.getSetCookie().join("\n")).not.toContain("firebreak_session=fbk_");

    // The right URL in a browser that never started a sign-in (login CSRF), or with a forged cookie.
    const fresh = new CookieJar();
    const callback2 = await w.signInUntilCallback(fresh, "sub-olivia");
    expectPageError(
      await w.api(new CookieJar(), "GET", callback2.pathname + callback2.search),
      400,
      "OIDC_STATE_INVALID",
    );
    const forged = await request(new CookieJar(), callback2, {
      headers: {
        cookie: `firebreak_oidc=${fresh.get(w.base, "firebreak_oidc")?.replace(/.$/, (c) => (c === "A" ? "B" : "A"))}`,
      },
    });
    expect(forged.status).toBe(400);
    expect(JSON.parse(forged.body).error.code).toBe("OIDC_STATE_INVALID");

    // A login cookie that outlived its ten minutes.
    w.t.clock.advance(11 * 60_000);
    expectPageError(
      await w.api(fresh, "GET", callback2.pathname + callback2.search),
      400,
      "OIDC_STATE_INVALID",
    );

    // The nonce sent to the provider is not the one this browser's cookie holds: the ID token is refused.
    const swapped = new CookieJar();
    const start = await request(swapped, w.url("/v1/auth/oidc/login"));
    const authorize = new URL(start.headers.get("location") ?? "");
    authorize.searchParams.set("nonce", "an-attackers-nonce-0123456789");
    const result = await drive(swapped, authorize, {
      login: "sub-olivia",
      stopAt: (url) => url.pathname === "/v1/auth/oidc/callback",
    });
    if (!("stoppedAt" in result)) throw new Error("expected the provider to send the browser back");
    const wrongNonce = await w.api(swapped, "GET", result.stoppedAt.pathname + result.stoppedAt.search);
    expectPageError(wrongNonce, 401, "OIDC_SIGN_IN_FAILED");
    // Refused for its claims (the nonce), not for anything else about the exchange.
    expect(wrongNonce.json.error.details).toEqual({ check: "OAUTH_JWT_CLAIM_COMPARISON_FAILED" });

    // A code issued to browser A, presented by browser B with B's own state: B's PKCE verifier
    // does not fit A's code, so the provider refuses the exchange.
    const a = new CookieJar();
    const b = new CookieJar();
    const fromA = await w.signInUntilCallback(a, "sub-olivia");
    const fromB = await w.signInUntilCallback(b, "sub-paula");
    const injected = new URL(fromB);
    injected.searchParams.set("code", fromA.searchParams.get("code") ?? "");
    expectPageError(await w.api(b, "GET", injected.pathname + injected.search), 401, "OIDC_SIGN_IN_FAILED");

    expect(await tokenCount("olivia")).toBe(0);
    expect(await tokenCount("paula")).toBe(0);
    expect((await w.t.auditEvents()).filter((e) => e.type === "user.signed_in")).toEqual([]);
  });

  it("refuses a replayed authorization code, even with the original login cookie", async () => {
    const jar = new CookieJar();
    const callback = await w.signInUntilCallback(jar, "sub-olivia");
    const before = jar.clone();
    expect((await request(jar, callback)).status).toBe(303);
    expect(await tokenCount("olivia")).toBe(1);

    // The browser no longer holds the login cookie…
    expectPageError(await w.api(jar, "GET", callback.pathname + callback.search), 400, "OIDC_STATE_INVALID");
    // …and an attacker who kept it is refused by the provider: the code was used.
    expectPageError(
      await w.api(before, "GET", callback.pathname + callback.search),
      401,
      "OIDC_SIGN_IN_FAILED",
    );
    expect(await tokenCount("olivia")).toBe(1);
  });

  it("refuses sign-ins that would take another user's name, lack a username, or are outside the allowed groups", async () => {
    w.provider.accounts.set("sub-mallory", { preferred_username: "alice", groups: ["sre"] });
    w.provider.accounts.set("sub-nameless", { groups: ["sre"] });
    w.provider.accounts.set("sub-contractor", { preferred_username: "connor", groups: ["contractors"] });
    for (const login of ["sub-mallory", "sub-nameless", "sub-contractor"]) {
      const jar = new CookieJar();
      const callback = await w.signInUntilCallback(jar, login);
      const refused = await w.api(jar, "GET", callback.pathname + callback.search);
      expectPageError(refused, 403, "SIGN_IN_REFUSED");
      expect(refused.headers.getSetCookie().join("\n")).not.toContain("firebreak_session=fbk_");
    }
    // alice is still the directory's alice, with her groups only.
    const alice = await w.t.call("GET", "/v1/whoami", { as: "alice" });
    expect(alice.body).toMatchObject({ name: "alice", groups: ["sre"] });
    const refusals = (await w.t.auditEvents()).filter((e) => e.type === "user.sign_in_refused");
    expect(refusals.map((e) => e.context.subject)).toEqual(["sub-mallory", "sub-nameless", "sub-contractor"]);
    expect(await w.t.app.db.selectFrom("user_identities").selectAll().execute()).toEqual([]);
  });

  it("expires sessions, and revokes them at logout or by an administrator", async () => {
    const jar = new CookieJar();
    await w.signIn(jar, "sub-olivia");
    expect((await w.api(jar, "GET", "/v1/whoami")).status).toBe(200);
    w.t.clock.advance(12 * HOUR + 1);
    expectPageError(await w.api(jar, "GET", "/v1/whoami"), 401, "UNAUTHENTICATED");

    // Logout revokes the session on the server and clears the cookies.
    const second = new CookieJar();
    await w.signIn(second, "sub-olivia");
    const stolen = second.clone();
    expectPageError(await w.api(second, "POST", "/v1/auth/logout", { json: {} }), 403, "CSRF_REQUIRED");
    const out = await w.api(second, "POST", "/v1/auth/logout", {
      json: {},
      csrf: second.get(w.base, "firebreak_csrf") ?? "",
    });
    expect({ status: out.status, body: out.json }).toEqual({
      status: 200,
      body: { user: "olivia", revoked: true },
    });
    expect(out.headers.getSetCookie().join("\n")).toMatch(/firebreak_session=; Path=\/; Max-Age=0/);
    expectPageError(await w.api(stolen, "GET", "/v1/whoami"), 401, "UNAUTHENTICATED");

    // An administrator revokes every session and token of a user at once.
    const third = new CookieJar();
    await w.signIn(third, "sub-olivia");
    const apiToken = await w.t.token("olivia");
    expectStatus(await w.t.call("GET", "/v1/whoami", { as: { token: apiToken } }), 200);
    expectError(await w.t.call("POST", "/v1/users/olivia/tokens/revoke", { as: "alice" }), 403, "FORBIDDEN");
    expectError(await w.t.call("POST", "/v1/users/nobody/tokens/revoke"), 404, "NOT_FOUND");
    const revoked = await w.t.call("POST", "/v1/users/olivia/tokens/revoke");
    expect({ status: revoked.status, body: revoked.body }).toEqual({
      status: 200,
      body: { user: "olivia", revoked: 2 },
    });
    expectPageError(await w.api(third, "GET", "/v1/whoami"), 401, "UNAUTHENTICATED");
    expectError(await w.t.call("GET", "/v1/whoami", { as: { token: apiToken } }), 401, "UNAUTHENTICATED");

    // Directory users' API tokens are revocable the same way, and logout works with a bearer token.
    const aliceToken = await w.t.token("alice");
    expectStatus(await w.t.call("POST", "/v1/auth/logout", { as: { token: aliceToken } }), 200);
    expectError(await w.t.call("GET", "/v1/whoami", { as: { token: aliceToken } }), 401, "UNAUTHENTICATED");

    const events = await w.t.auditEvents();
    expect(events.filter((e) => e.type === "user.signed_out").map((e) => e.actor)).toEqual([
      "olivia",
      "alice",
    ]);
    const revocation = events.find((e) => e.type === "token.revoked");
    expect(revocation).toMatchObject({ actor: "admin", context: { user: "olivia", count: 2 } });
  });

  it("answers 502 when the provider cannot be reached", async () => {
    await w.provider.close();
    expectPageError(
      await w.api(new CookieJar(), "GET", "/v1/auth/oidc/login"),
      502,
      "OIDC_PROVIDER_UNAVAILABLE",
    );
    expectPageError(
      await w.api(new CookieJar(), "POST", "/v1/auth/oidc/device/start", { json: {} }),
      502,
      "OIDC_PROVIDER_UNAVAILABLE",
    );
  });
});

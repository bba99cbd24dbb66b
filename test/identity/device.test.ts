import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { expectError, expectStatus, type Reply } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";
import { CookieJar, drive } from "./browser.js";
import { type IdentityWorld, startIdentityWorld } from "./support.js";

describe.each(DIALECTS)("terminal sign-in with the device flow, brokered by the server, on %s", (dialect) => {
  let w: IdentityWorld;

  beforeEach(async () => {
    w = await startIdentityWorld(dialect);
    w.provider.accounts.set("sub-olivia", { preferred_username: "olivia", groups: ["sre"] });
  });

  afterEach(async () => {
    const unknownFailures = w.t.serverErrors.filter((line) => line.startsWith("request failed"));
    await w.close();
    expect(unknownFailures, "the server answered 500 INTERNAL").toEqual([]);
  });

  async function start() {
    const started = await w.t.call("POST", "/v1/auth/oidc/device/start", { as: null, body: {} });
    expectStatus(started, 201);
    return started.body as {
      handle: string;
      userCode: string;
      verificationUri: string;
      verificationUriComplete: string;
      interval: number;
      expiresAt: string;
    };
  }

  const poll = (handle: string): Promise<Reply> =>
    w.t.call("POST", "/v1/auth/oidc/device/poll", { as: null, body: { handle } });

  /** The person opens the verification address in a browser, signs in and confirms the code. */
  async function confirmInBrowser(address: string, confirmFields?: Record<string, string>) {
    const result = await drive(new CookieJar(), new URL(address), {
      login: "sub-olivia",
      ...(confirmFields ? { confirmFields } : {}),
    });
    if (!("page" in result)) throw new Error("the device flow stopped unexpectedly");
    return result.page;
  }

  it("signs in end to end: pending until confirmed, then a session token with the user's groups, once", async () => {
    const started = await start();
    expect(started.userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    expect(started.verificationUri).toBe(`${w.provider.issuer}/device`);
    expect(started.verificationUriComplete).toContain(encodeURIComponent(started.userCode));
    expect(started.interval).toBe(5);
    // The device code itself never reaches the CLI in clear: the handle is sealed.
    expect(started.handle).toMatch(/^v1\.[0-9a-f]{8}\./);

    const pending = await poll(started.handle);
    expectStatus(pending, 200);
    expect(pending.body).toEqual({ status: "pending", interval: 5 });

    const page = await confirmInBrowser(started.verificationUriComplete);
    expect(page.body).toContain("Sign-in Success");

    const complete = await poll(started.handle);
    expectStatus(complete, 200);
    expect(complete.body).toMatchObject({ status: "complete", user: "olivia", groups: ["sre"] });
    expect(complete.body.expiresAt).toBe(new Date(w.t.clock.now() + 12 * 3_600_000).toISOString());
    expect(complete.headers["cache-control"]).toBe("no-store");
    const token = complete.body.token as string;

    const me = await w.t.call("GET", "/v1/whoami", { as: { token } });
    expect(me.body).toEqual({ name: "olivia", groups: ["sre"], isAdmin: false, isAuditor: false });
    const request = await w.t.call("POST", "/v1/requests", {
      as: { token },
      body: { zone: "sandbox", role: "debug", reason: "reproduce the checkout bug" },
    });
    expectStatus(request, 201);

    // The provider's device code is single-use: polling again cannot mint a second session.
    expectError(await poll(started.handle), 401, "OIDC_SIGN_IN_FAILED");
    const sessions = await w.t.app.db
      .selectFrom("api_tokens")
      .selectAll()
      .where("user_name", "=", "olivia")
      .execute();
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ label: "oidc device session", revoked_at: null });

    const signedIn = (await w.t.auditEvents()).filter((e) => e.type === "user.signed_in");
    expect(signedIn.map((e) => e.context.channel)).toEqual(["device"]);

    // The device session expires like any session.
    w.t.clock.advance(12 * 3_600_000 + 1);
    expectError(await w.t.call("GET", "/v1/whoami", { as: { token } }), 401, "UNAUTHENTICATED");
  });

  it("refuses a sign-in declined at the provider, an expired one, and a forged handle", async () => {
    const declined = await start();
    const page = await confirmInBrowser(declined.verificationUriComplete, { abort: "yes" });
    expect(page.body).not.toContain("Sign-in Success");
    expectError(await poll(declined.handle), 403, "SIGN_IN_REFUSED");

    const expired = await start();
    w.t.clock.advance(Date.parse(expired.expiresAt) - w.t.clock.now() + 1);
    expectError(await poll(expired.handle), 400, "DEVICE_FLOW_EXPIRED");

    const forged = `${declined.handle.slice(0, -2)}${declined.handle.endsWith("AA") ? "BB" : "AA"}`;
    expectError(await poll(forged), 400, "OIDC_STATE_INVALID");
    expectError(await poll("not-a-handle"), 400, "OIDC_STATE_INVALID");

    expect(
      await w.t.app.db.selectFrom("api_tokens").selectAll().where("user_name", "=", "olivia").execute(),
    ).toEqual([]);
  });
});

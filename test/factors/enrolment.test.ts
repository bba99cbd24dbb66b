import * as OTPAuth from "otpauth";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectError, expectStatus, type Reply, startTestApp, type TestApp } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";

/**
 * Issue 19, findings 1 and 2, reproduced through the HTTP API: a stolen bearer token must not be
 * able to enrol a factor and satisfy a policy's `factors` with it, and the failure limit must hold
 * when many wrong codes arrive at once.
 */

const CONFIG = `version: 1
directory:
  users:
    alice: { groups: [sre] }
    bob: { groups: [sre] }
    dora: { groups: [sre] }
    gina: { groups: [sre] }
    hugo: { groups: [sre] }
    ivan: { groups: [sre] }
    kim: { groups: [sre] }
zones:
  bastion: { cidrs: [127.0.0.0/8] }
  vault: {}
resources:
  vault-db: { zone: vault, type: log, roles: { admin: { grants: [owner] } } }
breakGlass:
  - name: vault-mfa
    zone: vault
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
    factors: [totp]
`;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe.each(DIALECTS)("factor enrolment and the attempt limit on %s", (dialect) => {
  let t: TestApp;
  /** The TOTP secrets each user holds, newest last. */
  const secrets = new Map<string, OTPAuth.Secret[]>();
  const code = (user: string, which = -1, offsetSteps = 0) =>
    OTPAuth.TOTP.generate({
      secret: secrets.get(user)?.at(which) as OTPAuth.Secret,
      timestamp: t.clock.now() + offsetSteps * 30_000,
    });
  /** A code of the user's current step that is certainly wrong. */
  const wrongCode = (user: string) => {
    const right = new Set((secrets.get(user) ?? []).map((_, i) => code(user, i)));
    for (let candidate = 100000; ; candidate++) if (!right.has(String(candidate))) return String(candidate);
  };

  beforeAll(async () => {
    t = await startTestApp(dialect, { config: CONFIG });
  });
  afterAll(async () => {
    await t?.close();
  });

  /** Starts a TOTP enrolment; returns the reply, keeping the secret when it succeeded. */
  async function startTotp(user: string, body?: Record<string, unknown>): Promise<Reply> {
    const started = await t.call("POST", "/v1/mfa/totp/enroll", { as: user, ...(body ? { body } : {}) });
    if (started.status === 201)
      secrets.set(user, [...(secrets.get(user) ?? []), OTPAuth.Secret.fromBase32(started.body.secret)]);
    return started;
  }

  async function verify(user: string, totp: string) {
    return t.call("POST", "/v1/mfa/totp/verify", { as: user, body: { code: totp } });
  }

  async function approvedRequest(user: string) {
    const created = await t.call("POST", "/v1/requests", {
      as: user,
      body: { zone: "vault", role: "admin", duration: "15m", reason: "rotate the vault key" },
    });
    expectStatus(created, 201);
    expect(created.body.state).toBe("approved");
    return created.body.id as string;
  }

  async function activate(user: string, id: string, totp?: string) {
    return t.call("POST", `/v1/requests/${id}/activate`, { as: user, body: totp ? { totp } : {} });
  }

  async function revoke(user: string, grantId: string) {
    expectStatus(
      await t.call("POST", `/v1/grants/${grantId}/revoke`, { as: user, body: { reason: "done" } }),
      200,
    );
  }

  /** A first factor, enrolled with the sign-in alone, left to settle. */
  async function settledFactor(user: string) {
    expectStatus(await startTotp(user), 201);
    expectStatus(await verify(user, code(user)), 200);
    t.clock.advance(24 * HOUR + MINUTE);
  }

  const factorsOf = async (user: string) =>
    (await t.call("GET", "/v1/mfa/factors", { as: user })).body.factors as {
      id: string;
      kind: string;
      confirmed: boolean;
      settlesAt: string | null;
      authorizedBy: string;
    }[];

  it("refuses to enrol another factor with only the bearer token once one exists, TOTP and WebAuthn alike", async () => {
    await settledFactor("alice");
    const before = await factorsOf("alice");
    const eventsBefore = (await t.auditEvents()).length;

    // The attack: someone holding alice's token (and nothing else) enrols their own authenticator.
    expectError(await startTotp("alice"), 403, "FACTOR_REQUIRED");
    expectError(
      await t.call("POST", "/v1/mfa/webauthn/register/options", { as: "alice" }),
      403,
      "FACTOR_REQUIRED",
    );
    // A wrong code of the existing factor does not open the door either (and counts as a failure).
    expectError(await startTotp("alice", { totp: wrongCode("alice") }), 403, "FACTOR_INVALID");
    expect(await factorsOf("alice")).toEqual(before);
    const newEvents = (await t.auditEvents()).slice(eventsBefore);
    expect(newEvents.map((e) => e.type)).not.toContain("factor.enrolment_started");
    expect(newEvents.map((e) => e.type)).not.toContain("factor.enrolled");

    // alice herself presents her factor and may then add a second one.
    t.clock.advance(MINUTE);
    const added = await startTotp("alice", { totp: code("alice") });
    expectStatus(added, 201);
    const started = (await t.auditEvents()).filter((e) => e.type === "factor.enrolment_started").at(-1);
    expect(started?.context).toMatchObject({ kind: "totp", authorizedBy: "factor" });
  });

  it("does not let a factor confirmed within the freshness window satisfy a policy by itself", async () => {
    // alice's second factor (started in the previous test, authorized by her first) is confirmed now.
    t.clock.advance(MINUTE);
    expectStatus(await verify("alice", code("alice", -1)), 200);
    const confirmedAt = t.clock.now();
    const enrolled = (await t.auditEvents()).filter((e) => e.type === "factor.enrolled").at(-1);
    expect(enrolled?.context).toMatchObject({
      authorizedBy: "factor",
      settlesAt: new Date(confirmedAt).toISOString(),
    });

    // Four and a half minutes on, her first factor's use is over five minutes old; the new one alone
    // is refused.
    t.clock.advance(4 * MINUTE + 30_000);
    const id = await approvedRequest("alice");
    const refused = await activate("alice", id, code("alice", -1));
    expectError(refused, 403, "FACTOR_REQUIRED");
    expect(refused.body.error.message).toContain("of its enrolment does not count on its own");
    // Once the window has passed since its confirmation, the new factor counts like any other.
    t.clock.advance(2 * MINUTE);
    const activated = await activate("alice", id, code("alice", -1));
    expectStatus(activated, 201);
    await revoke("alice", activated.body.id);
  });

  it("makes a first factor enrolled with only a sign-in wait for its settle period (the bearer-token attack)", async () => {
    // bob has no factor; an attacker with bob's token enrols one and tries to use it at once.
    const started = await startTotp("bob");
    expectStatus(started, 201);
    expect(started.body.authorizedBy).toBe("sign-in");
    expectStatus(await verify("bob", code("bob")), 200);
    const confirmedAt = t.clock.now();
    const id = await approvedRequest("bob");
    t.clock.advance(30_000);
    const refused = await activate("bob", id, code("bob"));
    expectError(refused, 403, "FACTOR_REQUIRED");
    expect(refused.body.error.message).toContain("enrolled with a sign-in alone and counts from");

    const [factor] = await factorsOf("bob");
    expect(factor).toMatchObject({ confirmed: true, authorizedBy: "sign-in" });
    expect(Date.parse(factor?.settlesAt ?? "")).toBe(confirmedAt + 24 * HOUR);
    const enrolled = (await t.auditEvents()).filter((e) => e.type === "factor.enrolled").at(-1);
    expect(enrolled?.context).toMatchObject({ authorizedBy: "sign-in" });
    // Nor may the unsettled factor vouch for another one.
    expectError(await startTotp("bob", { totp: code("bob", -1, 1) }), 403, "FACTOR_REQUIRED");

    t.clock.advance(24 * HOUR);
    const later = await approvedRequest("bob");
    const activated = await activate("bob", later, code("bob"));
    expectStatus(activated, 201);
    await revoke("bob", activated.body.id);
  });

  it("lets an administrator reset a user's factors with a one-time enrolment code that counts at once, audited", async () => {
    await settledFactor("dora");
    // A fresh use before the reset: afterwards it must not count any more.
    expectStatus(await verify("dora", code("dora")), 200);

    expectError(
      await t.call("POST", "/v1/mfa/users/dora/reset", { as: "bob", body: { reason: "lost phone" } }),
      403,
      "FORBIDDEN",
    );
    expectError(
      await t.call("POST", "/v1/mfa/users/admin/reset", { as: "admin", body: { reason: "mine" } }),
      403,
      "FORBIDDEN",
    );
    expectError(
      await t.call("POST", "/v1/mfa/users/nobody/reset", { as: "admin", body: { reason: "who" } }),
      404,
      "NOT_FOUND",
    );
    expectError(
      await t.call("POST", "/v1/mfa/users/dora/reset", { as: "admin", body: {} }),
      400,
      "VALIDATION_FAILED",
    );
    expect(await factorsOf("dora")).toHaveLength(1);

    const reset = await t.call("POST", "/v1/mfa/users/dora/reset", {
      as: "admin",
      body: { reason: "lost phone, confirmed by a call" },
    });
    expectStatus(reset, 200);
    expect(reset.headers["cache-control"]).toBe("no-store");
    expect(reset.body).toMatchObject({ user: "dora", removed: 1 });
    const enrolmentCode = reset.body.enrolmentCode as string;
    expect(enrolmentCode).toMatch(/^[A-Z2-7]{4}(-[A-Z2-7]{4}){3}$/);
    expect(await factorsOf("dora")).toEqual([]);
    const events = await t.auditEvents();
    const audited = events.filter((e) => e.type === "factor.reset").at(-1);
    expect(audited).toMatchObject({ actor: "admin" });
    expect(audited?.context).toMatchObject({ user: "dora", reason: "lost phone, confirmed by a call" });
    const plain = enrolmentCode.replace(/-/g, "");
    expect(
      events.some((e) => JSON.stringify(e).includes(plain) || JSON.stringify(e).includes(enrolmentCode)),
    ).toBe(false);

    // The presentation made before the reset belonged to a removed factor.
    const id = await approvedRequest("dora");
    expectError(await activate("dora", id), 403, "FACTOR_REQUIRED");

    // A wrong code is refused and changes nothing; the right one (typed loosely) enrols.
    expectError(
      await startTotp("dora", {
        enrolmentCode: "AAAA-AAAA-AAAA-AAAA" === enrolmentCode ? "BBBBBBBBBBBBBBBB" : "AAAA-AAAA-AAAA-AAAA",
      }),
      403,
      "FACTOR_INVALID",
    );
    expectError(await startTotp("dora", { enrolmentCode: "not a code" }), 400, "VALIDATION_FAILED");
    expect(await factorsOf("dora")).toEqual([]);
    expectStatus(await startTotp("dora", { enrolmentCode: ` ${enrolmentCode.toLowerCase()} ` }), 201);
    expectStatus(await verify("dora", code("dora")), 200);
    expect((await factorsOf("dora"))[0]).toMatchObject({ authorizedBy: "enrolment-code", confirmed: true });

    // An administrator vouched for it: it counts straight away.
    const activated = await activate("dora", id, code("dora", -1, 1));
    expectStatus(activated, 201);
    await revoke("dora", activated.body.id);

    // The code was used up.
    t.clock.advance(6 * MINUTE);
    expectError(await startTotp("dora", { enrolmentCode }), 403, "FACTOR_INVALID");
  });

  it("refuses an enrolment code that expired, and a pending enrolment not confirmed in time", async () => {
    const reset = await t.call("POST", "/v1/mfa/users/gina/reset", { as: "admin", body: { reason: "new" } });
    expectStatus(reset, 200);
    t.clock.advance(24 * HOUR + MINUTE);
    expectError(await startTotp("gina", { enrolmentCode: reset.body.enrolmentCode }), 403, "FACTOR_INVALID");

    expectStatus(await startTotp("gina"), 201);
    t.clock.advance(11 * MINUTE);
    expectError(await verify("gina", code("gina")), 409, "FACTOR_NOT_ENROLLED");
  });

  it("evaluates only the limit's worth of many concurrent wrong codes", async () => {
    await settledFactor("hugo");
    const failedBefore = (await t.auditEvents()).filter(
      (e) => e.type === "factor.failed" && e.actor === "hugo",
    ).length;
    const wrong = wrongCode("hugo");
    const replies = await Promise.all(Array.from({ length: 400 }, () => verify("hugo", wrong)));
    const codes = replies.map((r) => (r.status === 429 || r.status === 403 ? r.body.error.code : r.status));
    expect(codes.filter((c) => c === "FACTOR_INVALID")).toHaveLength(5);
    expect(codes.filter((c) => c === "RATE_LIMITED")).toHaveLength(395);
    const failed = (await t.auditEvents()).filter((e) => e.type === "factor.failed" && e.actor === "hugo");
    expect(failed.length - failedBefore).toBe(5);
    // Even the right code waits for the window to pass.
    expectError(await verify("hugo", code("hugo")), 429, "RATE_LIMITED");
    t.clock.advance(5 * MINUTE + 1);
    expectStatus(await verify("hugo", code("hugo")), 200);
  });

  it("counts concurrent wrong enrolment codes against the same limit", async () => {
    await t.token("ivan"); // minted once, before the burst
    expectStatus(
      await t.call("POST", "/v1/mfa/users/ivan/reset", { as: "admin", body: { reason: "new" } }),
      200,
    );
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        startTotp("ivan", {
          enrolmentCode: `AAAA-AAAA-AAAA-${"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"[i % 32]}AAA`,
        }),
      ),
    );
    const codes = replies.map((r) => r.body.error?.code);
    expect(codes.filter((c) => c === "FACTOR_INVALID")).toHaveLength(5);
    expect(codes.filter((c) => c === "RATE_LIMITED")).toHaveLength(45);
  });

  it("gives back the attempt of a right code: four failures and a success leave one more try", async () => {
    await settledFactor("kim");
    for (let i = 0; i < 4; i++) expectError(await verify("kim", wrongCode("kim")), 403, "FACTOR_INVALID");
    expectStatus(await verify("kim", code("kim")), 200);
    expectError(await verify("kim", wrongCode("kim")), 403, "FACTOR_INVALID");
    expectError(await verify("kim", wrongCode("kim")), 429, "RATE_LIMITED");
  });
});

describe.each(DIALECTS)("first factors that need an administrator's code on %s", (dialect) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(dialect, {
      config: CONFIG.replace(
        "directory:",
        "identity:\n  factorEnrolment: { requireCode: true, settle: 1h }\ndirectory:",
      ),
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it("refuses a first enrolment with only the sign-in and accepts one with the code", async () => {
    const refused = await t.call("POST", "/v1/mfa/totp/enroll", { as: "alice" });
    expectError(refused, 403, "FACTOR_REQUIRED");
    expect(refused.body.error.message).toContain("firebreak mfa reset");
    expectError(
      await t.call("POST", "/v1/mfa/webauthn/register/options", { as: "alice" }),
      403,
      "FACTOR_REQUIRED",
    );
    const reset = await t.call("POST", "/v1/mfa/users/alice/reset", {
      as: "admin",
      body: { reason: "onboarding" },
    });
    expectStatus(reset, 200);
    expect(reset.body.removed).toBe(0);
    const started = await t.call("POST", "/v1/mfa/totp/enroll", {
      as: "alice",
      body: { enrolmentCode: reset.body.enrolmentCode },
    });
    expectStatus(started, 201);
  });
});

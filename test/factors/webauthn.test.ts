/// <reference lib="dom" />
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type App, createApp } from "../../src/server/app.js";
import { createTestDatabase, type TestDatabase } from "../support/databases.js";

/**
 * WebAuthn end to end: Debian's Chromium with a virtual authenticator (Chrome DevTools Protocol)
 * registers a credential and asserts with it against a real Firebreak server, and the assertion
 * counts as the fresh factor a policy asks for at activation.
 */
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

describe("WebAuthn with Chromium's virtual authenticator", () => {
  let app: App;
  let database: TestDatabase;
  let browser: Browser;
  let directory: string;
  let origin: string;
  let adminToken: string;

  beforeAll(async () => {
    const port = await freePort();
    origin = `http://localhost:${port}`;
    directory = await mkdtemp(join(tmpdir(), "firebreak-webauthn-"));
    const configPath = join(directory, "firebreak.yaml");
    await writeFile(
      configPath,
      `version: 1
identity:
  webauthn: { rpId: localhost, origins: ["${origin}"] }
directory:
  users:
    alice: { groups: [sre] }
zones:
  vault: {}
resources:
  vault-db: { zone: vault, type: log, roles: { admin: { grants: [owner] } } }
breakGlass:
  - name: vault-key
    zone: vault
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 10m, max: 1h }
    factors: [webauthn]
`,
    );
    database = await createTestDatabase("sqlite");
    app = await createApp({
      configPath,
      databaseUrl: database.url,
      env: {},
      masterKeyFile: join(directory, "master.key"),
    });
    const started = await app.start({ host: "127.0.0.1", port });
    adminToken = started.admin?.token ?? "";
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });

  afterAll(async () => {
    await browser?.close();
    await app?.stop();
    await database?.drop();
    await rm(directory, { recursive: true, force: true });
  });

  it("registers a passkey, asserts with it, and the assertion satisfies a policy's webauthn factor", async () => {
    const minted = await fetch(`${origin}/v1/users/alice/tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: "{}",
    });
    const { token } = (await minted.json()) as { token: string };
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${origin}/healthz`);
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });

    const api = async (path: string, body: unknown) =>
      page.evaluate(
        async ({ path, body, token }) => {
          const response = await fetch(path, {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: JSON.stringify(body),
          });
          return { status: response.status, body: await response.json() };
        },
        { path, body, token },
      );

    // Activation before any factor: refused.
    const request = await api("/v1/requests", {
      zone: "vault",
      role: "admin",
      duration: "5m",
      reason: "rotate the vault key",
    });
    expect(request.status).toBe(201);
    expect(request.body.state).toBe("approved");
    expect((await api(`/v1/requests/${request.body.id}/activate`, {})).body.error.code).toBe(
      "FACTOR_REQUIRED",
    );

    // An administrator vouches for alice's first key with an enrolment code handed to her.
    const reset = await fetch(`${origin}/v1/mfa/users/alice/reset`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ reason: "first key" }),
    });
    expect(reset.status).toBe(200);
    const { enrolmentCode } = (await reset.json()) as { enrolmentCode: string };

    const registration = await page.evaluate(
      async ({ token, enrolmentCode }) => {
        const options = await (
          await fetch("/v1/mfa/webauthn/register/options", {
            method: "POST",
            headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
            body: JSON.stringify({ enrolmentCode }),
          })
        ).json();
        const credential = (await navigator.credentials.create({
          publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options),
        })) as PublicKeyCredential;
        const response = await fetch("/v1/mfa/webauthn/register", {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ response: credential.toJSON(), label: "virtual key" }),
        });
        return { status: response.status, body: await response.json() };
      },
      { token, enrolmentCode },
    );
    expect(registration.status).toBe(201);
    expect(registration.body.factorId).toMatch(/^mfa_/);

    // A second key needs a fresh use of the first: the bearer token alone is refused.
    const second = await api("/v1/mfa/webauthn/register/options", {});
    expect(second.status).toBe(403);
    expect(second.body.error.code).toBe("FACTOR_REQUIRED");

    const assertion = await page.evaluate(async (token) => {
      const options = await (
        await fetch("/v1/mfa/webauthn/assert/options", {
          method: "POST",
          headers: { authorization: `Bearer ${token}` },
        })
      ).json();
      const credential = (await navigator.credentials.get({
        publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options),
      })) as PublicKeyCredential;
      const response = await fetch("/v1/mfa/webauthn/assert", {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ response: credential.toJSON() }),
      });
      return { status: response.status, body: await response.json(), credential: credential.toJSON() };
    }, token);
    expect(assertion.status).toBe(200);
    expect(assertion.body.kind).toBe("webauthn");

    // The same assertion replayed: its challenge was consumed, so it is refused.
    const replay = await api("/v1/mfa/webauthn/assert", { response: assertion.credential });
    expect(replay.status).toBe(403);
    expect(replay.body.error.code).toBe("FACTOR_INVALID");

    const activated = await api(`/v1/requests/${request.body.id}/activate`, {});
    expect(activated.status).toBe(201);
    expect(activated.body.factor.kind).toBe("webauthn");

    // With the key just presented, registering another is allowed.
    const afterAssertion = await api("/v1/mfa/webauthn/register/options", {});
    expect(afterAssertion.status).toBe(200);
    expect(afterAssertion.body.challenge).toEqual(expect.any(String));
    await context.close();
  });
});

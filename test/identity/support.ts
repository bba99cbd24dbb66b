import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { startTestApp, type TestApp } from "../support/app.js";
import type { TestDialect } from "../support/databases.js";
import { type CookieJar, drive, type Page, request } from "./browser.js";
import { startProvider, type TestProvider } from "./provider.js";

/**
 * The configuration the identity suites run against: a directory user (alice) beside OIDC users,
 * a policy any `sre` may use without approval (sandbox-debug), one that needs a lead (vault-admin),
 * and an OIDC section that maps the provider's "Payments Leads" onto `leads` and admits only
 * members of the groups below.
 */
function configFor(provider: TestProvider, base: URL, secretPath: string): string {
  return `version: 1
administrators: [group:platform]
directory:
  users:
    alice: { groups: [sre] }
    carol: { groups: [leads] }
zones:
  bastion: { cidrs: [127.0.0.0/8] }
  sandbox: {}
  vault: {}
breakGlass:
  - name: sandbox-debug
    zone: sandbox
    roles: [debug]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
  - name: vault-admin
    zone: vault
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
server:
  publicUrl: ${base.origin}
identity:
  sessionLifetime: 12h
  oidc:
    issuer: ${provider.issuer}
    clientId: ${provider.clientId}
    clientSecret: file:${secretPath}
    scopes: [openid, profile, groups]
    groupMap: { "Payments Leads": leads }
    allowedGroups: [sre, leads, dev, platform]
`;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface IdentityWorld {
  t: TestApp;
  provider: TestProvider;
  /** Where Firebreak listens (its server.publicUrl). */
  base: URL;
  url(path: string): URL;
  /** Runs a browser sign-in up to the moment the provider sends the browser back to Firebreak. */
  signInUntilCallback(jar: CookieJar, login: string, returnTo?: string): Promise<URL>;
  /** A full browser sign-in; the jar then holds the session cookies. */
  signIn(jar: CookieJar, login: string): Promise<Page>;
  /** A JSON API call from the browser, with its cookies (and the CSRF header when `csrf` is given). */
  api(
    jar: CookieJar,
    method: string,
    path: string,
    options?: { json?: unknown; csrf?: string; headers?: Record<string, string> },
    // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field in tests
  ): Promise<Page & { json: any }>;
  close(): Promise<void>;
}

/** A real OIDC provider and a real Firebreak, listening on loopback ports, on `dialect`. */
export async function startIdentityWorld(
  dialect: TestDialect,
  options: { eventStreamRecheckMs?: number } = {},
): Promise<IdentityWorld> {
  const port = await freePort();
  const base = new URL(`http://127.0.0.1:${port}`);
  const provider = await startProvider({ redirectUri: `${base.origin}/v1/auth/oidc/callback` });
  const directory = await mkdtemp(join(tmpdir(), "firebreak-oidc-"));
  const secretPath = join(directory, "client-secret");
  await writeFile(secretPath, `${provider.clientSecret}\n`, { mode: 0o600 });
  let t: TestApp;
  try {
    t = await startTestApp(dialect, {
      config: configFor(provider, base, secretPath),
      eventStreamRecheckMs: options.eventStreamRecheckMs,
    });
    await t.app.http.listen({ host: "127.0.0.1", port });
  } catch (error) {
    await provider.close();
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  const url = (path: string) => new URL(path, base);
  const isCallback = (candidate: URL) =>
    candidate.origin === base.origin && candidate.pathname === "/v1/auth/oidc/callback";

  async function signInUntilCallback(jar: CookieJar, login: string, returnTo?: string): Promise<URL> {
    const start = url(`/v1/auth/oidc/login${returnTo ? `?returnTo=${encodeURIComponent(returnTo)}` : ""}`);
    const result = await drive(jar, start, { login, stopAt: isCallback });
    if (!("stoppedAt" in result)) {
      throw new Error(
        `the provider did not send the browser back: ${result.page.status} ${result.page.body.slice(0, 300)}`,
      );
    }
    return result.stoppedAt;
  }

  return {
    t,
    provider,
    base,
    url,
    signInUntilCallback,
    async signIn(jar, login) {
      const callback = await signInUntilCallback(jar, login);
      const page = await request(jar, callback);
      expect({ status: page.status, body: page.body.slice(0, 300) }).toMatchObject({ status: 303 });
      return page;
    },
    async api(jar, method, path, options = {}) {
      const headers: Record<string, string> = { ...(options.headers ?? {}) };
      if (options.csrf !== undefined) headers["x-firebreak-csrf"] = options.csrf;
      const page = await request(jar, url(path), {
        method,
        headers,
        ...(options.json === undefined ? {} : { json: options.json }),
      });
      let json: unknown = null;
      try {
        json = page.body ? JSON.parse(page.body) : null;
      } catch {
        json = null;
      }
      return { ...page, json };
    },
    async close() {
      try {
        await t.close();
      } finally {
        await provider.close();
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
}

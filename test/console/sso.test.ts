import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startProvider, type TestProvider } from "../identity/provider.js";
import { processGroup, REPO_ROOT, type ServerProcess } from "../support/process.js";
import {
  CHROMIUM,
  launchChromium,
  openPage,
  pageCheckFailures,
  screenshot,
  type WatchedPage,
} from "./browser.js";

/**
 * Single sign-on through the console: the sign-in page offers the provider the server names, the
 * browser comes back with the session cookie only the server can read, the console acts with it
 * (its state-changing requests carry the CSRF header), and signing out revokes the session.
 */

const group = processGroup();
let directory: string;
let provider: TestProvider;
let server: ServerProcess;
let browser: Browser;
const watched: WatchedPage[] = [];

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** Fills in the provider's own development pages (login, then consent) like a person would. */
async function throughProvider(page: Page, login: string, base: string) {
  for (let step = 0; step < 10 && !page.url().startsWith(base); step++) {
    const loginField = page.locator('input[name="login"]');
    if (await loginField.count()) {
      await loginField.fill(login);
      await page.locator('input[name="password"]').fill("any password");
    }
    // The consent page may come back on the same URL, so wait for a navigation, not a new URL.
    await Promise.all([
      page.waitForEvent("framenavigated", (frame) => frame === page.mainFrame()),
      page.locator('button[type="submit"]').first().click(),
    ]);
    await page.waitForLoadState();
  }
}

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, "console", "dist", "index.html")))
    throw new Error("console/dist is missing: run 'npm run build' (it builds the console too)");
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium`);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  provider = await startProvider({ redirectUri: `${base}/v1/auth/oidc/callback` });
  provider.accounts.set("olivia", { preferred_username: "olivia", groups: ["sre"] });
  directory = await mkdtemp(join(tmpdir(), "firebreak-console-sso-"));
  const secretPath = join(directory, "client-secret");
  await writeFile(secretPath, `${provider.clientSecret}\n`, { mode: 0o600 });
  const configPath = join(directory, "firebreak.yaml");
  await writeFile(
    configPath,
    `version: 1
zones:
  bastion: { cidrs: [127.0.0.0/8] }
  sandbox: { labels: { tier: dev } }
breakGlass:
  - name: sandbox-debug
    zone: sandbox
    roles: [debug]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
server:
  publicUrl: ${base}
identity:
  oidc:
    issuer: ${provider.issuer}
    clientId: ${provider.clientId}
    clientSecret: file:${secretPath}
    scopes: [openid, profile, groups]
`,
  );
  server = await group.startServer({
    config: configPath,
    db: `sqlite:${join(directory, "firebreak.db")}`,
    listen: `127.0.0.1:${port}`,
  });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await group.killAll();
  await provider?.close();
  if (directory) await rm(directory, { recursive: true, force: true });
});

describe("console single sign-on", () => {
  it("signs in through the provider, acts with the session cookie, and signs out", async () => {
    const session = await openPage(browser, server.url);
    watched.push(session);
    const { page } = session;
    await page.goto("/my");
    await page.waitForURL(/\/sign-in\?next=%2Fmy$/);
    const button = page.getByRole("link", { name: `Sign in with ${new URL(provider.issuer).host}` });
    await button.waitFor();
    await screenshot(page, "23-sign-in-single-sign-on");
    expect(await pageCheckFailures(page)).toEqual([]);

    await button.click();
    await throughProvider(page, "olivia", server.url);
    await page.waitForURL(`${server.url}/my`);
    await page.locator("header").getByText("olivia").waitFor();
    // The session lives in an httpOnly cookie the page cannot read; no token is stored.
    expect(await page.evaluate("document.cookie")).not.toContain("firebreak_session");
    expect(await page.evaluate("sessionStorage.length + localStorage.length")).toBe(0);

    // A state-changing request from the cookie session: the console adds the CSRF header.
    await page.goto("/requests/new");
    await page.getByLabel("Zone or resource").selectOption("zone:sandbox");
    await page.getByLabel(/^Why/).fill("debug the flaky sandbox job");
    await page.locator('.verdict[data-outcome="allow"]').waitFor();
    await page.getByRole("button", { name: "Send (approved at once)" }).click();
    await page.waitForURL(/\/requests\/req_[a-z0-9]+$/);
    await page.getByRole("button", { name: "Activate now" }).click();
    await page.waitForURL(/\/grants\/grt_[a-z0-9]+$/);
    await page.getByText("Your grant").waitFor();

    // Signing out revokes the session on the server: a reload does not bring it back.
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in/);
    await page.goto("/map");
    await page.waitForURL(/\/sign-in\?next=%2Fmap$/);
    expect(session.problems()).toEqual([]);
  });
});

import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { processGroup, REPO_ROOT, type ServerProcess } from "../support/process.js";
import { CHROMIUM, launchChromium, openPage, screenshot } from "./browser.js";

/**
 * A security key registered on the console's account page and then presented at the factor prompt
 * when activation asks for one, with Chromium's virtual authenticator standing in for the key.
 * WebAuthn needs a domain as relying party, so the console is opened at http://localhost:PORT.
 */

const group = processGroup();
let directory: string;
let server: ServerProcess;
let browser: Browser;
let base: string;
let bobToken: string;
let enrolmentCode: string;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, "console", "dist", "index.html")))
    throw new Error("console/dist is missing: run 'npm run build' (it builds the console too)");
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium`);
  const port = await freePort();
  base = `http://localhost:${port}`;
  directory = await mkdtemp(join(tmpdir(), "firebreak-console-webauthn-"));
  const configPath = join(directory, "firebreak.yaml");
  await writeFile(
    configPath,
    `version: 1
directory:
  users:
    bob: { groups: [sre] }
zones:
  bastion: { cidrs: [127.0.0.0/8] }
  sandbox: {}
breakGlass:
  - name: sandbox-debug
    zone: sandbox
    roles: [debug]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
    factors: [webauthn]
identity:
  webauthn: { rpId: localhost, rpName: Firebreak, origins: ["${base}"] }
`,
  );
  server = await group.startServer({
    config: configPath,
    db: `sqlite:${join(directory, "firebreak.db")}`,
    listen: `127.0.0.1:${port}`,
  });
  const minted = await fetch(`${server.url}/v1/users/bob/tokens`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.admin?.token}`, "content-type": "application/json" },
    body: "{}",
  });
  bobToken = ((await minted.json()) as { token: string }).token;
  // An administrator vouches for bob's first key, so it counts at once (not after a day).
  const reset = await fetch(`${server.url}/v1/mfa/users/bob/reset`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.admin?.token}`, "content-type": "application/json" },
    body: JSON.stringify({ reason: "first key" }),
  });
  enrolmentCode = ((await reset.json()) as { enrolmentCode: string }).enrolmentCode;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await group.killAll();
  if (directory) await rm(directory, { recursive: true, force: true });
});

describe("console security keys", () => {
  it("registers a security key and presents it when activation asks for one", async () => {
    const session = await openPage(browser, base);
    const { page, context } = session;
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "usb",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });

    await page.goto("/account");
    await page.getByLabel("API token").fill(bobToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${base}/account`);
    await page.getByLabel(/^Enrolment code from an administrator/).fill(enrolmentCode);
    await page.getByLabel("Name for this key").fill("virtual key");
    await page.getByRole("button", { name: "Add a security key or passkey" }).click();
    await page.getByText("Security key registered.").waitFor();
    await page.locator('[data-factor="webauthn"]').getByText("confirmed").waitFor();

    await page.goto("/requests/new");
    await page.getByLabel("Zone or resource").selectOption("zone:sandbox");
    await page.getByLabel(/^Why/).fill("look at the sandbox scheduler");
    await page.locator('.verdict[data-outcome="allow"]').waitFor();
    await page.getByRole("button", { name: "Send (approved at once)" }).click();
    await page.waitForURL(/\/requests\/req_[a-z0-9]+$/);
    await page.getByRole("button", { name: "Activate now" }).click();
    // Only webauthn is accepted: no code field, the key button.
    expect(await page.getByLabel("Authenticator code").count()).toBe(0);
    await page.getByRole("button", { name: "Use a security key or passkey" }).click();
    await page.waitForURL(/\/grants\/grt_[a-z0-9]+$/);
    await page.getByText(/^webauthn at /).waitFor();
    await screenshot(page, "24-grant-after-security-key");
    expect(session.problems()).toEqual([]);
  });
});

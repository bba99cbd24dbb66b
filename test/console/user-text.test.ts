import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { escapedText, partsOf } from "../../console/src/lib/text.js";
import { safeText } from "../../src/cli/format.js";
import { apiClient, processGroup, REPO_ROOT, type ServerProcess } from "../support/process.js";
import { CHROMIUM, launchChromium, openPage, screenshot } from "./browser.js";

describe("the console's text helper", () => {
  it("leaves ordinary text, other scripts, emoji and backslashes in one plain part", () => {
    for (const text of [
      "clear the stuck slot",
      "zöne-ünïcødé",
      "データベース",
      "🔥 INC-4711",
      "C:\\temp \\n",
    ])
      expect(partsOf(text)).toEqual([{ kind: "text", text }]);
  });

  it("splits out line breaks, ANSI escapes and bidi controls as visible escapes", () => {
    expect(partsOf("slot\n  approved by carol\u202eog")).toEqual([
      { kind: "text", text: "slot" },
      { kind: "escape", text: "\\n", codePoint: 0x0a },
      { kind: "text", text: "  approved by carol" },
      { kind: "escape", text: "\\u202e", codePoint: 0x202e },
      { kind: "text", text: "og" },
    ]);
    expect(escapedText("\u001b[2K\r\t\u2066x\u2069\u200f\u061c\u{e0041}")).toBe(
      "\\x1b[2K\\r\\t\\u2066x\\u2069\\u200f\\u061c\\u{e0041}",
    );
  });

  it("keeps line breaks only when asked (text the console laid out itself), escaping the rest", () => {
    expect(partsOf('{\n  "reason": "a\u202eb"\n}', { keepLineBreaks: true })).toEqual([
      { kind: "text", text: '{\n  "reason": "a' },
      { kind: "escape", text: "\\u202e", codePoint: 0x202e },
      { kind: "text", text: 'b"\n}' },
    ]);
  });

  it("escapes exactly the characters the CLI escapes (the backslash aside)", () => {
    const disagreements: string[] = [];
    const check = (code: number) => {
      const character = String.fromCodePoint(code);
      if (character === "\\") return;
      const cli = safeText(character) !== character;
      const console = partsOf(character).some((part) => part.kind === "escape");
      if (cli !== console) disagreements.push(code.toString(16));
    };
    for (let code = 0; code <= 0xffff; code++) check(code);
    for (let code = 0xe0000; code <= 0xe0080; code++) check(code);
    expect(disagreements).toEqual([]);
  });
});

/**
 * In a real browser: a hostile reason on a request's page is isolated for bidirectional layout
 * and its controls are drawn as escapes, so a right-to-left override cannot turn what follows it
 * around and a line break cannot start a line of its own.
 */
const CONFIG = `version: 1
directory:
  users:
    mallory: { groups: [sre] }
    carol: { groups: [leads] }
zones:
  ops: {}
resources:
  ops-hosts:
    zone: ops
    type: log
    roles: { operator: { grants: [ops] } }
breakGlass:
  - name: ops-quick
    zone: ops
    roles: [operator]
    eligible: [group:sre]
    duration: { default: 10m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
`;
const HOSTILE_REASON = "disk full\n\napproved by carol \u2713\u202e ,dekcehc";
const HOSTILE_TICKET = "INC-1\u2067\u200b";

describe("user text in the console (Chromium)", () => {
  const group = processGroup();
  let directory: string;
  let server: ServerProcess;
  let browser: Browser;
  let requestId: string;
  let carolToken: string;

  beforeAll(async () => {
    if (!existsSync(join(REPO_ROOT, "console", "dist", "index.html")))
      throw new Error("console/dist is missing: run 'npm run build' (it builds the console too)");
    if (!existsSync(CHROMIUM))
      throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium)`);
    directory = await mkdtemp(join(tmpdir(), "firebreak-console-text-"));
    const configPath = join(directory, "firebreak.yaml");
    await writeFile(configPath, CONFIG);
    server = await group.startServer({ config: configPath, db: `sqlite:${join(directory, "firebreak.db")}` });
    const admin = apiClient(server.url, server.admin?.token ?? "");
    const mallory = await admin.post<{ token: string }>("/v1/users/mallory/tokens", {});
    carolToken = (await admin.post<{ token: string }>("/v1/users/carol/tokens", {})).token;
    const created = await apiClient(server.url, mallory.token).post<{ id: string }>("/v1/requests", {
      zone: "ops",
      role: "operator",
      reason: HOSTILE_REASON,
      ticket: HOSTILE_TICKET,
    });
    requestId = created.id;
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await group.killAll();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it("shows a hostile reason and ticket isolated, on one line, with their controls drawn as escapes", async () => {
    const session = await openPage(browser, server.url);
    const { page } = session;
    await page.goto(`/requests/${requestId}`);
    await page.waitForURL(/\/sign-in\?next=/);
    await page.getByLabel("API token").fill(carolToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((url) => url.pathname === `/requests/${requestId}`);

    const reason = page.locator("dt", { hasText: /^Reason$/ }).locator("xpath=following-sibling::dd[1]");
    const ticket = page.locator("dt", { hasText: /^Ticket$/ }).locator("xpath=following-sibling::dd[1]");
    await reason.locator(".user-text").waitFor();

    const shown = await reason.evaluate((dd) => {
      const isolated = dd.querySelector("bdi.user-text");
      return {
        // What is drawn, as a person reads it (textContent below is what the DOM holds).
        // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point
        text: (dd as HTMLElement).innerText,
        raw: dd.textContent ?? "",
        bidi: isolated ? getComputedStyle(isolated).unicodeBidi : null,
        escapes: Array.from(dd.querySelectorAll(".text-escape"), (e) => [
          e.textContent,
          e.getAttribute("title"),
        ]),
        lines: Math.round(dd.getBoundingClientRect().height / parseFloat(getComputedStyle(dd).lineHeight)),
      };
    });
    expect(shown.text).toBe("disk full\\n\\napproved by carol \u2713\\u202e ,dekcehc");
    expect(shown.raw).not.toMatch(/[\n\u202e]/);
    expect(shown.bidi).toBe("isolate");
    expect(shown.escapes).toEqual([
      ["\\n", "U+000A: an invisible or control character"],
      ["\\n", "U+000A: an invisible or control character"],
      ["\\u202e", "U+202E: an invisible or control character"],
    ]);
    expect(shown.lines).toBe(1);

    const ticketText = await ticket.evaluate((dd) => ({
      // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is the point
      text: (dd as HTMLElement).innerText,
      raw: dd.textContent ?? "",
    }));
    expect(ticketText.text).toBe("INC-1\\u2067\\u200b");
    expect(ticketText.raw).not.toMatch(/[\u2067\u200b]/);
    await screenshot(page, "user-text-hostile-reason");
    expect(session.problems()).toEqual([]);
    await session.context.close();
  });
});

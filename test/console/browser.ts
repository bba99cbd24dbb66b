import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { REPO_ROOT } from "../support/process.js";

/**
 * Debian's Chromium driven by playwright-core (never a downloaded browser), pages that record every
 * console error and CSP violation, screenshots in test-artifacts/console/, and in-page checks for
 * labels and colour contrast.
 */

export const CHROMIUM = process.env.FIREBREAK_CHROMIUM ?? "/usr/bin/chromium";
export const SCREENSHOTS = join(REPO_ROOT, "test-artifacts", "console");

export async function launchChromium(): Promise<Browser> {
  // playwright gives every launch a fresh temporary profile (its own --user-data-dir).
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface WatchedPage {
  page: Page;
  context: BrowserContext;
  /** Console errors, page errors and failed requests, except the expected ones. */
  problems(): string[];
  /** A refusal the test provokes on purpose (`409 /v1/grants/…/credential`). */
  expect(status: number, pathPattern: RegExp): void;
}

/** Requests whose failure is expected and says nothing about the console's health. */
const EXPECTED_FAILURES = [
  // Optional sign-in methods: answered 404 until a server offers OIDC.
  "/v1/auth/methods",
  // Whether a single sign-on session cookie exists, asked before any token is stored.
  "/v1/auth/session",
  // Reachability analysis: answered 404 by servers without it.
  "/reachability",
];

export async function openPage(browser: Browser, base: string): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, baseURL: base });
  // Fail with playwright's own message (what it waited for) well before the test's timeout.
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const seen: string[] = [];
  const failedUrls: string[] = [];
  const expected: { status: number; path: RegExp }[] = [];
  page.on("response", (response) => {
    if (response.status() >= 400) failedUrls.push(`${response.status()} ${new URL(response.url()).pathname}`);
  });
  page.on("console", (message) => {
    if (message.type() === "error") seen.push(message.text());
  });
  page.on("pageerror", (error) => seen.push(`page error: ${error.message}`));
  return {
    page,
    context,
    problems() {
      const unexpectedResponses = failedUrls.filter(
        (line) =>
          !EXPECTED_FAILURES.some((path) => line.endsWith(path)) &&
          !expected.some((e) => line.startsWith(`${e.status} `) && e.path.test(line.slice(4))),
      );
      // "Failed to load resource" lines repeat what the responses say; keep the others (CSP, exceptions).
      const messages = seen.filter((text) => !text.startsWith("Failed to load resource"));
      return [...messages, ...unexpectedResponses];
    },
    expect(status, path) {
      expected.push({ status, path });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/**
 * Every visible form control has an accessible name, and every visible text meets WCAG AA contrast
 * (4.5:1, or 3:1 for large text) against the background it is drawn on. Disabled controls are
 * exempt, as WCAG says. Returns the failures, empty when the page passes.
 */
export const PAGE_CHECKS = `(() => {
  const failures = [];
  const visible = (el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && style.display !== "none";
  };
  for (const el of document.querySelectorAll("input, select, textarea, button, a[href]")) {
    if (!visible(el) || el.type === "hidden") continue;
    const labelled =
      (el.labels && el.labels.length > 0) ||
      el.getAttribute("aria-label") ||
      el.getAttribute("aria-labelledby") ||
      ((el.tagName === "BUTTON" || el.tagName === "A") && el.textContent.trim().length > 0);
    if (!labelled) failures.push("no accessible name: " + el.outerHTML.slice(0, 120));
  }
  const parse = (color) => {
    const m = color.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const parts = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  };
  const luminance = ({ r, g, b }) => {
    const channel = (v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const bg = parse(getComputedStyle(node).backgroundColor);
      if (bg && bg.a > 0.5) return bg;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  for (const el of document.querySelectorAll("body *")) {
    const text = [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join("").trim();
    if (!text || !visible(el)) continue;
    if (el.closest("[disabled], [aria-disabled=true], .visually-hidden, option, canvas")) continue;
    const style = getComputedStyle(el);
    const fg = parse(style.color);
    if (!fg) continue;
    const bg = background(el);
    const l1 = luminance(fg);
    const l2 = luminance(bg);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      failures.push("contrast " + ratio.toFixed(2) + " for '" + text.slice(0, 40) + "' (" + style.color + " on rgb(" + bg.r + "," + bg.g + "," + bg.b + "))");
    }
  }
  return failures;
})()`;

export async function pageCheckFailures(page: Page): Promise<string[]> {
  return (await page.evaluate(PAGE_CHECKS)) as string[];
}

import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DIALECTS } from "../support/databases.js";
import { createPgFixture, dropPgAccounts, PG_ADMIN_URL, type PgFixture, uniqueTag } from "../support/jit.js";
import {
  type ApiClient,
  apiClient,
  createEmptyDatabase,
  processGroup,
  REPO_ROOT,
  type ServerProcess,
  temporaryDirectory,
  waitForReady,
  writeText,
} from "../support/process.js";
import {
  CHROMIUM,
  launchChromium,
  openPage,
  pageCheckFailures,
  screenshot,
  type WatchedPage,
} from "./browser.js";

/**
 * What the console shows a newcomer, on each database: the request form offers only what a policy
 * could give the viewer; the approvals inbox marks the step the viewer's approval fills; the grant
 * page says why the grant exists, who approved it, how to connect, and that an incident is open in
 * its zone; the audit table fits a 1360 px screen; and everyone, not only administrators, follows
 * the live stream, which survives a server restart and ends with the credential.
 */

const tag = uniqueTag();
const REASON = "orders-db refuses writes; clearing a stuck replication slot";

const configFor = (prefix: string, reader: string) => `version: 1
auditors: [group:security]

directory:
  users:
    alice: { groups: [sre] }
    carol: { groups: [leads] }
    dave: { groups: [leads, security] }
    erin: { groups: [security] }
    frank: { groups: [dev] }

zones:
  bastion: { cidrs: [127.0.0.0/8], labels: { tier: access }, enforcement: enforce }
  app: { cidrs: [10.30.0.0/24], enforcement: enforce }
  db: { description: The orders database, cidrs: [10.40.0.0/24], labels: { tier: data }, enforcement: enforce }
  metrics: { cidrs: [10.50.0.0/24], enforcement: monitor }
  reports: { cidrs: [10.60.0.0/24], enforcement: enforce }

flows:
  - { from: bastion, to: app, ports: [tcp/22] }

resources:
  orders-pg:
    zone: db
    type: postgres
    address: 127.0.0.1:5432
    connection: { url: "${PG_ADMIN_URL}" }
    namePrefix: ${prefix}
    roles:
      admin: { grants: [${reader}] }
  orders-replica:
    zone: db
    type: log
    address: 10.40.0.6:5432
    roles:
      read: { grants: [pg_read_all_data] }
  app-hosts:
    zone: app
    type: log
    roles:
      operator: { principals: [ops] }
  metrics-http:
    zone: metrics
    type: log
    roles:
      viewer: {}
  reports-http:
    zone: reports
    type: log
    roles:
      viewer: {}

breakGlass:
  - name: db-emergency
    zone: db
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
      - { from: group:security, count: 1 }
    justification: { minLength: 20 }
    review: { within: 24h, by: [group:security] }
  - name: replica-read
    zone: db
    resources: [orders-replica]
    roles: [read]
    eligible: [group:dev]
    duration: { default: 30m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
  - name: app-operator
    zone: app
    roles: [operator]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
  - name: reports-viewer
    zone: reports
    roles: [viewer]
    eligible: [group:dev]
    duration: { default: 30m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
`;

let browser: Browser;
let pgFixture: PgFixture;
const prefixes: string[] = [];

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, "console", "dist", "index.html")))
    throw new Error("console/dist is missing: run 'npm run build:console'");
  if (!existsSync(CHROMIUM))
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium)`);
  pgFixture = await createPgFixture(tag);
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  for (const prefix of prefixes) await dropPgAccounts(prefix);
  await pgFixture?.drop();
});

describe.each(DIALECTS)("console views on %s", (dialect) => {
  const group = processGroup();
  const prefix = `cv${tag}${dialect.slice(0, 1)}_`;
  prefixes.push(prefix);
  let removeDirectory: () => Promise<void>;
  let dropDatabase: () => Promise<void>;
  let configPath: string;
  let databaseUrl: string;
  let server: ServerProcess;
  let admin: ApiClient;
  const tokens = new Map<string, string>();
  const watched: WatchedPage[] = [];
  const checkFailures: string[] = [];
  const as = (user: string) => apiClient(server.url, tokens.get(user) ?? "");

  async function mintToken(user: string): Promise<string> {
    return (await admin.post<{ token: string }>(`/v1/users/${user}/tokens`)).token;
  }

  async function signIn(user: string, start: string): Promise<WatchedPage> {
    const session = await openPage(browser, server.url);
    watched.push(session);
    const { page } = session;
    await page.goto(start);
    await page.waitForURL(/\/sign-in\?next=/);
    await page.getByLabel("API token").fill(tokens.get(user) ?? "");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((url) => url.pathname === start.split("?")[0]);
    await page.locator("header").getByText(user, { exact: false }).waitFor();
    return session;
  }

  async function capture(page: Page, name: string) {
    await page.waitForTimeout(400);
    await screenshot(page, `views-${dialect}-${name}`);
    for (const failure of await pageCheckFailures(page)) checkFailures.push(`${name}: ${failure}`);
  }

  /** alice asks for admin on the orders database (two steps: leads, then security). */
  async function askForDb(): Promise<string> {
    const created = await as("alice").post<{ id: string }>("/v1/requests", {
      zone: "db",
      role: "admin",
      reason: REASON,
      ticket: "INC-4711",
    });
    return created.id;
  }

  const optionValues = (page: Page) =>
    page
      .locator("#target option")
      .evaluateAll((options) => options.map((option) => (option as HTMLOptionElement).value).filter(Boolean));

  beforeAll(async () => {
    const directory = await temporaryDirectory();
    removeDirectory = directory.remove;
    const database = await createEmptyDatabase(dialect);
    dropDatabase = database.drop;
    databaseUrl = database.url;
    configPath = await writeText(join(directory.path, "firebreak.yaml"), configFor(prefix, pgFixture.reader));
    server = await group.startServer({ config: configPath, db: databaseUrl });
    admin = apiClient(server.url, server.admin?.token ?? "");
    for (const user of ["alice", "carol", "dave", "erin", "frank"]) tokens.set(user, await mintToken(user));
  }, 60_000);

  afterAll(async () => {
    for (const session of watched) await session.context.close().catch(() => {});
    await group.killAll();
    await dropDatabase?.();
    await removeDirectory?.();
  });

  it("offers only the zones and resources some policy could give the viewer", async () => {
    const alice = await signIn("alice", "/requests/new");
    await alice.page.locator("#target").waitFor();
    // metrics has no policy; reports and the replica only have policies for group dev.
    expect((await optionValues(alice.page)).sort()).toEqual([
      "resource:app-hosts",
      "resource:orders-pg",
      "zone:app",
      "zone:db",
    ]);
    await alice.page.getByLabel("Zone or resource").selectOption("resource:orders-pg");
    await expect.poll(() => alice.page.getByLabel("Role").inputValue()).toBe("admin");
    await alice.page.locator('.verdict[data-outcome="deny"]').waitFor();
    await capture(alice.page, "01-request-targets");

    const frank = await signIn("frank", "/requests/new");
    await frank.page.locator("#target").waitFor();
    expect((await optionValues(frank.page)).sort()).toEqual([
      "resource:orders-replica",
      "resource:reports-http",
      "zone:reports",
    ]);
    // The replica policy covers the replica only: its role is offered there, not on the zone.
    await frank.page.getByLabel("Zone or resource").selectOption("resource:orders-replica");
    await expect.poll(() => frank.page.getByLabel("Role").inputValue()).toBe("read");

    // A link to a target nobody offers this viewer says so instead of showing an empty form.
    await alice.page.goto("/requests/new?zone=metrics");
    await alice.page.getByText("No break-glass policy lets you ask for access to metrics").waitFor();
    expect(await alice.page.getByLabel("Zone or resource").inputValue()).toBe("");
  });

  it("marks the approval step the viewer's approval would fill", async () => {
    const requestId = await askForDb();
    const stepsOf = async (page: Page) => {
      const card = page.locator(`[data-request="${requestId}"]`);
      await card.waitFor();
      return card
        .locator(".steps li")
        .evaluateAll((items) => items.map((item) => (item as HTMLElement).dataset.mine === "true"));
    };

    const carol = await signIn("carol", "/approvals");
    expect(await stepsOf(carol.page)).toEqual([true, false]);
    expect(await carol.page.locator(`[data-request="${requestId}"] .step-mine`).textContent()).toContain(
      "your approval fills this step",
    );
    // A pending request was closed for no reason: the card has no empty "Closed because" line.
    expect(await carol.page.locator(`[data-request="${requestId}"] dt`).allTextContents()).not.toContain(
      "Closed because",
    );
    await capture(carol.page, "02-approvals-step-marked");
    const erin = await signIn("erin", "/approvals");
    expect(await stepsOf(erin.page)).toEqual([false, true]);
    // dave is in both groups: either open step can be his.
    const dave = await signIn("dave", "/approvals");
    expect(await stepsOf(dave.page)).toEqual([true, true]);
    expect(
      await dave.page.locator(`[data-request="${requestId}"] .step-mine`).first().textContent(),
    ).toContain("you can fill this step");

    const card = carol.page.locator(`[data-request="${requestId}"]`);
    await card.getByLabel("Comment (required to deny)").fill("leads: go ahead");
    await card.getByRole("button", { name: "Approve" }).click();
    await carol.page.getByText(`Approved alice's request (${requestId})`).waitFor();
    // Once the leads' step is full, only the security step is left for dave.
    await dave.page.reload();
    expect(await stepsOf(dave.page)).toEqual([false, true]);
    await capture(dave.page, "03-approvals-second-step");
    // The requester and someone who already approved fill nothing.
    await carol.page.goto(`/requests/${requestId}`);
    await carol.page.getByText("waiting for 1 approval from group:security").waitFor();
    expect(await carol.page.locator(".step-mine").count()).toBe(0);
    await as("alice").post(`/v1/requests/${requestId}/cancel`);
  });

  it("shows the grant's reason, ticket, approvers, connection and an incident open in its zone", async () => {
    const requestId = await askForDb();
    // The comment hides a right-to-left override: the page shows it as an escape, not reversed text.
    await as("carol").post(`/v1/requests/${requestId}/approve`, { comment: "checked INC-4711\u202e ok" });
    await as("erin").post(`/v1/requests/${requestId}/approve`, { comment: "security agrees" });
    const grant = await as("alice").post<{ id: string }>(`/v1/requests/${requestId}/activate`);
    await admin.post("/v1/incidents", {
      id: "INC-4711",
      zone: "db",
      severity: 1,
      title: "orders writes fail",
    });

    const alice = await signIn("alice", `/grants/${grant.id}`);
    const { page } = alice;
    const incident = page.locator(".notice-incident");
    await incident.waitFor();
    expect(await incident.textContent()).toContain("INC-4711 (severity 1): orders writes fail");
    const why = page.locator('section[aria-labelledby="grant-request"]');
    await why.getByText(REASON).waitFor();
    const whyText = (await why.textContent()) ?? "";
    expect(whyText).toContain("INC-4711");
    expect(whyText).toContain("carol, erin");
    expect(whyText).toContain("security agrees");
    expect(whyText).toContain("checked INC-4711\\u202e ok");
    expect(whyText).not.toContain("\u202e");
    const connection = page.locator('section[aria-labelledby="grant-connection"]');
    const pg = connection.locator('li[data-resource="orders-pg"]');
    await pg.waitFor();
    expect(await pg.textContent()).toContain("orders-pg (postgres)");
    expect(await pg.textContent()).toContain("127.0.0.1:5432");
    expect(await pg.textContent()).toContain("issued");
    expect(await connection.locator("pre.command").textContent()).toBe(`firebreak connect ${grant.id}`);
    expect(await connection.textContent()).toContain("starts psql");
    await capture(page, "04-grant-detail");

    // The reviewer sees where it led but gets no command: the credential is not theirs.
    const erin = await signIn("erin", `/grants/${grant.id}`);
    await erin.page
      .locator('li[data-resource="orders-pg"]')
      .getByText("127.0.0.1:5432", { exact: true })
      .waitFor();
    expect(await erin.page.locator("pre.command").count()).toBe(0);
    // Erin, an auditor, follows incidents live: resolving it clears the notice without a reload.
    await erin.page.locator(".notice-incident").waitFor();
    await admin.post("/v1/incidents", { id: "INC-4711", zone: "db", status: "resolved" });
    await erin.page.locator(".notice-incident").waitFor({ state: "detached", timeout: 5000 });

    // A closed grant says nothing about incidents opened after it.
    await admin.post("/v1/incidents", { id: "INC-4712", zone: "db", severity: 2, title: "again" });
    await as("alice").post(`/v1/grants/${grant.id}/revoke`, { reason: "slot cleared" });
    await page.reload();
    await page.getByText("slot cleared").first().waitFor();
    expect(await page.locator(".notice-incident").count()).toBe(0);
    expect(await page.locator("pre.command").count()).toBe(0);
    await admin.post("/v1/incidents", { id: "INC-4712", zone: "db", status: "resolved" });
  });

  it("fits the audit table on a 1360 px screen", async () => {
    // Long words do not wrap by themselves: a runbook link in a reason, a digest in a context.
    const linked = await as("alice").post<{ id: string }>("/v1/requests", {
      zone: "app",
      role: "operator",
      reason:
        "following https://runbooks.example.com/orders/app-hosts/restart-the-stuck-payment-workers-safely",
    });
    const erin = await signIn("erin", "/audit");
    const { page } = erin;
    await page.locator(".verify[data-verified='true']").waitFor();
    await page.locator(`tr[data-type="request.created"]`).getByRole("link", { name: linked.id }).waitFor();
    // Open the widest rows' details, as someone reading them would.
    await page.locator('tr[data-type="config.applied"] summary').first().click();
    await page.locator('tr[data-type="request.created"] summary').first().click();
    const widths = (await page.evaluate(`(() => {
      const wrap = document.querySelector(".table-wrap");
      const table = wrap.querySelector("table");
      const last = table.querySelector("thead th:last-child").getBoundingClientRect();
      return {
        viewport: window.innerWidth,
        page: document.documentElement.scrollWidth,
        wrap: wrap.clientWidth,
        table: table.scrollWidth,
        lastRight: last.right,
      };
    })()`)) as { viewport: number; page: number; wrap: number; table: number; lastRight: number };
    expect(widths.viewport).toBe(1360);
    expect(widths.page).toBeLessThanOrEqual(widths.viewport);
    expect(widths.table).toBeLessThanOrEqual(widths.wrap);
    expect(widths.lastRight).toBeLessThanOrEqual(widths.viewport);
    await capture(page, "05-audit-1360");
    await as("alice").post(`/v1/requests/${linked.id}/cancel`);
  });

  it("streams live to non-administrators, reconnects after a restart, and signs out when the credential ends", async () => {
    // Only this page lives through the restart and the revocation below.
    for (const session of watched) await session.context.close();
    const carol = await signIn("carol", "/approvals");
    await carol.page.locator(".live-dot.live-live").waitFor();
    // Polling would take 10 s on this page; the stream brings it at once.
    const first = await askForDb();
    await carol.page.locator(`[data-request="${first}"]`).waitFor({ timeout: 3000 });

    // The server goes away and comes back on the same address: the stream comes back by itself.
    carol.expect(503, /^\/v1\/events$/);
    await server.stop();
    await carol.page.locator(".live-dot.live-reconnecting").waitFor();
    server = await group.startServer({
      config: configPath,
      db: databaseUrl,
      listen: new URL(server.url).host,
    });
    await waitForReady(server.url);
    await carol.page.locator(".live-dot.live-live").waitFor({ timeout: 20_000 });
    const second = await askForDb();
    await carol.page.locator(`[data-request="${second}"]`).waitFor({ timeout: 3000 });
    await capture(carol.page, "06-approvals-live");

    // Revoking carol's tokens ends her stream; the console then signs her out.
    carol.expect(401, /^\/v1\/(events|whoami)$/);
    await admin.post("/v1/users/carol/tokens/revoke");
    await carol.page.waitForURL(/\/sign-in/, { timeout: 15_000 });
    await carol.page.getByText("Your session ended").waitFor();
    for (const id of [first, second]) await as("alice").post(`/v1/requests/${id}/cancel`);
  }, 90_000);

  it("kept every page free of console errors, CSP violations, unlabelled controls and low contrast", () => {
    expect(watched.flatMap((session) => session.problems())).toEqual([]);
    expect(checkFailures).toEqual([]);
  });
});

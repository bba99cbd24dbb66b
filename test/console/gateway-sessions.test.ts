import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import pg from "pg";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPgFixture, dropPgAccounts, PG_ADMIN_URL, type PgFixture, uniqueTag } from "../support/jit.js";
import {
  type ApiClient,
  apiClient,
  createEmptyDatabase,
  processGroup,
  REPO_ROOT,
  type ServerProcess,
  temporaryDirectory,
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
 * Issue 12.5, the console part: the grant page and the review page show the grant's gateway
 * sessions with their transcripts (statement, time, duration, rows, refused or not), through the
 * sessions API, against a real server process, the real PostgreSQL behind the real gateway.
 */

const tag = uniqueTag();
const prefix = `cs${tag}_`;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

const configFor = (reader: string, gatewayPort: number) => `version: 1
auditors: [group:security]
directory:
  users:
    alice: { groups: [sre] }
    erin: { groups: [security] }
zones:
  db: { cidrs: [127.0.0.0/8] }
resources:
  ledger-pg:
    zone: db
    type: postgres
    address: 127.0.0.1:5432
    connection: { url: "${PG_ADMIN_URL}" }
    namePrefix: ${prefix}
    access: gateway
    roles:
      diagnose:
        grants: [${reader}]
        statements:
          - name: no-drop
            deny: "statement.command.startsWith('DROP')"
            message: dropping is not part of diagnosing
          - allow: "statement.category == 'read'"
breakGlass:
  - name: ledger
    zone: db
    roles: [diagnose]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    review: { within: 24h, by: [group:security] }
gateway:
  postgres:
    listen: 127.0.0.1:${gatewayPort}
`;

let browser: Browser;
let fixture: PgFixture;

describe("console: a grant's gateway sessions and transcripts", () => {
  const group = processGroup();
  let removeDirectory: () => Promise<void>;
  let dropDatabase: () => Promise<void>;
  let server: ServerProcess;
  let admin: ApiClient;
  let gatewayPort: number;
  const tokens = new Map<string, string>();
  const watched: WatchedPage[] = [];
  const as = (user: string) => apiClient(server.url, tokens.get(user) ?? "");

  async function signIn(user: string, start: string): Promise<WatchedPage> {
    const session = await openPage(browser, server.url);
    watched.push(session);
    const { page } = session;
    await page.goto(start);
    await page.waitForURL(/\/sign-in\?next=/);
    await page.getByLabel("API token").fill(tokens.get(user) ?? "");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL((url) => url.pathname === start.split("?")[0]);
    return session;
  }

  beforeAll(async () => {
    if (!existsSync(join(REPO_ROOT, "console", "dist", "index.html")))
      throw new Error("console/dist is missing: run 'npm run build:console'");
    if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium`);
    fixture = await createPgFixture(tag);
    browser = await launchChromium();
    const directory = await temporaryDirectory();
    removeDirectory = directory.remove;
    const database = await createEmptyDatabase("sqlite");
    dropDatabase = database.drop;
    gatewayPort = await freePort();
    const configPath = await writeText(
      join(directory.path, "firebreak.yaml"),
      configFor(fixture.reader, gatewayPort),
    );
    server = await group.startServer({ config: configPath, db: database.url });
    admin = apiClient(server.url, server.admin?.token ?? "");
    for (const user of ["alice", "erin"])
      tokens.set(user, (await admin.post<{ token: string }>(`/v1/users/${user}/tokens`)).token);
  }, 90_000);

  afterAll(async () => {
    for (const session of watched) await session.context.close().catch(() => {});
    await browser?.close();
    await group.killAll();
    await dropDatabase?.();
    await removeDirectory?.();
    await dropPgAccounts(prefix);
    await fixture?.drop();
  });

  it("shows the statements run, the refused one with its rule, on the grant page and to the reviewer", async () => {
    const request = await as("alice").post<{ id: string }>("/v1/requests", {
      resource: "ledger-pg",
      role: "diagnose",
      reason: "payments look stuck",
    });
    const activated = await as("alice").post<{ id: string; grant?: { id: string } }>(
      `/v1/requests/${request.id}/activate`,
    );
    const grantId = activated.grant?.id ?? activated.id;
    const credential = await as("alice").post<{ credentials: { secret: string }[] }>(
      `/v1/grants/${grantId}/credential`,
    );
    const client = new pg.Client({
      host: "127.0.0.1",
      port: gatewayPort,
      user: grantId,
      password: credential.credentials[0]?.secret,
      database: "ledger-pg",
    });
    client.on("error", () => {});
    await client.connect();
    const rows = await client.query(`select count(*) as n from ${fixture.table}`);
    expect(rows.rows).toHaveLength(1);
    const refused = await client
      .query(`drop table ${fixture.table}`)
      .catch((error: { code?: string; message: string }) => error);
    expect(refused).toMatchObject({
      code: "42501",
      message: expect.stringContaining("dropping is not part of diagnosing"),
    });
    // The session goes on after a refusal.
    await client.query("select 2 as two /* <b>not markup</b> */");
    await client.end();

    const alice = await signIn("alice", `/grants/${grantId}`);
    const panel = alice.page.locator(`section[data-sessions="${grantId}"]`);
    const statementRows = panel.locator("table.transcript tbody tr");
    await expect.poll(() => statementRows.count(), { timeout: 10_000 }).toBe(3);
    const texts = await statementRows.locator("td:nth-child(3)").allTextContents();
    expect(texts).toEqual([
      `select count(*) as n from ${fixture.table}`,
      `drop table ${fixture.table}`,
      "select 2 as two /* <b>not markup</b> */",
    ]);
    // The user's text is text: no element was made of it.
    expect(await panel.locator("b").count()).toBe(0);
    const outcomes = await statementRows.locator("td[data-outcome]").allTextContents();
    expect(outcomes[0]).toContain("SELECT");
    expect(outcomes[1]).toBe("Refused by no-drop: dropping is not part of diagnosing");
    expect(await panel.locator('tr[data-refused="true"]').count()).toBe(1);
    expect((await statementRows.first().locator("td:nth-child(5)").textContent())?.trim()).toBe("1");
    await screenshot(alice.page, "gateway-sessions-grant");

    // The reviewer sees the same transcript beside the review form once the grant has closed.
    await as("alice").post(`/v1/grants/${grantId}/revoke`, { reason: "found it" });
    const erin = await signIn("erin", "/reviews");
    const reviewPanel = erin.page.locator(`li[data-grant="${grantId}"] section[data-sessions="${grantId}"]`);
    await expect
      .poll(() => reviewPanel.locator("table.transcript tbody tr").count(), { timeout: 10_000 })
      .toBe(3);
    expect(await reviewPanel.locator('tr[data-refused="true"] td[data-outcome]').textContent()).toContain(
      "no-drop",
    );
    expect(await reviewPanel.locator("[data-end-reason]").textContent()).toBeTruthy();
    await screenshot(erin.page, "gateway-sessions-review");
    for (const session of watched) expect(await pageCheckFailures(session.page)).toEqual([]);
  });
});

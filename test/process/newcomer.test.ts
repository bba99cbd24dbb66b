import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/databases.js";
import {
  type ApiClient,
  apiClient,
  type CliResult,
  describeResult,
  killAllProcesses,
  parseJson,
  processGroup,
  REPO_ROOT,
  type ServerProcess,
  temporaryDirectory,
} from "../support/process.js";

/**
 * What a newcomer meets on the command line, against a server running the shipped example: the
 * words of refusals, `explain` as a CI gate, a refused reload, the audit tail, the hints on a grant.
 */

vi.setConfig({ testTimeout: 90_000 });
afterAll(killAllProcesses);

const EXAMPLE = join(REPO_ROOT, "examples", "firebreak.yaml");
const REASON = "payments-db refuses writes; clear the stuck slot";

function expectExit(result: CliResult, code: number) {
  expect(result.code, describeResult(result)).toBe(code);
}

describe("explain as a CI gate (offline, no server)", () => {
  const group = processGroup();
  afterAll(group.killAll);
  const explain = (...extra: string[]) =>
    group.cli(["explain", "alice", "payments-db", "--role", "admin", "--config", EXAMPLE, ...extra]);

  test("DENY exits 1 and names every unmet condition once", async () => {
    const denied = await explain();
    expectExit(denied, 1);
    expect(denied.stdout).toContain("DENY: alice may not take role 'admin' on payments-db");
    for (const code of ["[JUSTIFICATION_TOO_SHORT]", "[TICKET_REQUIRED]", "[CONDITION_FALSE]"])
      expect(denied.stdout.split(code).length - 1, `${code} once\n${denied.stdout}`).toBe(1);
    const json = await group.cli([
      "--json",
      "explain",
      "alice",
      "payments-db",
      "--role",
      "admin",
      "--config",
      EXAMPLE,
    ]);
    expectExit(json, 1);
    expect(
      parseJson<{ explanation: { decision: { outcome: string } } }>(json).explanation.decision.outcome,
    ).toBe("deny");
  });

  test("--incident stands in for an open incident, so an incident-gated policy can be shown to allow", async () => {
    const withIncident = await explain(
      "--reason",
      REASON,
      "--ticket",
      "INC-4711",
      "--incident",
      "2",
      "--source-zone",
      "bastion",
    );
    expectExit(withIncident, 0);
    expect(withIncident.stdout).toContain("NEEDS APPROVAL under policy payments-db-emergency");
    // Severity 1 meets the policy's autoApprove condition too.
    const worst = await explain(
      "--reason",
      REASON,
      "--ticket",
      "INC-4711",
      "--incident",
      "1",
      "--source-zone",
      "bastion",
    );
    expectExit(worst, 0);
    expect(worst.stdout).toMatch(/^ALLOW/);
    // Severity 3 does not meet `severity <= 2`.
    expectExit(await explain("--reason", REASON, "--ticket", "INC-4711", "--incident", "3"), 1);
  });

  test("a bad --incident, or --incident against a server, is a usage error", async () => {
    expectExit(await explain("--incident", "9"), 2);
    const online = await group.cli(
      ["explain", "alice", "payments-db", "--role", "admin", "--incident", "2"],
      {
        url: "http://127.0.0.1:9",
      },
    );
    expectExit(online, 2);
    expect(online.stderr).toContain("--incident simulates a signal offline");
  });
});

describe("the CLI against a server running the example", () => {
  const group = processGroup();
  let database: TestDatabase;
  let remove: () => Promise<void>;
  let configPath: string;
  let server: ServerProcess;
  let admin: ApiClient;
  let adminToken: string;
  const tokens = new Map<string, string>();
  const as = (user: string, args: string[]) =>
    group.cli(args, { url: server.url, token: user === "admin" ? adminToken : tokens.get(user) });

  beforeAll(async () => {
    database = await createTestDatabase("sqlite");
    const directory = await temporaryDirectory();
    remove = directory.remove;
    configPath = join(directory.path, "firebreak.yaml");
    await writeFile(configPath, await readFile(EXAMPLE, "utf8"));
    server = await group.startServer({ config: configPath, db: database.url });
    adminToken = server.admin?.token ?? "";
    admin = apiClient(server.url, adminToken);
    for (const user of ["alice", "carol", "erin"]) {
      const minted = await as("admin", ["users", "token", user, "-q"]);
      expectExit(minted, 0);
      expect(minted.stdout.trim()).toMatch(/^fbk_\S+$/);
      tokens.set(user, minted.stdout.trim());
    }
  });
  afterAll(async () => {
    await group.killAll();
    await database?.drop();
    await remove?.();
  });

  test("a mistyped option is reported as unknown, not as a missing required one", async () => {
    const typo = await as("alice", ["request", "payments-db", "--rol", "admin", "--reason", REASON]);
    expectExit(typo, 2);
    expect(typo.stderr).toContain("unknown option '--rol'");
    expect(typo.stderr).not.toContain("required option");
    // A mistyped command gets a suggestion and a pointer to help, not the whole help.
    const command = await as("alice", ["requets"]);
    expectExit(command, 2);
    expect(command.stderr).toMatch(/Did you mean .*\brequests\b/);
    expect(command.stderr).toContain("--help");
    expect(command.stderr).not.toContain("Commands:");
    // A required option really missing is still said.
    const missing = await as("alice", ["request", "payments-db", "--role", "admin"]);
    expectExit(missing, 2);
    expect(missing.stderr).toContain("required option '--reason <text>' not specified");
  });

  test("a refusal of a value names the flag it came from, and JSON errors carry the request id", async () => {
    const args = ["request", "payments-db", "--role", "admin", "--for", "soon", "--reason", REASON];
    const human = await as("alice", args);
    expectExit(human, 2);
    expect(human.stderr).toContain("--for:");
    expect(human.stderr).not.toMatch(/- duration:|body is not valid/);
    const json = await as("alice", ["--json", ...args]);
    expectExit(json, 2);
    const { error } = parseJson<{ error: { code: string; requestId?: string; details: unknown } }>(json);
    expect(error.code).toBe("VALIDATION_FAILED");
    expect(error.requestId).toMatch(/\S/);
  });

  test("--help ends with examples and the exit codes", async () => {
    const help = await group.cli(["--help"]);
    expectExit(help, 0);
    expect(help.stdout).toContain("Examples:");
    expect(help.stdout).toContain(
      "Exit codes: 0 success, 1 refused or failed (explain: DENY), 2 usage error.",
    );
  });

  test("a grant says where it leads and how to connect; a grant with nothing secret can be shown again", async () => {
    expectExit(
      await as("admin", ["incident", "open", "payments-db", "--id", "INC-4711", "--severity", "2"]),
      0,
    );
    const created = await as("alice", [
      "--json",
      "request",
      "payments-db",
      "--role",
      "admin",
      "--reason",
      REASON,
      "--ticket",
      "INC-4711",
    ]);
    expectExit(created, 0);
    const requestId = parseJson<{ id: string }>(created).id;
    expectExit(await as("carol", ["approve", requestId, "--comment", "go"]), 0);
    const activated = await as("alice", ["activate", requestId]);
    expectExit(activated, 0);
    const grantId = /grt_[a-z0-9]+/.exec(activated.stdout)?.[0] ?? "";
    expect(activated.stdout).toContain("alice holds role 'admin'");
    expect(activated.stdout).toContain("-> 10.40.0.5:5432");
    expect(activated.stdout).toContain(`use: firebreak connect ${grantId}`);
    const grants = await as("alice", ["grants", "--active"]);
    expect(grants.stdout).toMatch(new RegExp(`${grantId}\\s+active.*\\bscheduled\\b`));

    // The example's resources issue nothing secret: showing them twice takes nothing away.
    for (let i = 0; i < 2; i++) {
      const shown = await as("alice", ["credential", grantId]);
      expectExit(shown, 0);
      expect(shown.stdout).toContain("(no secret: this part can be shown again)");
    }
    // The review waits for the end.
    const early = await as("erin", ["review", grantId, "--accept", "--notes", "too early"]);
    expectExit(early, 1);
    expect(early.stderr).toContain("[INVALID_STATE]");
    const revoked = await as("alice", ["revoke", grantId, "--reason", "done early"]);
    expectExit(revoked, 0);
    expect(revoked.stdout).toContain("alice held role 'admin'");
    expect(revoked.stdout).not.toContain("use: firebreak connect");
    expectExit(await as("erin", ["review", grantId, "--accept", "--notes", "matched INC-4711"]), 0);
  });

  test("audit tail has a header, and token.issued says for whom", async () => {
    const tail = await as("admin", ["audit", "tail", "-n", "200"]);
    expectExit(tail, 0);
    const lines = tail.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^\s+SEQ {2}TIME\s+TYPE\s+ACTOR\s+ABOUT$/);
    const issued = lines.find((line) => line.includes("token.issued") && line.includes("user carol"));
    expect(issued, tail.stdout).toBeDefined();
    // Columns line up under the header.
    const typeColumn = lines[0]?.indexOf("TYPE") ?? -1;
    expect(issued?.indexOf("token.issued")).toBe(typeColumn);
  });

  test("a refused reload is audited and says the running configuration is kept; an applied one is summarised", async () => {
    const good = await readFile(configPath, "utf8");
    await writeFile(configPath, `${good}\nflows: [ { from: nowhere } ]\n`);
    const refused = await as("admin", ["config", "reload"]);
    expectExit(refused, 1);
    expect(refused.stderr).toMatch(/the running configuration \([0-9a-f]{12}\) is kept/);
    const { events } = await admin.get<{ events: { type: string; context: Record<string, unknown> }[] }>(
      "/v1/audit?type=config.refused",
    );
    expect(events).toHaveLength(1);
    expect(events[0]?.context).toMatchObject({
      errorCount: expect.any(Number),
      keptDigest: expect.any(String),
    });
    expect((events[0]?.context.errorCount as number) > 0).toBe(true);

    await writeFile(
      configPath,
      good.replace("zones:\n", "zones:\n  scratch:\n    cidrs: [10.99.0.0/24]\n    enforcement: monitor\n"),
    );
    const applied = await as("admin", ["config", "reload"]);
    expectExit(applied, 0);
    expect(applied.stdout).toMatch(/^applied configuration [0-9a-f]{12}\n {2}zones: added scratch/);
    expect(applied.stdout).not.toContain("{");
    await writeFile(configPath, good);
    expectExit(await as("admin", ["config", "reload"]), 0);
  });
});

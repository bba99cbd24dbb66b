import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../support/databases.js";
import {
  type ApiClient,
  apiClient,
  type CliOptions,
  type CliResult,
  describeResult,
  killAllProcesses,
  parseJson,
  processGroup,
  REPO_ROOT,
  type ServerProcess,
  temporaryDirectory,
  writeText,
} from "../support/process.js";
import { BROKEN_CONFIG, BROKEN_CONFIG_MISTAKES, GOOD_JUSTIFICATION, processTestConfig } from "./fixtures.js";

type RequestView = { id: string; state: string; next: string; grantId: string | null };
type GrantView = { id: string; state: string; secondsLeft: number };
type ErrorShape = { error: { code: string; message: string; details?: { reasons?: { code: string }[] } } };

/** Nothing listens here: a CLI that needs a server fails fast, one that must not need one passes. */
const NO_SERVER = "http://127.0.0.1:9";
/** Well-formed, so the server looks it up (and finds nothing) instead of refusing its shape. */
const NO_SUCH_REQUEST = "req_aaaaaaaa0123456789abcdef";

// Real processes on a shared machine: generous limits, so load slows these tests but never fails them.
vi.setConfig({ testTimeout: 90_000 });
afterAll(killAllProcesses);

function expectExit(result: CliResult, code: number) {
  expect(result.code, describeResult(result)).toBe(code);
}

/** Under --json an error is `{ "error": { "code", "message" } }` on stdout. */
function expectJsonError(result: CliResult, code?: string): ErrorShape["error"] {
  const parsed = parseJson<ErrorShape>(result);
  expect(parsed.error, describeResult(result)).toMatchObject({
    code: code ?? expect.stringMatching(/^[A-Z][A-Z_]+$/),
    message: expect.any(String),
  });
  expect(parsed.error.message.length).toBeGreaterThan(0);
  return parsed.error;
}

// SQLite only: the demo is the same client code whatever the database. Its grant lasts 20 s by
// design (a window one can watch close), so it runs beside the other CLI tests rather than after.
describe.concurrent("firebreak demo (sqlite)", () => {
  test("plays the 2 a.m. story against a fresh server and ends with the chain OK", async ({
    onTestFinished,
  }) => {
    const database = await createTestDatabase("sqlite");
    onTestFinished(database.drop);
    const group = processGroup();
    onTestFinished(group.killAll);
    const server = await group.startServer({
      config: join(REPO_ROOT, "examples", "firebreak.yaml"),
      db: database.url,
    });
    const demo = await group.cli(["demo", "--step-delay", "0"], {
      url: server.url,
      token: server.admin?.token,
      timeoutMs: 100_000,
    });
    expect(demo.code, describeResult(demo)).toBe(0);
    expect(demo.stdout).toContain("[SELF_APPROVAL]");
    expect(demo.stdout).toMatch(/grt_\S+: expired; revocation verified\./);
    // The gateway act (issue 12.8), through psql against the real PostgreSQL at 127.0.0.1:5432:
    // the read in the transcript, the DROP refused by the role's rule, the session cut at expiry.
    expect(demo.stdout).not.toContain("Skipped:");
    expect(demo.stdout).toMatch(
      /statement: SELECT current_user AS login, current_database\(\) AS db; -> SELECT 1/,
    );
    expect(demo.stdout).toMatch(/\| ERROR: {2}42501: DROP and TRUNCATE are not part of an incident fix/);
    expect(demo.stdout).toMatch(/statement: DROP TABLE payments_ledger; -> REFUSED by no-drop/);
    expect(demo.stdout).toMatch(/\| FATAL: {2}57P01: terminating connection/);
    // The recorded end reason races the target's own termination at revoke (either may be first).
    expect(demo.stdout).toMatch(/session ses_\S+ ended: (?!still open)/);
    expect(demo.stdout.trimEnd().split("\n").at(-1)).toMatch(/Audit chain: OK, \d+ events\./);
  });
});

describe.concurrent.each(DIALECTS)("CLI contract on %s", (dialect) => {
  describe("against a running server", () => {
    const group = processGroup();
    let database: TestDatabase;
    let remove: () => Promise<void>;
    let server: ServerProcess;
    let admin: ApiClient;
    let serial = 0;
    const as = (token: string, args: string[], options: CliOptions = {}) =>
      group.cli(args, { url: server.url, token, ...options });

    /** A new user of the given groups with a name no other test uses; returns its token. */
    async function newUser(groups: string[]) {
      const name = `${groups[0] ?? "nobody"}-${++serial}`;
      const { token } = await admin.post<{ token: string }>("/v1/users", { name, groups });
      return { name, token, api: apiClient(server.url, token) };
    }

    beforeAll(async () => {
      database = await createTestDatabase(dialect);
      const directory = await temporaryDirectory();
      remove = directory.remove;
      const config = await writeText(join(directory.path, "firebreak.yaml"), processTestConfig());
      server = await group.startServer({ config, db: database.url });
      admin = apiClient(server.url, server.admin?.token ?? "");
    });
    afterAll(async () => {
      await group.killAll();
      await database?.drop();
      await remove?.();
    });

    test("a request walks through request, approve and activate, and human output says what happens next", async () => {
      const requester = await newUser(["sre"]);
      const lead = await newUser(["leads"]);

      const created = await as(requester.token, [
        "request",
        "vault",
        "--role",
        "admin",
        "--for",
        "10m",
        "--reason",
        GOOD_JUSTIFICATION.reason,
        "--ticket",
        GOOD_JUSTIFICATION.ticket,
      ]);
      expectExit(created, 0);
      const id = /^(req_\S+)\s+PENDING/m.exec(created.stdout)?.[1];
      expect(id, created.stdout).toBeDefined();
      expect(created.stdout).toContain("next: waiting for 1 approval from group:leads");

      const [listed, shown] = await Promise.all([
        as(requester.token, ["requests"]),
        as(requester.token, ["show", id ?? ""]),
      ]);
      expectExit(listed, 0);
      const row = listed.stdout.split("\n").find((line) => line.startsWith(id ?? "-"));
      expect(row, listed.stdout).toMatch(/\bpending\b.*waiting for 1 approval from group:leads/);
      expectExit(shown, 0);
      expect(shown.stdout).toContain(`${id}  PENDING`);
      expect(shown.stdout).toContain("next: waiting for 1 approval from group:leads");

      // Nobody approves their own request: refused, exit 1, with the code.
      const own = await as(requester.token, ["approve", id ?? ""]);
      expectExit(own, 1);
      expect(own.stderr).toContain("SELF_APPROVAL");
      expect(own.stdout).toBe("");

      const approved = await as(lead.token, ["approve", id ?? "", "--comment", "go ahead"]);
      expectExit(approved, 0);
      expect(approved.stdout).toContain(`${id}  APPROVED`);
      expect(approved.stdout).toContain(`approved by ${lead.name}: go ahead`);
      expect(approved.stdout).toMatch(/next: ready: the requester activates it/);

      const activated = await as(requester.token, ["--json", "activate", id ?? ""]);
      expectExit(activated, 0);
      const grant = parseJson<GrantView>(activated);
      const activatedAt = Date.now();
      expect(grant).toMatchObject({ state: "active" });
      expect(grant.secondsLeft).toBeGreaterThan(590);

      // Human output of grants shows the time left.
      const grants = await as(requester.token, ["grants"]);
      expectExit(grants, 0);
      expect(grants.stdout).toMatch(/^ID\s+STATE\s+USER\s+TARGET\s+ROLE\s+LEFT/m);
      const grantRow = grants.stdout.split("\n").find((line) => line.startsWith(grant.id));
      const left = /\bactive\b.*\s(\d+)m([0-5]\d)s\s/.exec(grantRow ?? "");
      expect(left, grants.stdout).not.toBeNull();
      // Whatever a loaded machine made the CLI wait, the time shown is the time really left.
      const shownSeconds = Number(left?.[1]) * 60 + Number(left?.[2]);
      const elapsed = Math.ceil((Date.now() - activatedAt) / 1000);
      expect(shownSeconds).toBeLessThanOrEqual(grant.secondsLeft);
      expect(shownSeconds).toBeGreaterThanOrEqual(grant.secondsLeft - elapsed - 2);
    });

    test("a request policy refuses exits 1 with POLICY_DENIED and lists every unmet condition", async () => {
      const requester = await newUser(["sre"]);
      const outsider = await newUser(["marketing"]);
      const args = ["request", "vault", "--role", "admin", "--reason", "too short"];
      const [human, json] = await Promise.all([
        as(requester.token, args),
        as(outsider.token, ["--json", ...args]),
      ]);
      expectExit(human, 1);
      expect(human.stderr).toContain("POLICY_DENIED");
      expect(human.stderr).toContain("[JUSTIFICATION_TOO_SHORT]");
      expect(human.stderr).toContain("[TICKET_REQUIRED]");

      expectExit(json, 1);
      const error = expectJsonError(json, "POLICY_DENIED");
      expect(error.details?.reasons?.map((r) => r.code).sort()).toEqual([
        "JUSTIFICATION_TOO_SHORT",
        "NOT_ELIGIBLE",
        "TICKET_REQUIRED",
      ]);
    });

    test("every reading command prints parseable JSON under --json", async () => {
      const requester = await newUser(["sre"]);
      const lead = await newUser(["leads"]);
      const pending = await requester.api.post<RequestView>("/v1/requests", {
        zone: "vault",
        role: "operator",
        duration: "10m",
        ...GOOD_JUSTIFICATION,
      });
      const other = await requester.api.post<RequestView>("/v1/requests", {
        zone: "vault",
        role: "admin",
        duration: "10m",
        ...GOOD_JUSTIFICATION,
      });
      await lead.api.post(`/v1/requests/${other.id}/approve`, {});
      const grant = await requester.api.post<GrantView>(`/v1/requests/${other.id}/activate`, {});
      const token = requester.token;

      const [whoami, requests, show, grants, explain, zones, verify] = await Promise.all([
        as(token, ["--json", "whoami"]),
        as(token, ["--json", "requests", "--state", "pending"]),
        as(token, ["--json", "show", pending.id]),
        as(token, ["--json", "grants", "--active"]),
        as(token, ["--json", "explain", requester.name, "vault", "--role", "admin"]),
        as(token, ["--json", "zones"]),
        as(admin.token, ["--json", "audit", "verify"]),
      ]);
      for (const result of [whoami, requests, show, grants, zones, verify]) expectExit(result, 0);
      // explain is a CI gate: 1 when the decision is DENY, 0 otherwise; its JSON is printed either way.
      const outcome = parseJson<{ explanation: { decision: { outcome: string } } }>(explain).explanation
        .decision.outcome;
      expectExit(explain, outcome === "deny" ? 1 : 0);

      expect(parseJson(whoami)).toMatchObject({ name: requester.name, groups: ["sre"], isAdmin: false });
      const listed = parseJson<{ requests: RequestView[] }>(requests).requests;
      expect(listed.map((r) => r.id)).toEqual([pending.id]);
      expect(listed[0]).toMatchObject({ state: "pending", next: "waiting for 1 approval from group:leads" });
      expect(parseJson(show)).toMatchObject({ id: pending.id, state: "pending" });
      expect(parseJson<{ grants: GrantView[] }>(grants).grants.map((g) => g.id)).toEqual([grant.id]);
      expect(parseJson(explain)).toMatchObject({
        user: requester.name,
        explanation: { decision: { outcome: expect.any(String) }, policies: expect.any(Array) },
      });
      expect(
        parseJson<{ zones: { name: string }[] }>(zones)
          .zones.map((z) => z.name)
          .sort(),
      ).toEqual(["ops", "vault"]);
      expect(parseJson(verify)).toMatchObject({ ok: true, count: expect.any(Number), firstBadSeq: null });
    });

    test("a refused caller and a failed call are exit 1 with the error's code", async () => {
      const [unauthenticated, missing] = await Promise.all([
        group.cli(["--json", "whoami"], { url: server.url, token: "fbk_0000000000000000.not-a-real-token" }),
        as(admin.token, ["show", NO_SUCH_REQUEST]),
      ]);
      expectExit(unauthenticated, 1);
      expectJsonError(unauthenticated, "UNAUTHENTICATED");
      expectExit(missing, 1);
      expect(missing.stderr).toMatch(/^error: .*\[NOT_FOUND\]/);
    });
  });
});

describe.concurrent("CLI contract without a server", () => {
  const group = processGroup();
  let directory: Awaited<ReturnType<typeof temporaryDirectory>>;
  let goodFile: string;
  let brokenFile: string;
  beforeAll(async () => {
    directory = await temporaryDirectory();
    goodFile = await writeText(join(directory.path, "firebreak.yaml"), processTestConfig());
    brokenFile = await writeText(join(directory.path, "broken.yaml"), BROKEN_CONFIG);
  });
  afterAll(async () => {
    await group.killAll();
    await directory?.remove();
  });
  const offline = (args: string[]) => group.cli(args, { url: NO_SERVER });

  test("validate reports every mistake with file:line:column and exits 1; a good file exits 0", async () => {
    const [broken, brokenJson, good] = await Promise.all([
      offline(["validate", brokenFile]),
      offline(["--json", "validate", brokenFile]),
      offline(["validate", goodFile]),
    ]);
    expectExit(broken, 1);
    for (const mistake of BROKEN_CONFIG_MISTAKES)
      expect(broken.stderr).toMatch(
        new RegExp(`^${brokenFile}:${mistake.line}:\\d+: ${escapeRegExp(mistake.path)}: `, "m"),
      );
    expect(broken.stderr).toContain(`${BROKEN_CONFIG_MISTAKES.length} error(s) in ${brokenFile}`);

    expectExit(brokenJson, 1);
    const report = parseJson<{
      ok: boolean;
      errors: { file: string; line: number; column: number; path: string }[];
    }>(brokenJson);
    expect(report.ok).toBe(false);
    expect(report.errors.map((e) => [e.line, e.path])).toEqual(
      BROKEN_CONFIG_MISTAKES.map((m) => [m.line, m.path]),
    );
    for (const error of report.errors) {
      expect(error.file).toBe(brokenFile);
      expect(error.column).toBeGreaterThan(0);
    }

    expectExit(good, 0);
    expect(good.stdout).toContain(`${goodFile}: OK`);
  });

  test("explain works offline on a file, with no server running", async () => {
    const base = ["explain", "dana", "vault", "--role", "admin", "--config", goodFile];
    const [denied, json] = await Promise.all([
      offline([...base, "--reason", "short"]),
      offline([
        "--json",
        ...base,
        "--reason",
        GOOD_JUSTIFICATION.reason,
        "--ticket",
        GOOD_JUSTIFICATION.ticket,
      ]),
    ]);
    // A DENY exits 1, so a pipeline can gate on it.
    expectExit(denied, 1);
    expect(denied.stdout).toMatch(/^DENY: dana may not take role 'admin' on vault/);
    expect(denied.stdout).toContain("[JUSTIFICATION_TOO_SHORT]");
    expect(denied.stdout).toContain("[TICKET_REQUIRED]");
    expect(denied.stdout).toContain("requires approvals: 1 from group:leads");
    expectExit(json, 0);
    expect(parseJson(json)).toMatchObject({
      user: "dana",
      explanation: {
        decision: {
          outcome: "needs-approval",
          policy: "vault-emergency",
          approvals: [{ from: ["group:leads"] }],
        },
      },
    });
  });

  test("schema prints the JSON Schema of the configuration", async () => {
    const schema = await offline(["schema"]);
    expectExit(schema, 0);
    const parsed = parseJson<{ $schema: string; type: string; properties: Record<string, unknown> }>(schema);
    expect(parsed.$schema).toMatch(/^https:\/\/json-schema\.org\//);
    expect(parsed.type).toBe("object");
    expect(Object.keys(parsed.properties)).toEqual(
      expect.arrayContaining(["version", "zones", "breakGlass"]),
    );
  });

  test("an unreachable server is exit 1 with UNREACHABLE", async () => {
    const result = await group.cli(["--json", "whoami"], { url: NO_SERVER, token: "fbk_0000000000000000.x" });
    expectExit(result, 1);
    expectJsonError(result, "UNREACHABLE");
  });

  test.each([
    ["an unknown option of a command", ["whoami", "--bogus"]],
    ["a missing required option", ["request", "vault", "--reason", "x"]],
    ["a missing required argument", ["show"]],
    ["a value outside the choices", ["requests", "--state", "sleeping"]],
    ["an unknown global option", ["--bogus", "whoami"]],
    ["--accept and --flag together", ["review", "grt_x", "--accept", "--flag", "--notes", "x"]],
  ])("a usage error (%s) exits 2", async (_, args) => {
    const result = await offline(args);
    expectExit(result, 2);
    expect(result.stderr).toMatch(/error:/);
  });

  test("a usage error under --json is a JSON error too", async () => {
    const result = await offline(["--json", "request", "vault", "--reason", "x"]);
    expectExit(result, 2);
    expectJsonError(result);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

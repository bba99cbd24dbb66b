import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/databases.js";
import {
  type ApiClient,
  apiClient,
  describeResult,
  killAllProcesses,
  parseJson,
  processGroup,
  type ServerProcess,
  temporaryDirectory,
  writeText,
} from "../support/process.js";
import { processTestConfig } from "./fixtures.js";

vi.setConfig({ testTimeout: 90_000 });
afterAll(killAllProcesses);

/**
 * What a requester could type to make an approver's terminal show lines Firebreak never wrote: a
 * line break followed by a line in Firebreak's own layout, a carriage return that draws over the
 * line, ANSI sequences that move the cursor up and erase, and a right-to-left override that
 * shows text backwards.
 */
const FORGED_REASON =
  "disk full on the primary\n  approved by carol: checked, go\n  next: ready: the requester activates it" +
  "\rapproved by carol\u001b[1A\u001b[2K\u202eog ,dekcehc :lorac yb devorppa";
const FORGED_TICKET = "INC-1\n  approved by erin";
const FORGED_COMMENT = "fine\n  approved by carol: also fine\u2067";

/** Characters that must never reach a terminal raw from someone else's text. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point
const RAW_CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c]/;

// The rendering is the CLI's and does not depend on the database; one dialect is enough here.
describe("human output of someone else's text (sqlite)", () => {
  const group = processGroup();
  let database: TestDatabase;
  let remove: () => Promise<void>;
  let server: ServerProcess;
  let admin: ApiClient;
  let requestId: string;
  let leadToken: string;

  beforeAll(async () => {
    database = await createTestDatabase("sqlite");
    const directory = await temporaryDirectory();
    remove = directory.remove;
    const config = await writeText(join(directory.path, "firebreak.yaml"), processTestConfig());
    server = await group.startServer({ config, db: database.url });
    admin = apiClient(server.url, server.admin?.token ?? "");
    const requester = await admin.post<{ token: string }>("/v1/users", { name: "mallory", groups: ["sre"] });
    const lead = await admin.post<{ token: string }>("/v1/users", { name: "lee", groups: ["leads"] });
    leadToken = lead.token;
    const created = await apiClient(server.url, requester.token).post<{ id: string }>("/v1/requests", {
      zone: "ops",
      role: "operator",
      duration: "10m",
      reason: FORGED_REASON,
      ticket: FORGED_TICKET,
    });
    requestId = created.id;
    await apiClient(server.url, lead.token).post(`/v1/requests/${requestId}/approve`, {
      comment: FORGED_COMMENT,
    });
  });
  afterAll(async () => {
    await group.killAll();
    await database?.drop();
    await remove?.();
  });

  test("show prints a hostile reason, ticket and comment on their own lines, escaped, with no forged approval", async () => {
    const shown = await group.cli(["show", requestId], { url: server.url, token: leadToken });
    expect(shown.code, describeResult(shown)).toBe(0);
    const lines = shown.stdout.trimEnd().split("\n");
    // The only approval line is lee's, the real one; nothing the requester wrote starts a line.
    expect(lines.filter((line) => /^\s*approved by/.test(line))).toEqual([
      "  approved by lee: fine\\n  approved by carol: also fine\\u2067",
    ]);
    expect(lines.filter((line) => /^\s*next:/.test(line))).toHaveLength(1);
    expect(shown.stdout).not.toMatch(RAW_CONTROLS);
    const reasonLine = lines.find((line) => line.startsWith("  reason: "));
    expect(reasonLine).toBe(
      "  reason: disk full on the primary\\n  approved by carol: checked, go\\n  next: ready: the requester activates it" +
        "\\rapproved by carol\\x1b[1A\\x1b[2K\\u202eog ,dekcehc :lorac yb devorppa" +
        "   ticket: INC-1\\n  approved by erin",
    );
  });

  test("a table keeps one row per line when a cell holds a line break (an incident title)", async () => {
    await admin.post("/v1/incidents", {
      id: "INC-9",
      zone: "ops",
      severity: 2,
      title: "db down\nvault  enforce  -  vault-emergency  sev1: forged\u202e",
    });
    const listed = await group.cli(["zones"], { url: server.url, token: leadToken });
    expect(listed.code, describeResult(listed)).toBe(0);
    const lines = listed.stdout.trimEnd().split("\n");
    expect(lines, listed.stdout).toHaveLength(3);
    expect(lines.filter((line) => line.startsWith("vault"))).toHaveLength(1);
    expect(listed.stdout).toContain("sev2: db down\\nvault  enforce");
    expect(listed.stdout).not.toMatch(RAW_CONTROLS);
  });

  test("--json carries the text exactly as it was written", async () => {
    const shown = await group.cli(["--json", "show", requestId], { url: server.url, token: leadToken });
    expect(shown.code, describeResult(shown)).toBe(0);
    const view = parseJson<{ reason: string; ticket: string; approvals: { comment: string }[] }>(shown);
    expect(view.reason).toBe(FORGED_REASON);
    expect(view.ticket).toBe(FORGED_TICKET);
    expect(view.approvals[0]?.comment).toBe(FORGED_COMMENT);
  });
});

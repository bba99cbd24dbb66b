import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test, vi } from "vitest";
import { createTestDatabase, type TestDatabase } from "../support/databases.js";
import {
  apiClient,
  describeResult,
  killAllProcesses,
  parseJson,
  processGroup,
  type ServerProcess,
  temporaryDirectory,
  writeText,
} from "../support/process.js";

vi.setConfig({ testTimeout: 90_000 });
afterAll(killAllProcesses);

const CONFIG = `version: 1
directory:
  users:
    sre1: { groups: [sre] }
    sre2: { groups: [sre] }
    sre3: { groups: [sre] }
zones:
  db: {}
resources:
  db-log: { zone: db, type: log, roles: { admin: { principals: [admin] } } }
breakGlass:
  - name: outage
    zone: db
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 10m, max: 1h }
    approvals: [{ from: group:leads, count: 1 }]
    autoApprove: { when: "signals.incident.severity == 1" }
`;

type Reply = {
  request: { id: string; state: string; autoApproved: boolean; grantId: string | null };
  grant: { id: string; state: string; requestId: string } | null;
};

/** `request --activate`: one command from "I need in" to a grant, when the policy approves at once. */
describe("firebreak request --activate (sqlite)", () => {
  const group = processGroup();
  let database: TestDatabase;
  let remove: () => Promise<void>;
  let server: ServerProcess;

  beforeAll(async () => {
    database = await createTestDatabase("sqlite");
    const directory = await temporaryDirectory();
    remove = directory.remove;
    const config = await writeText(join(directory.path, "firebreak.yaml"), CONFIG);
    server = await group.startServer({ config, db: database.url });
  });
  afterAll(async () => {
    await group.killAll();
    await database?.drop();
    await remove?.();
  });

  const token = async (user: string) =>
    (
      await apiClient(server.url, server.admin?.token ?? "").post<{ token: string }>(
        `/v1/users/${user}/tokens`,
        {},
      )
    ).token;
  const request = (user: string, ...extra: string[]) => [
    "request",
    "db",
    "--role",
    "admin",
    "--reason",
    `the database is down (${user})`,
    "--activate",
    ...extra,
  ];

  test("leaves a request that waits for approvals as it is, with no grant, and exits 0", async () => {
    const result = await group.cli(["--json", ...request("sre1")], {
      url: server.url,
      token: await token("sre1"),
    });
    expect(result.code, describeResult(result)).toBe(0);
    const reply = parseJson<Reply>(result);
    expect(reply.request.state).toBe("pending");
    expect(reply.grant).toBeNull();
  });

  test("activates an auto-approved request at once, and says so in words", async () => {
    const admin = apiClient(server.url, server.admin?.token ?? "");
    await admin.post("/v1/incidents", {
      id: "INC-1",
      zone: "db",
      severity: 1,
      title: "down",
      status: "open",
    });
    const sre = await token("sre2");
    const json = await group.cli(["--json", ...request("sre2")], { url: server.url, token: sre });
    expect(json.code, describeResult(json)).toBe(0);
    const reply = parseJson<Reply>(json);
    expect(reply.request).toMatchObject({ state: "approved", autoApproved: true });
    expect(reply.grant).toMatchObject({ state: "active", requestId: reply.request.id });

    // A second one for the same role is refused at activation: exit 1 with the code.
    const refused = await group.cli(["--json", ...request("sre2")], { url: server.url, token: sre });
    expect(refused.code, describeResult(refused)).toBe(1);
    expect(parseJson<{ error: { code: string } }>(refused).error.code).toBe("DUPLICATE_GRANT");

    const human = await group.cli(request("sre3", "--for", "5m"), {
      url: server.url,
      token: await token("sre3"),
    });
    expect(human.code, describeResult(human)).toBe(0);
    expect(human.stdout).toMatch(/^req_\S+ {2}APPROVED \(auto-approved\) and activated$/m);
    expect(human.stdout).toMatch(/^grt_\S+ {2}ACTIVE/m);
  });
});

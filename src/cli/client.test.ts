import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, type MockInstance, vi } from "vitest";
import { principalViewSchema } from "../api/users.schema.js";
import { ApiError, createClient } from "./client.js";
import { main } from "./main.js";

/**
 * The client parses every reply with the schema the server replies with (src/api). A server that
 * answers something else (another version, another program at that address) is refused with
 * BAD_REPLY and exit code 1, never a crash or a half-printed result, and the refusal says where the
 * reply differs without repeating what it held.
 */
describe("replies parsed with the API schemas", () => {
  let server: Server;
  let url: string;
  const replies = new Map<string, unknown>();
  const saved = { ...process.env };
  let stdout: MockInstance<typeof process.stdout.write>;
  let stderr: MockInstance<typeof process.stderr.write>;

  beforeAll(async () => {
    server = createServer((request, response) => {
      const path = (request.url ?? "").split("?")[0] ?? "";
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify(replies.get(path) ?? {}));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...saved };
    process.exitCode = undefined;
    replies.clear();
  });

  const written = (spy: MockInstance<typeof process.stdout.write>) =>
    spy.mock.calls.map((call) => String(call[0])).join("");

  async function run(...args: string[]) {
    process.env.FIREBREAK_URL = url;
    process.env.FIREBREAK_TOKEN = "a-token";
    process.env.XDG_CONFIG_HOME = "/nonexistent";
    stdout = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
    const code = await main(["node", "firebreak", ...args]);
    return { code, out: written(stdout), err: written(stderr) };
  }

  it("returns the parsed reply, without fields the schema does not declare", async () => {
    replies.set("/v1/whoami", { name: "alice", groups: ["sre"], isAdmin: false, isAuditor: true, extra: 1 });
    const client = await createClient({ url, token: "t", env: {} });
    await expect(client.get("/v1/whoami", principalViewSchema)).resolves.toStrictEqual({
      name: "alice",
      groups: ["sre"],
      isAdmin: false,
      isAuditor: true,
    });
  });

  it("refuses a reply of another shape with BAD_REPLY, naming the field but not its value", async () => {
    replies.set("/v1/whoami", {
      name: "alice",
      groups: "hunter2-not-a-list",
      isAdmin: false,
      isAuditor: false,
    });
    const client = await createClient({ url, token: "t", env: {} });
    const error = await client.get("/v1/whoami", principalViewSchema).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ code: "BAD_REPLY", details: { issues: [{ path: "groups" }] } });
    expect(JSON.stringify((error as ApiError).details)).not.toContain("hunter2");
    expect((error as ApiError).message).not.toContain("hunter2");
  });

  it("makes a command exit 1 with BAD_REPLY, in words and under --json", async () => {
    replies.set("/v1/zones", { zones: [{ name: "payments-db", resources: "s3cret" }] });
    const human = await run("zones");
    expect(human.code).toBe(1);
    expect(human.err).toMatch(
      /^error: the reply of http:\/\/127\.0\.0\.1:\d+ to GET \/v1\/zones is not what/,
    );
    expect(human.err).toContain("[BAD_REPLY]");
    expect(human.out).toBe("");
    expect(human.err).not.toContain("s3cret");

    const json = await run("--json", "zones");
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({ error: { code: "BAD_REPLY" } });
  });

  it("refuses a token reply without its token instead of printing 'undefined'", async () => {
    replies.set("/v1/users/bob/tokens", { name: "bob" });
    const result = await run("users", "token", "bob", "-q");
    expect(result.code).toBe(1);
    expect(result.out).toBe("");
    expect(result.err).toContain("[BAD_REPLY]");
    expect(result.err).toContain("token");
  });
});

import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from "vitest";
import { credentialsPath } from "../../src/cli/client.js";
import { main } from "../../src/cli/main.js";
import { expectError, startTestApp } from "../support/app.js";
import { CookieJar, drive } from "./browser.js";
import { type IdentityWorld, startIdentityWorld } from "./support.js";

/**
 * `firebreak login`, `whoami` and `logout` run in process (the same `main` the binary runs) against
 * a listening server, with the person's part of the device flow done in a browser meanwhile.
 */
describe("firebreak login / logout with the device flow", () => {
  let w: IdentityWorld;
  let home: string;
  let stdout: MockInstance<typeof process.stdout.write>;
  let stderr: MockInstance<typeof process.stderr.write>;
  const saved = { ...process.env };

  beforeEach(async () => {
    w = await startIdentityWorld("sqlite");
    w.provider.accounts.set("sub-olivia", { preferred_username: "olivia", groups: ["sre"] });
    home = await mkdtemp(join(tmpdir(), "firebreak-cli-login-"));
    process.env.XDG_CONFIG_HOME = home;
    process.env.FIREBREAK_URL = w.base.origin;
    delete process.env.FIREBREAK_TOKEN;
    stdout = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    stderr = vi.spyOn(process.stderr, "write").mockImplementation(() => true);
  });

  afterEach(async () => {
    vi.restoreAllMocks();
    process.env = { ...saved };
    process.exitCode = undefined;
    await w.close();
    await rm(home, { recursive: true, force: true });
  });

  const written = (spy: MockInstance<typeof process.stdout.write>) =>
    spy.mock.calls.map((call) => String(call[0])).join("");

  async function run(...args: string[]) {
    stdout.mockClear();
    const code = await main(["node", "firebreak", "--json", ...args]);
    return { code, json: JSON.parse(written(stdout) || "null") };
  }

  it("signs in without a token, saves the session 0600, and logout revokes it and forgets it", async () => {
    const login = main(["node", "firebreak", "--json", "login"]);
    const instructions = await vi.waitFor(
      () => {
        const text = written(stderr);
        const address = /open this address in a browser:\s+(\S+)/.exec(text)?.[1];
        if (!address) throw new Error("no instructions yet");
        return { text, address };
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(instructions.text).toMatch(/shows the code [A-Z]{4}-[A-Z]{4}/);
    const confirmed = await drive(new CookieJar(), new URL(instructions.address), { login: "sub-olivia" });
    expect("page" in confirmed && confirmed.page.body).toContain("Sign-in Success");
    expect(await login).toBe(0);
    const result = JSON.parse(written(stdout));
    expect(result).toMatchObject({ user: "olivia", groups: ["sre"], server: w.base.origin });

    const path = credentialsPath(process.env);
    expect(result.saved).toBe(path);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const { token } = JSON.parse(await readFile(path, "utf8")) as { token: string };
    expect(token).toMatch(/^fbk_[0-9a-f]{16}\./);

    const whoami = await run("whoami");
    expect(whoami).toEqual({
      code: 0,
      json: { name: "olivia", groups: ["sre"], isAdmin: false, isAuditor: false },
    });

    expect(await run("logout")).toEqual({
      code: 0,
      json: { server: w.base.origin, revoked: true, forgotten: true },
    });
    await expect(stat(path)).rejects.toThrow();
    expectError(await w.t.call("GET", "/v1/whoami", { as: { token } }), 401, "UNAUTHENTICATED");
    // Logging out twice is not an error.
    expect(await run("logout")).toEqual({
      code: 0,
      json: { server: w.base.origin, revoked: false, forgotten: false },
    });
  }, 60_000);

  it("tells the person to use a token when the server has no OIDC sign-in", async () => {
    const plain = await startTestApp("sqlite");
    try {
      const address = await plain.app.http.listen({ host: "127.0.0.1", port: 0 });
      const { code, json } = await run("--server", address, "login");
      expect(code).toBe(1);
      expect(json.error.code).toBe("OIDC_NOT_CONFIGURED");
      expect(json.error.message).toContain("firebreak login --token");
      const config = await plain.call("GET", "/v1/auth/config", { as: null });
      expect(config.body.oidc).toEqual({
        enabled: false,
        issuer: null,
        loginUrl: null,
        deviceStartUrl: null,
      });
      expectError(await plain.call("GET", "/v1/auth/oidc/login", { as: null }), 404, "OIDC_NOT_CONFIGURED");
    } finally {
      await plain.close();
    }
  });

  it("offers only the device flow when no public URL says where browsers come back to", async () => {
    const deviceOnly = await startTestApp("sqlite", {
      config: `version: 1
zones: { sandbox: {} }
identity:
  oidc: { issuer: "${w.provider.issuer}", clientId: firebreak }
`,
    });
    try {
      const config = await deviceOnly.call("GET", "/v1/auth/config", { as: null });
      expect(config.body.oidc).toEqual({
        enabled: true,
        issuer: w.provider.issuer,
        loginUrl: null,
        deviceStartUrl: "/v1/auth/oidc/device/start",
      });
      expectError(
        await deviceOnly.call("GET", "/v1/auth/oidc/login", { as: null }),
        404,
        "OIDC_NOT_CONFIGURED",
      );
      expect((await deviceOnly.call("GET", "/v1/auth/methods", { as: null })).body).toEqual({ oidc: null });
    } finally {
      await deviceOnly.close();
    }
  });
});

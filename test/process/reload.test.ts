import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, test, vi } from "vitest";
import { createTestDatabase } from "../support/databases.js";
import {
  apiClient,
  describeResult,
  killAllProcesses,
  parseJson,
  processGroup,
  temporaryDirectory,
  waitFor,
  writeText,
} from "../support/process.js";
import { BROKEN_CONFIG, GOOD_JUSTIFICATION, processTestConfig } from "./fixtures.js";

type AuditEvent = { seq: number; type: string; actor: string; context: Record<string, unknown> };

// Real processes on a shared machine: generous limits, so load slows these tests but never fails them.
vi.setConfig({ testTimeout: 90_000 });
afterAll(killAllProcesses);

// Reloading is the same code on both databases; SQLite is enough here.
describe("configuration reload on SIGHUP (sqlite)", () => {
  test("an edited file is applied and audited; a broken one is refused and the running one kept", async ({
    onTestFinished,
  }) => {
    const database = await createTestDatabase("sqlite");
    onTestFinished(database.drop);
    const directory = await temporaryDirectory();
    onTestFinished(directory.remove);
    const group = processGroup();
    onTestFinished(group.killAll);
    const config = await writeText(join(directory.path, "firebreak.yaml"), processTestConfig());
    const server = await group.startServer({ config, db: database.url });
    const admin = apiClient(server.url, server.admin?.token ?? "");
    const zoneNames = async () =>
      (await admin.get<{ zones: { name: string }[] }>("/v1/zones")).zones.map((z) => z.name).sort();
    const configEvents = async () =>
      (await admin.get<{ events: AuditEvent[] }>("/v1/audit?type=config.applied&limit=1000")).events;
    expect(await zoneNames()).toEqual(["ops", "vault"]);
    expect(await configEvents()).toHaveLength(1);

    // A zone added to the file appears after SIGHUP, in the API, the CLI and the audit trail.
    await writeFile(config, processTestConfig({ extraZones: ["annex"] }));
    server.signal("SIGHUP");
    await waitFor(async () => (await zoneNames()).includes("annex"), { what: "the new zone after SIGHUP" });
    const zones = await group.cli(["zones"], { url: server.url, token: admin.token });
    expect(zones.code, describeResult(zones)).toBe(0);
    expect(zones.stdout).toMatch(/^annex\s/m);
    const applied = await configEvents();
    expect(applied).toHaveLength(2);
    expect(applied[1]?.actor).toBe("system:sighup");
    expect(JSON.stringify(applied[1]?.context)).toContain("annex");

    // A broken file: refused, logged, and the previous configuration keeps serving.
    await writeFile(config, BROKEN_CONFIG);
    server.signal("SIGHUP");
    await waitFor(async () => server.stderr().includes("configuration refused"), {
      what: "the server to log that it refused the broken file",
    });
    expect(server.alive()).toBe(true);
    const [zonesJson, verify] = await Promise.all([
      group.cli(["--json", "zones"], { url: server.url, token: admin.token }),
      group.cli(["audit", "verify"], { url: server.url, token: admin.token }),
    ]);
    expect(zonesJson.code, describeResult(zonesJson)).toBe(0);
    expect(
      parseJson<{ zones: { name: string }[] }>(zonesJson)
        .zones.map((z) => z.name)
        .sort(),
    ).toEqual(["annex", "ops", "vault"]);
    expect(verify.code, describeResult(verify)).toBe(0);
    expect(await configEvents()).toHaveLength(2);
    // Policy from the running configuration still decides: the broken file's policy would not.
    const { token } = await admin.post<{ token: string }>("/v1/users", { name: "sam", groups: ["sre"] });
    const created = await apiClient(server.url, token).post<{ state: string; next: string }>("/v1/requests", {
      zone: "vault",
      role: "operator",
      ...GOOD_JUSTIFICATION,
    });
    expect(created).toMatchObject({ state: "pending", next: "waiting for 1 approval from group:leads" });

    // Once the file is good again, the next SIGHUP applies it: a refusal does not wedge reloading.
    await writeFile(config, processTestConfig({ extraZones: ["annex", "annex-two"] }));
    server.signal("SIGHUP");
    await waitFor(async () => (await zoneNames()).includes("annex-two"), {
      what: "the zone after a fixed file",
    });
    expect(await configEvents()).toHaveLength(3);
  });
});

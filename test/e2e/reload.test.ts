import { describe, expect, it } from "vitest";
import { expectError, expectNoInternals, expectStatus, REASON, TEST_CONFIG } from "../support/app.js";
import { freshAppPerTest } from "../support/app-per-test.js";
import { DIALECTS } from "../support/databases.js";

const MINUTE = 60_000;

/** The test configuration with a `reports` zone, a standing read binding on it and a policy for it. */
const WITH_REPORTS = TEST_CONFIG.replace(
  "  sandbox: {}\n",
  "  sandbox: {}\n  reports: { labels: { tier: ops }, enforcement: monitor }\n",
)
  .replace(
    "standing:\n",
    "standing:\n  - { group: sre, zone: reports, role: read }\n  - { group: dev, zone: reports, role: read }\n",
  )
  .concat(`
  - name: reports-export
    zone: reports
    roles: [export]
    eligible: [group:dev]
    duration: { default: 15m, max: 30m }
`);

/** Broken files, each for a different reason; none may replace the running configuration. */
const BROKEN: [string, string][] = [
  ["YAML syntax", `${TEST_CONFIG}\n  - name: [unclosed\n`],
  ["unknown key", TEST_CONFIG.replace("version: 1\n", "version: 1\nzonez: {}\n")],
  [
    "CEL that does not compile",
    TEST_CONFIG.replace('"signals.incident.severity == 1"', '"signals.incident.severity =="'),
  ],
  [
    "CEL naming an unknown variable",
    TEST_CONFIG.replace('"signals.incident.severity == 1"', '"secrets.incident.severity == 1"'),
  ],
  [
    "policy on an unknown zone",
    TEST_CONFIG.replace("    zone: sandbox\n    roles: [debug]", "    zone: nowhere\n    roles: [debug]"),
  ],
  [
    "bad duration",
    TEST_CONFIG.replace("duration: { default: 15m, max: 1h }", "duration: { default: 15 minutes, max: 1h }"),
  ],
  ["empty file", ""],
  ["not a mapping", "- just\n- a list\n"],
];

describe.each(DIALECTS)("configuration reload over HTTP on %s", (dialect) => {
  const t = freshAppPerTest(dialect);

  async function zoneNames(): Promise<string[]> {
    const zones = await t.call("GET", "/v1/zones", { as: "alice" });
    expectStatus(zones, 200);
    return zones.body.zones.map((z: { name: string }) => z.name);
  }

  async function configEvents() {
    return (await t.auditEvents()).filter((e) => e.type === "config.applied");
  }

  it("applies a new zone: 200 changed, visible in /v1/zones, audited with a summary naming it", async () => {
    expect(await zoneNames()).not.toContain("reports");
    const startup = await configEvents();
    expect(startup).toHaveLength(1);
    const startupDigest = startup[0]?.context.digest;

    await t.writeConfig(WITH_REPORTS);
    const reloaded = await t.call("POST", "/v1/config/reload");
    expectStatus(reloaded, 200);
    expect(reloaded.body.changed).toBe(true);
    expect(reloaded.body.digest).not.toBe(startupDigest);
    expect(reloaded.body.summary).toMatchObject({
      zones: { added: ["reports"], removed: [], changed: [] },
      policies: { added: ["reports-export"], removed: [] },
      standing: { added: 2, removed: 0 },
      unchanged: false,
    });

    expect(await zoneNames()).toContain("reports");
    const zone = await t.call("GET", "/v1/zones/reports", { as: "alice" });
    expectStatus(zone, 200);
    expect(zone.body).toMatchObject({ labels: { tier: "ops" }, enforcement: "monitor" });
    expect(zone.body.policies).toEqual([{ name: "reports-export", roles: ["export"] }]);

    const events = await configEvents();
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({
      actor: "admin",
      context: {
        digest: reloaded.body.digest,
        previousDigest: startupDigest,
        summary: { zones: { added: ["reports"] } },
      },
    });

    // The new policy decides at once.
    const created = await t.call("POST", "/v1/requests", {
      as: "frank",
      body: { zone: "reports", role: "export", reason: "quarterly numbers" },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({ state: "approved", policy: "reports-export" });

    // Reloading the same file again changes nothing and records nothing.
    const again = await t.call("POST", "/v1/config/reload");
    expectStatus(again, 200);
    expect(again.body).toMatchObject({ changed: false, digest: reloaded.body.digest });
    expect(await configEvents()).toHaveLength(2);
  });

  it("puts new standing access into force by the time the reload has answered", async () => {
    const before = await t.call("GET", "/v1/access?user=alice&zone=reports&role=read");
    expectStatus(before, 200);
    expect(before.body.allowed).toBe(false);
    await t.writeConfig(WITH_REPORTS);
    expectStatus(await t.call("POST", "/v1/config/reload"), 200);
    // Asked of the enforcement index itself, before anything else can run: a reload that has
    // answered must be in force, not merely on its way.
    expect(t.app.access().check("alice", "reports", "read", t.clock.now())).toBe(true);
    const after = await t.call("GET", "/v1/access?user=alice&zone=reports&role=read");
    expect(after.body.allowed).toBe(true);
    const bob = await t.call("GET", "/v1/access?user=bob&zone=reports&role=read");
    expect(bob.body.allowed).toBe(true);
    const erin = await t.call("GET", "/v1/access?user=erin&zone=reports&role=read");
    expect(erin.body.allowed).toBe(false);
  });

  it("refuses a broken file with 422 CONFIG_INVALID and keeps serving the running configuration", async () => {
    const zonesBefore = await zoneNames();
    const eventsBefore = await configEvents();
    const problems: string[] = [];
    for (const [label, text] of BROKEN) {
      await t.writeConfig(text);
      const reply = await t.call("POST", "/v1/config/reload");
      if (reply.status !== 422 || reply.body?.error?.code !== "CONFIG_INVALID") {
        problems.push(`${label}: ${reply.status} ${reply.text.slice(0, 200)}`);
        continue;
      }
      expectNoInternals(reply);
      // Every error names where it is, so an operator can fix the file.
      const errors = reply.body.error.details?.errors ?? [];
      if (errors.length === 0) problems.push(`${label}: no errors listed`);
      for (const error of errors) {
        if (typeof error.line !== "number" || typeof error.message !== "string")
          problems.push(`${label}: error without line or message ${JSON.stringify(error)}`);
      }
    }
    expect(problems).toEqual([]);

    // Still the old configuration: same zones, policies still decide, nothing recorded as applied.
    expect(await zoneNames()).toEqual(zonesBefore);
    expect(await configEvents()).toHaveLength(eventsBefore.length);
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "cache", role: "flush", reason: "flushing after the failed reload" },
    });
    expectStatus(created, 201);
    expect(created.body.state).toBe("pending");
    expectStatus(await t.call("POST", `/v1/requests/${created.body.id}/approve`, { as: "carol" }), 200);

    // A fixed file is applied afterwards as usual.
    await t.writeConfig(WITH_REPORTS);
    const fixed = await t.call("POST", "/v1/config/reload");
    expectStatus(fixed, 200);
    expect(fixed.body.changed).toBe(true);
    expect(await zoneNames()).toContain("reports");
  });

  it("keeps requests and grants across a reload, and their lifecycle goes on", async () => {
    // An active grant with a credential, a pending request, and an approved one.
    expectStatus(
      await t.call("POST", "/v1/incidents", { body: { id: "INC-5", zone: "vault", severity: 1 } }),
      201,
    );
    const vault = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "vault", role: "admin", reason: REASON, ticket: "INC-5" },
    });
    expect(vault.body.state).toBe("approved");
    const grant = (await t.call("POST", `/v1/requests/${vault.body.id}/activate`, { as: "alice" })).body;
    expect(grant.state).toBe("active");
    const pending = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "app", role: "operator", reason: "restart the stuck workers" },
    });
    expect(pending.body.state).toBe("pending");
    const approved = await t.call("POST", "/v1/requests", {
      as: "bob",
      body: { zone: "sandbox", role: "debug", reason: "reproduce bug 1234" },
    });
    expect(approved.body.state).toBe("approved");

    await t.writeConfig(WITH_REPORTS);
    expectStatus(await t.call("POST", "/v1/config/reload"), 200);
    // A broken reload in between changes nothing either.
    await t.writeConfig("version: 1\nzones: {}\n");
    expectError(await t.call("POST", "/v1/config/reload"), 422, "CONFIG_INVALID");

    expect((await t.call("GET", `/v1/grants/${grant.id}`)).body).toMatchObject({ state: "active" });
    const access = await t.call("GET", "/v1/access?user=alice&zone=vault&role=admin");
    expect(access.body.allowed).toBe(true);
    expect((await t.call("GET", `/v1/requests/${pending.body.id}`)).body.state).toBe("pending");

    // The pending request is approved by both steps; the approved one is activated.
    expectStatus(await t.call("POST", `/v1/requests/${pending.body.id}/approve`, { as: "carol" }), 200);
    const second = await t.call("POST", `/v1/requests/${pending.body.id}/approve`, { as: "erin" });
    expect(second.body.state).toBe("approved");
    const activated = await t.call("POST", `/v1/requests/${approved.body.id}/activate`, { as: "bob" });
    expectStatus(activated, 201);
    expect((await t.call("GET", "/v1/access?user=bob&zone=sandbox&role=debug")).body.allowed).toBe(true);

    // And the grant from before the reload still expires on time, with its credential revoked.
    t.clock.advance(30 * MINUTE);
    await t.runScheduler();
    expect((await t.call("GET", `/v1/grants/${grant.id}`)).body).toMatchObject({
      state: "expired",
      revocation: { status: "verified" },
    });
    expect((await t.call("GET", "/v1/access?user=alice&zone=vault&role=admin")).body.allowed).toBe(false);
    expect((await t.call("GET", "/v1/audit/verify")).body.ok).toBe(true);
  });
});

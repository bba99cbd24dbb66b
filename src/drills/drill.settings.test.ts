import { describe, expect, it } from "vitest";
import { configJsonSchema } from "../config/json-schema.js";
import { loadConfigText } from "../config/load.js";
import { nextDrillTime } from "./drill.settings.js";

const BASE = `version: 1
directory:
  users:
    alice: { groups: [sre] }
zones:
  db: {}
  other: {}
resources:
  db-pg:
    zone: db
    type: log
    roles:
      admin: { grants: [owner] }
      read: { grants: [reader] }
  other-pg:
    zone: other
    type: log
    roles:
      admin: { grants: [owner] }
breakGlass:
  - { name: db-emergency, zone: db, roles: [admin], eligible: ["group:sre"], duration: { default: 15m, max: 1h } }
`;

function load(drills: string) {
  return loadConfigText(`${BASE}drills:\n${drills}`);
}

describe("drills in the configuration", () => {
  it("accepts an interval and a cron expression, with defaults", () => {
    const result =
      load(`  - { name: weekly, policy: db-emergency, resource: db-pg, role: admin, every: 7d, notify: [group:sre] }
  - { name: nightly, policy: db-emergency, resource: db-pg, role: admin, cron: "0 3 * * *", duringIncident: skip }
`);
    expect(result.ok, JSON.stringify(result)).toBe(true);
    if (!result.ok) return;
    expect(result.config.drills?.[0]).toMatchObject({
      every: 7 * 86_400_000,
      duringIncident: "wait",
      notify: ["group:sre"],
    });
    expect(result.config.drills?.[1]).toMatchObject({
      cron: "0 3 * * *",
      duringIncident: "skip",
      notify: [],
    });
  });

  it.each([
    [
      `  - { name: a, policy: nope, resource: db-pg, role: admin, every: 1d }`,
      "drills[0].policy",
      "unknown break-glass policy 'nope'",
    ],
    [
      `  - { name: a, policy: db-emergency, resource: other-pg, role: admin, every: 1d }`,
      "drills[0].resource",
      "not in policy 'db-emergency''s zone",
    ],
    [
      `  - { name: a, policy: db-emergency, resource: db-pg, role: read, every: 1d }`,
      "drills[0].role",
      "does not grant role 'read'",
    ],
    [
      `  - { name: a, policy: db-emergency, resource: db-pg, role: admin, cron: "61 * * * *" }`,
      "drills[0].cron",
      "expected a cron expression",
    ],
    [
      `  - { name: a, policy: db-emergency, resource: db-pg, role: admin }`,
      "drills[0]",
      "exactly one of 'every'",
    ],
    [
      `  - { name: a, policy: db-emergency, resource: db-pg, role: admin, every: 1d, cron: "@daily" }`,
      "drills[0]",
      "exactly one of 'every'",
    ],
    [
      `  - { name: a, policy: db-emergency, resource: db-pg, role: admin, every: 1d }\n  - { name: a, policy: db-emergency, resource: db-pg, role: admin, every: 2d }`,
      "drills[1].name",
      "used twice",
    ],
  ])("refuses %s at its place", (drills, path, message) => {
    const result = load(`${drills}\n`);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const issue = result.errors.find((e) => e.path === path);
    expect(issue?.message, JSON.stringify(result.errors)).toContain(message);
    expect(issue?.line).toBeGreaterThan(20);
  });

  it("is in the published JSON Schema", () => {
    const schema = configJsonSchema() as { properties: Record<string, { items?: { properties?: object } }> };
    expect(Object.keys(schema.properties.drills?.items?.properties ?? {})).toEqual(
      expect.arrayContaining([
        "name",
        "policy",
        "resource",
        "role",
        "every",
        "cron",
        "notify",
        "duringIncident",
      ]),
    );
  });

  it("computes the next time from an interval or from the cron expression in UTC", () => {
    const at = Date.parse("2026-03-03T02:00:00.000Z");
    expect(nextDrillTime({ every: 3_600_000 }, at)).toBe(at + 3_600_000);
    expect(new Date(nextDrillTime({ cron: "0 3 * * 1" }, at) ?? 0).toISOString()).toBe(
      "2026-03-09T03:00:00.000Z",
    );
  });
});

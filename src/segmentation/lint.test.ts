import { describe, expect, it } from "vitest";
import { fixtureConfig } from "../../test/fixtures/segmentation/fixture.js";
import { loadConfigFile, loadConfigText } from "../config/load.js";
import type { FirebreakConfig } from "../config/schema.js";
import { failsAt, lintConfig } from "./lint.js";

function configFrom(text: string): FirebreakConfig {
  const loaded = loadConfigText(text);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.config;
}

/** Zones, resources of every kind, and the standing bindings under test. */
const withStanding = (standing: string) =>
  configFrom(`version: 1
zones:
  app: { cidrs: [10.30.0.0/24], enforcement: enforce }
  db: { cidrs: [10.40.0.0/24], enforcement: enforce }
resources:
  orders-pg:
    zone: db
    type: postgres
    connection: { url: env:ORDERS_PG_URL }
    roles:
      read: { grants: [pg_read_all_data, pg_read_all_stats] }
      report: { grants: [payments_owner] }
  orders-maria:
    zone: db
    type: mariadb
    connection: { url: env:ORDERS_MARIA_URL }
    roles:
      read: { privileges: ["SELECT ON shop.*"] }
      everything: { privileges: ["ALL PRIVILEGES ON shop.*"] }
  app-hosts:
    zone: app
    type: ssh
    roles:
      viewer: { principals: [viewer] }
      fix: { principals: [root] }
standing:
${standing}
`);

describe("lint", () => {
  it("reports each risky pattern with its severity and place, most severe first", async () => {
    const findings = lintConfig(await fixtureConfig());
    const summary = findings.map((f) => `${f.severity} ${f.code} ${f.path}`);
    expect(summary).toEqual([
      "high STANDING_ADMIN_BINDING standing[1]",
      "high POLICY_WITHOUT_APPROVALS breakGlass[1]",
      "medium PUBLIC_REACHES_DATA zones.edge",
      "medium PUBLIC_REACHES_DATA zones.edge",
      "medium POLICY_WITHOUT_FACTORS breakGlass[1]",
      "medium EMPTY_ELIGIBLE_GROUP breakGlass[1].eligible[0]",
      "medium RESOURCE_OUTSIDE_ZONE resources.reports-http.address",
      "low FLOW_NOT_ENFORCEABLE flows[4]",
      "low DATA_ZONE_MONITOR_ONLY zones.reporting.enforcement",
    ]);
    const publicToData = findings.filter((f) => f.code === "PUBLIC_REACHES_DATA");
    expect(publicToData[0]?.message).toContain(
      "in 2 hops, through 'payments-app': edge -> payments-app -> payments_db",
    );
    expect(publicToData[1]?.hops?.map((h) => h.to)).toEqual(["payments-app", "payments_db", "reporting"]);
    expect(failsAt(findings, "high")).toBe(true);
  });

  it("finds nothing in a tidy configuration", async () => {
    const config = await fixtureConfig();
    const tidy = {
      ...config,
      standing: [{ group: "sre", zone: "payments-app", role: "read" }],
      breakGlass: config.breakGlass?.slice(0, 1),
      flows: config.flows?.filter((f) => f.from !== "edge" && f.from !== "office"),
      resources: { "payments-pg": config.resources?.["payments-pg"] as never },
      zones: { ...config.zones, reporting: { ...config.zones.reporting, enforcement: "enforce" as const } },
    };
    expect(lintConfig(tidy)).toEqual([]);
    expect(failsAt([], "low")).toBe(false);
  });

  it("does not take a read-only role for an administrative one because its mapping contains 'all'", () => {
    const findings = lintConfig(
      withStanding(`  - { group: dev, resource: orders-pg, role: read }
  - { group: dev, resource: orders-maria, role: read }
  - { group: dev, zone: db, role: read }
  - { group: dev, resource: app-hosts, role: viewer }`),
    );
    expect(findings.filter((f) => f.code === "STANDING_ADMIN_BINDING")).toEqual([]);
  });

  it("names what makes a standing role administrative: its name, or what it maps to on the target", () => {
    const findings = lintConfig(
      withStanding(`  - { group: dev, resource: orders-pg, role: report }
  - { group: dev, resource: orders-maria, role: everything }
  - { group: dev, resource: app-hosts, role: fix }
  - { group: dev, zone: db, role: db-admin }`),
    ).filter((f) => f.code === "STANDING_ADMIN_BINDING");
    expect(findings.map((f) => [f.path, f.severity])).toEqual([
      ["standing[0]", "high"],
      ["standing[1]", "high"],
      ["standing[2]", "high"],
      ["standing[3]", "high"],
    ]);
    const [report, everything, fix, admin] = findings.map((f) => f.message);
    expect(report).toBe(
      "group 'dev' holds role 'report' on resource 'orders-pg' permanently, and on resource 'orders-pg' that role's grants include 'payments_owner', which is administrative; give a read-only standing role and a break-glass policy for 'report'",
    );
    expect(report).not.toContain("administrative role 'report'");
    expect(everything).toContain("privileges include 'ALL PRIVILEGES ON shop.*'");
    expect(fix).toContain("principals include 'root'");
    expect(admin).toContain("holds administrative role 'db-admin' on zone 'db'");
  });

  it("fails the build for a public zone with a flow of its own into a data zone; a path through others is medium", async () => {
    const config = await fixtureConfig();
    const direct = lintConfig({
      ...config,
      flows: [...(config.flows ?? []), { from: "edge", to: "reporting", ports: ["tcp/8000"] }],
    }).filter((f) => f.code === "PUBLIC_REACHES_DATA");
    expect(direct.map((f) => `${f.severity} ${f.message}`)).toEqual([
      "high public-facing zone 'edge' reaches data zone 'reporting' directly: edge -> reporting",
      "medium public-facing zone 'edge' reaches data zone 'payments_db' in 2 hops, through 'payments-app': edge -> payments-app -> payments_db",
    ]);
    expect(failsAt(direct, "high")).toBe(true);
  });

  it("passes the shipped example (examples/firebreak.yaml) at the default fail level", async () => {
    const loaded = await loadConfigFile("examples/firebreak.yaml");
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const findings = lintConfig(loaded.config);
    expect(findings.filter((f) => f.severity === "high")).toEqual([]);
    expect(failsAt(findings, "high")).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { fixtureConfig } from "../../test/fixtures/segmentation/fixture.js";
import { failsAt, lintConfig } from "./lint.js";

describe("lint", () => {
  it("reports each risky pattern with its severity and place, most severe first", async () => {
    const findings = lintConfig(await fixtureConfig());
    const summary = findings.map((f) => `${f.severity} ${f.code} ${f.path}`);
    expect(summary).toEqual([
      "high STANDING_ADMIN_BINDING standing[1]",
      "high PUBLIC_REACHES_DATA zones.edge",
      "high PUBLIC_REACHES_DATA zones.edge",
      "high POLICY_WITHOUT_APPROVALS breakGlass[1]",
      "medium POLICY_WITHOUT_FACTORS breakGlass[1]",
      "medium EMPTY_ELIGIBLE_GROUP breakGlass[1].eligible[0]",
      "medium RESOURCE_OUTSIDE_ZONE resources.reports-http.address",
      "low FLOW_NOT_ENFORCEABLE flows[4]",
      "low DATA_ZONE_MONITOR_ONLY zones.reporting.enforcement",
    ]);
    const publicToData = findings.filter((f) => f.code === "PUBLIC_REACHES_DATA");
    expect(publicToData[0]?.message).toContain("edge -> payments-app -> payments_db");
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
});

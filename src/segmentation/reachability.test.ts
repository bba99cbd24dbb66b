import { describe, expect, it } from "vitest";
import { fixtureConfig } from "../../test/fixtures/segmentation/fixture.js";
import { zoneAddressOwnership } from "./flow-model.js";
import type { PathState } from "./network-state.js";
import { analyseZone, blastRadiusChange, buildReachabilityGraph } from "./reachability.js";
import { hypotheticalPaths } from "./what-if.js";

describe("reachability", () => {
  it("follows flows directly and transitively, with the hops of each path", async () => {
    const config = await fixtureConfig();
    const edge = analyseZone(buildReachabilityGraph(config), "edge");
    expect(edge?.direct.map((r) => r.zone)).toEqual(["payments-app"]);
    expect(edge?.transitive.map((r) => r.zone)).toEqual(["payments_db", "reporting"]);
    const toReporting = edge?.transitive.find((r) => r.zone === "reporting");
    expect(toReporting?.path.map((h) => `${h.from}>${h.to} ${h.ports.join(",")}`)).toEqual([
      "edge>payments-app tcp/443",
      "payments-app>payments_db tcp/5432,tcp/6432,udp/53",
      "payments_db>reporting tcp/8000-8100",
    ]);
    expect(edge?.blastRadius).toEqual({ zones: 3, resources: 2, directZones: 1, directResources: 0 });
    expect(edge?.reachedBy).toEqual({ direct: [], transitive: [] });
    const db = analyseZone(buildReachabilityGraph(config), "payments_db");
    expect(db?.reachedBy).toEqual({ direct: ["payments-app"], transitive: ["edge", "office"] });
    expect(analyseZone(buildReachabilityGraph(config), "nowhere")).toBeNull();
  });

  it("counts active grant paths as hops, from the requester's zone or address", async () => {
    const config = await fixtureConfig();
    const path: PathState = {
      grantId: "grt_aaaaaaaa0123456789abcdef",
      user: "alice",
      zone: "payments_db",
      resource: "payments-pg",
      from: { zone: null, address: "10.20.0.7", cidrs: [] },
      to: { host: "10.40.0.5", port: 5432, protocol: "tcp" },
      endsAt: Date.now() + 60_000,
    };
    const bastion = analyseZone(buildReachabilityGraph(config, [path]), "bastion");
    expect(bastion?.direct[0]).toMatchObject({
      zone: "payments_db",
      path: [
        { from: "bastion", to: "payments_db", via: "grant", grants: [path.grantId], ports: ["tcp/5432"] },
      ],
    });
    expect(bastion?.transitive.map((r) => r.zone)).toEqual(["reporting"]);
  });

  it("shows how a grant would change its source zone's blast radius", async () => {
    const config = await fixtureConfig();
    const added = hypotheticalPaths(config, "bastion", ["payments-pg"], Date.now());
    expect(added).toHaveLength(1);
    expect(added[0]?.from.cidrs).toEqual(["10.20.0.0/24"]);
    const change = blastRadiusChange(config, "bastion", [], added);
    expect(change?.before).toEqual({ zones: 0, resources: 0, directZones: 0, directResources: 0 });
    expect(change?.after).toMatchObject({ zones: 2, resources: 2, directZones: 1 });
    expect(change?.addedZones.map((z) => z.zone)).toEqual(["payments_db", "reporting"]);
    expect(change?.addedResources).toEqual(["payments-pg", "reports-http"]);
  });

  it("gives every address to the first zone that lists it", () => {
    const owners = zoneAddressOwnership([
      { name: "wide", cidrs: ["10.0.0.0/16"] },
      { name: "inner", cidrs: ["10.0.1.0/24", "10.1.0.0/24"] },
      { name: "broken", cidrs: ["10.0.0.0/40"] },
    ]);
    expect(owners.get("inner")?.shadowed).toEqual([{ cidr: "10.0.1.0/24", by: "wide" }]);
    expect(owners.get("inner")?.ranges).toHaveLength(1);
    expect(owners.get("broken")?.invalid).toEqual(["10.0.0.0/40"]);
  });
});

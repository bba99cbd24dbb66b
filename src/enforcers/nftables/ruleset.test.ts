import { describe, expect, it } from "vitest";
import type { NetworkState, PathState } from "../../segmentation/network-state.js";
import { buildRuleset, grantSetCommands, replaceCommands } from "./ruleset.js";

const now = Date.parse("2026-03-03T02:00:00Z");
const zones: NetworkState["zones"] = [
  { name: "bastion", cidrs: ["10.20.0.0/24"], enforcement: "enforce", labels: {} },
  { name: "app", cidrs: ["10.30.0.0/24", "10.30.0.128/25"], enforcement: "monitor", labels: {} },
  { name: "db", cidrs: ["10.40.0.0/24", "fd00:40::/64"], enforcement: "enforce", labels: {} },
];
const path = (id: string, from: Partial<PathState["from"]>, endsIn: number): PathState => ({
  grantId: `grt_${id.padEnd(8, "0")}0123456789abcdef`,
  user: "alice",
  zone: "db",
  resource: "pg",
  from: { zone: "bastion", address: null, cidrs: [], ...from },
  to: { host: "10.40.0.5", port: 5432, protocol: "tcp" },
  endsAt: now + endsIn,
});

describe("nftables ruleset", () => {
  it("joins the ports of a zone pair so flow elements never overlap", () => {
    const ruleset = buildRuleset(
      {
        zones,
        flows: [
          { from: "app", to: "db", ports: ["tcp/5432", "tcp/5000-5500", "udp/53"] },
          { from: "app", to: "db", ports: ["tcp/5501"] },
          { from: "db", to: "db", ports: ["tcp/1"] },
        ],
        paths: [],
      },
      { now },
    );
    const flows = ruleset.standing.filter((c) => c.add?.element?.name === "flows4")[0]?.add.element.elem;
    expect(flows.map((e: { elem: { val: unknown } }) => JSON.stringify(e.elem.val))).toEqual([
      JSON.stringify({
        concat: [
          { prefix: { addr: "10.30.0.0", len: 24 } },
          { prefix: { addr: "10.40.0.0", len: 24 } },
          "tcp",
          { range: [5000, 5501] },
        ],
      }),
      JSON.stringify({
        concat: [
          { prefix: { addr: "10.30.0.0", len: 24 } },
          { prefix: { addr: "10.40.0.0", len: 24 } },
          "udp",
          53,
        ],
      }),
    ]);
    expect(ruleset.counts).toMatchObject({ zones: 3, flowElements: 2 });
  });

  it("cuts overlapping grant sources into disjoint elements that carry every grant and the longest end", () => {
    const zoneWide = path("a", { cidrs: ["10.20.0.0/24"] }, 90_500);
    const single = path("b", { address: "10.20.0.7" }, 600_000);
    const ruleset = buildRuleset({ zones, flows: [], paths: [zoneWide, single] }, { now });
    expect(ruleset.grantElements.map((e) => [e.key, e.timeoutSeconds, e.grants.length])).toEqual([
      ["10.20.0.0-10.20.0.6 . 10.40.0.5 . tcp . 5432", 91, 1],
      ["10.20.0.7 . 10.40.0.5 . tcp . 5432", 600, 2],
      ["10.20.0.8-10.20.0.255 . 10.40.0.5 . tcp . 5432", 91, 1],
    ]);
    expect(ruleset.openGrants).toEqual([zoneWide.grantId, single.grantId].sort());
    // Whole seconds only: a fractional timeout would be silently ignored by nft.
    for (const command of grantSetCommands(ruleset).slice(2))
      for (const element of command.add.element.elem)
        expect(Number.isInteger(element.elem.timeout)).toBe(true);
  });

  it("leaves out ended grants, everything when failing closed, and what is not an address", () => {
    const ended = path("c", { address: "10.20.0.9" }, -1);
    const injected = path("d", { address: "10.20.0.9 } ; flush ruleset ; {" }, 60_000);
    const named = {
      ...path("e", { address: "10.20.0.9" }, 60_000),
      to: { host: "db.internal", port: 5432, protocol: "tcp" as const },
    };
    const ruleset = buildRuleset(
      {
        zones: [...zones, { name: "evil", cidrs: ["10.0.0.0/8 accept"], enforcement: "enforce", labels: {} }],
        flows: [],
        paths: [ended, injected, named],
      },
      { now, resolved: new Map([["db.internal", ["10.40.0.6", "not-an-ip"]]]) },
    );
    expect(ruleset.openGrants).toEqual([named.grantId]);
    expect(ruleset.skipped).toEqual([
      { subject: "zone evil", reason: "invalid CIDR '10.0.0.0/8 accept'" },
      {
        subject: `grant ${injected.grantId}`,
        reason: "invalid source address '10.20.0.9 } ; flush ruleset ; {'",
      },
      { subject: `grant ${named.grantId}`, reason: "invalid destination address 'not-an-ip'" },
    ]);
    const closed = buildRuleset(
      { zones, flows: [], paths: [named] },
      { now, withoutGrants: true, resolved: new Map([["db.internal", ["10.40.0.6"]]]) },
    );
    expect(closed.grantElements).toEqual([]);
    expect(closed.standingDigest).toBe(buildRuleset({ zones, flows: [], paths: [] }, { now }).standingDigest);
    expect(() =>
      buildRuleset({ zones, flows: [], paths: [] }, { now, table: "fb; flush ruleset" }),
    ).toThrow();
  });

  it("replaces the table atomically: create, delete, create, then everything else", () => {
    const commands = replaceCommands(
      buildRuleset({ zones, flows: [], paths: [path("a", {}, 1000)] }, { now }),
    );
    expect(commands.slice(0, 3).map((c) => Object.keys(c)[0])).toEqual(["add", "delete", "add"]);
    const monitor = commands.find((c) => c.add?.element?.name === "monitor4");
    expect(monitor?.add.element.elem).toEqual([
      { elem: { val: { prefix: { addr: "10.30.0.0", len: 24 } }, comment: "app" } },
    ]);
    const v6 = commands.find((c) => c.add?.element?.name === "enforce6");
    expect(v6?.add.element.elem[0].elem.val).toEqual({ prefix: { addr: "fd00:40::", len: 64 } });
  });
});

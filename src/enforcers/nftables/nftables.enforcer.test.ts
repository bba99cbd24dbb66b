import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipUnlessAvailable } from "../../../test/support/requirements.js";
import { canBuildLabs } from "../../bench/netns-lab.js";
import type { NetworkState, PathState } from "../../segmentation/network-state.js";
import { createNftRunner } from "./nft.js";
import { createNftablesEnforcer } from "./nftables.enforcer.js";

const run = promisify(execFile);
const skip = skipUnlessAvailable(
  await canBuildLabs(),
  "nftables enforcer against the kernel",
  "needs root, nft and ip (network namespaces)",
);

const zones: NetworkState["zones"] = [
  { name: "bastion", cidrs: ["10.20.0.0/24"], enforcement: "enforce", labels: {} },
  { name: "app", cidrs: ["10.30.0.0/24"], enforcement: "enforce", labels: {} },
  { name: "db", cidrs: ["10.40.0.0/24"], enforcement: "enforce", labels: {} },
];
const flows: NetworkState["flows"] = [{ from: "app", to: "db", ports: ["tcp/5432"] }];
const grant = (id: string, address: string, endsAt: number): PathState => ({
  grantId: `grt_${id.padEnd(8, "0")}0123456789abcdef`,
  user: "alice",
  zone: "db",
  resource: "pg",
  from: { zone: "bastion", address, cidrs: [] },
  to: { host: "10.40.0.5", port: 5432, protocol: "tcp" },
  endsAt,
});

/** Real nft in a namespace of its own: what the enforcer loads, and how it finds hand edits. */
describe.skipIf(skip)("nftables enforcer against the kernel", () => {
  const netns = `fb-${randomBytes(3).toString("hex")}-enf`;
  const nft = (...args: string[]) =>
    run("ip", ["netns", "exec", netns, "nft", ...args]).then((r) => r.stdout);
  const enforcer = () => createNftablesEnforcer({ runner: createNftRunner({ netns }) });

  beforeAll(async () => {
    await run("ip", ["netns", "add", netns]);
  });
  afterAll(async () => {
    await run("ip", ["netns", "del", netns]).catch(() => {});
  });

  it("replaces, then rewrites only the grant sets, then does nothing when nothing changed", async () => {
    const now = Date.now();
    const subject = enforcer();
    const first = await subject.apply({ zones, flows, paths: [] }, { now });
    expect(first.mode).toBe("replaced");
    const withGrant = await subject.apply(
      { zones, flows, paths: [grant("a", "10.20.0.7", now + 60_000)] },
      { now },
    );
    expect(withGrant.mode).toBe("grants");
    expect(withGrant.openGrants).toHaveLength(1);
    expect(await nft("list", "set", "inet", "firebreak", "grants4")).toMatch(
      /10\.20\.0\.7 \. 10\.40\.0\.5 \. tcp \. 5432 timeout 1m expires .* comment "grant grt_a/,
    );
    const again = await subject.apply(
      { zones, flows, paths: [grant("a", "10.20.0.7", now + 60_000)] },
      { now: now + 500, checkDrift: true },
    );
    expect(again.mode).toBe("unchanged");
    expect(again.drift).toEqual({ removed: [], restored: [] });
    const withoutGrants = await subject.apply(
      { zones, flows, paths: [grant("a", "10.20.0.7", now + 60_000)] },
      { now, withoutGrants: true },
    );
    expect(withoutGrants.mode).toBe("grants");
    expect(await nft("list", "set", "inet", "firebreak", "grants4")).not.toContain("10.20.0.7");
  });

  it("finds hand edits (a rule, an element, a deleted element), reports and undoes them", async () => {
    const now = Date.now();
    const subject = enforcer();
    await subject.apply({ zones, flows, paths: [grant("b", "10.20.0.8", now + 60_000)] }, { now });
    await nft("insert", "rule", "inet", "firebreak", "gate", "ip", "saddr", "10.20.0.66", "accept");
    await nft("add", "element", "inet", "firebreak", "grants4", "{ 10.20.0.99 . 10.40.0.5 . tcp . 22 }");
    await nft(
      "delete",
      "element",
      "inet",
      "firebreak",
      "flows4",
      "{ 10.30.0.0/24 . 10.40.0.0/24 . tcp . 5432 }",
    );
    const drift = await subject.check();
    expect(drift.removed).toHaveLength(2);
    expect(drift.removed.join("\n")).toContain("10.20.0.66");
    expect(drift.removed.join("\n")).toContain("element grants4: 10.20.0.99 . 10.40.0.5 . tcp . 22");
    expect(drift.restored).toEqual([
      'element flows4: 10.30.0.0/24 . 10.40.0.0/24 . tcp . 5432 comment "flow app>db"',
    ]);
    const repaired = await subject.apply(
      { zones, flows, paths: [grant("b", "10.20.0.8", now + 60_000)] },
      { now, checkDrift: true },
    );
    expect(repaired.mode).toBe("replaced");
    expect(repaired.drift.removed).toHaveLength(2);
    expect(await subject.check()).toEqual({ removed: [], restored: [] });
    const table = await nft("list", "table", "inet", "firebreak");
    expect(table).not.toContain("10.20.0.66");
    expect(table).not.toContain("10.20.0.99");
    expect(table).toContain("10.30.0.0/24 . 10.40.0.0/24 . tcp . 5432");
  });

  it("does not count an element the kernel expired as drift, and notices a deleted table", async () => {
    const now = Date.now();
    const subject = enforcer();
    await subject.apply({ zones, flows, paths: [grant("c", "10.20.0.9", now + 1_000)] }, { now });
    await new Promise((resolve) => setTimeout(resolve, 2_300));
    expect(await nft("list", "set", "inet", "firebreak", "grants4")).not.toContain("10.20.0.9");
    expect(await subject.check()).toEqual({ removed: [], restored: [] });
    await subject.remove();
    await expect(nft("list", "table", "inet", "firebreak")).rejects.toThrow();
    const fresh = enforcer();
    await fresh.apply({ zones, flows, paths: [] }, { now });
    await nft("delete", "table", "inet", "firebreak");
    expect(await fresh.check()).toEqual({ removed: [], restored: ["table inet firebreak"] });
  });
});

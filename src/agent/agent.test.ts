import { afterEach, describe, expect, it } from "vitest";
import type { AgentReport } from "../api/enforcement.schema.js";
import type { ApplyOptions, ApplyResult } from "../enforcers/nftables/nftables.enforcer.js";
import { buildRuleset } from "../enforcers/nftables/ruleset.js";
import { buildNetworkState, type NetworkState, type PathState } from "../segmentation/network-state.js";
import { createAgent, type PathEnforcer, type StateSource } from "./agent.js";

const zones: NetworkState["zones"] = [
  { name: "bastion", cidrs: ["10.20.0.0/24"], enforcement: "enforce", labels: {} },
  { name: "db", cidrs: ["10.40.0.0/24"], enforcement: "enforce", labels: {} },
];
const path = (endsAt: number): PathState => ({
  grantId: "grt_aaaaaaaa0123456789abcdef",
  user: "alice",
  zone: "db",
  resource: "pg",
  from: { zone: "bastion", address: "10.20.0.7", cidrs: [] },
  to: { host: "10.40.0.5", port: 5432, protocol: "tcp" },
  endsAt,
});

/** A server that answers long-polls from a variable, and can be made unreachable. */
function fakeServer(start: NetworkState) {
  let state = start;
  let down = false;
  const reports: AgentReport[] = [];
  const wake = new Set<() => void>();
  const source: StateSource = {
    async poll(after, _wait, signal) {
      if (down) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        throw new Error("connection refused");
      }
      if (after !== state.digest) return { serverTime: Date.now(), state };
      await new Promise<void>((resolve) => {
        const done = () => {
          wake.delete(done);
          resolve();
        };
        wake.add(done);
        signal.addEventListener("abort", done, { once: true });
        setTimeout(done, 100);
      });
      return { serverTime: Date.now(), state: after !== state.digest ? state : null };
    },
    async report(report) {
      if (down) throw new Error("connection refused");
      reports.push(report);
    },
  };
  return {
    source,
    reports,
    set(next: NetworkState) {
      state = next;
      for (const done of [...wake]) done();
    },
    setDown(value: boolean) {
      down = value;
    },
  };
}

/** An enforcer that keeps the rules of the real one (it builds the same ruleset) without a kernel. */
function fakeEnforcer() {
  const applied: { options: ApplyOptions; result: ApplyResult }[] = [];
  const enforcer: PathEnforcer = {
    where: "memory",
    async apply(state, options) {
      const ruleset = buildRuleset(state, options);
      const result: ApplyResult = {
        mode: "replaced",
        openGrants: ruleset.openGrants,
        grantElements: ruleset.grantElements,
        skipped: ruleset.skipped,
        drift: { removed: [], restored: [] },
        counts: ruleset.counts,
        durationMs: 1,
      };
      applied.push({ options, result });
      return result;
    },
    async check() {
      return { removed: [], restored: [] };
    },
  };
  return { enforcer, applied };
}

async function until(check: () => boolean, timeoutMs = 5_000) {
  const started = Date.now();
  while (!check()) {
    if (Date.now() - started > timeoutMs) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("enforcement agent", () => {
  const controller = new AbortController();
  afterEach(() => controller.abort());

  it("applies the state, fails closed after the grace, and recovers when the server is back", async () => {
    const server = fakeServer(
      buildNetworkState({ zones, flows: [] }, [path(Date.now() + 60_000)], Date.now()),
    );
    const { enforcer, applied } = fakeEnforcer();
    const agent = createAgent({
      name: "gw1",
      enforcerKind: "nftables",
      source: server.source,
      enforcer,
      graceMs: 300,
      driftCheckMs: 60_000,
      log: { info() {}, error() {} },
    });
    const running = agent.run(controller.signal);
    await until(() => server.reports.length === 1);
    expect(server.reports[0]).toMatchObject({ agent: "gw1", status: "applied", notOpen: [] });
    expect(agent.status().openGrants).toHaveLength(1);

    server.setDown(true);
    const lostAt = Date.now();
    await until(() => agent.status().failedClosed);
    expect(Date.now() - lostAt).toBeGreaterThanOrEqual(250);
    await until(() => applied.at(-1)?.options.withoutGrants === true);
    expect(applied.at(-1)?.result.openGrants).toEqual([]);

    server.setDown(false);
    await until(() => !agent.status().failedClosed && agent.status().openGrants.length === 1);
    await until(() => server.reports.some((r) => r.status === "failed-closed"));
    await until(() => server.reports.at(-1)?.status === "applied");
    controller.abort();
    await running;
  });

  it("drops a path at its grant's end on its own clock, without waiting for the server", async () => {
    const endsAt = Date.now() + 400;
    const server = fakeServer(buildNetworkState({ zones, flows: [] }, [path(endsAt)], Date.now()));
    const { enforcer, applied } = fakeEnforcer();
    const local = new AbortController();
    const agent = createAgent({
      name: "gw2",
      enforcerKind: "nftables",
      source: server.source,
      enforcer,
      graceMs: 60_000,
      driftCheckMs: 60_000,
      log: { info() {}, error() {} },
    });
    const running = agent.run(local.signal);
    await until(() => agent.status().openGrants.length === 1);
    await until(() => agent.status().openGrants.length === 0);
    expect(Date.now()).toBeGreaterThanOrEqual(endsAt - 5);
    expect(Date.now() - endsAt).toBeLessThan(250);
    expect(applied.at(-1)?.options.now).toBeGreaterThanOrEqual(endsAt - 5);
    await until(() => server.reports.at(-1)?.notOpen.length === 1);
    local.abort();
    await running;
  });
});

import { createAgent, type StateSource } from "../agent/agent.js";
import { createNftRunner } from "../enforcers/nftables/nft.js";
import { createNftablesEnforcer } from "../enforcers/nftables/nftables.enforcer.js";
import { buildRuleset, replaceCommands } from "../enforcers/nftables/ruleset.js";
import { buildNetworkState, type NetworkState, type PathState } from "../segmentation/network-state.js";
import { createRandom } from "./measure.js";
import { canBuildLabs, createLab, holdConnection, type Lab, startEchoServer } from "./netns-lab.js";

/**
 * (e) Network enforcement at scale: the nftables ruleset for 1,000 zones, 10,000 standing flows and
 * 1,000 active grants, generated and applied with `nft -j -f` in a network namespace; then, in a
 * lab of namespaces carrying that same ruleset, the time from a grant's end (and from a revoke
 * reaching the agent) to its packets being dropped: a connection opened during the grant sends a
 * byte every 5 ms, and the time of the reset it receives is compared with the grant's end.
 * Goal: under 1 s from expiry to drop.
 */
const ZONES = 1_000;
const FLOWS = 10_000;
const GRANTS = 1_000;
const ROUNDS = 5;
const PORT = 5432;

function syntheticState(lab: Lab | null, now: number): NetworkState {
  const random = createRandom(0x5e9);
  const zones: NetworkState["zones"] = [];
  for (let i = 0; i < ZONES; i++)
    zones.push({
      name: `zone-${i}`,
      // 172.16.0.0/12 holds 4,096 /24s; the lab uses 10.64.0.0/10, so they never meet.
      cidrs: [`172.${16 + (i >> 8)}.${i & 255}.0/24`],
      enforcement: i % 10 === 0 ? "monitor" : "enforce",
      labels: {},
    });
  const flows: NetworkState["flows"] = [];
  for (let i = 0; i < FLOWS; i++) {
    const from = random.int(ZONES);
    let to = random.int(ZONES);
    if (to === from) to = (to + 1) % ZONES;
    const low = 1024 + random.int(50_000);
    flows.push({
      from: `zone-${from}`,
      to: `zone-${to}`,
      ports: random.int(4) === 0 ? [`tcp/${low}-${low + random.int(100)}`, `udp/${low}`] : [`tcp/${low}`],
    });
  }
  const paths: PathState[] = [];
  for (let i = 0; i < GRANTS; i++) {
    const source = random.int(ZONES);
    const target = random.int(ZONES);
    paths.push({
      grantId: `grt_bench${String(i).padStart(4, "0")}${(0x1000000000000000n + BigInt(i)).toString(16)}`,
      user: `user${i}`,
      zone: `zone-${target}`,
      resource: `res-${i}`,
      from:
        i % 2 === 0
          ? {
              zone: `zone-${source}`,
              address: null,
              cidrs: [`172.${16 + (source >> 8)}.${source & 255}.0/24`],
            }
          : {
              zone: `zone-${source}`,
              address: `172.${16 + (source >> 8)}.${source & 255}.${10 + random.int(200)}`,
              cidrs: [],
            },
      to: {
        host: `172.${16 + (target >> 8)}.${target & 255}.${10 + random.int(200)}`,
        port: 5432,
        protocol: "tcp",
      },
      endsAt: now + 3_600_000,
    });
  }
  if (lab) {
    for (const name of ["bastion", "db"]) {
      const zone = lab.zone(name);
      zones.push({ name, cidrs: [zone.cidr], enforcement: "enforce", labels: {} });
    }
  }
  return buildNetworkState({ zones, flows }, paths, now);
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const summary = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return `p50 ${ms(sorted[Math.floor(sorted.length / 2)] ?? Number.NaN)}, max ${ms(sorted.at(-1) ?? Number.NaN)} (${sorted.map((v) => v.toFixed(0)).join(", ")} ms)`;
};

/** A source the benchmark changes by hand: the agent's own code path, without HTTP in between. */
function memorySource(initial: NetworkState) {
  let state = initial;
  const waiting = new Set<() => void>();
  const source: StateSource = {
    async poll(after, waitSeconds, signal) {
      if (after !== state.digest) return { serverTime: Date.now(), state };
      await new Promise<void>((resolve) => {
        const done = () => {
          waiting.delete(done);
          resolve();
        };
        waiting.add(done);
        signal.addEventListener("abort", done, { once: true });
        setTimeout(done, waitSeconds * 1000);
      });
      return { serverTime: Date.now(), state: after !== state.digest ? state : null };
    },
    async report() {},
  };
  return {
    source,
    set(next: NetworkState) {
      state = next;
      for (const done of [...waiting]) done();
    },
  };
}

export async function runSegmentationBenchmarks(): Promise<void> {
  console.log("\n(e) network enforcement: nftables ruleset and expiry-to-drop");
  const state = syntheticState(null, Date.now());
  const generationStarted = performance.now();
  const built = buildRuleset(state, { now: state.serverTime });
  const generationMs = performance.now() - generationStarted;
  const batch = JSON.stringify({ nftables: replaceCommands(built) });
  console.log(
    `  generate: ${ZONES} zones, ${FLOWS} flows, ${GRANTS} grants -> ${built.counts.flowElements} flow elements, ${built.counts.grantElements} grant elements, ${(batch.length / 1024 / 1024).toFixed(1)} MiB of JSON in ${ms(generationMs)}`,
  );
  if (!(await canBuildLabs())) {
    console.log("  apply and expiry-to-drop: skipped (needs root, iproute2 and nftables)");
    return;
  }

  const lab = await createLab(["bastion", "db"]);
  try {
    const enforcer = createNftablesEnforcer({ runner: createNftRunner({ netns: lab.router }) });
    const full = syntheticState(lab, Date.now());
    const applies: number[] = [];
    for (let round = 0; round < 3; round++) {
      await enforcer.remove();
      const started = performance.now();
      await enforcer.apply(full, { now: full.serverTime });
      applies.push(performance.now() - started);
    }
    console.log(`  apply (whole table, atomic nft -j -f): ${summary(applies)}`);
    const unchanged: number[] = [];
    const drift: number[] = [];
    const grantUpdates: number[] = [];
    for (let round = 0; round < 3; round++) {
      await enforcer.apply(full, { now: Date.now() });
      let started = performance.now();
      await enforcer.apply(full, { now: Date.now() });
      unchanged.push(performance.now() - started);
      started = performance.now();
      await enforcer.check();
      drift.push(performance.now() - started);
      const fewer = buildNetworkState(full, full.paths.slice(round + 1), Date.now());
      started = performance.now();
      await enforcer.apply(fewer, { now: Date.now() });
      grantUpdates.push(performance.now() - started);
    }
    console.log(`  re-apply, unchanged (no nft call): ${summary(unchanged)}`);
    console.log(`  drift check (list the table, compare): ${summary(drift)}`);
    console.log(`  one grant closed (rewrite the grant sets only): ${summary(grantUpdates)}`);

    // Expiry to drop, in the lab, with the full ruleset loaded and an agent enforcing it.
    const bastion = lab.zone("bastion");
    const db = lab.zone("db");
    await startEchoServer(lab, db.netns, PORT);
    const expiry: number[] = [];
    const revoke: number[] = [];
    for (let round = 0; round < ROUNDS * 2; round++) {
      const byExpiry = round < ROUNDS;
      const endsAt = Date.now() + (byExpiry ? 1_500 : 3_600_000);
      const grant: PathState = {
        grantId: `grt_labround${String(round).padStart(2, "0")}0123456789abcdef`,
        user: "alice",
        zone: "db",
        resource: "db",
        from: { zone: "bastion", address: bastion.host, cidrs: [] },
        to: { host: db.host, port: PORT, protocol: "tcp" },
        endsAt,
      };
      const memory = memorySource(buildNetworkState(full, [...full.paths, grant], Date.now()));
      const controller = new AbortController();
      let open = false;
      const agent = createAgent({
        name: "bench",
        enforcerKind: "nftables",
        source: memory.source,
        enforcer,
        graceMs: 60_000,
        driftCheckMs: 3_600_000,
        log: { info() {}, error() {} },
        onApplied: (result) => {
          open = result.openGrants.includes(grant.grantId);
        },
      });
      const running = agent.run(controller.signal);
      while (!open) await new Promise((resolve) => setTimeout(resolve, 5));
      const held = holdConnection(lab, bastion.netns, db.host, PORT, 5);
      await held.connected();
      let closedAt = endsAt;
      if (!byExpiry) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        closedAt = Date.now();
        memory.set(buildNetworkState(full, full.paths, Date.now()));
      }
      const ended = await Promise.race([
        held.ended(),
        new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000)),
      ]);
      held.stop();
      controller.abort();
      await running;
      if (!ended) throw new Error("the connection was not cut within 10 s");
      (byExpiry ? expiry : revoke).push(ended.at - closedAt);
    }
    console.log(
      `  grant end -> packets dropped (agent's own timer, ${GRANTS} other grants loaded): ${summary(expiry)}`,
    );
    console.log(`  revoke reaching the agent -> packets dropped: ${summary(revoke)}`);
    console.log("  goal: under 1 s from expiry to drop");
  } finally {
    await lab.destroy();
  }
}

import type { StaticPolicySet } from "@cedar-policy/cedar-wasm/nodejs";
import { createAccessIndex } from "../policy/access-index.js";
import { type ConditionVars, compileCondition } from "../policy/cel.js";
import { compilePolicy, type DecisionInput, decide, explain } from "../policy/engine.js";
import {
  createRandom,
  formatMicros,
  formatRate,
  formatTable,
  type LatencySummary,
  measure,
  sink,
} from "./measure.js";
import {
  BENCHMARK_SCALE,
  generateSyntheticPolicy,
  INCIDENT_CONDITION,
  ROLES,
  type SyntheticData,
} from "./synthetic-policy.js";

/**
 * Policy benchmarks from issue 2: (a) the access-check hot path beside a bare Map (the floor) and
 * beside cedar-wasm making the same decisions, (b) full break-glass decisions with reasons and a
 * compiled CEL condition. Figures are printed, never asserted.
 */

const QUERY_COUNT = 1 << 16;
const QUERY_MASK = QUERY_COUNT - 1;
/** Far enough in the future to stand for "no end" in Cedar's 64-bit Long and in a JS number. */
const STANDING_END = 8_640_000_000_000_000;

interface AccessQueries {
  readonly users: string[];
  readonly zones: string[];
  readonly roles: string[];
  /** `user\0zone\0role`, prebuilt for the floor that does not pay for building keys. */
  readonly keys: string[];
  readonly hits: number;
}

/** A third of the queries hit standing bindings, a third hit grants, a third are random (mostly misses). */
function buildQueries(
  data: SyntheticData,
  standingHoldings: readonly [string, string, string][],
): AccessQueries {
  const random = createRandom(7);
  const queries: AccessQueries = { users: [], zones: [], roles: [], keys: [], hits: 0 };
  for (let index = 0; index < QUERY_COUNT; index++) {
    let user: string;
    let zone: string;
    let role: string;
    const kind = index % 3;
    if (kind === 0) {
      [user, zone, role] = random.pick(standingHoldings);
    } else if (kind === 1) {
      ({ user, zone, role } = random.pick(data.grants));
    } else {
      user = random.pick(data.users);
      zone = random.pick(data.zones);
      role = random.pick(ROLES);
    }
    // Fresh strings, as they would arrive from a parsed request, not the interned config strings.
    queries.users.push(`${user} `.trimEnd());
    queries.zones.push(`${zone} `.trimEnd());
    queries.roles.push(`${role} `.trimEnd());
    queries.keys.push(`${user}\0${zone}\0${role}`);
  }
  return queries;
}

function standingHoldingsOf(data: SyntheticData): [string, string, string][] {
  const holdings: [string, string, string][] = [];
  const byGroup = new Map<string, { zone: string; role: string }[]>();
  for (const binding of data.config.standing ?? []) {
    if (binding.zone === undefined) continue;
    if (binding.user !== undefined) holdings.push([binding.user, binding.zone, binding.role]);
    else if (binding.group !== undefined) {
      const list = byGroup.get(binding.group) ?? [];
      list.push({ zone: binding.zone, role: binding.role });
      byGroup.set(binding.group, list);
    }
  }
  for (const [user, entry] of Object.entries(data.config.directory?.users ?? {})) {
    for (const group of entry.groups) {
      for (const { zone, role } of byGroup.get(group) ?? []) holdings.push([user, zone, role]);
    }
  }
  return holdings;
}

interface CedarModel {
  readonly name: string;
  readonly policySetIdFor: (zone: string) => string;
  readonly note: string;
}

type Cedar = typeof import("@cedar-policy/cedar-wasm/nodejs");

/**
 * Standing bindings and grants as Cedar policies: a group binding is `principal in Group::…`, a user
 * binding `principal == User::…`, a grant the same with `when { context.now < endsAt }`. Entities
 * carry only the requesting user and its group parents, the least Cedar needs per call.
 */
function cedarPolicies(data: SyntheticData): Map<string, string[]> {
  const byZone = new Map<string, string[]>();
  const add = (zone: string, text: string) => {
    const list = byZone.get(zone) ?? [];
    list.push(text);
    byZone.set(zone, list);
  };
  for (const binding of data.config.standing ?? []) {
    if (binding.zone === undefined) continue;
    const principal =
      binding.group !== undefined
        ? `principal in Group::"${binding.group}"`
        : `principal == User::"${binding.user}"`;
    add(
      binding.zone,
      `permit(${principal}, action == Action::"${binding.role}", resource == Zone::"${binding.zone}");`,
    );
  }
  for (const grant of data.grants) {
    add(
      grant.zone,
      `permit(principal == User::"${grant.user}", action == Action::"${grant.role}", resource == Zone::"${grant.zone}") when { context.now < ${grant.endsAt} };`,
    );
  }
  return byZone;
}

function prepareCedar(cedar: Cedar, data: SyntheticData): CedarModel[] {
  const byZone = cedarPolicies(data);
  const all: Record<string, string> = {};
  let count = 0;
  for (const [zone, texts] of byZone) {
    const record: Record<string, string> = {};
    texts.forEach((text, index) => {
      record[`p${index}`] = text;
      all[`p${count++}`] = text;
    });
    const answer = cedar.preparsePolicySet(`zone:${zone}`, { staticPolicies: record as StaticPolicySet });
    if (answer.type !== "success") throw new Error(`cedar refused the policies of ${zone}`);
  }
  const answer = cedar.preparsePolicySet("all", { staticPolicies: all as StaticPolicySet });
  if (answer.type !== "success") throw new Error("cedar refused the policy set");
  const empty = cedar.preparsePolicySet("none", { staticPolicies: {} });
  if (empty.type !== "success") throw new Error("cedar refused the empty policy set");
  return [
    {
      name: "cedar-wasm statefulIsAuthorized, one policy set",
      policySetIdFor: () => "all",
      note: `${count} policies in one set; entities: user + groups`,
    },
    {
      name: "cedar-wasm statefulIsAuthorized, set per zone",
      policySetIdFor: (zone) => (byZone.has(zone) ? `zone:${zone}` : "none"),
      note: `${count} policies in ${byZone.size} sets, chosen by zone; entities: user + groups`,
    },
  ];
}

function benchmarkAccessChecks(
  data: SyntheticData,
  cedar: Cedar | null,
): { rows: LatencySummary[]; notes: string[] } {
  const notes: string[] = [];
  const compileStart = process.hrtime.bigint();
  const policy = compilePolicy(data.config);
  const compiledAt = process.hrtime.bigint();
  const index = createAccessIndex(policy, []);
  for (const grant of data.grants) index.addGrant(grant.id, grant.user, grant.zone, grant.role, grant.endsAt);
  const indexedAt = process.hrtime.bigint();
  notes.push(
    `compilePolicy ${(Number(compiledAt - compileStart) / 1e6).toFixed(1)} ms; ` +
      `createAccessIndex + ${data.grants.length} addGrant ${(Number(indexedAt - compiledAt) / 1e6).toFixed(1)} ms`,
  );

  // The floor: every holding (standing expanded per user, grants) in one Map keyed user\0zone\0role.
  const standingHoldings = standingHoldingsOf(data);
  const floor = new Map<string, number>();
  for (const [user, zone, role] of standingHoldings) floor.set(`${user}\0${zone}\0${role}`, STANDING_END);
  for (const grant of data.grants) {
    const key = `${grant.user}\0${grant.zone}\0${grant.role}`;
    floor.set(key, Math.max(floor.get(key) ?? Number.NEGATIVE_INFINITY, grant.endsAt));
  }
  const queries = buildQueries(data, standingHoldings);
  const { users, zones, roles, keys } = queries;
  const now = data.now;

  const checkIndex = (i: number) => {
    const q = i & QUERY_MASK;
    return index.check(users[q] as string, zones[q] as string, roles[q] as string, now);
  };
  const floorPrebuilt = (i: number) => {
    const endsAt = floor.get(keys[i & QUERY_MASK] as string);
    return endsAt !== undefined && now < endsAt;
  };
  const floorBuilt = (i: number) => {
    const q = i & QUERY_MASK;
    const endsAt = floor.get(`${users[q]}\0${zones[q]}\0${roles[q]}`);
    return endsAt !== undefined && now < endsAt;
  };

  let disagreements = 0;
  let granted = 0;
  for (let q = 0; q < QUERY_COUNT; q++) {
    const expected = floorPrebuilt(q);
    if (checkIndex(q) !== expected) disagreements++;
    if (expected) granted++;
  }
  notes.push(
    `access index vs Map floor: ${QUERY_COUNT - disagreements}/${QUERY_COUNT} decisions agree (${granted} allow, ${QUERY_COUNT - granted} deny)`,
  );

  const warmup = 500_000;
  for (const operation of [checkIndex, floorPrebuilt, floorBuilt]) measure("warm-up", warmup, 100, operation);
  const operations = 2_000_000;
  const rows = [
    measure("access index check()", operations, 100, checkIndex),
    measure("access index check(), one op per timing", 400_000, 1, checkIndex, "includes hrtime overhead"),
    measure("bare Map.get, key prebuilt (floor)", operations, 100, floorPrebuilt),
    measure("bare Map.get, key built per lookup", operations, 100, floorBuilt),
    measure("timer overhead, empty operation", 400_000, 1, () => true, "hrtime pair alone"),
  ];

  if (cedar !== null) {
    const models = prepareCedar(cedar, data);
    const entities = new Map<string, Parameters<Cedar["statefulIsAuthorized"]>[0]["entities"]>();
    for (const [user, entry] of Object.entries(data.config.directory?.users ?? {})) {
      entities.set(user, [
        {
          uid: { type: "User", id: user },
          attrs: {},
          parents: entry.groups.map((group) => ({ type: "Group", id: group })),
        },
      ]);
    }
    const context = { now };
    for (const model of models) {
      const ask = (i: number): boolean => {
        const q = i & QUERY_MASK;
        const zone = zones[q] as string;
        const answer = cedar.statefulIsAuthorized({
          principal: { type: "User", id: users[q] as string },
          action: { type: "Action", id: roles[q] as string },
          resource: { type: "Zone", id: zone },
          context,
          preparsedPolicySetId: model.policySetIdFor(zone),
          entities: entities.get(users[q] as string) ?? [],
        });
        if (answer.type !== "success") throw new Error(`cedar failed: ${JSON.stringify(answer.errors)}`);
        return answer.response.decision === "allow";
      };
      // Cedar evaluates every policy of the set per call, so runs over the whole set stay short.
      const single = model.policySetIdFor("zone-0000") === "all";
      const sample = single ? 300 : 2_000;
      let agree = 0;
      for (let q = 0; q < sample; q++) if (ask(q * 31) === checkIndex(q * 31)) agree++;
      notes.push(`${model.name}: ${agree}/${sample} sampled decisions agree with the access index`);
      measure("warm-up", single ? 100 : 2_000, 1, ask);
      rows.push(measure(model.name, single ? 500 : 20_000, 1, ask, model.note));
    }
  } else {
    notes.push("@cedar-policy/cedar-wasm is not installed; its rows are missing");
  }
  return { rows, notes };
}

function benchmarkDecisions(data: SyntheticData): { rows: LatencySummary[]; notes: string[] } {
  const policy = compilePolicy(data.config);
  const random = createRandom(11);
  const membersOf = new Map<string, string[]>();
  for (const [user, entry] of Object.entries(data.config.directory?.users ?? {})) {
    for (const group of entry.groups) {
      const list = membersOf.get(group) ?? [];
      list.push(user);
      membersOf.set(group, list);
    }
  }
  const standing = standingHoldingsOf(data);
  const sev = (severity: number): ConditionVars["signals"] => ({
    incident: { open: true, severity, id: "INC-42", title: "payments down", ageSeconds: 300 },
    sourceZone: null,
  });
  const policies = data.config.breakGlass ?? [];
  const inputs: DecisionInput[] = [];
  for (let k = 0; k < 4_096; k++) {
    const target = random.pick(policies);
    const eligibleGroup = (target.eligible[0] as string).slice("group:".length);
    const eligibleUser = random.pick(membersOf.get(eligibleGroup) ?? data.users);
    const good = {
      principal: { name: eligibleUser, groups: [] },
      target: { zone: target.zone },
      role: "admin",
      durationMs: 30 * 60_000,
      reason: "payments database refuses writes since 01:52",
      ticket: "INC-42",
      sourceZone: data.zones[0] as string,
      signals: sev(2),
      blockingOverdueReviews: 0,
      now: data.now,
    } satisfies DecisionInput;
    const roll = k % 20;
    if (roll < 8) inputs.push(good);
    else if (roll < 11) inputs.push({ ...good, signals: sev(1) });
    else if (roll < 17) {
      inputs.push({
        ...good,
        principal: { name: random.pick(data.users), groups: [] },
        durationMs: 2 * 3_600_000,
        reason: "fix",
        ticket: "JIRA-1",
        sourceZone: null,
        signals: sev(4),
        blockingOverdueReviews: 1,
      });
    } else {
      const [user, zone, role] = random.pick(standing);
      inputs.push({ ...good, principal: { name: user, groups: [] }, target: { zone }, role });
    }
  }
  const outcomes = new Map<string, number>();
  for (const input of inputs) {
    const decision = decide(policy, input);
    const key = decision.outcome === "allow" ? `allow/${decision.via}` : decision.outcome;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  const mix = [...outcomes]
    .map(([key, count]) => `${key} ${((100 * count) / inputs.length).toFixed(0)}%`)
    .join(", ");

  const condition = compileCondition(INCIDENT_CONDITION);
  const varsList: ConditionVars[] = inputs.map((input) => ({
    principal: { name: input.principal.name, groups: [] },
    request: {
      zone: input.target.zone as string,
      resource: null,
      role: input.role,
      durationSeconds: 1800,
      reason: input.reason,
      ticket: input.ticket ?? null,
      sourceZone: input.sourceZone,
    },
    signals: input.signals,
    now: input.now,
  }));
  const mask = inputs.length - 1;
  const decideOne = (i: number) => decide(policy, inputs[i & mask] as DecisionInput).outcome !== "deny";
  const explainOne = (i: number) => explain(policy, inputs[i & mask] as DecisionInput).policies.length > 0;
  const celOne = (i: number) => {
    const result = condition.evaluate(varsList[i & mask] as ConditionVars);
    return result.ok && result.value;
  };
  for (const operation of [decideOne, explainOne, celOne]) measure("warm-up", 50_000, 1, operation);
  return {
    rows: [
      measure("decide(), full break-glass decision", 200_000, 1, decideOne, "one op per timing"),
      measure("explain()", 100_000, 1, explainOne, "one op per timing"),
      measure("compiled CEL condition alone", 200_000, 1, celOne, `${INCIDENT_CONDITION}`),
    ],
    notes: [`decision mix: ${mix}`],
  };
}

/** Runs the policy benchmarks at issue 2's scale and prints the tables with the peer figures. */
export async function runPolicyBenchmarks(): Promise<void> {
  const scale = BENCHMARK_SCALE;
  console.log(
    `policy benchmarks: ${scale.zones} zones, ${scale.users} users, ${scale.groups} groups, ${scale.grants} active grants (node ${process.version})`,
  );
  const data = generateSyntheticPolicy(scale);
  let cedar: Cedar | null = null;
  try {
    cedar = await import("@cedar-policy/cedar-wasm/nodejs");
  } catch {
    cedar = null;
  }

  const access = benchmarkAccessChecks(data, cedar);
  console.log();
  console.log(formatTable("(a) access checks: does this user hold this role in this zone now", access.rows));
  for (const note of access.notes) console.log(`  ${note}`);
  const [indexRow, , floorRow, builtRow] = access.rows;
  const cedarRows = access.rows.filter((row) => row.name.startsWith("cedar"));
  if (indexRow !== undefined && floorRow !== undefined && builtRow !== undefined) {
    console.log(
      `  index p99 ${formatMicros(indexRow.p99)} = ${(indexRow.p99 / floorRow.p99).toFixed(1)}x the prebuilt-key floor, ` +
        `${(indexRow.p99 / builtRow.p99).toFixed(1)}x the built-key Map`,
    );
    for (const row of cedarRows) {
      console.log(
        `  ${row.name}: p50 ${(row.p50 / indexRow.p50).toFixed(0)}x, p99 ${(row.p99 / indexRow.p99).toFixed(0)}x, ` +
          `throughput ${formatRate(row.opsPerSecond)} vs ${formatRate(indexRow.opsPerSecond)}`,
      );
    }
  }

  const decisions = benchmarkDecisions(data);
  console.log();
  console.log(
    formatTable("(b) break-glass decisions with reasons and a compiled CEL condition", decisions.rows),
  );
  for (const note of decisions.notes) console.log(`  ${note}`);
  if (sink.value < 0) console.log("unreachable");
}

import { configSchema, type FirebreakConfig } from "../config/schema.js";
import { createRandom } from "./measure.js";

/**
 * A deterministic, realistically shaped configuration at benchmark scale: zones with one resource
 * each, users spread over groups, read-only standing bindings, one break-glass policy per zone,
 * and a set of active grants. The same seed always yields the same data.
 */

export interface SyntheticScale {
  readonly zones: number;
  readonly users: number;
  readonly groups: number;
  readonly grants: number;
}

export const BENCHMARK_SCALE: SyntheticScale = { zones: 1_000, users: 10_000, groups: 500, grants: 10_000 };

export interface SyntheticGrant {
  readonly id: string;
  readonly user: string;
  readonly zone: string;
  readonly role: string;
  readonly endsAt: number;
}

export interface SyntheticData {
  readonly config: FirebreakConfig;
  readonly zones: readonly string[];
  readonly users: readonly string[];
  readonly groups: readonly string[];
  readonly grants: readonly SyntheticGrant[];
  readonly now: number;
}

export const ROLES = ["read", "operator", "admin"] as const;
export const INCIDENT_CONDITION = "signals.incident.open && signals.incident.severity <= 2";

const pad = (value: number, width: number) => String(value).padStart(width, "0");

/** Builds the synthetic configuration (validated through the real schema) and its active grants. */
export function generateSyntheticPolicy(
  scale: SyntheticScale = BENCHMARK_SCALE,
  seed = 20261129,
): SyntheticData {
  const random = createRandom(seed);
  const now = Date.UTC(2026, 10, 29, 2, 0, 0);
  const zones = Array.from({ length: scale.zones }, (_, index) => `zone-${pad(index, 4)}`);
  const groups = Array.from({ length: scale.groups }, (_, index) => `group-${pad(index, 3)}`);
  const users = Array.from({ length: scale.users }, (_, index) => `user-${pad(index, 5)}`);

  const directory: Record<string, { groups: string[] }> = {};
  for (const user of users) {
    const count = 1 + random.int(3);
    const mine = new Set<string>();
    while (mine.size < count) mine.add(random.pick(groups));
    directory[user] = { groups: [...mine] };
  }

  const resources: Record<string, unknown> = {};
  for (const zone of zones) {
    resources[`${zone}-db`] = {
      zone,
      type: "log",
      roles: { read: {}, operator: {}, admin: {} },
    };
  }

  // Least privilege: groups hold read on a few zones; a handful of users hold operator directly.
  const standing: unknown[] = [];
  for (const group of groups) {
    for (let k = 0; k < 2; k++) standing.push({ group, zone: random.pick(zones), role: "read" });
  }
  for (let k = 0; k < 200; k++)
    standing.push({ user: random.pick(users), zone: random.pick(zones), role: "operator" });

  const bastion = zones[0] as string;
  const breakGlass = zones.map((zone) => ({
    name: `${zone}-emergency`,
    zone,
    roles: ["operator", "admin"],
    eligible: [`group:${random.pick(groups)}`, `group:${random.pick(groups)}`],
    duration: { default: "30m", max: "1h" },
    factors: ["webauthn", "totp"],
    approvals: [{ from: `group:${random.pick(groups)}`, count: 1 }],
    justification: { minLength: 20, ticket: "^INC-[0-9]+$" },
    sourceZones: [bastion],
    when: INCIDENT_CONDITION,
    autoApprove: { when: "signals.incident.severity == 1" },
    review: { within: "72h", blockWhenOverdue: true },
    pendingExpiry: "15m",
  }));

  const config = configSchema.parse({
    version: 1,
    directory: { users: directory },
    zones: Object.fromEntries(zones.map((zone) => [zone, { enforcement: "enforce" }])),
    resources,
    standing,
    breakGlass,
  });

  const grants: SyntheticGrant[] = Array.from({ length: scale.grants }, (_, index) => ({
    id: `grant-${pad(index, 5)}`,
    user: random.pick(users),
    zone: random.pick(zones),
    role: random.next() < 0.7 ? "admin" : "operator",
    endsAt: now + 60_000 + random.int(3_600_000),
  }));

  return { config, zones, users, groups, grants, now };
}

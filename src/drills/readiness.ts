import type { FactorKind, FirebreakConfig } from "../config/schema.js";
import { matchesPrincipal } from "../policy/approvals.js";
import { type CompiledPolicy, effectiveGroups } from "../policy/engine.js";

/**
 * Readiness (issue 16.5): for every break-glass policy, who could use it right now and what stands
 * in the way of each eligible person, without touching a target. Pure: the caller gathers the
 * facts (the server from its database, `firebreak readiness --config` from the file alone, where
 * factors and reviews are unknown and said to be).
 */

export type ReadinessBlockerCode =
  | "NO_ELIGIBLE_USER"
  | "NO_FACTOR_ENROLLED"
  | "FACTOR_NOT_SETTLED"
  | "REVIEW_OVERDUE"
  | "NO_APPROVER"
  | "NO_APPROVER_WITH_FACTOR"
  | "NO_NOTIFICATION_CHANNEL"
  | "SOURCE_ZONE_UNREACHABLE";

export interface ReadinessBlocker {
  code: ReadinessBlockerCode;
  message: string;
}

/** A user's enrolled, confirmed factors: the kind and from when it counts. */
export interface EnrolledFactor {
  kind: FactorKind;
  settlesAt: number;
}

export interface ReadinessFacts {
  /** Everyone Firebreak knows: the directory and users who signed in (with the groups last seen). */
  users: readonly { name: string; groups: readonly string[] }[];
  /** Each user's confirmed factors; null when unknown (offline on a file). */
  factors: ReadonlyMap<string, readonly EnrolledFactor[]> | null;
  /** Each user's overdue reviews under a policy that blocks on them; null when unknown. */
  overdueReviews: ReadonlyMap<string, number> | null;
  now: number;
}

export interface PersonReadiness {
  user: string;
  ready: boolean;
  blockers: ReadinessBlocker[];
}

export interface PolicyReadiness {
  policy: string;
  zone: string;
  roles: string[];
  /** True when at least one eligible person has nothing in the way. */
  ready: boolean;
  /** Who could use it right now. */
  readyUsers: string[];
  eligible: PersonReadiness[];
  /** What stands in the way of everyone (no eligible user, no channel to reach approvers). */
  blockers: ReadinessBlocker[];
  /** Facts this answer could not check (offline: `factors`, `reviews`). */
  unknown: string[];
}

const list = (items: readonly string[]) => items.join(", ");

function usableKinds(
  factors: readonly EnrolledFactor[] | undefined,
  kinds: readonly FactorKind[],
  now: number,
) {
  const wanted = (factors ?? []).filter((f) => kinds.includes(f.kind));
  return { enrolled: wanted.length > 0, settled: wanted.some((f) => f.settlesAt <= now) };
}

/** The readiness of every break-glass policy, in configuration order. */
export function assessReadiness(
  config: FirebreakConfig,
  policy: CompiledPolicy,
  facts: ReadinessFacts,
): PolicyReadiness[] {
  const people = facts.users.map((user) => ({
    name: user.name,
    groups: effectiveGroups(policy, { name: user.name, groups: user.groups }),
  }));
  const unknown = [
    ...(facts.factors === null ? ["factors"] : []),
    ...(facts.overdueReviews === null ? ["reviews"] : []),
  ];
  const channels = config.notify ?? [];
  return (config.breakGlass ?? []).map((rules) => {
    const compiled = policy.zones.get(rules.zone)?.policies.find((p) => p.name === rules.name);
    const eligible = people.filter((p) => matchesPrincipal(rules.eligible, p.name, p.groups));
    const factors = rules.factors ?? [];
    const approverFactors = rules.approverFactors ?? [];
    const steps = compiled?.approvals ?? [];
    const blockers: ReadinessBlocker[] = [];
    if (eligible.length === 0)
      blockers.push({
        code: "NO_ELIGIBLE_USER",
        message: `nobody Firebreak knows is eligible (${list(rules.eligible)})`,
      });
    if (steps.length > 0 && channels.length === 0)
      blockers.push({
        code: "NO_NOTIFICATION_CHANNEL",
        message: "approvals are needed but no notify channel is configured: approvers would not be told",
      });
    const sourceZones = rules.sourceZones ?? [];
    const recognisable = sourceZones.filter((zone) => (config.zones[zone]?.cidrs ?? []).length > 0);
    if (sourceZones.length > 0 && recognisable.length === 0)
      blockers.push({
        code: "SOURCE_ZONE_UNREACHABLE",
        message: `requests must come from ${list(sourceZones)}, and none of them has CIDRs to recognise a request by`,
      });
    const assessed = eligible.map((person): PersonReadiness => {
      const mine: ReadinessBlocker[] = [];
      if (factors.length > 0 && facts.factors !== null) {
        const usable = usableKinds(facts.factors.get(person.name), factors, facts.now);
        if (!usable.enrolled)
          mine.push({
            code: "NO_FACTOR_ENROLLED",
            message: `${person.name} has no ${factors.join(" or ")} factor enrolled; activation needs one`,
          });
        else if (!usable.settled)
          mine.push({
            code: "FACTOR_NOT_SETTLED",
            message: `${person.name}'s ${factors.join(" or ")} factor does not count yet (it is settling)`,
          });
      }
      if (rules.review?.blockWhenOverdue && facts.overdueReviews !== null) {
        const overdue = facts.overdueReviews.get(person.name) ?? 0;
        if (overdue > 0)
          mine.push({
            code: "REVIEW_OVERDUE",
            message: `${person.name} has ${overdue} overdue review${overdue === 1 ? "" : "s"}, which blocks new requests`,
          });
      }
      for (const step of steps) {
        const candidates = people.filter(
          (p) => p.name !== person.name && matchesPrincipal(step.from, p.name, p.groups),
        );
        const withFactor =
          approverFactors.length > 0 && facts.factors !== null
            ? candidates.filter(
                (p) => usableKinds(facts.factors?.get(p.name), approverFactors, facts.now).settled,
              )
            : candidates;
        const auto = rules.autoApprove ? " (unless autoApprove's condition holds)" : "";
        if (candidates.length < step.count)
          mine.push({
            code: "NO_APPROVER",
            message: `approval from ${list(step.from)} needs ${step.count}, and only ${candidates.length} other than ${person.name} exist${auto}`,
          });
        else if (withFactor.length < step.count)
          mine.push({
            code: "NO_APPROVER_WITH_FACTOR",
            message: `approval from ${list(step.from)} needs ${step.count} with a ${approverFactors.join(" or ")} factor, and only ${withFactor.length} have one${auto}`,
          });
      }
      return { user: person.name, ready: mine.length === 0 && blockers.length === 0, blockers: mine };
    });
    const readyUsers = assessed.filter((p) => p.ready).map((p) => p.user);
    return {
      policy: rules.name,
      zone: rules.zone,
      roles: [...rules.roles],
      ready: readyUsers.length > 0,
      readyUsers,
      eligible: assessed,
      blockers,
      unknown,
    };
  });
}

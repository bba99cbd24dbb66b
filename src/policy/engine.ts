import { formatDuration } from "../config/duration.js";
import type {
  BreakGlassPolicy,
  FactorKind,
  FirebreakConfig,
  PrincipalRef,
  ResourceConfig,
  StandingBinding,
  ZoneConfig,
} from "../config/schema.js";
import { FirebreakError } from "../errors.js";
import { type ApprovalRequirement, matchesPrincipal, toApprovalRequirements } from "./approvals.js";
import { type CompiledCondition, type ConditionVars, compileCondition } from "./cel.js";

/**
 * The policy engine: compiles a validated configuration into indexed structures once, then answers
 * decisions without I/O, clock reads or randomness (`now` is an input). Semantics and the order in
 * which competing policies are chosen are written down in NOTES.md.
 */

/** SPEC: "any one of these, fresh within 5 minutes". */
export const DEFAULT_FACTOR_FRESHNESS_MS = 5 * 60_000;
/** How long an unanswered (or approved but not activated) request stays open when the policy is silent. */
export const DEFAULT_PENDING_EXPIRY_MS = 60 * 60_000;
/** Every break-glass use is reviewed (SPEC §3); this is the deadline when the policy names none. */
export const DEFAULT_REVIEW_WITHIN_MS = 7 * 86_400_000;

export type { ApprovalRequirement } from "./approvals.js";

/** Someone asking: a user name and every group they belong to according to the caller's identity source. */
export interface Principal {
  readonly name: string;
  readonly groups: readonly string[];
}

export type ReasonCode =
  | "INVALID_TARGET"
  | "UNKNOWN_ZONE"
  | "UNKNOWN_RESOURCE"
  | "UNKNOWN_ROLE"
  | "NO_POLICY"
  | "NOT_ELIGIBLE"
  | "REVIEW_OVERDUE"
  | "SOURCE_ZONE_NOT_ALLOWED"
  | "INVALID_DURATION"
  | "DURATION_EXCEEDED"
  | "JUSTIFICATION_TOO_SHORT"
  | "TICKET_REQUIRED"
  | "TICKET_MISMATCH"
  | "CONDITION_FALSE"
  | "CONDITION_ERROR";

export type ReasonValue = string | number | boolean | null | readonly string[];

/** One unmet condition, machine-readable (`code`, `expected`, `actual`) and human-readable (`message`). */
export interface Reason {
  readonly code: ReasonCode;
  readonly policy?: string;
  /** For CONDITION_* reasons: which condition (`when` or `autoApprove.when`). */
  readonly field?: string;
  readonly message: string;
  readonly expected?: ReasonValue;
  readonly actual?: ReasonValue;
}

export interface ResolvedTarget {
  readonly zone: string;
  /** Null for a request on the whole zone. */
  readonly resource: string | null;
}

export interface ReviewRequirement {
  readonly withinMs: number;
  readonly blockWhenOverdue: boolean;
  /** Who may review; null means anyone other than the requester who may review in general. */
  readonly by: readonly PrincipalRef[] | null;
}

export interface DecisionInput {
  readonly principal: Principal;
  readonly target: { readonly zone?: string | null; readonly resource?: string | null };
  readonly role: string;
  /** Requested length of the grant; the chosen policy's default when absent. */
  readonly durationMs?: number;
  readonly reason: string;
  readonly ticket?: string | null;
  readonly sourceZone: string | null;
  readonly signals: ConditionVars["signals"];
  /** Reviews of this user that are overdue under a policy with `blockWhenOverdue` (counted by the caller). */
  readonly blockingOverdueReviews: number;
  /** Epoch milliseconds. */
  readonly now: number;
}

/** What a break-glass outcome commits the lifecycle to. */
export interface BreakGlassTerms {
  readonly policy: string;
  readonly target: ResolvedTarget;
  readonly role: string;
  readonly durationMs: number;
  /** Any one of these, fresh within `factorFreshnessMs`, is needed at activation; empty means none. */
  readonly factors: readonly FactorKind[];
  readonly factorFreshnessMs: number;
  readonly pendingExpiryMs: number;
  readonly review: ReviewRequirement;
}

export type Decision =
  | {
      readonly outcome: "allow";
      readonly via: "standing";
      readonly target: ResolvedTarget;
      readonly role: string;
      readonly binding: StandingBinding;
    }
  | ({ readonly outcome: "allow"; readonly via: "auto-approve" | "policy" } & BreakGlassTerms)
  | ({
      readonly outcome: "needs-approval";
      readonly approvals: readonly ApprovalRequirement[];
    } & BreakGlassTerms)
  | { readonly outcome: "deny"; readonly reasons: readonly Reason[] };

export interface PolicyRequirements {
  readonly eligible: readonly PrincipalRef[];
  readonly roles: readonly string[];
  readonly resources: readonly string[] | null;
  readonly approvals: readonly ApprovalRequirement[];
  readonly factors: readonly FactorKind[];
  readonly factorFreshnessMs: number;
  readonly duration: { readonly defaultMs: number; readonly maxMs: number };
  readonly justification: { readonly minLength: number; readonly ticketPattern: string | null };
  readonly sourceZones: readonly string[] | null;
  readonly condition: string | null;
  readonly autoApproveCondition: string | null;
  readonly review: ReviewRequirement;
}

export interface PolicyExplanation {
  readonly policy: string;
  /** True when the policy covers the requested target and role. */
  readonly applies: boolean;
  /** Every unmet condition when it applies; otherwise why it does not apply. */
  readonly unmet: readonly Reason[];
  readonly requires: PolicyRequirements;
}

export interface Explanation {
  readonly decision: Decision;
  readonly target: ResolvedTarget | null;
  /** Standing bindings that would give this role on this target, and whether the principal holds them. */
  readonly standing: readonly { readonly binding: StandingBinding; readonly holds: boolean }[];
  /** Every break-glass policy of the target's zone, in configuration order. */
  readonly policies: readonly PolicyExplanation[];
}

export interface CompiledBreakGlassPolicy {
  readonly name: string;
  /** Position in `breakGlass`; the final tie-breaker between policies. */
  readonly order: number;
  readonly config: BreakGlassPolicy;
  readonly zone: string;
  readonly resources: ReadonlySet<string> | null;
  readonly roles: ReadonlySet<string>;
  readonly eligible: readonly PrincipalRef[];
  readonly approvals: readonly ApprovalRequirement[];
  readonly approvalsNeeded: number;
  readonly factors: readonly FactorKind[];
  readonly factorFreshnessMs: number;
  readonly defaultDurationMs: number;
  readonly maxDurationMs: number;
  readonly minReasonLength: number;
  readonly ticketPattern: RegExp | null;
  readonly sourceZones: ReadonlySet<string> | null;
  readonly when: CompiledCondition | null;
  readonly autoApprove: CompiledCondition | null;
  readonly review: ReviewRequirement;
  readonly pendingExpiryMs: number;
}

export interface CompiledResource {
  readonly name: string;
  readonly zone: string;
  readonly config: ResourceConfig;
  readonly roles: ReadonlySet<string>;
}

export interface CompiledZone {
  readonly name: string;
  readonly config: ZoneConfig;
  /** Resource names of the zone, in configuration order. */
  readonly resources: readonly string[];
  /** Roles that mean something in this zone: its resources' roles plus those bindings and policies name. */
  readonly roles: ReadonlySet<string>;
  readonly policies: readonly CompiledBreakGlassPolicy[];
}

type RoleIndex = ReadonlyMap<string, ReadonlyMap<string, readonly StandingBinding[]>>;

export interface CompiledPolicy {
  readonly config: FirebreakConfig;
  readonly zones: ReadonlyMap<string, CompiledZone>;
  readonly resources: ReadonlyMap<string, CompiledResource>;
  readonly policies: readonly CompiledBreakGlassPolicy[];
  readonly policiesByName: ReadonlyMap<string, CompiledBreakGlassPolicy>;
  /** Groups each directory user belongs to; merged with the groups a caller passes in. */
  readonly directoryGroups: ReadonlyMap<string, readonly string[]>;
  /** zone → role → bindings that give it. */
  readonly standingByZone: RoleIndex;
  /** resource → role → bindings that give it on that resource only. */
  readonly standingByResource: RoleIndex;
  readonly standingByGroup: ReadonlyMap<string, readonly StandingBinding[]>;
  readonly standingByUser: ReadonlyMap<string, readonly StandingBinding[]>;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

function indexByRole(
  map: Map<string, Map<string, StandingBinding[]>>,
  key: string,
  binding: StandingBinding,
) {
  let byRole = map.get(key);
  if (byRole === undefined) {
    byRole = new Map();
    map.set(key, byRole);
  }
  pushTo(byRole, binding.role, binding);
}

type ConditionCache = Map<string, CompiledCondition>;

function compileCel(
  source: string,
  policyName: string,
  field: string,
  cache: ConditionCache,
): CompiledCondition {
  const cached = cache.get(source);
  if (cached !== undefined) return cached;
  try {
    const compiled = compileCondition(source);
    cache.set(source, compiled);
    return compiled;
  } catch (error) {
    throw new FirebreakError(
      "CONFIG_INVALID",
      `breakGlass policy '${policyName}': ${field} does not compile: ${error instanceof Error ? error.message : String(error)}`,
      { policy: policyName, field },
    );
  }
}

function compileBreakGlass(
  config: BreakGlassPolicy,
  order: number,
  conditions: ConditionCache,
): CompiledBreakGlassPolicy {
  let ticketPattern: RegExp | null = null;
  if (config.justification?.ticket !== undefined) {
    try {
      ticketPattern = new RegExp(config.justification.ticket);
    } catch {
      throw new FirebreakError(
        "CONFIG_INVALID",
        `breakGlass policy '${config.name}': justification.ticket is not a valid regular expression`,
        { policy: config.name, field: "justification.ticket" },
      );
    }
  }
  const approvals = toApprovalRequirements(config.approvals);
  return {
    name: config.name,
    order,
    config,
    zone: config.zone,
    resources: config.resources === undefined ? null : new Set(config.resources),
    roles: new Set(config.roles),
    eligible: config.eligible,
    approvals,
    approvalsNeeded: approvals.reduce((sum, step) => sum + step.count, 0),
    factors: config.factors ?? [],
    factorFreshnessMs: config.factorFreshness ?? DEFAULT_FACTOR_FRESHNESS_MS,
    defaultDurationMs: config.duration.default,
    maxDurationMs: config.duration.max,
    minReasonLength: config.justification?.minLength ?? 0,
    ticketPattern,
    sourceZones: config.sourceZones === undefined ? null : new Set(config.sourceZones),
    when: config.when === undefined ? null : compileCel(config.when, config.name, "when", conditions),
    autoApprove:
      config.autoApprove === undefined
        ? null
        : compileCel(config.autoApprove.when, config.name, "autoApprove.when", conditions),
    review: {
      withinMs: config.review?.within ?? DEFAULT_REVIEW_WITHIN_MS,
      blockWhenOverdue: config.review?.blockWhenOverdue ?? false,
      by: config.review?.by ?? null,
    },
    pendingExpiryMs: config.pendingExpiry ?? DEFAULT_PENDING_EXPIRY_MS,
  };
}

/**
 * Compiles a validated configuration (cross-references already checked) into lookup structures.
 * CEL conditions and ticket patterns are compiled here, once; a failure is a CONFIG_INVALID error.
 */
export function compilePolicy(config: FirebreakConfig): CompiledPolicy {
  // Compiled conditions are stateless, so policies sharing a condition's text share one program.
  const conditions: ConditionCache = new Map();
  const policies = (config.breakGlass ?? []).map((entry, order) =>
    compileBreakGlass(entry, order, conditions),
  );

  const resources = new Map<string, CompiledResource>();
  const zoneResources = new Map<string, string[]>();
  const zoneRoles = new Map<string, Set<string>>();
  const addZoneRole = (zone: string, role: string) => {
    let roles = zoneRoles.get(zone);
    if (roles === undefined) {
      roles = new Set();
      zoneRoles.set(zone, roles);
    }
    roles.add(role);
  };
  for (const [name, resource] of Object.entries(config.resources ?? {})) {
    const roles = new Set(Object.keys(resource.roles));
    resources.set(name, { name, zone: resource.zone, config: resource, roles });
    pushTo(zoneResources, resource.zone, name);
    for (const role of roles) addZoneRole(resource.zone, role);
  }

  const standingByZone = new Map<string, Map<string, StandingBinding[]>>();
  const standingByResource = new Map<string, Map<string, StandingBinding[]>>();
  const standingByGroup = new Map<string, StandingBinding[]>();
  const standingByUser = new Map<string, StandingBinding[]>();
  for (const binding of config.standing ?? []) {
    if (binding.zone !== undefined) {
      indexByRole(standingByZone, binding.zone, binding);
      addZoneRole(binding.zone, binding.role);
    } else if (binding.resource !== undefined) {
      indexByRole(standingByResource, binding.resource, binding);
    }
    if (binding.group !== undefined) pushTo(standingByGroup, binding.group, binding);
    if (binding.user !== undefined) pushTo(standingByUser, binding.user, binding);
  }

  const zonePolicies = new Map<string, CompiledBreakGlassPolicy[]>();
  for (const policy of policies) {
    pushTo(zonePolicies, policy.zone, policy);
    for (const role of policy.roles) addZoneRole(policy.zone, role);
  }

  const zones = new Map<string, CompiledZone>();
  for (const [name, zone] of Object.entries(config.zones)) {
    zones.set(name, {
      name,
      config: zone,
      resources: zoneResources.get(name) ?? [],
      roles: zoneRoles.get(name) ?? new Set(),
      policies: zonePolicies.get(name) ?? [],
    });
  }

  const directoryGroups = new Map<string, readonly string[]>();
  for (const [name, user] of Object.entries(config.directory?.users ?? {})) {
    directoryGroups.set(name, user.groups);
  }

  return {
    config,
    zones,
    resources,
    policies,
    policiesByName: new Map(policies.map((policy) => [policy.name, policy])),
    directoryGroups,
    standingByZone,
    standingByResource,
    standingByGroup,
    standingByUser,
  };
}

/** The groups a user is in: the directory's plus those the caller passes (OIDC claims, the users table). */
export function effectiveGroups(policy: CompiledPolicy, principal: Principal): Set<string> {
  const groups = new Set(principal.groups);
  for (const group of policy.directoryGroups.get(principal.name) ?? []) groups.add(group);
  return groups;
}

type TargetResolution = ({ ok: true } & ResolvedTarget) | { ok: false; reason: Reason };

function resolveTarget(policy: CompiledPolicy, target: DecisionInput["target"]): TargetResolution {
  const zone = target.zone ?? null;
  const resource = target.resource ?? null;
  if (resource !== null) {
    const found = policy.resources.get(resource);
    if (found === undefined) {
      return {
        ok: false,
        reason: { code: "UNKNOWN_RESOURCE", message: `no resource named '${resource}'`, actual: resource },
      };
    }
    if (zone !== null && zone !== found.zone) {
      return {
        ok: false,
        reason: {
          code: "UNKNOWN_RESOURCE",
          message: `resource '${resource}' is in zone '${found.zone}', not '${zone}'`,
          expected: found.zone,
          actual: zone,
        },
      };
    }
    return { ok: true, zone: found.zone, resource };
  }
  if (zone === null) {
    return { ok: false, reason: { code: "INVALID_TARGET", message: "a zone or a resource is required" } };
  }
  if (!policy.zones.has(zone)) {
    return { ok: false, reason: { code: "UNKNOWN_ZONE", message: `no zone named '${zone}'`, actual: zone } };
  }
  return { ok: true, zone, resource: null };
}

/** The zone a target names: a zone name, a resource name, or `{ zone?, resource? }`; null when unknown. */
export function zoneOfTarget(
  policy: CompiledPolicy,
  target: string | DecisionInput["target"],
): string | null {
  if (typeof target === "string") {
    if (policy.zones.has(target)) return target;
    return policy.resources.get(target)?.zone ?? null;
  }
  const resolved = resolveTarget(policy, target);
  return resolved.ok ? resolved.zone : null;
}

/**
 * Resources of `zone` on which a grant of `role` takes effect: the named resource when it is in the
 * zone and maps the role, otherwise (resource null) every resource of the zone that maps the role.
 */
export function resourcesForGrant(
  policy: CompiledPolicy,
  zone: string,
  resource: string | null,
  role: string,
): string[] {
  if (resource !== null) {
    const found = policy.resources.get(resource);
    return found !== undefined && found.zone === zone && found.roles.has(role) ? [resource] : [];
  }
  const names = policy.zones.get(zone)?.resources ?? [];
  return names.filter((name) => policy.resources.get(name)?.roles.has(role) === true);
}

function bindingHolds(binding: StandingBinding, name: string, groups: ReadonlySet<string>): boolean {
  return binding.user !== undefined ? binding.user === name : groups.has(binding.group as string);
}

/** Bindings that give `role` on the target: zone bindings always, resource bindings for that resource. */
function standingCandidates(policy: CompiledPolicy, target: ResolvedTarget, role: string): StandingBinding[] {
  const zoneLevel = policy.standingByZone.get(target.zone)?.get(role) ?? [];
  if (target.resource === null) return [...zoneLevel];
  return [...zoneLevel, ...(policy.standingByResource.get(target.resource)?.get(role) ?? [])];
}

function findStanding(
  policy: CompiledPolicy,
  target: ResolvedTarget,
  role: string,
  name: string,
  groups: ReadonlySet<string>,
): StandingBinding | undefined {
  const zoneLevel = policy.standingByZone.get(target.zone)?.get(role);
  if (zoneLevel !== undefined) {
    for (const binding of zoneLevel) if (bindingHolds(binding, name, groups)) return binding;
  }
  if (target.resource === null) return undefined;
  const resourceLevel = policy.standingByResource.get(target.resource)?.get(role);
  if (resourceLevel !== undefined) {
    for (const binding of resourceLevel) if (bindingHolds(binding, name, groups)) return binding;
  }
  return undefined;
}

/** Does the policy's scope include this target and role (independent of who asks)? */
function coverage(candidate: CompiledBreakGlassPolicy, target: ResolvedTarget, role: string): Reason | null {
  if (!candidate.roles.has(role)) {
    return {
      code: "NO_POLICY",
      policy: candidate.name,
      message: `policy '${candidate.name}' grants ${[...candidate.roles].join(", ")}, not '${role}'`,
      expected: [...candidate.roles],
      actual: role,
    };
  }
  if (candidate.resources === null) return null;
  if (target.resource === null) {
    return {
      code: "NO_POLICY",
      policy: candidate.name,
      message: `policy '${candidate.name}' covers only resources ${[...candidate.resources].join(", ")}, not the whole zone`,
      expected: [...candidate.resources],
      actual: null,
    };
  }
  if (!candidate.resources.has(target.resource)) {
    return {
      code: "NO_POLICY",
      policy: candidate.name,
      message: `policy '${candidate.name}' does not cover resource '${target.resource}'`,
      expected: [...candidate.resources],
      actual: target.resource,
    };
  }
  return null;
}

type Evaluation =
  | { kind: "unmet"; reasons: Reason[] }
  | { kind: "allow"; via: "auto-approve" | "policy"; durationMs: number }
  | { kind: "needs-approval"; durationMs: number };

interface RequestContext {
  readonly input: DecisionInput;
  readonly target: ResolvedTarget;
  readonly groups: ReadonlySet<string>;
  readonly groupList: string[];
  readonly signals: ConditionVars["signals"];
}

function conditionReason(
  candidate: CompiledBreakGlassPolicy,
  field: "when" | "autoApprove.when",
  condition: CompiledCondition,
  vars: ConditionVars,
): Reason | null {
  const result = condition.evaluate(vars);
  if (!result.ok) {
    return {
      code: "CONDITION_ERROR",
      policy: candidate.name,
      field,
      message: `condition ${field} of policy '${candidate.name}' could not be evaluated: ${result.error}`,
      expected: condition.source,
      actual: result.error,
    };
  }
  if (!result.value) {
    return {
      code: "CONDITION_FALSE",
      policy: candidate.name,
      field,
      message: `condition ${field} of policy '${candidate.name}' is false: ${condition.source}`,
      expected: condition.source,
      actual: false,
    };
  }
  return null;
}

/** Checks every condition of one covering policy and lists all that fail, never stopping at the first. */
function evaluateCandidate(candidate: CompiledBreakGlassPolicy, context: RequestContext): Evaluation {
  const { input, target, groups } = context;
  const name = candidate.name;
  const unmet: Reason[] = [];

  if (!matchesPrincipal(candidate.eligible, input.principal.name, groups)) {
    unmet.push({
      code: "NOT_ELIGIBLE",
      policy: name,
      message: `${input.principal.name} is not among the eligible principals of policy '${name}' (${candidate.eligible.join(", ")})`,
      expected: candidate.eligible,
      actual: input.principal.name,
    });
  }
  if (input.blockingOverdueReviews > 0) {
    unmet.push({
      code: "REVIEW_OVERDUE",
      policy: name,
      message: `${input.principal.name} has ${input.blockingOverdueReviews} overdue review(s) that block new break-glass requests`,
      expected: 0,
      actual: input.blockingOverdueReviews,
    });
  }
  if (
    candidate.sourceZones !== null &&
    (input.sourceZone === null || !candidate.sourceZones.has(input.sourceZone))
  ) {
    unmet.push({
      code: "SOURCE_ZONE_NOT_ALLOWED",
      policy: name,
      message:
        input.sourceZone === null
          ? `policy '${name}' requires the request to come from ${[...candidate.sourceZones].join(", ")}, and its source zone is unknown`
          : `policy '${name}' requires the request to come from ${[...candidate.sourceZones].join(", ")}, not '${input.sourceZone}'`,
      expected: [...candidate.sourceZones],
      actual: input.sourceZone,
    });
  }
  const durationMs = input.durationMs ?? candidate.defaultDurationMs;
  if (!Number.isSafeInteger(durationMs) || durationMs <= 0) {
    unmet.push({
      code: "INVALID_DURATION",
      policy: name,
      message: "the duration must be a positive whole number of milliseconds",
      expected: candidate.maxDurationMs,
      actual: Number.isFinite(durationMs) ? durationMs : null,
    });
  } else if (durationMs > candidate.maxDurationMs) {
    unmet.push({
      code: "DURATION_EXCEEDED",
      policy: name,
      message: `policy '${name}' allows at most ${formatDuration(candidate.maxDurationMs)}, ${formatDuration(durationMs)} was asked`,
      expected: candidate.maxDurationMs,
      actual: durationMs,
    });
  }
  // Padding a reason with spaces should not satisfy a length requirement.
  const reasonLength = input.reason.trim().length;
  if (reasonLength < candidate.minReasonLength) {
    unmet.push({
      code: "JUSTIFICATION_TOO_SHORT",
      policy: name,
      message: `policy '${name}' needs a reason of at least ${candidate.minReasonLength} characters, got ${reasonLength}`,
      expected: candidate.minReasonLength,
      actual: reasonLength,
    });
  }
  const ticket = input.ticket ?? null;
  if (candidate.ticketPattern !== null) {
    if (ticket === null || ticket === "") {
      unmet.push({
        code: "TICKET_REQUIRED",
        policy: name,
        message: `policy '${name}' needs a ticket matching ${candidate.ticketPattern.source}`,
        expected: candidate.ticketPattern.source,
        actual: null,
      });
    } else if (!candidate.ticketPattern.test(ticket)) {
      unmet.push({
        code: "TICKET_MISMATCH",
        policy: name,
        message: `ticket '${ticket}' does not match ${candidate.ticketPattern.source}`,
        expected: candidate.ticketPattern.source,
        actual: ticket,
      });
    }
  }

  let vars: ConditionVars | undefined;
  const conditionVars = (): ConditionVars => {
    vars ??= {
      principal: { name: input.principal.name, groups: context.groupList },
      request: {
        zone: target.zone,
        resource: target.resource,
        role: input.role,
        durationSeconds: Number.isFinite(durationMs) ? durationMs / 1000 : 0,
        reason: input.reason,
        ticket,
        sourceZone: input.sourceZone,
      },
      signals: context.signals,
      now: input.now,
    };
    return vars;
  };
  if (candidate.when !== null) {
    const reason = conditionReason(candidate, "when", candidate.when, conditionVars());
    if (reason !== null) unmet.push(reason);
  }
  // Without approval steps, autoApprove is the only way through, so a false one is an unmet
  // condition like any other; with steps it merely decides whether humans are asked.
  if (candidate.autoApprove !== null && candidate.approvals.length === 0) {
    const reason = conditionReason(candidate, "autoApprove.when", candidate.autoApprove, conditionVars());
    if (reason !== null) unmet.push(reason);
    return unmet.length > 0
      ? { kind: "unmet", reasons: unmet }
      : { kind: "allow", via: "auto-approve", durationMs };
  }
  if (unmet.length > 0) return { kind: "unmet", reasons: unmet };
  if (candidate.autoApprove !== null) {
    const result = candidate.autoApprove.evaluate(conditionVars());
    if (result.ok && result.value) return { kind: "allow", via: "auto-approve", durationMs };
  }
  if (candidate.approvals.length === 0) return { kind: "allow", via: "policy", durationMs };
  return { kind: "needs-approval", durationMs };
}

function terms(
  candidate: CompiledBreakGlassPolicy,
  target: ResolvedTarget,
  role: string,
  durationMs: number,
): BreakGlassTerms {
  return {
    policy: candidate.name,
    target: { zone: target.zone, resource: target.resource },
    role,
    durationMs,
    factors: candidate.factors,
    factorFreshnessMs: candidate.factorFreshnessMs,
    pendingExpiryMs: candidate.pendingExpiryMs,
    review: candidate.review,
  };
}

interface Assessment {
  readonly decision: Decision;
  readonly target: ResolvedTarget | null;
  readonly groups: ReadonlySet<string>;
  readonly evaluations: ReadonlyMap<CompiledBreakGlassPolicy, Evaluation>;
}

function assess(policy: CompiledPolicy, input: DecisionInput): Assessment {
  const groups = effectiveGroups(policy, input.principal);
  const evaluations = new Map<CompiledBreakGlassPolicy, Evaluation>();
  const deny = (reasons: Reason[], target: ResolvedTarget | null): Assessment => ({
    decision: { outcome: "deny", reasons },
    target,
    groups,
    evaluations,
  });

  const resolved = resolveTarget(policy, input.target);
  if (!resolved.ok) return deny([resolved.reason], null);
  const target: ResolvedTarget = { zone: resolved.zone, resource: resolved.resource };
  const role = input.role;
  const knownRoles =
    target.resource !== null
      ? (policy.resources.get(target.resource) as CompiledResource).roles
      : (policy.zones.get(target.zone) as CompiledZone).roles;
  if (!knownRoles.has(role)) {
    const where = target.resource !== null ? `resource '${target.resource}'` : `zone '${target.zone}'`;
    return deny(
      [
        {
          code: "UNKNOWN_ROLE",
          message: `${where} has no role '${role}' (roles: ${[...knownRoles].join(", ") || "none"})`,
          expected: [...knownRoles],
          actual: role,
        },
      ],
      target,
    );
  }

  const binding = findStanding(policy, target, role, input.principal.name, groups);
  if (binding !== undefined) {
    return {
      decision: { outcome: "allow", via: "standing", target, role, binding },
      target,
      groups,
      evaluations,
    };
  }

  const context: RequestContext = {
    input,
    target,
    groups,
    groupList: [...groups],
    // The source zone is one fact; the request's value wins so CEL cannot see two different ones.
    signals: { ...input.signals, sourceZone: input.sourceZone },
  };
  const zonePolicies = (policy.zones.get(target.zone) as CompiledZone).policies;
  let best: { candidate: CompiledBreakGlassPolicy; evaluation: Evaluation; rank: number } | undefined;
  const reasons: Reason[] = [];
  let covering = 0;
  for (const candidate of zonePolicies) {
    if (coverage(candidate, target, role) !== null) continue;
    covering++;
    const evaluation = evaluateCandidate(candidate, context);
    evaluations.set(candidate, evaluation);
    if (evaluation.kind === "unmet") {
      reasons.push(...evaluation.reasons);
      continue;
    }
    // Fewer humans in the loop wins; `<` keeps the earlier policy on a tie (configuration order).
    const rank = evaluation.kind === "needs-approval" ? candidate.approvalsNeeded : 0;
    if (best === undefined || rank < best.rank) best = { candidate, evaluation, rank };
  }

  if (best !== undefined) {
    const { candidate, evaluation } = best;
    const base = terms(candidate, target, role, (evaluation as { durationMs: number }).durationMs);
    const decision: Decision =
      evaluation.kind === "needs-approval"
        ? { outcome: "needs-approval", ...base, approvals: candidate.approvals }
        : { outcome: "allow", via: (evaluation as { via: "auto-approve" | "policy" }).via, ...base };
    return { decision, target, groups, evaluations };
  }
  if (covering === 0) {
    const where = target.resource !== null ? `resource '${target.resource}'` : `zone '${target.zone}'`;
    return deny(
      [
        {
          code: "NO_POLICY",
          message: `no standing binding or break-glass policy gives ${input.principal.name} role '${role}' on ${where}`,
          actual: role,
        },
      ],
      target,
    );
  }
  return deny(reasons, target);
}

/** What re-checking an auto-approval needs: the request as it was made, and the signals of now. */
export interface AutoApprovalInput {
  /** The policy that auto-approved the request. */
  readonly policy: string;
  readonly principal: Principal;
  readonly target: ResolvedTarget;
  readonly role: string;
  readonly durationMs: number;
  readonly reason: string;
  readonly ticket: string | null;
  readonly sourceZone: string | null;
  readonly signals: ConditionVars["signals"];
  /** Epoch milliseconds. */
  readonly now: number;
}

/**
 * Re-checks the condition that auto-approved a request, at activation: the policy's
 * `autoApprove.when` on the signals of this moment, since an approval nobody gave must not outlive
 * the facts it rested on. Null while it holds; otherwise why not (the policy is gone or no longer
 * auto-approves, or its condition is false or fails to evaluate).
 */
export function autoApprovalLapse(policy: CompiledPolicy, input: AutoApprovalInput): Reason | null {
  const candidate = policy.policiesByName.get(input.policy);
  if (candidate === undefined) {
    return {
      code: "NO_POLICY",
      policy: input.policy,
      message: `policy '${input.policy}', which auto-approved the request, no longer exists`,
      actual: input.policy,
    };
  }
  if (candidate.autoApprove === null) {
    return {
      code: "CONDITION_FALSE",
      policy: candidate.name,
      field: "autoApprove.when",
      message: `policy '${candidate.name}' no longer auto-approves`,
      expected: null,
      actual: false,
    };
  }
  const vars: ConditionVars = {
    principal: { name: input.principal.name, groups: [...effectiveGroups(policy, input.principal)] },
    request: {
      zone: input.target.zone,
      resource: input.target.resource,
      role: input.role,
      durationSeconds: input.durationMs / 1000,
      reason: input.reason,
      ticket: input.ticket,
      sourceZone: input.sourceZone,
    },
    signals: { ...input.signals, sourceZone: input.sourceZone },
    now: input.now,
  };
  return conditionReason(candidate, "autoApprove.when", candidate.autoApprove, vars);
}

/**
 * Decides a request: allow (standing binding, auto-approval, or a policy that needs nobody),
 * needs-approval (with exactly which approvals), or deny with every unmet condition of every
 * policy that covers the target and role. Deny is the default; a CEL error is never an allow.
 */
export function decide(policy: CompiledPolicy, input: DecisionInput): Decision {
  return assess(policy, input).decision;
}

function requirementsOf(candidate: CompiledBreakGlassPolicy): PolicyRequirements {
  return {
    eligible: candidate.eligible,
    roles: [...candidate.roles],
    resources: candidate.resources === null ? null : [...candidate.resources],
    approvals: candidate.approvals,
    factors: candidate.factors,
    factorFreshnessMs: candidate.factorFreshnessMs,
    duration: { defaultMs: candidate.defaultDurationMs, maxMs: candidate.maxDurationMs },
    justification: {
      minLength: candidate.minReasonLength,
      ticketPattern: candidate.ticketPattern?.source ?? null,
    },
    sourceZones: candidate.sourceZones === null ? null : [...candidate.sourceZones],
    condition: candidate.when?.source ?? null,
    autoApproveCondition: candidate.autoApprove?.source ?? null,
    review: candidate.review,
  };
}

/**
 * The decision plus what it would take to be allowed: every standing binding that would give the
 * role, and every break-glass policy of the zone with its unmet conditions and its requirements.
 * Policies are evaluated even when a standing binding already allows, so the answer is complete.
 */
export function explain(policy: CompiledPolicy, input: DecisionInput): Explanation {
  const assessment = assess(policy, input);
  const { target, groups } = assessment;
  if (target === null) return { decision: assessment.decision, target: null, standing: [], policies: [] };

  const context: RequestContext = {
    input,
    target,
    groups,
    groupList: [...groups],
    signals: { ...input.signals, sourceZone: input.sourceZone },
  };
  const standing = standingCandidates(policy, target, input.role).map((binding) => ({
    binding,
    holds: bindingHolds(binding, input.principal.name, groups),
  }));
  const zone = policy.zones.get(target.zone) as CompiledZone;
  const policies = zone.policies.map((candidate): PolicyExplanation => {
    const notCovering = coverage(candidate, target, input.role);
    if (notCovering !== null) {
      return {
        policy: candidate.name,
        applies: false,
        unmet: [notCovering],
        requires: requirementsOf(candidate),
      };
    }
    const evaluation = assessment.evaluations.get(candidate) ?? evaluateCandidate(candidate, context);
    return {
      policy: candidate.name,
      applies: true,
      unmet: evaluation.kind === "unmet" ? evaluation.reasons : [],
      requires: requirementsOf(candidate),
    };
  });
  return { decision: assessment.decision, target, standing, policies };
}

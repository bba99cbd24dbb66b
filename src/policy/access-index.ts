import type { StandingBinding } from "../config/schema.js";
import type { CompiledPolicy } from "./engine.js";

/**
 * The enforcement hot path: "does this user hold this role here right now". Everything a check
 * needs is precomputed per user so that a check is three Map lookups and a comparison, with no
 * allocation and no string building. Invariants are in NOTES.md.
 */

/** A user as the index sees them: a name and the groups an identity source reports (directory groups are added). */
export interface IndexedUser {
  readonly name: string;
  readonly groups: readonly string[];
}

export interface AccessIndex {
  /** Holds `role` on the whole `zone` at `now` (zone-level standing binding or grant)? */
  check(user: string, zone: string, role: string, now: number): boolean;
  /** Holds `role` on `resource` at `now` (resource-level, or zone-level on its zone when the resource maps the role)? */
  checkResource(user: string, resource: string, role: string, now: number): boolean;
  /** Records an activated grant, valid for `now < endsAt`; re-adding an id replaces it. */
  addGrant(
    grantId: string,
    user: string,
    zone: string,
    role: string,
    endsAt: number,
    resource?: string | null,
  ): void;
  removeGrant(grantId: string): void;
  /** Replaces the groups the identity source reports for `name` and recomputes their standing access. */
  setUser(name: string, groups: readonly string[]): void;
  /** Number of grants held (expired ones included until removed). */
  grantCount(): number;
}

interface Holding {
  standing: boolean;
  /** Latest end among this holding's grants; -Infinity when it has none. */
  endsAt: number;
  grants: Map<string, number> | null;
}

type RoleHoldings = Map<string, Holding>;

interface UserEntry {
  /** zone → role → holding, for zone-level access. */
  zones: Map<string, RoleHoldings>;
  /** resource → role → holding, for resource-level access. */
  resources: Map<string, RoleHoldings>;
  grantIds: Set<string>;
}

interface GrantRecord {
  readonly user: string;
  readonly zone: string;
  readonly resource: string | null;
  readonly role: string;
  readonly endsAt: number;
}

function holdingFor(scopes: Map<string, RoleHoldings>, scope: string, role: string): Holding {
  let roles = scopes.get(scope);
  if (roles === undefined) {
    roles = new Map();
    scopes.set(scope, roles);
  }
  let holding = roles.get(role);
  if (holding === undefined) {
    holding = { standing: false, endsAt: Number.NEGATIVE_INFINITY, grants: null };
    roles.set(role, holding);
  }
  return holding;
}

function holds(holding: Holding | undefined, now: number): boolean {
  return holding !== undefined && (holding.standing || now < holding.endsAt);
}

/**
 * Builds the index from the compiled policy's standing bindings for `users` (plus every directory
 * user). Grants are added as they activate and removed when they end; a grant past its end already
 * fails the check before it is removed, because the check compares `endsAt` with `now`.
 */
export function createAccessIndex(policy: CompiledPolicy, users: Iterable<IndexedUser>): AccessIndex {
  const entries = new Map<string, UserEntry>();
  const grants = new Map<string, GrantRecord>();
  const resourceZone = new Map<string, { zone: string; roles: ReadonlySet<string> }>();
  for (const resource of policy.resources.values()) {
    resourceZone.set(resource.name, { zone: resource.zone, roles: resource.roles });
  }

  const applyGrant = (entry: UserEntry, grantId: string, grant: GrantRecord) => {
    const holding =
      grant.resource === null
        ? holdingFor(entry.zones, grant.zone, grant.role)
        : holdingFor(entry.resources, grant.resource, grant.role);
    holding.grants ??= new Map();
    holding.grants.set(grantId, grant.endsAt);
    if (grant.endsAt > holding.endsAt) holding.endsAt = grant.endsAt;
    entry.grantIds.add(grantId);
  };

  const applyStanding = (entry: UserEntry, binding: StandingBinding) => {
    if (binding.zone !== undefined) holdingFor(entry.zones, binding.zone, binding.role).standing = true;
    else if (binding.resource !== undefined)
      holdingFor(entry.resources, binding.resource, binding.role).standing = true;
  };

  // Rebuilding a user's holdings from scratch keeps setUser simple and exact: a group that was
  // left takes its bindings with it, and grants are replayed from their records.
  const build = (name: string, reportedGroups: readonly string[]): UserEntry => {
    const entry: UserEntry = {
      zones: new Map(),
      resources: new Map(),
      grantIds: new Set(),
    };
    const groups = new Set(reportedGroups);
    for (const group of policy.directoryGroups.get(name) ?? []) groups.add(group);
    for (const binding of policy.standingByUser.get(name) ?? []) applyStanding(entry, binding);
    for (const group of groups) {
      for (const binding of policy.standingByGroup.get(group) ?? []) applyStanding(entry, binding);
    }
    return entry;
  };

  const entryFor = (name: string): UserEntry => {
    let entry = entries.get(name);
    if (entry === undefined) {
      entry = build(name, []);
      entries.set(name, entry);
    }
    return entry;
  };

  for (const name of policy.directoryGroups.keys()) entries.set(name, build(name, []));
  for (const user of users) entries.set(user.name, build(user.name, user.groups));

  const removeGrant = (grantId: string) => {
    const grant = grants.get(grantId);
    if (grant === undefined) return;
    grants.delete(grantId);
    const entry = entries.get(grant.user);
    if (entry === undefined) return;
    entry.grantIds.delete(grantId);
    const scopes = grant.resource === null ? entry.zones : entry.resources;
    const scope = grant.resource ?? grant.zone;
    const roles = scopes.get(scope);
    const holding = roles?.get(grant.role);
    if (roles === undefined || holding === undefined || holding.grants === null) return;
    holding.grants.delete(grantId);
    let latest = Number.NEGATIVE_INFINITY;
    for (const endsAt of holding.grants.values()) if (endsAt > latest) latest = endsAt;
    holding.endsAt = latest;
    if (holding.grants.size === 0) holding.grants = null;
    if (!holding.standing && holding.grants === null) {
      roles.delete(grant.role);
      if (roles.size === 0) scopes.delete(scope);
    }
  };

  return {
    check(user, zone, role, now) {
      return holds(entries.get(user)?.zones.get(zone)?.get(role), now);
    },
    checkResource(user, resource, role, now) {
      const entry = entries.get(user);
      if (entry === undefined) return false;
      if (holds(entry.resources.get(resource)?.get(role), now)) return true;
      const found = resourceZone.get(resource);
      // A zone-level holding reaches only the resources that define the role.
      if (found === undefined || !found.roles.has(role)) return false;
      return holds(entry.zones.get(found.zone)?.get(role), now);
    },
    addGrant(grantId, user, zone, role, endsAt, resource = null) {
      removeGrant(grantId);
      const grant: GrantRecord = { user, zone, resource: resource ?? null, role, endsAt };
      grants.set(grantId, grant);
      applyGrant(entryFor(user), grantId, grant);
    },
    removeGrant,
    setUser(name, groups) {
      const entry = build(name, [...groups]);
      const previous = entries.get(name);
      for (const grantId of previous?.grantIds ?? []) {
        const grant = grants.get(grantId);
        if (grant !== undefined) applyGrant(entry, grantId, grant);
      }
      entries.set(name, entry);
    },
    grantCount() {
      return grants.size;
    },
  };
}

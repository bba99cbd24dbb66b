import type { StandingBinding } from "../config/schema.js";
import type { CompiledPolicy } from "./engine.js";

/**
 * The enforcement hot path: "does this user hold this role here right now". Invariants and the
 * reasons for this layout are in NOTES.md; in short, every (zone, role) and (resource, role) gets a
 * small integer slot, and each user has one sorted Float64Array of `slot, endsAt` pairs (standing
 * access has endsAt = +Infinity). A check is two lookups in small, cache-hot slot maps, one lookup
 * in the user map and a binary search, with no allocation and no string building.
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
  /** Records an activated grant, valid while `now < endsAt`; re-adding an id replaces it. */
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

interface GrantRecord {
  readonly user: string;
  readonly zone: string;
  readonly resource: string | null;
  readonly role: string;
  readonly endsAt: number;
}

interface UserRecord {
  /** Groups reported by the identity source; directory groups are added when access is rebuilt. */
  groups: readonly string[];
  readonly grantIds: Set<string>;
}

type SlotTable = Map<string, Map<string, number>>;

/** Binary search over sorted `slot, endsAt` pairs. */
function holds(pairs: Float64Array, slot: number, now: number): boolean {
  let low = 0;
  let high = (pairs.length >> 1) - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const found = pairs[middle << 1] as number;
    if (found === slot) return now < (pairs[(middle << 1) + 1] as number);
    if (found < slot) low = middle + 1;
    else high = middle - 1;
  }
  return false;
}

/**
 * Builds the index from the compiled policy's standing bindings for `users` (plus every directory
 * user). Grants are added as they activate and removed when they end; a grant past its end already
 * fails the check before it is removed, because the check compares `endsAt` with `now`.
 */
export function createAccessIndex(policy: CompiledPolicy, users: Iterable<IndexedUser>): AccessIndex {
  const zoneSlots: SlotTable = new Map();
  const resourceSlots: SlotTable = new Map();
  let nextSlot = 0;
  const slotFor = (table: SlotTable, scope: string, role: string): number => {
    let roles = table.get(scope);
    if (roles === undefined) {
      roles = new Map();
      table.set(scope, roles);
    }
    let slot = roles.get(role);
    if (slot === undefined) {
      slot = nextSlot++;
      roles.set(role, slot);
    }
    return slot;
  };
  const bindingSlot = (binding: StandingBinding): number =>
    binding.zone !== undefined
      ? slotFor(zoneSlots, binding.zone, binding.role)
      : slotFor(resourceSlots, binding.resource as string, binding.role);

  const resourceZone = new Map<string, { zone: string; roles: ReadonlySet<string> }>();
  for (const resource of policy.resources.values()) {
    resourceZone.set(resource.name, { zone: resource.zone, roles: resource.roles });
    for (const role of resource.roles) {
      slotFor(zoneSlots, resource.zone, role);
      slotFor(resourceSlots, resource.name, role);
    }
  }
  const groupSlots = new Map<string, number[]>();
  for (const [group, bindings] of policy.standingByGroup) groupSlots.set(group, bindings.map(bindingSlot));
  const userSlots = new Map<string, number[]>();
  for (const [user, bindings] of policy.standingByUser) userSlots.set(user, bindings.map(bindingSlot));

  /** The hot structure: user name → sorted `slot, endsAt` pairs. */
  const access = new Map<string, Float64Array>();
  const records = new Map<string, UserRecord>();
  const grants = new Map<string, GrantRecord>();

  const grantSlot = (grant: GrantRecord): number =>
    grant.resource === null
      ? slotFor(zoneSlots, grant.zone, grant.role)
      : slotFor(resourceSlots, grant.resource, grant.role);

  // Rebuilding a user's pairs from their standing bindings and grant records after every change
  // keeps updates exact (a group left takes its bindings with it, a removed grant its window)
  // and costs only that user's holdings, which are few.
  const rebuild = (name: string, record: UserRecord) => {
    const ends = new Map<number, number>();
    const standing = (slots: readonly number[] | undefined) => {
      for (const slot of slots ?? []) ends.set(slot, Number.POSITIVE_INFINITY);
    };
    standing(userSlots.get(name));
    const groups = new Set(record.groups);
    for (const group of policy.directoryGroups.get(name) ?? []) groups.add(group);
    for (const group of groups) standing(groupSlots.get(group));
    for (const grantId of record.grantIds) {
      const grant = grants.get(grantId);
      if (grant === undefined) continue;
      const slot = grantSlot(grant);
      if (grant.endsAt > (ends.get(slot) ?? Number.NEGATIVE_INFINITY)) ends.set(slot, grant.endsAt);
    }
    if (ends.size === 0) {
      access.delete(name);
      return;
    }
    const slots = [...ends.keys()].sort((a, b) => a - b);
    const pairs = new Float64Array(slots.length * 2);
    slots.forEach((slot, index) => {
      pairs[index * 2] = slot;
      pairs[index * 2 + 1] = ends.get(slot) as number;
    });
    access.set(name, pairs);
  };

  const recordFor = (name: string): UserRecord => {
    let record = records.get(name);
    if (record === undefined) {
      record = { groups: [], grantIds: new Set() };
      records.set(name, record);
    }
    return record;
  };

  for (const name of policy.directoryGroups.keys()) rebuild(name, recordFor(name));
  for (const user of users) {
    const record = recordFor(user.name);
    record.groups = [...user.groups];
    rebuild(user.name, record);
  }

  const detach = (grantId: string): string | undefined => {
    const grant = grants.get(grantId);
    if (grant === undefined) return undefined;
    grants.delete(grantId);
    records.get(grant.user)?.grantIds.delete(grantId);
    return grant.user;
  };

  return {
    check(user, zone, role, now) {
      const slot = zoneSlots.get(zone)?.get(role);
      if (slot === undefined) return false;
      const pairs = access.get(user);
      return pairs !== undefined && holds(pairs, slot, now);
    },
    checkResource(user, resource, role, now) {
      const pairs = access.get(user);
      if (pairs === undefined) return false;
      const slot = resourceSlots.get(resource)?.get(role);
      if (slot !== undefined && holds(pairs, slot, now)) return true;
      const found = resourceZone.get(resource);
      // A zone-level holding reaches only the resources that define the role.
      if (found === undefined || !found.roles.has(role)) return false;
      const zoneSlot = zoneSlots.get(found.zone)?.get(role);
      return zoneSlot !== undefined && holds(pairs, zoneSlot, now);
    },
    addGrant(grantId, user, zone, role, endsAt, resource = null) {
      const previousUser = detach(grantId);
      if (previousUser !== undefined && previousUser !== user) rebuild(previousUser, recordFor(previousUser));
      grants.set(grantId, { user, zone, resource: resource ?? null, role, endsAt });
      const record = recordFor(user);
      record.grantIds.add(grantId);
      rebuild(user, record);
    },
    removeGrant(grantId) {
      const user = detach(grantId);
      if (user !== undefined) rebuild(user, recordFor(user));
    },
    setUser(name, groups) {
      const record = recordFor(name);
      record.groups = [...groups];
      rebuild(name, record);
    },
    grantCount() {
      return grants.size;
    },
  };
}

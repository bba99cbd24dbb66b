import type { AuditEvent } from "../audit/chain.js";
import type { Db } from "../db/types.js";
import { findGrantsByIds, type GrantRecord } from "../grants/grant.repo.js";
import { findUser } from "../users/user.repo.js";
import type { ChangeFeed } from "./change-feed.js";

/** What a replica's access index takes (policy/access-holder.ts). */
export interface AccessTarget {
  addGrant(
    id: string,
    user: string,
    zone: string,
    role: string,
    endsAt: number,
    resource: string | null,
  ): void;
  removeGrant(id: string): void;
  setUser(name: string, groups: readonly string[]): void;
}

/** A grant that became active or ended, on whichever replica: what gateways and others subscribe to. */
export interface GrantChange {
  grant: GrantRecord;
  /** True while the grant is active; once false it never becomes true again. */
  active: boolean;
}

/** Grant lookups per batch are chunked so one statement never carries an unbounded list. */
const CHUNK = 500;

/**
 * Keeps the access index current from the change feed: for each batch of news, the grants (and
 * users) the events name are re-derived from the database, so the index holds what is committed,
 * whatever order local and remote news arrive in. A grant seen ended is remembered (until its end
 * passes, after which no check could pass anyway), so a late add of it — a local listener or an
 * older read racing a close — is ignored: a closed grant never becomes active again.
 */
export function createReplicaFollower(deps: {
  db: Db;
  access: AccessTarget;
  feed: ChangeFeed;
  now: () => number;
}) {
  const ended = new Map<string, number>();
  const subscribers = new Set<(change: GrantChange) => void>();
  const active = new Set<string>();
  let pruneCount = 0;

  function prune(now: number) {
    if (++pruneCount % 256 !== 0) return;
    for (const [id, endsAt] of ended) if (endsAt < now) ended.delete(id);
  }

  function notify(change: GrantChange) {
    for (const subscriber of subscribers) {
      try {
        subscriber(change);
      } catch {
        // A subscriber's failure is its own; the index is already current.
      }
    }
  }

  const guarded = {
    addGrant(grant: GrantRecord) {
      if (ended.has(grant.id) || grant.state !== "active") return;
      deps.access.addGrant(grant.id, grant.user, grant.zone, grant.role, grant.endsAt, grant.resource);
      if (!active.has(grant.id)) {
        active.add(grant.id);
        notify({ grant, active: true });
      }
    },
    removeGrant(grant: GrantRecord) {
      const known = ended.has(grant.id);
      ended.set(grant.id, grant.endsAt);
      active.delete(grant.id);
      deps.access.removeGrant(grant.id);
      prune(deps.now());
      if (!known) notify({ grant, active: false });
    },
  };

  deps.feed.onBatch(async (events: readonly AuditEvent[]) => {
    const grantIds = new Set<string>();
    const userNames = new Set<string>();
    for (const event of events) {
      if (event.type.startsWith("grant.") && event.subject) grantIds.add(event.subject);
      else if (event.type === "user.signed_in" || event.type === "user.created") {
        const name = typeof event.context.user === "string" ? event.context.user : event.subject;
        if (name) userNames.add(name);
      }
    }
    const ids = [...grantIds];
    for (let start = 0; start < ids.length; start += CHUNK) {
      for (const grant of await findGrantsByIds(deps.db, ids.slice(start, start + CHUNK))) {
        if (grant.state === "active") guarded.addGrant(grant);
        else guarded.removeGrant(grant);
      }
    }
    for (const name of userNames) {
      const user = await findUser(deps.db, name);
      if (user) deps.access.setUser(user.name, user.groups);
    }
  });

  return {
    /** For this process's own grant listener: the same guard as the feed's changes. */
    activated: (grant: GrantRecord) => guarded.addGrant(grant),
    closed: (grant: GrantRecord) => guarded.removeGrant(grant),
    /** "A grant became active / ended", from any replica, once per grant and transition. */
    subscribe(subscriber: (change: GrantChange) => void): () => void {
      subscribers.add(subscriber);
      return () => subscribers.delete(subscriber);
    },
  };
}
export type ReplicaFollower = ReturnType<typeof createReplicaFollower>;

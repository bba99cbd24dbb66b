import type { Executor } from "../db/types.js";
import { findGrant } from "../grants/grant.repo.js";
import {
  canSeeGrant,
  canSeeRequest,
  type GrantFacts,
  type RequestFacts,
  type ReviewPolicies,
  type Viewer,
} from "../policy/visibility.js";
import { findRequest } from "../requests/request.repo.js";
import { subjectIds } from "./analyst-view.js";
import type { AuditEvent } from "./chain.js";

/**
 * What an event is about, for deciding who may follow it, with the object's facts when it exists.
 * A grant wins over its request: a grant event is shown to whoever may see the grant.
 */
export type EventObject =
  | { kind: "grant"; id: string; facts: GrantFacts | null }
  | { kind: "request"; id: string; facts: RequestFacts | null }
  | { kind: "none" };

/** The object an event names (by subject or context), without its facts. */
export function eventObjectOf(
  event: Pick<AuditEvent, "subject" | "context">,
): { kind: "grant"; id: string } | { kind: "request"; id: string } | { kind: "none" } {
  const ids = subjectIds(event);
  if (ids.grant !== null) return { kind: "grant", id: ids.grant };
  if (ids.request !== null) return { kind: "request", id: ids.request };
  return { kind: "none" };
}

/**
 * Whether `viewer` may follow `event` live. Administrators and auditors see everything. An event
 * about a request or grant is visible exactly when the REST API would show that object (same
 * functions); one about an object that does not exist is visible to nobody else. This holds for
 * the event's own actor too: someone refused access to a grant they cannot see is not told its
 * zone, owner or resource through their own refusal. An event about no such object is visible to
 * the person who caused it or whom it names as its user or requester.
 */
export function canSeeEvent(
  viewer: Viewer,
  event: Pick<AuditEvent, "actor" | "context">,
  object: EventObject,
  config: ReviewPolicies,
): boolean {
  if (viewer.isAdmin || viewer.isAuditor) return true;
  switch (object.kind) {
    case "grant":
      return object.facts !== null && canSeeGrant(viewer, object.facts, config);
    case "request":
      return object.facts !== null && canSeeRequest(viewer, object.facts);
    case "none":
      return (
        event.actor === viewer.name ||
        event.context.user === viewer.name ||
        event.context.requester === viewer.name
      );
  }
}

/** Objects whose facts are remembered; the facts never change once a request or grant exists. */
const CACHE_SIZE = 5000;

/**
 * Decides per event, for `/v1/events`, with the facts of the request or grant it is about read
 * from the database (and remembered, shared by every stream). The configuration is read at each
 * call, so a reload that changes a policy's reviewers applies at once.
 */
export function createEventVisibility(deps: { db: Executor; config: () => ReviewPolicies }) {
  const cache = new Map<string, GrantFacts | RequestFacts>();

  function remember(key: string, facts: GrantFacts | RequestFacts) {
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(key, facts);
  }

  async function grantFacts(id: string): Promise<GrantFacts | null> {
    const key = `grant:${id}`;
    const known = cache.get(key) as GrantFacts | undefined;
    if (known) return known;
    const grant = await findGrant(deps.db, id);
    if (!grant) return null;
    const facts: GrantFacts = { user: grant.user, policy: grant.policy };
    remember(key, facts);
    return facts;
  }

  async function requestFacts(id: string): Promise<RequestFacts | null> {
    const key = `request:${id}`;
    const known = cache.get(key) as RequestFacts | undefined;
    if (known) return known;
    const request = await findRequest(deps.db, id);
    if (!request) return null;
    const facts: RequestFacts = {
      requester: request.requester,
      approvalSteps: request.approvalSteps.map((step) => ({ from: [...step.from] })),
    };
    remember(key, facts);
    return facts;
  }

  return async function visible(viewer: Viewer, event: AuditEvent): Promise<boolean> {
    if (viewer.isAdmin || viewer.isAuditor) return true;
    const named = eventObjectOf(event);
    let object: EventObject;
    if (named.kind === "grant") object = { ...named, facts: await grantFacts(named.id) };
    else if (named.kind === "request") object = { ...named, facts: await requestFacts(named.id) };
    else object = named;
    return canSeeEvent(viewer, event, object, deps.config());
  };
}
export type EventVisibility = ReturnType<typeof createEventVisibility>;

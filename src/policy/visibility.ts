import type { FirebreakConfig, PrincipalRef } from "../config/schema.js";
import { matchesPrincipal } from "./approvals.js";

/**
 * Who may see, approve and review what, pure, on the configuration. The REST routes (a 404 for
 * anything else), the request and grant lists, notifications and the live event stream all decide
 * with these functions, so no view can show more than the API would answer.
 */

/** Someone looking: a user name, their groups as of now, and their standing roles. */
export interface Viewer {
  readonly name: string;
  readonly groups: readonly string[];
  readonly isAdmin: boolean;
  readonly isAuditor: boolean;
}

/** What decides a request's visibility; fixed when the request is created. */
export interface RequestFacts {
  readonly requester: string;
  /** The approval steps copied from the policy at creation; later policy edits do not change them. */
  readonly approvalSteps: readonly { readonly from: readonly string[] }[];
}

/** What decides a grant's visibility besides the configuration; fixed when the grant is created. */
export interface GrantFacts {
  readonly user: string;
  readonly policy: string | null;
}

/** The part of the configuration grant visibility reads: who reviews each policy's uses. */
export type ReviewPolicies = Pick<FirebreakConfig, "breakGlass">;

/** A request is visible to administrators, auditors, its requester and anyone who may approve one of its steps. */
export function canSeeRequest(viewer: Viewer, request: RequestFacts): boolean {
  if (viewer.isAdmin || viewer.isAuditor || viewer.name === request.requester) return true;
  return request.approvalSteps.some((step) => matchesPrincipal(step.from, viewer.name, viewer.groups));
}

/** The reviewers a grant's policy names, or null when it names none (or no longer exists). */
export function reviewersOf(config: ReviewPolicies, grant: GrantFacts): readonly PrincipalRef[] | null {
  const policy = config.breakGlass?.find((candidate) => candidate.name === grant.policy);
  return policy?.review?.by ?? null;
}

/** Reviewers are named by the policy, or else administrators and auditors; never the grant's own user. */
export function canReviewGrant(viewer: Viewer, grant: GrantFacts, config: ReviewPolicies): boolean {
  if (viewer.name === grant.user) return false;
  const by = reviewersOf(config, grant);
  return by ? matchesPrincipal(by, viewer.name, viewer.groups) : viewer.isAdmin || viewer.isAuditor;
}

/** A grant is visible to administrators, auditors, its user and whoever may review it. */
export function canSeeGrant(viewer: Viewer, grant: GrantFacts, config: ReviewPolicies): boolean {
  return (
    viewer.isAdmin || viewer.isAuditor || viewer.name === grant.user || canReviewGrant(viewer, grant, config)
  );
}

/** Zones in which the viewer is named in some policy's approval steps (the requests they may list). */
export function approverZones(
  config: Pick<FirebreakConfig, "breakGlass">,
  viewer: Pick<Viewer, "name" | "groups">,
): string[] {
  const zones = new Set<string>();
  for (const policy of config.breakGlass ?? []) {
    for (const step of policy.approvals ?? []) {
      const from = typeof step.from === "string" ? [step.from] : step.from;
      if (matchesPrincipal(from, viewer.name, viewer.groups)) zones.add(policy.zone);
    }
  }
  return [...zones];
}

/** Zones in which some policy names the viewer as a reviewer of its grants. */
export function reviewerZones(
  config: Pick<FirebreakConfig, "breakGlass">,
  viewer: Pick<Viewer, "name" | "groups">,
): string[] {
  const zones = new Set<string>();
  for (const policy of config.breakGlass ?? []) {
    if (policy.review?.by && matchesPrincipal(policy.review.by, viewer.name, viewer.groups))
      zones.add(policy.zone);
  }
  return [...zones];
}

/**
 * Directory users who could approve what an event says is still required (for notifications and
 * the request view): members of the steps' principals, never the requester.
 */
export function suggestedApprovers(
  config: Pick<FirebreakConfig, "directory">,
  event: { context: Record<string, unknown> },
): string[] {
  const steps = (event.context.requires ?? event.context.remaining ?? []) as { from?: string[] }[];
  const requester = String(event.context.requester ?? "");
  const refs = steps.flatMap((step) => step.from ?? []);
  return Object.entries(config.directory?.users ?? {})
    .filter(([name, user]) => name !== requester && matchesPrincipal(refs, name, user.groups))
    .map(([name]) => name)
    .sort();
}

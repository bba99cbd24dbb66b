import type { FirebreakConfig, PrincipalRef } from "../config/schema.js";
import { matchesPrincipal } from "./approvals.js";

/**
 * Who may see which request and grant, pure. The REST routes (a 404 for anything else) and the
 * live event stream both decide with these functions, so a live view can never show more than
 * the API would answer.
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

import type { ApprovalStep, PrincipalRef } from "../config/schema.js";

/**
 * Approval rules, pure. A policy's `approvals` is a list of steps; every step must be met (all-of),
 * a step's `from` list is any-of, one person's approval counts for at most one step, and the
 * requester never counts. See NOTES.md for why the assignment is a matching, not a greedy pass.
 */

/** One approval step with its `from` normalised to a list. */
export interface ApprovalRequirement {
  readonly from: readonly PrincipalRef[];
  readonly count: number;
}

/** Someone who approves (or might): a user name and the groups they belong to at that moment. */
export interface Approver {
  readonly name: string;
  readonly groups: readonly string[];
}

/** A recorded approval: who gave it and their groups when they gave it. */
export interface RecordedApproval {
  readonly approver: string;
  readonly groups: readonly string[];
}

export type ApproverCheck = { ok: true } | { ok: false; code: "SELF_APPROVAL" | "NOT_AN_APPROVER" };

export interface ApprovalStepProgress {
  readonly from: readonly PrincipalRef[];
  readonly count: number;
  /** Approver names counted for this step, in the order they approved. */
  readonly have: readonly string[];
  readonly remaining: number;
}

export interface ApprovalProgress {
  readonly satisfied: boolean;
  readonly steps: readonly ApprovalStepProgress[];
}

/** Splits `group:sre` / `user:alice` into its kind and name. */
export function parsePrincipalRef(ref: PrincipalRef): { kind: "user" | "group"; name: string } {
  if (ref.startsWith("group:")) return { kind: "group", name: ref.slice(6) };
  return { kind: "user", name: ref.slice(5) };
}

/** True when the user named `name`, a member of `groups`, is one of `refs`. */
export function matchesPrincipal(
  refs: readonly PrincipalRef[],
  name: string,
  groups: ReadonlySet<string> | readonly string[],
): boolean {
  const isMember =
    groups instanceof Set
      ? (group: string) => groups.has(group)
      : (group: string) => (groups as readonly string[]).includes(group);
  for (const ref of refs) {
    const { kind, name: refName } = parsePrincipalRef(ref);
    if (kind === "user" ? refName === name : isMember(refName)) return true;
  }
  return false;
}

/** Normalises configured approval steps (a single `from` becomes a one-element list). */
export function toApprovalRequirements(steps: readonly ApprovalStep[] | undefined): ApprovalRequirement[] {
  return (steps ?? []).map((step) => ({
    from: typeof step.from === "string" ? [step.from] : [...step.from],
    count: step.count,
  }));
}

/**
 * Whether `approver` may approve a request of `requesterName` under `requirements`. Self-approval
 * is refused before membership is looked at, so a requester who also sits in an approver group
 * learns the real reason.
 */
export function canApprove(
  requirements: readonly ApprovalRequirement[],
  approver: Approver,
  requesterName: string,
): ApproverCheck {
  if (approver.name === requesterName) return { ok: false, code: "SELF_APPROVAL" };
  for (const step of requirements) {
    if (matchesPrincipal(step.from, approver.name, approver.groups)) return { ok: true };
  }
  return { ok: false, code: "NOT_AN_APPROVER" };
}

/**
 * How far `approvals` go towards `requirements`. Each distinct approver fills at most one slot of
 * one step; approvers are assigned by maximum bipartite matching so that an approver who could
 * serve several steps never blocks a step that only someone else could have filled. Approvals by
 * `requesterName` (when given), duplicates and approvals that match no step are not counted.
 */
export function approvalProgress(
  requirements: readonly ApprovalRequirement[],
  approvals: readonly RecordedApproval[],
  requesterName?: string,
): ApprovalProgress {
  const approvers: RecordedApproval[] = [];
  const seen = new Set<string>();
  for (const approval of approvals) {
    if (approval.approver === requesterName || seen.has(approval.approver)) continue;
    seen.add(approval.approver);
    approvers.push(approval);
  }

  // Slots expand each step into `count` unit-capacity seats, so plain Kuhn matching applies.
  const slotStep: number[] = [];
  requirements.forEach((step, index) => {
    for (let seat = 0; seat < step.count; seat++) slotStep.push(index);
  });
  const eligibleSteps = approvers.map((approval) => {
    const steps = new Set<number>();
    requirements.forEach((step, index) => {
      if (matchesPrincipal(step.from, approval.approver, approval.groups)) steps.add(index);
    });
    return steps;
  });
  const slotHolder: (number | undefined)[] = slotStep.map(() => undefined);

  const tryAssign = (approverIndex: number, visited: boolean[]): boolean => {
    const steps = eligibleSteps[approverIndex];
    if (steps === undefined) return false;
    for (let slot = 0; slot < slotStep.length; slot++) {
      if (visited[slot] || !steps.has(slotStep[slot] as number)) continue;
      visited[slot] = true;
      const holder = slotHolder[slot];
      if (holder === undefined || tryAssign(holder, visited)) {
        slotHolder[slot] = approverIndex;
        return true;
      }
    }
    return false;
  };
  // Earlier approvers are matched first, so with a choice the earliest approvals are the ones counted.
  for (let index = 0; index < approvers.length; index++) {
    tryAssign(
      index,
      slotStep.map(() => false),
    );
  }

  const haveIndexes: number[][] = requirements.map(() => []);
  slotHolder.forEach((holder, slot) => {
    if (holder !== undefined) haveIndexes[slotStep[slot] as number]?.push(holder);
  });
  const steps = requirements.map((step, index) => {
    const have = (haveIndexes[index] ?? [])
      .sort((a, b) => a - b)
      .map((approverIndex) => (approvers[approverIndex] as RecordedApproval).approver);
    return { from: step.from, count: step.count, have, remaining: step.count - have.length };
  });
  return { satisfied: steps.every((step) => step.remaining === 0), steps };
}

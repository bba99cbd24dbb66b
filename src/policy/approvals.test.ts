import { describe, expect, it } from "vitest";
import {
  type ApprovalRequirement,
  approvalProgress,
  canApprove,
  toApprovalRequirements,
} from "./approvals.js";

const leads: ApprovalRequirement[] = [{ from: ["group:payments-leads"], count: 1 }];
const leadsAndSecurity: ApprovalRequirement[] = [
  { from: ["group:payments-leads"], count: 1 },
  { from: ["group:security", "user:root"], count: 1 },
];

describe("canApprove", () => {
  it("accepts a member of a step's group or a named user", () => {
    expect(canApprove(leads, { name: "carol", groups: ["payments-leads"] }, "alice")).toEqual({ ok: true });
    expect(canApprove(leadsAndSecurity, { name: "root", groups: [] }, "alice")).toEqual({ ok: true });
  });

  it("refuses the requester, even when they are in an approver group", () => {
    expect(canApprove(leads, { name: "carol", groups: ["payments-leads"] }, "carol")).toEqual({
      ok: false,
      code: "SELF_APPROVAL",
    });
  });

  it("refuses someone outside every step", () => {
    expect(canApprove(leads, { name: "mallory", groups: ["sre"] }, "alice")).toEqual({
      ok: false,
      code: "NOT_AN_APPROVER",
    });
    expect(canApprove([], { name: "carol", groups: ["payments-leads"] }, "alice")).toEqual({
      ok: false,
      code: "NOT_AN_APPROVER",
    });
  });
});

describe("approvalProgress", () => {
  it("is satisfied by one approver from the group", () => {
    const progress = approvalProgress(leads, [{ approver: "carol", groups: ["payments-leads"] }], "alice");
    expect(progress).toEqual({
      satisfied: true,
      steps: [{ from: ["group:payments-leads"], count: 1, have: ["carol"], remaining: 0 }],
    });
  });

  it("is not satisfied without approvals", () => {
    expect(approvalProgress(leads, [])).toEqual({
      satisfied: false,
      steps: [{ from: ["group:payments-leads"], count: 1, have: [], remaining: 1 }],
    });
  });

  it("counts a threshold of 2 only with two different people", () => {
    const twoLeads: ApprovalRequirement[] = [{ from: ["group:payments-leads"], count: 2 }];
    const carol = { approver: "carol", groups: ["payments-leads"] };
    const dan = { approver: "dan", groups: ["payments-leads"] };
    expect(approvalProgress(twoLeads, [carol]).steps[0]?.remaining).toBe(1);
    expect(approvalProgress(twoLeads, [carol, carol]).satisfied).toBe(false);
    expect(approvalProgress(twoLeads, [carol, dan])).toMatchObject({
      satisfied: true,
      steps: [{ have: ["carol", "dan"], remaining: 0 }],
    });
  });

  it("needs two different people for two steps", () => {
    const both = { approver: "erin", groups: ["payments-leads", "security"] };
    const progress = approvalProgress(leadsAndSecurity, [both]);
    expect(progress.satisfied).toBe(false);
    expect(progress.steps.map((step) => step.remaining).reduce((a, b) => a + b)).toBe(1);
    const other = { approver: "carol", groups: ["payments-leads"] };
    expect(approvalProgress(leadsAndSecurity, [both, other])).toMatchObject({
      satisfied: true,
      steps: [{ have: ["carol"] }, { have: ["erin"] }],
    });
  });

  it("reassigns a versatile approver so a step only someone else can fill is not blocked", () => {
    // A greedy pass would give erin (first) to step 1 and leave step 2 unfillable by carol.
    const steps: ApprovalRequirement[] = [
      { from: ["group:security", "group:payments-leads"], count: 1 },
      { from: ["group:security"], count: 1 },
    ];
    const progress = approvalProgress(steps, [
      { approver: "erin", groups: ["security"] },
      { approver: "carol", groups: ["payments-leads"] },
    ]);
    expect(progress).toMatchObject({ satisfied: true, steps: [{ have: ["carol"] }, { have: ["erin"] }] });
  });

  it("never counts the requester or outsiders", () => {
    const progress = approvalProgress(
      leads,
      [
        { approver: "carol", groups: ["payments-leads"] },
        { approver: "mallory", groups: ["sre"] },
      ],
      "carol",
    );
    expect(progress).toMatchObject({ satisfied: false, steps: [{ have: [], remaining: 1 }] });
  });

  it("is trivially satisfied when nothing is required", () => {
    expect(approvalProgress([], [])).toEqual({ satisfied: true, steps: [] });
  });
});

describe("toApprovalRequirements", () => {
  it("normalises a single principal to a list", () => {
    expect(
      toApprovalRequirements([
        { from: "group:a", count: 2 },
        { from: ["user:b"], count: 1 },
      ]),
    ).toEqual([
      { from: ["group:a"], count: 2 },
      { from: ["user:b"], count: 1 },
    ]);
    expect(toApprovalRequirements(undefined)).toEqual([]);
  });
});

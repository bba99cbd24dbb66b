import { describe, expect, it } from "vitest";
import type { FirebreakConfig } from "../config/schema.js";
import {
  approverZones,
  canReviewGrant,
  canSeeGrant,
  canSeeRequest,
  reviewerZones,
  suggestedApprovers,
  type Viewer,
} from "./visibility.js";

const user = (name: string, groups: string[] = [], roles: Partial<Viewer> = {}): Viewer => ({
  name,
  groups,
  isAdmin: false,
  isAuditor: false,
  ...roles,
});

const request = {
  requester: "alice",
  approvalSteps: [{ from: ["group:leads"] }, { from: ["user:root", "group:security"] }],
};

const config = {
  breakGlass: [{ name: "vault-emergency", review: { by: ["group:security"] } }, { name: "sandbox-debug" }],
} as unknown as Pick<FirebreakConfig, "breakGlass">;

describe("canSeeRequest", () => {
  it("shows a request to its requester and to anyone named in one of its steps", () => {
    expect(canSeeRequest(user("alice", ["sre"]), request)).toBe(true);
    expect(canSeeRequest(user("carol", ["leads"]), request)).toBe(true);
    expect(canSeeRequest(user("root"), request)).toBe(true);
    expect(canSeeRequest(user("erin", ["security"]), request)).toBe(true);
  });

  it("shows it to administrators and auditors", () => {
    expect(canSeeRequest(user("boss", [], { isAdmin: true }), request)).toBe(true);
    expect(canSeeRequest(user("eve", [], { isAuditor: true }), request)).toBe(true);
  });

  it("hides it from everyone else, whatever zone they approve in elsewhere", () => {
    expect(canSeeRequest(user("frank", ["dev"]), request)).toBe(false);
    expect(canSeeRequest(user("bob", ["sre"]), request)).toBe(false);
    // A user whose name is a group's name gains nothing from it.
    expect(canSeeRequest(user("leads"), request)).toBe(false);
    expect(canSeeRequest(user("frank", ["dev"]), { requester: "alice", approvalSteps: [] })).toBe(false);
  });
});

describe("canSeeGrant and canReviewGrant", () => {
  const reviewed = { user: "alice", policy: "vault-emergency" };
  const unreviewed = { user: "alice", policy: "sandbox-debug" };

  it("shows a grant to its user, who never reviews it", () => {
    expect(canSeeGrant(user("alice"), reviewed, config)).toBe(true);
    expect(canReviewGrant(user("alice", ["security"]), reviewed, config)).toBe(false);
  });

  it("lets the policy's reviewers see and review it", () => {
    expect(canSeeGrant(user("erin", ["security"]), reviewed, config)).toBe(true);
    expect(canReviewGrant(user("erin", ["security"]), reviewed, config)).toBe(true);
  });

  it("without named reviewers, administrators and auditors review", () => {
    expect(canReviewGrant(user("erin", ["security"]), unreviewed, config)).toBe(false);
    expect(canReviewGrant(user("eve", [], { isAuditor: true }), unreviewed, config)).toBe(true);
    expect(canReviewGrant(user("boss", [], { isAdmin: true }), unreviewed, config)).toBe(true);
  });

  it("hides it from anyone else, including approvers of its request", () => {
    expect(canSeeGrant(user("carol", ["leads"]), reviewed, config)).toBe(false);
    expect(canSeeGrant(user("frank", ["dev"]), unreviewed, config)).toBe(false);
  });

  it("a grant whose policy is gone falls back to administrators and auditors", () => {
    const orphan = { user: "alice", policy: "removed-policy" };
    expect(canSeeGrant(user("erin", ["security"]), orphan, config)).toBe(false);
    expect(canSeeGrant(user("eve", [], { isAuditor: true }), orphan, config)).toBe(true);
    expect(canSeeGrant(user("alice"), orphan, config)).toBe(true);
  });
});

describe("approverZones, reviewerZones and suggestedApprovers", () => {
  const policies = {
    breakGlass: [
      {
        name: "db-emergency",
        zone: "prod-db",
        approvals: [{ from: "group:leads" }, { from: ["user:root"] }],
      },
      {
        name: "vault",
        zone: "vault",
        approvals: [{ from: ["group:security"] }],
        review: { by: ["group:security"] },
      },
      { name: "sandbox", zone: "sandbox", review: { by: ["user:carol"] } },
    ],
    directory: {
      users: {
        alice: { groups: ["leads"] },
        carol: { groups: ["leads", "security"] },
        erin: { groups: ["security"] },
        frank: { groups: ["dev"] },
      },
    },
  } as unknown as Pick<FirebreakConfig, "breakGlass" | "directory">;

  it("names the zones a viewer approves in, by group or by name, a step given as one string or a list", () => {
    expect(approverZones(policies, user("carol", ["leads", "security"])).sort()).toEqual([
      "prod-db",
      "vault",
    ]);
    expect(approverZones(policies, user("root"))).toEqual(["prod-db"]);
    expect(approverZones(policies, user("frank", ["dev"]))).toEqual([]);
    // A user named like a group gains nothing from it.
    expect(approverZones(policies, user("leads"))).toEqual([]);
  });

  it("names the zones a viewer reviews in, only where a policy names reviewers", () => {
    expect(reviewerZones(policies, user("carol", ["leads"]))).toEqual(["sandbox"]);
    expect(reviewerZones(policies, user("erin", ["security"]))).toEqual(["vault"]);
    expect(reviewerZones(policies, user("boss", [], { isAdmin: true }))).toEqual([]);
  });

  it("suggests the directory's users who could fill the remaining steps, never the requester, sorted", () => {
    const event = {
      context: { requester: "alice", requires: [{ from: ["group:leads"] }, { from: ["group:security"] }] },
    };
    expect(suggestedApprovers(policies, event)).toEqual(["carol", "erin"]);
    expect(
      suggestedApprovers(policies, {
        context: { requester: "carol", remaining: [{ from: ["group:leads"] }] },
      }),
    ).toEqual(["alice"]);
    expect(suggestedApprovers(policies, { context: { requester: "alice" } })).toEqual([]);
  });
});

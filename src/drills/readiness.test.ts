import { describe, expect, it } from "vitest";
import { loadConfigText } from "../config/load.js";
import { compilePolicy } from "../policy/engine.js";
import { assessReadiness } from "./readiness.js";

const CONFIG = `version: 1
directory:
  users:
    alice: { groups: [sre] }
    bob: { groups: [sre] }
    carol: { groups: [leads] }
zones:
  bastion: { cidrs: [10.0.0.0/8] }
  office: {}
  db: {}
resources:
  db-pg: { zone: db, type: log, roles: { admin: { grants: [owner] } } }
breakGlass:
  - name: db-emergency
    zone: db
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
    factors: [totp]
    approverFactors: [webauthn]
    approvals: [{ from: group:leads, count: 1 }]
    review: { within: 1d, blockWhenOverdue: true }
  - name: office-only
    zone: db
    roles: [admin]
    eligible: [user:nobody]
    duration: { default: 15m, max: 1h }
    sourceZones: [office]
`;

function setup() {
  const loaded = loadConfigText(CONFIG);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  const users = Object.entries(loaded.config.directory?.users ?? {}).map(([name, u]) => ({
    name,
    groups: u.groups,
  }));
  return { config: loaded.config, policy: compilePolicy(loaded.config), users };
}

describe("readiness", () => {
  it("names the missing factor, the overdue review and the approver without a factor, per person", () => {
    const { config, policy, users } = setup();
    const now = 1_000_000;
    const [db] = assessReadiness(config, policy, {
      users,
      factors: new Map([
        ["alice", [{ kind: "totp" as const, settlesAt: 0 }]],
        ["bob", []],
        ["carol", [{ kind: "totp" as const, settlesAt: 0 }]],
      ]),
      overdueReviews: new Map([["alice", 2]]),
      now,
    });
    expect(db?.eligible.map((p) => p.user)).toEqual(["alice", "bob"]);
    const codes = (user: string) => db?.eligible.find((p) => p.user === user)?.blockers.map((b) => b.code);
    expect(codes("alice")).toEqual(["REVIEW_OVERDUE", "NO_APPROVER_WITH_FACTOR"]);
    expect(codes("bob")).toEqual(["NO_FACTOR_ENROLLED", "NO_APPROVER_WITH_FACTOR"]);
    expect(db?.eligible.find((p) => p.user === "bob")?.blockers[0]?.message).toContain(
      "no totp factor enrolled",
    );
    // No notify channel: approvers would never hear of the request.
    expect(db?.blockers.map((b) => b.code)).toEqual(["NO_NOTIFICATION_CHANNEL"]);
    expect(db?.ready).toBe(false);
  });

  it("is ready when a person has what the policy asks, and says what it could not check offline", () => {
    const { config, policy, users } = setup();
    const withChannel = {
      ...config,
      notify: [{ type: "webhook" as const, url: "https://chat.example/hook" }],
    };
    const [db, office] = assessReadiness(withChannel, policy, {
      users,
      factors: new Map([
        ["alice", [{ kind: "totp" as const, settlesAt: 0 }]],
        ["carol", [{ kind: "webauthn" as const, settlesAt: 0 }]],
      ]),
      overdueReviews: new Map(),
      now: 1,
    });
    expect(db?.readyUsers).toEqual(["alice"]);
    expect(office?.blockers.map((b) => b.code)).toEqual(["NO_ELIGIBLE_USER", "SOURCE_ZONE_UNREACHABLE"]);
    const offline = assessReadiness(withChannel, policy, {
      users,
      factors: null,
      overdueReviews: null,
      now: 1,
    });
    expect(offline[0]?.unknown).toEqual(["factors", "reviews"]);
    expect(offline[0]?.eligible.every((p) => !p.blockers.some((b) => b.code === "NO_FACTOR_ENROLLED"))).toBe(
      true,
    );
  });

  it("does not count a factor that is still settling", () => {
    const { config, policy, users } = setup();
    const [db] = assessReadiness(config, policy, {
      users,
      factors: new Map([["alice", [{ kind: "totp" as const, settlesAt: 5_000 }]]]),
      overdueReviews: new Map(),
      now: 1_000,
    });
    expect(db?.eligible.find((p) => p.user === "alice")?.blockers[0]?.code).toBe("FACTOR_NOT_SETTLED");
  });
});

import { describe, expect, it } from "vitest";
import { configSchema, type FirebreakConfig } from "../config/schema.js";
import { isFirebreakError } from "../errors.js";
import {
  compilePolicy,
  type Decision,
  type DecisionInput,
  decide,
  explain,
  type Reason,
  resourcesForGrant,
  zoneOfTarget,
} from "./engine.js";

const NOW = Date.UTC(2026, 10, 29, 2, 0, 0);
const MINUTE = 60_000;

function config(overrides: Partial<Record<keyof FirebreakConfig, unknown>> = {}): FirebreakConfig {
  return configSchema.parse({
    version: 1,
    directory: {
      users: {
        alice: { groups: ["sre"] },
        bob: { groups: ["sre"] },
        carol: { groups: ["payments-leads"] },
        dave: { groups: [] },
        erin: { groups: ["security"] },
      },
    },
    zones: {
      bastion: { cidrs: ["10.20.0.0/24"] },
      "payments-app": { enforcement: "enforce" },
      "payments-db": { enforcement: "enforce" },
    },
    resources: {
      "payments-pg": {
        zone: "payments-db",
        type: "postgres",
        roles: { read: { grants: ["pg_read_all_data"] }, admin: { grants: ["payments_owner"] } },
      },
      "payments-replica": {
        zone: "payments-db",
        type: "postgres",
        roles: { read: { grants: ["pg_read_all_data"] } },
      },
      "payments-hosts": { zone: "payments-app", type: "ssh", roles: { operator: { principals: ["ops"] } } },
    },
    standing: [
      { group: "sre", zone: "payments-app", role: "operator" },
      { user: "dave", resource: "payments-replica", role: "read" },
    ],
    breakGlass: [
      {
        name: "payments-db-emergency",
        zone: "payments-db",
        roles: ["admin"],
        eligible: ["group:sre"],
        duration: { default: "30m", max: "1h" },
        factors: ["webauthn", "totp"],
        approvals: [{ from: "group:payments-leads", count: 1 }],
        justification: { minLength: 20, ticket: "^INC-[0-9]+$" },
        sourceZones: ["bastion"],
        when: "signals.incident.open && signals.incident.severity <= 2",
        autoApprove: { when: "signals.incident.severity == 1" },
        review: { within: "72h", blockWhenOverdue: true },
        pendingExpiry: "15m",
      },
    ],
    ...overrides,
  });
}

const calm = { incident: { open: false, severity: 5, id: "", title: "", ageSeconds: 0 }, sourceZone: null };
const sev2 = {
  incident: { open: true, severity: 2, id: "INC-7", title: "db down", ageSeconds: 60 },
  sourceZone: null,
};
const sev1 = { ...sev2, incident: { ...sev2.incident, severity: 1 } };

function request(overrides: Partial<DecisionInput> = {}): DecisionInput {
  return {
    principal: { name: "alice", groups: [] },
    target: { zone: "payments-db" },
    role: "admin",
    durationMs: 30 * MINUTE,
    reason: "payments database refuses writes, INC-7",
    ticket: "INC-7",
    sourceZone: "bastion",
    signals: sev2,
    blockingOverdueReviews: 0,
    now: NOW,
    ...overrides,
  };
}

function denyReasons(decision: Decision): readonly Reason[] {
  if (decision.outcome !== "deny") throw new Error(`expected deny, got ${decision.outcome}`);
  return decision.reasons;
}

function codes(decision: Decision): string[] {
  return denyReasons(decision).map((reason) => reason.code);
}

describe("decide", () => {
  const policy = compilePolicy(config());

  it("asks for exactly the configured approvals when every condition holds", () => {
    const decision = decide(policy, request());
    expect(decision).toMatchObject({
      outcome: "needs-approval",
      policy: "payments-db-emergency",
      target: { zone: "payments-db", resource: null },
      role: "admin",
      durationMs: 30 * MINUTE,
      approvals: [{ from: ["group:payments-leads"], count: 1 }],
      factors: ["webauthn", "totp"],
      factorFreshnessMs: 5 * MINUTE,
      pendingExpiryMs: 15 * MINUTE,
      review: { withinMs: 72 * 60 * MINUTE, blockWhenOverdue: true, by: null },
    });
  });

  it("uses the policy's default duration when none is asked", () => {
    const decision = decide(policy, request({ durationMs: undefined }));
    expect(decision).toMatchObject({ outcome: "needs-approval", durationMs: 30 * MINUTE });
  });

  it("auto-approves when autoApprove.when holds", () => {
    expect(decide(policy, request({ signals: sev1 }))).toMatchObject({
      outcome: "allow",
      via: "auto-approve",
      policy: "payments-db-emergency",
    });
  });

  it("allows through a standing group binding without looking at break-glass policy", () => {
    const decision = decide(
      policy,
      request({ target: { zone: "payments-app" }, role: "operator", signals: calm }),
    );
    expect(decision).toEqual({
      outcome: "allow",
      via: "standing",
      target: { zone: "payments-app", resource: null },
      role: "operator",
      binding: { group: "sre", zone: "payments-app", role: "operator" },
    });
  });

  it("lets a zone binding cover the zone's resources, and a resource binding only its resource", () => {
    expect(
      decide(policy, request({ target: { resource: "payments-hosts" }, role: "operator" })),
    ).toMatchObject({ outcome: "allow", via: "standing" });
    const dave = { name: "dave", groups: [] };
    expect(
      decide(policy, request({ principal: dave, target: { resource: "payments-replica" }, role: "read" })),
    ).toMatchObject({ outcome: "allow", via: "standing", binding: { user: "dave" } });
    expect(
      codes(decide(policy, request({ principal: dave, target: { zone: "payments-db" }, role: "read" }))),
    ).toEqual(["NO_POLICY"]);
  });

  it("merges directory groups with groups passed at decision time", () => {
    const oidcUser = { name: "frank", groups: ["sre"] };
    expect(decide(policy, request({ principal: oidcUser }))).toMatchObject({ outcome: "needs-approval" });
    // Groups passed in add to the directory's, they never remove them.
    expect(decide(policy, request({ principal: { name: "alice", groups: ["other"] } }))).toMatchObject({
      outcome: "needs-approval",
    });
  });

  it("lists every unmet condition of the policy at once", () => {
    const decision = decide(
      policy,
      request({
        principal: { name: "dave", groups: [] },
        durationMs: 2 * 60 * MINUTE,
        reason: "  short            ",
        ticket: "JIRA-1",
        sourceZone: "payments-app",
        signals: calm,
        blockingOverdueReviews: 2,
      }),
    );
    const reasons = denyReasons(decision);
    expect(reasons.map((reason) => reason.code)).toEqual([
      "NOT_ELIGIBLE",
      "REVIEW_OVERDUE",
      "SOURCE_ZONE_NOT_ALLOWED",
      "DURATION_EXCEEDED",
      "JUSTIFICATION_TOO_SHORT",
      "TICKET_MISMATCH",
      "CONDITION_FALSE",
    ]);
    expect(reasons.every((reason) => reason.policy === "payments-db-emergency")).toBe(true);
    expect(reasons.find((reason) => reason.code === "DURATION_EXCEEDED")).toMatchObject({
      expected: 60 * MINUTE,
      actual: 120 * MINUTE,
    });
    expect(reasons.find((reason) => reason.code === "JUSTIFICATION_TOO_SHORT")).toMatchObject({
      expected: 20,
      actual: 5,
    });
    expect(reasons.find((reason) => reason.code === "SOURCE_ZONE_NOT_ALLOWED")).toMatchObject({
      expected: ["bastion"],
      actual: "payments-app",
    });
    expect(reasons.find((reason) => reason.code === "CONDITION_FALSE")).toMatchObject({ field: "when" });
  });

  it("requires a ticket when the policy has a ticket pattern", () => {
    expect(codes(decide(policy, request({ ticket: null })))).toEqual(["TICKET_REQUIRED"]);
    expect(codes(decide(policy, request({ ticket: "" })))).toEqual(["TICKET_REQUIRED"]);
  });

  it("refuses an unknown source zone when the policy names source zones", () => {
    const reasons = denyReasons(decide(policy, request({ sourceZone: null })));
    expect(reasons).toMatchObject([{ code: "SOURCE_ZONE_NOT_ALLOWED", actual: null }]);
  });

  it("refuses a non-positive or fractional duration", () => {
    expect(codes(decide(policy, request({ durationMs: 0 })))).toEqual(["INVALID_DURATION"]);
    expect(codes(decide(policy, request({ durationMs: Number.NaN })))).toEqual(["INVALID_DURATION"]);
  });

  it("accepts the maximum duration exactly", () => {
    expect(decide(policy, request({ durationMs: 60 * MINUTE }))).toMatchObject({ outcome: "needs-approval" });
    expect(codes(decide(policy, request({ durationMs: 60 * MINUTE + 1 })))).toEqual(["DURATION_EXCEEDED"]);
  });

  it("blocks on overdue reviews", () => {
    expect(denyReasons(decide(policy, request({ blockingOverdueReviews: 1 })))).toMatchObject([
      { code: "REVIEW_OVERDUE", actual: 1 },
    ]);
  });

  it("denies unknown targets and roles", () => {
    expect(codes(decide(policy, request({ target: { zone: "nowhere" } })))).toEqual(["UNKNOWN_ZONE"]);
    expect(codes(decide(policy, request({ target: { resource: "nothing" } })))).toEqual(["UNKNOWN_RESOURCE"]);
    expect(codes(decide(policy, request({ target: { zone: "bastion", resource: "payments-pg" } })))).toEqual([
      "UNKNOWN_RESOURCE",
    ]);
    expect(codes(decide(policy, request({ target: {} })))).toEqual(["INVALID_TARGET"]);
    expect(codes(decide(policy, request({ role: "superuser" })))).toEqual(["UNKNOWN_ROLE"]);
    // payments-replica has no admin role even though its zone has a policy for admin.
    expect(codes(decide(policy, request({ target: { resource: "payments-replica" } })))).toEqual([
      "UNKNOWN_ROLE",
    ]);
  });

  it("denies with NO_POLICY when a known role has neither binding nor policy", () => {
    const reasons = denyReasons(decide(policy, request({ role: "read" })));
    expect(reasons).toMatchObject([{ code: "NO_POLICY", actual: "read" }]);
  });

  it("resolves a resource to its zone and applies the zone's policy", () => {
    expect(decide(policy, request({ target: { resource: "payments-pg" } }))).toMatchObject({
      outcome: "needs-approval",
      target: { zone: "payments-db", resource: "payments-pg" },
    });
  });

  it("never allows on a CEL runtime error, in when or in a gate-keeping autoApprove", () => {
    const erroring = compilePolicy(
      config({
        breakGlass: [
          {
            name: "broken-when",
            zone: "payments-db",
            roles: ["admin"],
            eligible: ["group:sre"],
            duration: { default: "30m", max: "1h" },
            when: "{'x': true}[request.role]",
          },
          {
            name: "auto-only",
            zone: "payments-db",
            roles: ["admin"],
            eligible: ["group:sre"],
            duration: { default: "30m", max: "1h" },
            autoApprove: { when: "{'x': true}[request.role]" },
          },
        ],
      }),
    );
    const reasons = denyReasons(decide(erroring, request()));
    expect(reasons).toMatchObject([
      { code: "CONDITION_ERROR", policy: "broken-when", field: "when" },
      { code: "CONDITION_ERROR", policy: "auto-only", field: "autoApprove.when" },
    ]);
  });

  it("falls back to approvals when autoApprove errors and the policy has approval steps", () => {
    const withSteps = compilePolicy(
      config({
        breakGlass: [
          {
            name: "p",
            zone: "payments-db",
            roles: ["admin"],
            eligible: ["group:sre"],
            duration: { default: "30m", max: "1h" },
            approvals: [{ from: "group:payments-leads" }],
            autoApprove: { when: "{'x': true}[request.role]" },
          },
        ],
      }),
    );
    expect(decide(withSteps, request())).toMatchObject({ outcome: "needs-approval", policy: "p" });
  });

  it("denies with CONDITION_FALSE when an approval-free policy's autoApprove is false", () => {
    const autoOnly = compilePolicy(
      config({
        breakGlass: [
          {
            name: "auto-only",
            zone: "payments-db",
            roles: ["admin"],
            eligible: ["group:sre"],
            duration: { default: "30m", max: "1h" },
            autoApprove: { when: "signals.incident.severity == 1" },
          },
        ],
      }),
    );
    expect(denyReasons(decide(autoOnly, request()))).toMatchObject([
      { code: "CONDITION_FALSE", field: "autoApprove.when" },
    ]);
    expect(decide(autoOnly, request({ signals: sev1 }))).toMatchObject({
      outcome: "allow",
      via: "auto-approve",
    });
  });

  it("passes the request, principal, signals and time to CEL", () => {
    const celPolicy = compilePolicy(
      config({
        breakGlass: [
          {
            name: "p",
            zone: "payments-db",
            roles: ["admin"],
            eligible: ["group:sre"],
            duration: { default: "30m", max: "1h" },
            when:
              "request.zone == 'payments-db' && request.role == 'admin' && request.durationSeconds == 900 && " +
              "'sre' in principal.groups && principal.name == 'alice' && request.ticket == 'INC-7' && " +
              "request.sourceZone == 'bastion' && signals.sourceZone == 'bastion' && now > timestamp('2026-01-01T00:00:00Z')",
          },
        ],
      }),
    );
    expect(decide(celPolicy, request({ durationMs: 15 * MINUTE }))).toMatchObject({
      outcome: "allow",
      via: "policy",
    });
    expect(codes(decide(celPolicy, request({ durationMs: 16 * MINUTE })))).toEqual(["CONDITION_FALSE"]);
  });

  describe("with several policies covering the request", () => {
    const base = {
      zone: "payments-db",
      roles: ["admin"],
      eligible: ["group:sre"],
      duration: { default: "30m", max: "1h" },
    };
    const several = compilePolicy(
      config({
        breakGlass: [
          { ...base, name: "two-leads", approvals: [{ from: "group:payments-leads", count: 2 }] },
          { ...base, name: "one-lead", approvals: [{ from: "group:payments-leads" }] },
          { ...base, name: "also-one-lead", approvals: [{ from: "group:security" }] },
          { ...base, name: "incident-auto", when: "signals.incident.severity == 1" },
          { ...base, name: "read-only", roles: ["read"] },
        ],
      }),
    );

    it("prefers fewer approvals, configuration order breaking ties", () => {
      expect(decide(several, request())).toMatchObject({ outcome: "needs-approval", policy: "one-lead" });
    });

    it("prefers a policy that needs nobody", () => {
      expect(decide(several, request({ signals: sev1 }))).toMatchObject({
        outcome: "allow",
        via: "policy",
        policy: "incident-auto",
      });
    });

    it("lists the unmet conditions of every covering policy, and only those", () => {
      const reasons = denyReasons(decide(several, request({ principal: { name: "carol", groups: [] } })));
      expect(reasons.map((reason) => [reason.policy, reason.code])).toEqual([
        ["two-leads", "NOT_ELIGIBLE"],
        ["one-lead", "NOT_ELIGIBLE"],
        ["also-one-lead", "NOT_ELIGIBLE"],
        ["incident-auto", "NOT_ELIGIBLE"],
        ["incident-auto", "CONDITION_FALSE"],
      ]);
    });

    it("explains every policy of the zone with what it requires", () => {
      const explanation = explain(several, request({ principal: { name: "carol", groups: [] } }));
      expect(explanation.decision.outcome).toBe("deny");
      expect(explanation.policies.map((entry) => [entry.policy, entry.applies])).toEqual([
        ["two-leads", true],
        ["one-lead", true],
        ["also-one-lead", true],
        ["incident-auto", true],
        ["read-only", false],
      ]);
      expect(explanation.policies[4]?.unmet).toMatchObject([{ code: "NO_POLICY", policy: "read-only" }]);
      expect(explanation.policies[0]?.requires.approvals).toEqual([
        { from: ["group:payments-leads"], count: 2 },
      ]);
    });
  });

  it("explains what it would take, including the standing bindings that would apply", () => {
    const explanation = explain(
      policy,
      request({ principal: { name: "dave", groups: [] }, ticket: null, signals: calm, sourceZone: null }),
    );
    expect(explanation.target).toEqual({ zone: "payments-db", resource: null });
    expect(explanation.policies).toHaveLength(1);
    const [entry] = explanation.policies;
    expect(entry?.unmet.map((reason) => reason.code)).toEqual([
      "NOT_ELIGIBLE",
      "SOURCE_ZONE_NOT_ALLOWED",
      "TICKET_REQUIRED",
      "CONDITION_FALSE",
    ]);
    expect(entry?.requires).toEqual({
      eligible: ["group:sre"],
      roles: ["admin"],
      resources: null,
      approvals: [{ from: ["group:payments-leads"], count: 1 }],
      factors: ["webauthn", "totp"],
      factorFreshnessMs: 5 * MINUTE,
      duration: { defaultMs: 30 * MINUTE, maxMs: 60 * MINUTE },
      justification: { minLength: 20, ticketPattern: "^INC-[0-9]+$" },
      sourceZones: ["bastion"],
      condition: "signals.incident.open && signals.incident.severity <= 2",
      autoApproveCondition: "signals.incident.severity == 1",
      review: { withinMs: 72 * 60 * MINUTE, blockWhenOverdue: true, by: null },
    });

    const standing = explain(policy, request({ target: { resource: "payments-hosts" }, role: "operator" }));
    expect(standing.standing).toEqual([
      { binding: { group: "sre", zone: "payments-app", role: "operator" }, holds: true },
    ]);
  });

  it("explains an unknown target with no policies", () => {
    expect(explain(policy, request({ target: { zone: "nowhere" } }))).toMatchObject({
      target: null,
      policies: [],
      decision: { outcome: "deny" },
    });
  });

  it("restricts a resource-scoped policy to its resources", () => {
    const scoped = compilePolicy(
      config({
        breakGlass: [
          {
            name: "replica-read",
            zone: "payments-db",
            resources: ["payments-replica"],
            roles: ["read"],
            eligible: ["group:sre"],
            duration: { default: "30m", max: "1h" },
          },
        ],
      }),
    );
    expect(decide(scoped, request({ target: { resource: "payments-replica" }, role: "read" }))).toMatchObject(
      {
        outcome: "allow",
        via: "policy",
        policy: "replica-read",
      },
    );
    expect(codes(decide(scoped, request({ target: { resource: "payments-pg" }, role: "read" })))).toEqual([
      "NO_POLICY",
    ]);
    // The whole zone is more than the policy covers.
    expect(codes(decide(scoped, request({ target: { zone: "payments-db" }, role: "read" })))).toEqual([
      "NO_POLICY",
    ]);
  });
});

describe("compilePolicy", () => {
  it("refuses a ticket pattern that is not a regular expression", () => {
    const bad = config();
    const [first] = bad.breakGlass ?? [];
    if (first?.justification === undefined) throw new Error("fixture changed");
    first.justification.ticket = "([";
    try {
      compilePolicy(bad);
      expect.unreachable();
    } catch (error) {
      expect(isFirebreakError(error) && error.code).toBe("CONFIG_INVALID");
    }
  });

  it("refuses a condition that does not compile", () => {
    const bad = config();
    const [first] = bad.breakGlass ?? [];
    if (first === undefined) throw new Error("fixture changed");
    first.when = "signals.incident.open &&";
    try {
      compilePolicy(bad);
      expect.unreachable();
    } catch (error) {
      expect(isFirebreakError(error) && error.code).toBe("CONFIG_INVALID");
    }
  });
});

describe("lookups", () => {
  const policy = compilePolicy(config());

  it("finds the zone of a zone or resource name", () => {
    expect(zoneOfTarget(policy, "payments-db")).toBe("payments-db");
    expect(zoneOfTarget(policy, "payments-pg")).toBe("payments-db");
    expect(zoneOfTarget(policy, "nothing")).toBeNull();
    expect(zoneOfTarget(policy, { resource: "payments-hosts" })).toBe("payments-app");
  });

  it("lists the resources a grant reaches", () => {
    expect(resourcesForGrant(policy, "payments-db", null, "read")).toEqual([
      "payments-pg",
      "payments-replica",
    ]);
    expect(resourcesForGrant(policy, "payments-db", null, "admin")).toEqual(["payments-pg"]);
    expect(resourcesForGrant(policy, "payments-db", "payments-replica", "admin")).toEqual([]);
    expect(resourcesForGrant(policy, "payments-app", "payments-pg", "read")).toEqual([]);
  });
});

import { describe, expect, it } from "vitest";
import { configSchema } from "../config/schema.js";
import { compilePolicy, explain } from "../policy/engine.js";
import { type DecisionQuestion, explainDecision, simulatedSignals } from "./decision.service.js";

const NOW = Date.UTC(2026, 10, 29, 2, 0, 0);

const policy = compilePolicy(
  configSchema.parse({
    version: 1,
    directory: { users: { alice: { groups: ["sre"] }, dave: { groups: [] } } },
    zones: { bastion: { cidrs: ["10.20.0.0/24"] }, "payments-app": {}, "payments-db": {} },
    resources: {
      "payments-pg": {
        zone: "payments-db",
        type: "postgres",
        roles: { read: { grants: ["pg_read_all_data"] }, admin: { grants: ["payments_owner"] } },
      },
    },
    standing: [{ group: "sre", zone: "payments-app", role: "read" }],
    breakGlass: [
      {
        name: "payments-db-emergency",
        zone: "payments-db",
        roles: ["admin"],
        eligible: ["group:sre"],
        duration: { default: "30m", max: "1h" },
        factors: ["totp"],
        approvals: [{ from: "group:payments-leads", count: 1 }],
        justification: { minLength: 20, ticket: "^INC-[0-9]+$" },
        sourceZones: ["bastion"],
        when: "signals.incident.open && signals.incident.severity <= 2",
        autoApprove: { when: "signals.incident.severity == 1" },
        review: { within: "72h", blockWhenOverdue: true, by: ["group:security"] },
      },
      {
        name: "payments-db-read",
        zone: "payments-db",
        roles: ["read"],
        eligible: ["user:dave"],
        duration: { default: "15m", max: "30m" },
      },
    ],
  }),
);

const alice = { name: "alice", groups: ["sre"] };
const ask = (overrides: Partial<DecisionQuestion> = {}): DecisionQuestion => ({
  subject: alice,
  target: { zone: "payments-db" },
  role: "admin",
  reason: "payments database refuses writes",
  ticket: "INC-7",
  sourceZone: "bastion",
  ...overrides,
});
const facts = (severity?: number) => ({
  signals: simulatedSignals("bastion", severity),
  blockingOverdueReviews: 0,
  now: NOW,
});

describe("explainDecision", () => {
  // The reply schema is an allow-list: a field of the engine's explanation it did not declare would
  // silently disappear from the API and from `firebreak explain --json`.
  const cases: [string, DecisionQuestion, ReturnType<typeof facts>, string][] = [
    ["a standing allow", ask({ target: { zone: "payments-app" }, role: "read" }), facts(), "allow"],
    ["an auto-approved allow", ask(), facts(1), "allow"],
    ["a decision that needs approval", ask({ durationMs: 3_600_000 }), facts(2), "needs-approval"],
    [
      "a deny with every reason",
      ask({ reason: "x", ticket: null, sourceZone: "payments-app" }),
      facts(),
      "deny",
    ],
    ["a deny for an unknown target", ask({ target: { resource: "nowhere" } }), facts(), "deny"],
    ["a resource's policies", ask({ target: { resource: "payments-pg" }, role: "read" }), facts(), "deny"],
  ];
  for (const [name, question, given, outcome] of cases) {
    it(`keeps every field of the engine's explanation: ${name}`, () => {
      const reply = explainDecision(policy, question, given);
      const engine = explain(policy, {
        principal: question.subject,
        target: { zone: question.target.zone ?? null, resource: question.target.resource ?? null },
        role: question.role,
        durationMs: question.durationMs,
        reason: question.reason,
        ticket: question.ticket ?? null,
        sourceZone: question.sourceZone ?? null,
        signals: given.signals,
        blockingOverdueReviews: given.blockingOverdueReviews,
        now: given.now,
      });
      expect(reply.user).toBe("alice");
      expect(reply.explanation.decision.outcome).toBe(outcome);
      expect(JSON.parse(JSON.stringify(reply.explanation))).toStrictEqual(JSON.parse(JSON.stringify(engine)));
    });
  }

  it("simulates an open incident of the given severity, and none without one", () => {
    expect(simulatedSignals(null, 2).incident).toMatchObject({ open: true, severity: 2, id: "SIMULATED" });
    expect(simulatedSignals("bastion").incident.open).toBe(false);
    expect(explainDecision(policy, ask(), facts()).explanation.decision.outcome).toBe("deny");
  });
});

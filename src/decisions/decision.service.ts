import { type DecisionReply, explanationSchema } from "../api/decisions.schema.js";
import { type CompiledPolicy, type DecisionInput, explain } from "../policy/engine.js";
import { NO_INCIDENT } from "../signals/signal.service.js";

/**
 * One way to explain a decision, used by `POST /v1/decisions` and by `firebreak explain --config`
 * offline: the caller gathers the facts (a server from its database and signals, the CLI from a
 * file and `--incident`), this builds the engine's input from them and shapes the answer. Pure.
 */

/** What is asked: may this person take this role on this target, for this purpose. */
export interface DecisionQuestion {
  readonly subject: { readonly name: string; readonly groups: readonly string[] };
  readonly target: { readonly zone?: string | null; readonly resource?: string | null };
  readonly role: string;
  /** The policy's default when absent. */
  readonly durationMs?: number;
  readonly reason: string;
  readonly ticket?: string | null;
  readonly sourceZone?: string | null;
}

/** What the answer depends on besides the policy: signals, overdue reviews, the time. */
export interface DecisionFacts {
  readonly signals: DecisionInput["signals"];
  readonly blockingOverdueReviews: number;
  /** Epoch milliseconds. */
  readonly now: number;
}

/** The explanation of a decision, in the shape the API replies with (src/api/decisions.schema.ts). */
export function explainDecision(
  policy: CompiledPolicy,
  question: DecisionQuestion,
  facts: DecisionFacts,
): DecisionReply {
  const sourceZone = question.sourceZone ?? null;
  const explanation = explain(policy, {
    principal: { name: question.subject.name, groups: question.subject.groups },
    target: { zone: question.target.zone ?? null, resource: question.target.resource ?? null },
    role: question.role,
    durationMs: question.durationMs,
    reason: question.reason,
    ticket: question.ticket ?? null,
    sourceZone,
    signals: facts.signals,
    blockingOverdueReviews: facts.blockingOverdueReviews,
    now: facts.now,
  });
  return { user: question.subject.name, explanation: explanationSchema.parse(explanation) };
}

/**
 * Signals for a decision explained without a server: no incident, or one of the given severity
 * open in the zone (`firebreak explain --config FILE --incident 2`).
 */
export function simulatedSignals(
  sourceZone: string | null,
  incidentSeverity?: number,
): DecisionInput["signals"] {
  return {
    incident:
      incidentSeverity === undefined
        ? NO_INCIDENT
        : {
            open: true,
            severity: incidentSeverity,
            id: "SIMULATED",
            title: "simulated by --incident",
            ageSeconds: 0,
          },
    sourceZone,
  };
}

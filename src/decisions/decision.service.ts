import type { z } from "zod";
import { type DecisionReply, type decisionBody, explanationSchema } from "../api/decisions.schema.js";
import type { Db } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import { countBlockingOverdueReviews } from "../grants/grant.repo.js";
import { type CompiledPolicy, type DecisionInput, explain, zoneOfTarget } from "../policy/engine.js";
import type { Runtime } from "../runtime/runtime.service.js";
import type { Clock } from "../shared/clock.js";
import { NO_INCIDENT, type SignalService } from "../signals/signal.service.js";
import type { Principal, UserService } from "../users/user.service.js";

/**
 * One way to explain a decision, used by `POST /v1/decisions` and by `firebreak explain --config`
 * offline: the caller gathers the facts (the server's decision service from its database and
 * signals, the CLI from a file and `--incident`), `explainDecision` builds the engine's input from
 * them and shapes the answer, purely.
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

/**
 * The server's decisions: who may ask about whom, and the facts a decision takes now (the
 * subject's groups, the zone's signals, overdue reviews), gathered here so the route only asks.
 */
export function createDecisionService(deps: {
  db: Db;
  clock: Clock;
  current: () => Runtime;
  users: Pick<UserService, "resolve">;
  signals: Pick<SignalService, "snapshot">;
}) {
  return {
    /** Explains `body` for its user (the caller by default); `clientAddress` gives the source zone. */
    async explain(
      principal: Principal,
      body: z.infer<typeof decisionBody>,
      clientAddress: string | null,
    ): Promise<DecisionReply> {
      const name = body.user ?? principal.name;
      assert(
        name === principal.name || principal.isAdmin || principal.isAuditor,
        "FORBIDDEN",
        "only administrators and auditors can explain decisions for someone else",
      );
      const subject = name === principal.name ? principal : await deps.users.resolve(name);
      if (!subject) throw new FirebreakError("NOT_FOUND", `no user '${name}'`);
      const runtime = deps.current();
      const now = deps.clock.now();
      const sourceZone =
        body.sourceZone === undefined ? runtime.sourceZoneOf(clientAddress) : body.sourceZone;
      const zone = zoneOfTarget(
        runtime.policy,
        body.resource ? { resource: body.resource } : { zone: body.zone },
      );
      const signals = zone
        ? await deps.signals.snapshot(zone, sourceZone ?? null, now)
        : { incident: NO_INCIDENT, sourceZone: sourceZone ?? null };
      return explainDecision(
        runtime.policy,
        {
          subject,
          target: { zone: body.zone, resource: body.resource },
          role: body.role,
          durationMs: body.duration,
          reason: body.reason,
          ticket: body.ticket,
          sourceZone,
        },
        {
          signals,
          blockingOverdueReviews: await countBlockingOverdueReviews(deps.db, subject.name, now),
          now,
        },
      );
    },
  };
}
export type DecisionService = ReturnType<typeof createDecisionService>;

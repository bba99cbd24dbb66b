import { accessQuery, accessReply, decisionBody, decisionReply } from "../api/decisions.schema.js";
import type { Db } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import { countBlockingOverdueReviews } from "../grants/grant.repo.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { AccessIndex } from "../policy/access-index.js";
import { zoneOfTarget } from "../policy/engine.js";
import type { Runtime } from "../runtime/runtime.service.js";
import type { Clock } from "../shared/clock.js";
import { NO_INCIDENT, type SignalService } from "../signals/signal.service.js";
import type { UserService } from "../users/user.service.js";
import { explainDecision } from "./decision.service.js";

export function createDecisionRoutes(deps: {
  db: Db;
  clock: Clock;
  current: () => Runtime;
  users: Pick<UserService, "resolve">;
  signals: Pick<SignalService, "snapshot">;
  access: () => AccessIndex;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "POST",
      url: "/v1/decisions",
      summary: "Explain a decision: allowed or not, every unmet condition, and what it would take",
      tag: "policy",
      auth: "user",
      body: decisionBody,
      reply: decisionReply,
      async handler({ principal, body, request }) {
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
          body.sourceZone === undefined ? runtime.sourceZoneOf(request.ip ?? null) : body.sourceZone;
        const zone = zoneOfTarget(
          runtime.policy,
          body.resource ? { resource: body.resource } : { zone: body.zone },
        );
        const signals = zone
          ? await deps.signals.snapshot(zone, sourceZone ?? null, now)
          : {
              incident: NO_INCIDENT,
              sourceZone: sourceZone ?? null,
            };
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
    }),
    defineRoute({
      method: "GET",
      url: "/v1/access",
      summary:
        "The enforcement check: does this user hold this role in this zone (or on this resource) right now",
      tag: "policy",
      auth: "user",
      query: accessQuery,
      reply: accessReply,
      async handler({ principal, query }) {
        assert(
          query.user === principal.name || principal.isAdmin || principal.isAuditor,
          "FORBIDDEN",
          "only administrators and auditors can check someone else's access",
        );
        const now = deps.clock.now();
        const index = deps.access();
        const allowed = query.resource
          ? index.checkResource(query.user, query.resource, query.role, now)
          : index.check(query.user, query.zone ?? "", query.role, now);
        return {
          user: query.user,
          zone: query.zone ?? null,
          resource: query.resource ?? null,
          role: query.role,
          allowed,
        };
      },
    }),
  ];
}

import { accessQuery, accessReply, decisionBody, decisionReply } from "../api/decisions.schema.js";
import { assert } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { AccessIndex } from "../policy/access-index.js";
import type { Clock } from "../shared/clock.js";
import type { DecisionService } from "./decision.service.js";

export function createDecisionRoutes(deps: {
  clock: Clock;
  decisions: Pick<DecisionService, "explain">;
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
      handler: ({ principal, body, request }) => deps.decisions.explain(principal, body, request.ip ?? null),
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

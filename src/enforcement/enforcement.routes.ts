import {
  agentReportSchema,
  agentsReply,
  desiredStateQuery,
  desiredStateReply,
  reportReply,
} from "../api/enforcement.schema.js";
import type { FirebreakConfig } from "../config/schema.js";
import { assert } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import { matchesPrincipal } from "../policy/approvals.js";
import type { Clock } from "../shared/clock.js";
import type { Principal } from "../users/user.service.js";
import type { EnforcementService } from "./enforcement.service.js";

function isAgent(config: FirebreakConfig, principal: Principal): boolean {
  return principal.isAdmin || matchesPrincipal(config.agents ?? [], principal.name, principal.groups);
}

export { agentReportSchema } from "../api/enforcement.schema.js";

/**
 * The enforcement API. Agents long-poll the desired state (`after` = the digest they hold, `wait`
 * = how long the server may hold the request) and report what they applied. Readers of the state
 * are agents (principals listed under `agents:`), administrators and auditors.
 */
export function createEnforcementRoutes(deps: {
  clock: Clock;
  config: () => FirebreakConfig;
  enforcement: EnforcementService;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/enforcement/desired-state",
      summary:
        "The desired network state (zones, standing flows, open grant paths); long-polls while it equals ?after",
      tag: "enforcement",
      auth: "user",
      query: desiredStateQuery,
      reply: desiredStateReply,
      async handler({ principal, query, request }) {
        const agent = isAgent(deps.config(), principal);
        assert(
          agent || principal.isAuditor,
          "FORBIDDEN",
          "only enforcement agents, administrators and auditors can read the desired network state",
        );
        assert(
          query.agent === undefined || agent,
          "FORBIDDEN",
          "only principals listed under 'agents' (or administrators) can poll as an agent",
        );
        const release = query.agent
          ? await deps.enforcement.polling(query.agent, query.enforcer, query.grace)
          : () => {};
        const closed = new AbortController();
        const onClose = () => closed.abort();
        request.raw.once("close", onClose);
        try {
          const state = await deps.enforcement.waitForChange(
            query.after ?? null,
            query.wait * 1000,
            closed.signal,
          );
          const digest = state?.digest ?? query.after ?? "";
          // Stamped now, not when the state was computed: agents measure grant ends against it.
          const serverTime = deps.clock.now();
          return {
            changed: state !== null,
            digest,
            serverTime,
            state: state ? { ...state, serverTime } : null,
          };
        } finally {
          request.raw.off("close", onClose);
          release();
        }
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/enforcement/reports",
      summary: "An agent reports what it applied (or that it failed closed, or failed)",
      tag: "enforcement",
      auth: "user",
      status: 202,
      body: agentReportSchema,
      reply: reportReply,
      async handler({ principal, body }) {
        assert(
          isAgent(deps.config(), principal),
          "FORBIDDEN",
          "only principals listed under 'agents' (or administrators) can report as an agent",
        );
        await deps.enforcement.report(principal.name, body);
        return { accepted: true };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/enforcement/agents",
      summary: "Enforcement agents: in contact or not, what each last applied, drift and errors",
      tag: "enforcement",
      auth: "user",
      reply: agentsReply,
      async handler({ principal }) {
        assert(
          isAgent(deps.config(), principal) || principal.isAuditor,
          "FORBIDDEN",
          "only administrators, auditors and agents can list enforcement agents",
        );
        await deps.enforcement.desired();
        return {
          agents: deps.enforcement.agents().map((agent) => ({
            ...agent,
            lastSeenAt: new Date(agent.lastSeenAt).toISOString(),
            appliedAt: agent.appliedAt === null ? null : new Date(agent.appliedAt).toISOString(),
          })),
        };
      },
    }),
  ];
}

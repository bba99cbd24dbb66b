import { grantIdParams } from "../api/grants.schema.js";
import { sessionIdParams, sessionsReply, transcriptQuery, transcriptReply } from "../api/sessions.schema.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { SessionViews } from "./session-views.service.js";

export function createSessionRoutes(deps: { views: SessionViews }): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/grants/:id/sessions",
      summary: "The gateway sessions of a grant (PostgreSQL, SSH), oldest first",
      tag: "grants",
      auth: "user",
      params: grantIdParams,
      reply: sessionsReply,
      async handler({ principal, params }) {
        return { sessions: await deps.views.list(principal, params.id) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/sessions/:id/transcript",
      summary: "One gateway session and a page of its transcript records, in order",
      tag: "grants",
      auth: "user",
      params: sessionIdParams,
      query: transcriptQuery,
      reply: transcriptReply,
      async handler({ principal, params, query }) {
        return deps.views.transcript(principal, params.id, query);
      },
    }),
  ];
}

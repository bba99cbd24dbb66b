import {
  credentialReply,
  grantIdParams,
  grantsReply,
  grantViewSchema,
  listGrantsQuery,
  reviewBody,
  reviewsQuery,
  reviewsReply,
  revokeBody,
} from "../api/grants.schema.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { Clock } from "../shared/clock.js";
import type { GrantRecord, GrantService } from "./grant.service.js";
import { type GrantView, toGrantView } from "./grant.views.js";

export function createGrantRoutes(deps: { clock: Clock; grants: GrantService }): AnyRoute[] {
  /** Views of several grants with one query for all their effects. */
  const views = async (grants: readonly GrantRecord[]) => {
    const effects = await deps.grants.effectsOf(grants.map((g) => g.id));
    const now = deps.clock.now();
    return grants.map((grant) => toGrantView(grant, effects.get(grant.id) ?? [], now));
  };
  const view = async (grant: GrantRecord) => (await views([grant]))[0] as GrantView;
  return [
    defineRoute({
      method: "GET",
      url: "/v1/grants",
      summary: "Grants the caller may see, newest first",
      tag: "grants",
      auth: "user",
      query: listGrantsQuery,
      reply: grantsReply,
      async handler({ principal, query }) {
        const rows = await deps.grants.list(principal, {
          state: query.active === "true" ? "active" : query.state,
          mine: query.mine === "true",
          limit: query.limit,
        });
        return { grants: await views(rows) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/grants/:id",
      summary: "One grant: its window, revocation status and review",
      tag: "grants",
      auth: "user",
      params: grantIdParams,
      reply: grantViewSchema,
      async handler({ principal, params }) {
        return view(await deps.grants.load(principal, params.id));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/grants/:id/revoke",
      summary: "End an active grant now; access is taken away and the revocation verified",
      tag: "grants",
      auth: "user",
      params: grantIdParams,
      body: revokeBody,
      reply: grantViewSchema,
      async handler({ principal, params, body }) {
        return view(await deps.grants.revoke(principal, params.id, body.reason));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/grants/:id/credential",
      summary: "The grant's credentials, shown once to its owner (secrets are wiped when delivered)",
      tag: "grants",
      auth: "user",
      params: grantIdParams,
      reply: credentialReply,
      async handler({ principal, params, reply }) {
        reply.header("cache-control", "no-store");
        const { grant, credentials } = await deps.grants.deliverCredential(principal, params.id);
        return { grant: await view(grant), credentials };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/grants/:id/review",
      summary:
        "Review a break-glass use: accept or flag it, with notes (never by the requester or its approvers)",
      tag: "reviews",
      auth: "user",
      params: grantIdParams,
      body: reviewBody,
      reply: grantViewSchema,
      async handler({ principal, params, body }) {
        return view(
          await deps.grants.review(
            principal,
            params.id,
            body.verdict === "accept" ? "accepted" : "flagged",
            body.notes,
          ),
        );
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/reviews",
      summary: "Break-glass uses awaiting review (due, or only overdue)",
      tag: "reviews",
      auth: "user",
      query: reviewsQuery,
      reply: reviewsReply,
      async handler({ principal, query }) {
        const rows = await deps.grants.list(principal, {
          reviewDue: query.due !== "false",
          overdue: query.overdue === "true",
        });
        return { reviews: await views(rows) };
      },
    }),
  ];
}

import { activateBody, grantViewSchema } from "../api/grants.schema.js";
import {
  approveBody,
  createRequestBody,
  denyBody,
  listRequestsQuery,
  requestIdParams,
  requestsReply,
  requestViewSchema,
} from "../api/requests.schema.js";
import type { FirebreakConfig } from "../config/schema.js";
import type { Db } from "../db/types.js";
import type { FactorService } from "../factors/factor.service.js";
import { grantIdsByRequest } from "../grants/grant.repo.js";
import type { GrantService } from "../grants/grant.service.js";
import { toGrantView } from "../grants/grant.views.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { Clock } from "../shared/clock.js";
import type { RequestRecord } from "./request.repo.js";
import { type RequestService, suggestedApprovers } from "./request.service.js";
import { type RequestView, toRequestView } from "./request.views.js";

/** How far back a presented factor is looked up; the policy's own freshness is then applied. */
const RECENT_FACTOR_MS = 24 * 3_600_000;

export function createRequestRoutes(deps: {
  db: Db;
  clock: Clock;
  requests: RequestService;
  grants: Pick<GrantService, "activate" | "effects">;
  factors: Pick<FactorService, "presentTotp" | "recent">;
  config: () => FirebreakConfig;
}): AnyRoute[] {
  /** Views of several requests with a fixed number of queries, however many there are. */
  async function views(records: readonly RequestRecord[]) {
    const approvals = await deps.requests.approvalsViews(records);
    const grants = await grantIdsByRequest(
      deps.db,
      records.map((r) => r.id),
    );
    return records.map((record, index) => {
      const { approvals: list, progress } = approvals[index] as (typeof approvals)[number];
      const remaining = progress.steps.filter((s) => s.remaining > 0).map((s) => ({ from: [...s.from] }));
      const suggested = suggestedApprovers(deps.config(), {
        context: { requires: remaining, requester: record.requester },
      });
      return toRequestView(record, list, progress, grants.get(record.id) ?? null, suggested);
    });
  }
  const view = async (record: RequestRecord) => (await views([record]))[0] as RequestView;
  return [
    defineRoute({
      method: "POST",
      url: "/v1/requests",
      summary:
        "Ask for elevated access; policy decides at once (pending, approved, or refused with every reason)",
      tag: "requests",
      auth: "user",
      body: createRequestBody,
      reply: requestViewSchema,
      status: 201,
      async handler({ principal, body, request }) {
        const created = await deps.requests.create(
          principal,
          {
            zone: body.zone,
            resource: body.resource,
            role: body.role,
            durationMs: body.duration,
            reason: body.reason,
            ticket: body.ticket ?? null,
          },
          request.ip ?? null,
        );
        return view(created);
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/requests",
      summary:
        "Requests the caller may see: their own, those they may approve (all, for administrators and auditors)",
      tag: "requests",
      auth: "user",
      query: listRequestsQuery,
      reply: requestsReply,
      async handler({ principal, query }) {
        const rows = await deps.requests.list(principal, {
          state: query.state,
          mine: query.mine === "true",
          limit: query.limit,
        });
        return { requests: await views(rows) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/requests/:id",
      summary: "One request with its approvals and what happens next",
      tag: "requests",
      auth: "user",
      params: requestIdParams,
      reply: requestViewSchema,
      async handler({ principal, params }) {
        return view(await deps.requests.load(principal, params.id));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/requests/:id/approve",
      summary: "Approve a pending request (never your own; only as an approver its policy names)",
      tag: "requests",
      auth: "user",
      params: requestIdParams,
      body: approveBody,
      reply: requestViewSchema,
      async handler({ principal, params, body }) {
        // A code given here is recorded first; the service then picks a fresh use among the recent ones.
        if (body?.totp) await deps.factors.presentTotp(principal, body.totp, "approval");
        const factors = await deps.factors.recent(principal.name, RECENT_FACTOR_MS);
        const { request } = await deps.requests.approve(principal, params.id, body?.comment ?? null, factors);
        return view(request);
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/requests/:id/deny",
      summary: "Deny a pending request; denial is final",
      tag: "requests",
      auth: "user",
      params: requestIdParams,
      body: denyBody,
      reply: requestViewSchema,
      async handler({ principal, params, body }) {
        return view(await deps.requests.deny(principal, params.id, body.reason));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/requests/:id/cancel",
      summary: "Cancel your pending or approved request",
      tag: "requests",
      auth: "user",
      params: requestIdParams,
      reply: requestViewSchema,
      async handler({ principal, params }) {
        return view(await deps.requests.cancel(principal, params.id));
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/requests/:id/activate",
      summary: "Activate an approved request: the grant starts, credentials are issued",
      tag: "requests",
      auth: "user",
      params: requestIdParams,
      body: activateBody,
      reply: grantViewSchema,
      status: 201,
      async handler({ principal, params, body }) {
        // A code given here is recorded first; the service then picks a fresh use among the recent ones.
        if (body?.totp) await deps.factors.presentTotp(principal, body.totp, "activation");
        const factors = await deps.factors.recent(principal.name, RECENT_FACTOR_MS);
        const grant = await deps.grants.activate(principal, params.id, factors, body?.publicKey ?? null);
        return toGrantView(grant, await deps.grants.effects(grant.id), deps.clock.now());
      },
    }),
  ];
}

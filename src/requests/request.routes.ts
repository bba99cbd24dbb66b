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
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { RequestActions } from "./request-actions.service.js";

export function createRequestRoutes(deps: { requests: RequestActions }): AnyRoute[] {
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
        return deps.requests.create(
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
        const requests = await deps.requests.list(principal, {
          state: query.state,
          mine: query.mine === "true",
          limit: query.limit,
        });
        return { requests };
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
        return deps.requests.load(principal, params.id);
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
        return deps.requests.approve(principal, params.id, body?.comment ?? null, body?.totp);
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
        return deps.requests.deny(principal, params.id, body.reason);
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
        return deps.requests.cancel(principal, params.id);
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
        return deps.requests.activate(principal, params.id, body?.totp, body?.publicKey ?? null);
      },
    }),
  ];
}

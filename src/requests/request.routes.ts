import { z } from "zod";
import { parseDuration } from "../config/duration.js";
import { DURATION_HINT, DURATION_PATTERN } from "../config/patterns.js";
import type { FirebreakConfig } from "../config/schema.js";
import { nameSchema } from "../config/schema.js";
import { type Db, REQUEST_STATES } from "../db/types.js";
import type { FactorService } from "../factors/factor.service.js";
import { grantIdsByRequest } from "../grants/grant.repo.js";
import type { GrantService } from "../grants/grant.service.js";
import { grantViewSchema, toGrantView } from "../grants/grant.views.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { Clock } from "../shared/clock.js";
import { ID_PATTERN } from "../shared/ids.js";
import type { RequestRecord } from "./request.repo.js";
import { type RequestService, suggestedApprovers } from "./request.service.js";
import { type RequestView, requestViewSchema, toRequestView } from "./request.views.js";

/** How far back a presented factor is looked up; the policy's own freshness is then applied. */
const RECENT_FACTOR_MS = 24 * 3_600_000;

const idParams = z.object({ id: z.string().regex(ID_PATTERN, "a request id such as 'req_…'") });
const STATES = REQUEST_STATES;

export const durationText = z
  .string()
  .regex(DURATION_PATTERN, DURATION_HINT)
  .transform((text) => parseDuration(text));

export const createRequestBody = z
  .strictObject({
    zone: nameSchema.optional(),
    resource: nameSchema.optional(),
    role: nameSchema,
    duration: durationText.optional(),
    reason: z.string().max(2000),
    ticket: z.string().max(200).nullish(),
  })
  .refine(
    (b) => (b.zone === undefined) !== (b.resource === undefined),
    "exactly one of 'zone' or 'resource'",
  );

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
      query: z.object({
        state: z.enum(STATES).optional(),
        mine: z.enum(["true", "false"]).optional(),
        limit: z.coerce.number().int().min(1).max(500).optional(),
      }),
      reply: z.object({ requests: z.array(requestViewSchema) }),
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
      params: idParams,
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
      params: idParams,
      body: z
        .strictObject({
          comment: z.string().max(2000).nullish(),
          totp: z
            .string()
            .regex(/^[0-9]{6}$/)
            .optional(),
        })
        .optional(),
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
      params: idParams,
      body: z.strictObject({ reason: z.string().min(1).max(2000) }),
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
      params: idParams,
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
      params: idParams,
      body: z
        .strictObject({
          totp: z
            .string()
            .regex(/^[0-9]{6,8}$/)
            .optional(),
          /** An OpenSSH public key (authorized_keys format) for resources that issue SSH certificates. */
          publicKey: z
            .string()
            .max(16_384)
            .regex(
              /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com) [A-Za-z0-9+/]+={0,3}( [^\r\n]{0,200})?$/,
              "an OpenSSH public key such as 'ssh-ed25519 AAAA… you@host'",
            )
            .optional(),
        })
        .optional(),
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

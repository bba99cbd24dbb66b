import { z } from "zod";
import { nameSchema } from "../config/primitives.js";
import { REQUEST_STATES } from "../shared/request-states.js";
import { durationText, idParams, queryFlag } from "./common.schema.js";

/** Requests: `/v1/requests` and its transitions (approve, deny, cancel; activate is in grants). */

export const requestViewSchema = z.object({
  id: z.string(),
  state: z.string(),
  requester: z.string(),
  zone: z.string(),
  resource: z.string().nullable(),
  role: z.string(),
  policy: z.string().nullable(),
  duration: z.string(),
  durationSeconds: z.number(),
  reason: z.string(),
  ticket: z.string().nullable(),
  sourceZone: z.string().nullable(),
  clientAddress: z.string().nullable(),
  autoApproved: z.boolean(),
  createdAt: z.string(),
  lapsesAt: z.string().nullable(),
  closedReason: z.string().nullable(),
  requires: z.object({
    approvals: z.array(
      z.object({
        from: z.array(z.string()),
        count: z.number(),
        have: z.array(z.string()),
        remaining: z.number(),
      }),
    ),
    factors: z.array(z.string()),
  }),
  approvals: z.array(
    z.object({ approver: z.string(), decision: z.string(), comment: z.string().nullable(), at: z.string() }),
  ),
  grantId: z.string().nullable(),
  /** People who could give the approvals still needed (directory users; never the requester). */
  suggestedApprovers: z.array(z.string()),
  /** What happens next, in words: `waiting for 1 approval from group:payments-leads`. */
  next: z.string(),
});
export type RequestView = z.infer<typeof requestViewSchema>;

export const requestIdParams = idParams("a request id such as 'req_…'");

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
export type CreateRequestBody = z.input<typeof createRequestBody>;

export const listRequestsQuery = z.object({
  state: z.enum(REQUEST_STATES).optional(),
  mine: queryFlag.optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

export const requestsReply = z.object({ requests: z.array(requestViewSchema) });

export const approveBody = z
  .strictObject({
    comment: z.string().max(2000).nullish(),
    totp: z
      .string()
      .regex(/^[0-9]{6}$/)
      .optional(),
  })
  .optional();

export const denyBody = z.strictObject({ reason: z.string().min(1).max(2000) });

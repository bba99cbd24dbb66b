import { z } from "zod";
import { idParams, queryFlag } from "./common.schema.js";

/** Grants: `/v1/grants`, activation's reply, credentials, revocation and reviews. */

export const grantViewSchema = z.object({
  id: z.string(),
  requestId: z.string(),
  user: z.string(),
  zone: z.string(),
  resource: z.string().nullable(),
  role: z.string(),
  policy: z.string().nullable(),
  /** The zone the requester came from: where the grant's network path starts. */
  sourceZone: z.string().nullable(),
  state: z.string(),
  startsAt: z.string(),
  endsAt: z.string(),
  secondsLeft: z.number(),
  closedAt: z.string().nullable(),
  closeReason: z.string().nullable(),
  closedBy: z.string().nullable(),
  factor: z.object({ kind: z.string(), at: z.string() }).nullable(),
  revocation: z.object({ status: z.string(), attempts: z.number(), nextAttemptAt: z.string().nullable() }),
  review: z.object({
    state: z.string(),
    dueAt: z.string().nullable(),
    overdue: z.boolean(),
    reviewer: z.string().nullable(),
    notes: z.string().nullable(),
    reviewedAt: z.string().nullable(),
  }),
  effects: z.array(
    z.object({
      resource: z.string(),
      connector: z.string(),
      state: z.string(),
      /** Where the access leads (`host:port`): a network path's destination or a login's server. */
      address: z.string().nullable(),
    }),
  ),
});
export type GrantView = z.infer<typeof grantViewSchema>;

export const grantIdParams = idParams("a grant id such as 'grt_…'");

export const activateBody = z
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
  .optional();

export const listGrantsQuery = z.object({
  active: queryFlag.optional(),
  state: z.enum(["active", "expired", "revoked"]).optional(),
  mine: queryFlag.optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

export const grantsReply = z.object({ grants: z.array(grantViewSchema) });

export const revokeBody = z.strictObject({ reason: z.string().min(1).max(4000) });

export const credentialViewSchema = z.object({
  resource: z.string(),
  connector: z.string(),
  state: z.string(),
  detail: z.record(z.string(), z.unknown()),
  secret: z.string().nullable(),
});
export type CredentialView = z.infer<typeof credentialViewSchema>;

export const credentialReply = z.object({
  grant: grantViewSchema,
  credentials: z.array(credentialViewSchema),
});

export const reviewBody = z.strictObject({
  verdict: z.enum(["accept", "flag"]),
  notes: z.string().min(1).max(4000),
});

export const reviewsQuery = z.object({
  due: queryFlag.optional(),
  overdue: queryFlag.optional(),
});

export const reviewsReply = z.object({ reviews: z.array(grantViewSchema) });

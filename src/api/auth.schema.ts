import { z } from "zod";

/** Signing in: `/v1/auth/*` (OIDC in a browser or by device code, sessions, logout). */

export const authConfigReply = z.object({
  oidc: z.object({
    enabled: z.boolean(),
    issuer: z.string().nullable(),
    loginUrl: z.string().nullable(),
    deviceStartUrl: z.string().nullable(),
  }),
  session: z.object({
    lifetimeSeconds: z.number(),
    csrfCookie: z.string(),
    csrfHeader: z.string(),
  }),
});

export const authMethodsReply = z.object({
  oidc: z.object({ url: z.string(), label: z.string() }).nullable(),
});

export const deviceStartReply = z.object({
  handle: z.string(),
  userCode: z.string(),
  verificationUri: z.string(),
  verificationUriComplete: z.string().nullable(),
  interval: z.number(),
  expiresAt: z.string(),
});

export const devicePollBody = z.strictObject({ handle: z.string().min(1).max(8192) });

export const devicePollReply = z.discriminatedUnion("status", [
  z.object({ status: z.literal("pending"), interval: z.number() }),
  z.object({
    status: z.literal("complete"),
    user: z.string(),
    groups: z.array(z.string()),
    token: z.string(),
    expiresAt: z.string(),
  }),
]);

export const sessionReply = z.object({
  user: z.string(),
  groups: z.array(z.string()),
  isAdmin: z.boolean(),
  isAuditor: z.boolean(),
  via: z.enum(["bearer", "cookie"]),
  expiresAt: z.string().nullable(),
  csrfToken: z.string().nullable(),
});

export const logoutReply = z.object({ user: z.string(), revoked: z.boolean() });

/** `next` is the console's name for `returnTo`. */
export const oidcLoginQuery = z.object({
  returnTo: z.string().max(2000).optional(),
  next: z.string().max(2000).optional(),
});

export const oidcCallbackQuery = z.object({
  code: z.string().max(4096).optional(),
  state: z.string().max(4096).optional(),
  error: z.string().max(200).optional(),
});

/** A redirect: no JSON body. */
export const redirectReply = z.object({});

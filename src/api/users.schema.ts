import { z } from "zod";

/** Users and their tokens: `/v1/whoami`, `/v1/users`, `/v1/users/:name/tokens[/revoke]`. */

export const principalViewSchema = z.object({
  name: z.string(),
  groups: z.array(z.string()),
  isAdmin: z.boolean(),
  isAuditor: z.boolean(),
});
export type PrincipalView = z.infer<typeof principalViewSchema>;

export const usersReply = z.object({ users: z.array(principalViewSchema) });

export const createUserBody = z.strictObject({
  name: z.string().min(1).max(128),
  groups: z.array(z.string().min(1).max(63)).max(100).default([]),
});

export const createdUserReply = z.object({
  name: z.string(),
  groups: z.array(z.string()),
  token: z.string(),
});

export const userNameParams = z.object({ name: z.string().min(1).max(128) });

export const issuedTokenReply = z.object({ name: z.string(), token: z.string() });

export const revokedTokensReply = z.object({ user: z.string(), revoked: z.number() });

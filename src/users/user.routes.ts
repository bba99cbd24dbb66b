import { z } from "zod";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { UserService } from "./user.service.js";

const principalView = z.object({
  name: z.string(),
  groups: z.array(z.string()),
  isAdmin: z.boolean(),
  isAuditor: z.boolean(),
});

export function createUserRoutes(deps: { users: UserService }): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/whoami",
      summary: "The caller, as Firebreak sees them",
      tag: "users",
      auth: "user",
      reply: principalView,
      handler: async ({ principal }) => principal,
    }),
    defineRoute({
      method: "GET",
      url: "/v1/users",
      summary: "Every user (directory and local) with their groups",
      tag: "users",
      auth: "user",
      reply: z.object({ users: z.array(principalView) }),
      handler: async ({ principal }) => ({ users: await deps.users.list(principal) }),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/users",
      summary: "Create a local user; the reply carries its token, shown this once",
      tag: "users",
      auth: "user",
      body: z.strictObject({
        name: z.string().min(1).max(128),
        groups: z.array(z.string().min(1).max(63)).max(100).default([]),
      }),
      reply: z.object({ name: z.string(), groups: z.array(z.string()), token: z.string() }),
      status: 201,
      handler: async ({ principal, body }) => deps.users.addUser(principal, body.name, body.groups),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/users/:name/tokens",
      summary: "Issue a new token for a user; shown this once",
      tag: "users",
      auth: "user",
      params: z.object({ name: z.string().min(1).max(128) }),
      reply: z.object({ name: z.string(), token: z.string() }),
      status: 201,
      handler: async ({ principal, params }) => deps.users.issueToken(principal, params.name),
    }),
  ];
}

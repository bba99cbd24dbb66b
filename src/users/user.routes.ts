import {
  createdUserReply,
  createUserBody,
  issuedTokenReply,
  principalViewSchema,
  userNameParams,
  usersReply,
} from "../api/users.schema.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { UserService } from "./user.service.js";

export function createUserRoutes(deps: { users: UserService }): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/whoami",
      summary: "The caller, as Firebreak sees them",
      tag: "users",
      auth: "user",
      reply: principalViewSchema,
      handler: async ({ principal }) => principal,
    }),
    defineRoute({
      method: "GET",
      url: "/v1/users",
      summary: "Every user (directory and local) with their groups",
      tag: "users",
      auth: "user",
      reply: usersReply,
      handler: async ({ principal }) => ({ users: await deps.users.list(principal) }),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/users",
      summary: "Create a local user; the reply carries its token, shown this once",
      tag: "users",
      auth: "user",
      body: createUserBody,
      reply: createdUserReply,
      status: 201,
      handler: async ({ principal, body }) => deps.users.addUser(principal, body.name, body.groups),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/users/:name/tokens",
      summary: "Issue a new token for a user; shown this once",
      tag: "users",
      auth: "user",
      params: userNameParams,
      reply: issuedTokenReply,
      status: 201,
      handler: async ({ principal, params }) => deps.users.issueToken(principal, params.name),
    }),
  ];
}

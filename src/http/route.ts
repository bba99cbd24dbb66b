import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { FirebreakError } from "../errors.js";
import type { Principal } from "../shared/principal.js";

/**
 * A route is declared once, with zod schemas for what comes in and what goes out; the same
 * declaration registers it with Fastify and describes it in `/openapi.json`. Replies are parsed
 * through their schema, so a field nobody declared never leaks out.
 */
export interface RouteSpec<Body = unknown, Query = unknown, Params = unknown, Reply = unknown> {
  method: "GET" | "POST" | "DELETE";
  url: string;
  summary: string;
  tag: string;
  /** `user`: a bearer token is required. `none`: public. `raw`: public, the handler authenticates. */
  auth: "user" | "none" | "raw";
  body?: z.ZodType<Body>;
  query?: z.ZodType<Query>;
  params?: z.ZodType<Params>;
  reply: z.ZodType<Reply>;
  status?: number;
  handler(context: {
    principal: Principal;
    body: Body;
    query: Query;
    params: Params;
    request: FastifyRequest;
    reply: FastifyReply;
  }): Promise<Reply>;
}

// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of routes
export type AnyRoute = RouteSpec<any, any, any, any>;

export function defineRoute<B, Q, P, R>(spec: RouteSpec<B, Q, P, R>): RouteSpec<B, Q, P, R> {
  return spec;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching NUL is the point
const NUL_OR_LONE_SURROGATE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The path of the first string (value or key) that PostgreSQL text cannot hold or that would be
 * silently altered on the way in: NUL characters and lone UTF-16 surrogates. Refused at the edge
 * so both databases store exactly what was sent, or nothing.
 */
function unstorableText(value: unknown, path: string[] = [], depth = 0): string | null {
  if (typeof value === "string")
    return NUL_OR_LONE_SURROGATE.test(value) ? path.join(".") || "(value)" : null;
  if (depth > 32 || value === null || typeof value !== "object") return null;
  for (const [key, item] of Object.entries(value)) {
    if (NUL_OR_LONE_SURROGATE.test(key)) return [...path, "(key)"].join(".");
    const found = unstorableText(item, [...path, key], depth + 1);
    if (found !== null) return found;
  }
  return null;
}

function parseOrFail<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T;
  const unstorable = unstorableText(value);
  if (unstorable !== null) {
    throw new FirebreakError("VALIDATION_FAILED", `the ${where} is not valid`, {
      issues: [{ path: unstorable, message: "NUL characters and unpaired surrogates are not accepted" }],
    });
  }
  const result = schema.safeParse(value ?? (where === "body" ? undefined : {}));
  if (result.success) return result.data;
  throw new FirebreakError("VALIDATION_FAILED", `the ${where} is not valid`, {
    issues: result.error.issues.slice(0, 20).map((issue) => ({
      path: issue.path.map(String).join("."),
      message: issue.message,
    })),
  });
}

const ANONYMOUS: Principal = { name: "anonymous", groups: [], isAdmin: false, isAuditor: false };

export function registerRoutes(
  app: FastifyInstance,
  routes: readonly AnyRoute[],
  authenticate: (request: FastifyRequest) => Promise<Principal>,
): void {
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      handler: async (request, reply) => {
        const principal = route.auth === "user" ? await authenticate(request) : ANONYMOUS;
        const params = parseOrFail(route.params, request.params, "path");
        const query = parseOrFail(route.query, request.query, "query");
        const body = parseOrFail(route.body, request.body, "body");
        const result = await route.handler({ principal, body, query, params, request, reply });
        if (reply.sent) return reply;
        const shaped = route.reply.parse(result);
        if (reply.statusCode === 200) reply.status(route.status ?? 200);
        return shaped;
      },
    });
  }
}

const errorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    requestId: z.string(),
    details: z.unknown().optional(),
  }),
});

/** OpenAPI 3.1 built from the same route declarations that serve the API. */
export function buildOpenApi(routes: readonly AnyRoute[], version: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  const toSchema = (schema: z.ZodType) => z.toJSONSchema(schema, { io: "output", unrepresentable: "any" });
  for (const route of routes) {
    const path = route.url.replace(/:([A-Za-z]+)/g, "{$1}");
    const operation: Record<string, unknown> = {
      summary: route.summary,
      tags: [route.tag],
      security: route.auth === "user" ? [{ bearer: [] }] : [],
      responses: {
        [String(route.status ?? 200)]: {
          description: "success",
          content: { "application/json": { schema: toSchema(route.reply) } },
        },
        default: { description: "error", content: { "application/json": { schema: toSchema(errorSchema) } } },
      },
    };
    const parameters: unknown[] = [];
    for (const [where, schema] of [
      ["path", route.params],
      ["query", route.query],
    ] as const) {
      if (!schema) continue;
      const json = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as {
        properties?: Record<string, unknown>;
        required?: string[];
      };
      for (const [name, property] of Object.entries(json.properties ?? {})) {
        parameters.push({
          name,
          in: where,
          required: where === "path" || (json.required ?? []).includes(name),
          schema: property,
        });
      }
    }
    if (parameters.length > 0) operation.parameters = parameters;
    if (route.body) {
      operation.requestBody = {
        required: true,
        content: {
          "application/json": { schema: z.toJSONSchema(route.body, { io: "input", unrepresentable: "any" }) },
        },
      };
    }
    paths[path] = { ...(paths[path] ?? {}), [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Firebreak API",
      version,
      description: "Break-glass access for micro-segmented infrastructure.",
    },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
    paths,
  };
}

import { randomBytes } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { FirebreakError, isFirebreakError } from "../errors.js";
import type { Principal } from "../shared/principal.js";
import { type AnyRoute, buildOpenApi, registerRoutes } from "./route.js";

/** Bodies larger than this are refused with 413 before they are parsed. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export interface HttpLog {
  error(message: string, fields?: Record<string, unknown>): void;
}

/**
 * The HTTP server: JSON only, bounded bodies, one error shape
 * `{ error: { code, message, requestId } }`, and no driver or library message ever sent to a client.
 */
export function createHttpServer(deps: {
  routes: readonly AnyRoute[];
  authenticate: (request: FastifyRequest) => Promise<Principal>;
  version: string;
  log: HttpLog;
  trustProxy?: boolean | string[] | ((address: string, hop: number) => boolean);
}): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: () => `rq_${randomBytes(8).toString("hex")}`,
    trustProxy: deps.trustProxy ?? false,
    return503OnClosing: true,
    // Errors Fastify raises before a route runs (bad percent-encoding, over-long URLs) get the
    // same error shape as everything else.
    frameworkErrors: (error, request, reply) => {
      const code = (error as { code?: string }).code;
      const message = code === "FST_ERR_BAD_URL" ? "the URL is not valid" : "the request is not valid";
      // The reply's generic types are narrower here than in a route; the shape is the same.
      (reply as unknown as FastifyReply)
        .status(400)
        .header("cache-control", "no-store")
        .send({ error: { code: "BAD_REQUEST", message, requestId: request.id } });
    },
    routerOptions: { maxParamLength: 200 },
  });

  // Keep the raw bytes: webhook signatures are computed over exactly what was sent.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(["application/json"], { parseAs: "buffer" }, (request, body, done) => {
    (request as unknown as { rawBody: Buffer }).rawBody = body as Buffer;
    if ((body as Buffer).length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse((body as Buffer).toString("utf8")));
    } catch {
      done(new FirebreakError("BAD_REQUEST", "the body is not valid JSON"), undefined);
    }
  });

  app.setErrorHandler((error, request, reply) => {
    let failure: FirebreakError;
    const code = (error as { code?: string }).code;
    if (isFirebreakError(error)) failure = error;
    else if (code === "FST_ERR_CTP_BODY_TOO_LARGE")
      failure = new FirebreakError("PAYLOAD_TOO_LARGE", `the body is larger than ${BODY_LIMIT_BYTES} bytes`);
    else if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
      failure = new FirebreakError(
        "UNSUPPORTED_MEDIA_TYPE",
        "send JSON with 'content-type: application/json'",
      );
    else if (code === "FST_ERR_CTP_EMPTY_JSON_BODY" || code === "FST_ERR_CTP_INVALID_CONTENT_LENGTH")
      failure = new FirebreakError("BAD_REQUEST", "the body is not valid JSON");
    else {
      // Unknown failures are logged here with the request id and answered generically.
      deps.log.error("request failed", {
        requestId: request.id,
        url: request.routeOptions.url,
        error: error instanceof Error ? error.message : String(error),
      });
      failure = new FirebreakError("INTERNAL", "internal error; quote the request id to an administrator");
    }
    const body: { error: Record<string, unknown> } = {
      error: { code: failure.code, message: failure.message, requestId: request.id },
    };
    if (failure.details !== undefined && failure.code !== "INTERNAL") body.error.details = failure.details;
    reply.status(failure.status).header("cache-control", "no-store").send(body);
  });

  app.setNotFoundHandler((request, reply) => {
    reply
      .status(404)
      .send({ error: { code: "NOT_FOUND", message: "no such endpoint", requestId: request.id } });
  });

  app.addHook("onSend", async (_request, reply, payload) => {
    reply.header("x-content-type-options", "nosniff");
    return payload;
  });

  registerRoutes(app, deps.routes, deps.authenticate);
  const openApi = buildOpenApi(deps.routes, deps.version);
  app.get("/openapi.json", async () => openApi);
  return app;
}

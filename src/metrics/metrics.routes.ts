import { timingSafeEqual } from "node:crypto";
import { metricsReply } from "../api/system.schema.js";
import { FirebreakError } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { Metrics } from "./metrics.js";

/**
 * `GET /metrics` in the Prometheus text format. Open by default, as scrapers expect; with
 * `token()` returning a value, a matching `Authorization: Bearer` header is required.
 */
export function createMetricsRoutes(deps: {
  metrics: Pick<Metrics, "render">;
  token: () => string | null;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/metrics",
      summary:
        "Prometheus metrics: requests by state, active grants, approval and revocation times, sink lag",
      tag: "system",
      auth: "raw",
      reply: metricsReply,
      async handler({ request, reply }) {
        const expected = deps.token();
        if (expected !== null) {
          const header = request.headers.authorization ?? "";
          const given = Buffer.from(header.startsWith("Bearer ") ? header.slice(7).trim() : "");
          const wanted = Buffer.from(expected);
          if (given.length !== wanted.length || !timingSafeEqual(given, wanted))
            throw new FirebreakError("UNAUTHENTICATED", "metrics need the configured bearer token");
        }
        const { contentType, body } = await deps.metrics.render();
        reply.header("content-type", contentType).header("cache-control", "no-store");
        return body;
      },
    }),
  ];
}

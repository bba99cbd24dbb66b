import { incidentBody, incidentReply, signalReply } from "../api/system.schema.js";
import { assert, isFirebreakError } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { SignalService } from "./signal.service.js";

/**
 * Webhook receivers. They authenticate the sender themselves (token, or HMAC over the raw body),
 * and refuse signed deliveries outside their time window or seen before.
 */
export function createSignalRoutes(deps: { signals: SignalService }): AnyRoute[] {
  const declare = defineRoute({
    method: "POST",
    url: "/v1/incidents",
    summary: "Declare or resolve an incident by hand (administrators); audited like any signal",
    tag: "signals",
    auth: "user",
    body: incidentBody,
    reply: incidentReply,
    status: 201,
    async handler({ principal, body }) {
      assert(principal.isAdmin, "FORBIDDEN", "only an administrator can declare incidents by hand");
      await deps.signals.declare(principal.name, body);
      return { id: body.id, zone: body.zone, status: body.status };
    },
  });
  return [declare, ...webhooks(deps)];
}

function webhooks(deps: { signals: SignalService }): AnyRoute[] {
  return (["alertmanager", "pagerduty", "generic"] as const).map((kind) =>
    defineRoute({
      method: "POST",
      url: `/v1/signals/${kind}`,
      summary: `Receive ${kind} incident signals`,
      tag: "signals",
      auth: "raw",
      reply: signalReply,
      status: 202,
      async handler({ request, reply }) {
        const raw = (request as unknown as { rawBody?: Buffer }).rawBody ?? Buffer.alloc(0);
        try {
          return await deps.signals.ingest(kind, request.headers, raw, request.body, request.ip ?? null);
        } catch (error) {
          const retry = isFirebreakError(error) && error.code === "RATE_LIMITED" ? error.details : null;
          if (retry && typeof retry === "object" && "retryAfterSeconds" in retry)
            reply.header("retry-after", String(retry.retryAfterSeconds));
          throw error;
        }
      },
    }),
  );
}

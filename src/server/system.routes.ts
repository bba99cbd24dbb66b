import { healthReply, readyReply, reloadReply } from "../api/system.schema.js";
import { assert } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { RuntimeHolder } from "../runtime/runtime.service.js";

export function createSystemRoutes(deps: {
  /** Rejects when the database does not answer (the reply is then the generic 500). */
  databaseReachable: () => Promise<void>;
  runtime: RuntimeHolder;
  ready: () => boolean;
  /** Why this replica cannot confirm it is current (src/replicas/), or null when it is. */
  notCurrent?: () => string | null;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/healthz",
      summary: "The process is up",
      tag: "system",
      auth: "none",
      reply: healthReply,
      handler: async () => ({ status: "ok" as const }),
    }),
    defineRoute({
      method: "GET",
      url: "/readyz",
      summary: "Ready to serve: database reachable, due work finished after start",
      tag: "system",
      auth: "none",
      reply: readyReply,
      async handler({ reply }) {
        await deps.databaseReachable();
        if (!deps.ready()) {
          reply.status(503);
          return { status: "starting" as const, database: "ok" as const };
        }
        const reason = deps.notCurrent?.() ?? null;
        if (reason !== null) {
          reply.status(503);
          return { status: "not-current" as const, database: "ok" as const, reason };
        }
        return { status: "ready" as const, database: "ok" as const };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/config/reload",
      summary: "Re-read the configuration file; a bad file is refused and the running one kept",
      tag: "system",
      auth: "user",
      reply: reloadReply,
      async handler({ principal }) {
        assert(principal.isAdmin, "FORBIDDEN", "only an administrator can reload the configuration");
        return deps.runtime.reload(principal.name);
      },
    }),
  ];
}

import { z } from "zod";
import { assert } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { EventBus } from "../shared/events.js";
import type { Principal } from "../users/user.service.js";
import type { AuditService } from "./audit.service.js";
import type { AuditEvent } from "./chain.js";

const eventSchema = z.object({
  seq: z.number(),
  id: z.string(),
  time: z.string(),
  type: z.string(),
  actor: z.string(),
  zone: z.string().nullable(),
  resource: z.string().nullable(),
  subject: z.string().nullable(),
  context: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
});

function requireAuditor(principal: Principal) {
  assert(
    principal.isAdmin || principal.isAuditor,
    "FORBIDDEN",
    "only administrators and auditors can read the audit log",
  );
}

const HEARTBEAT_MS = 15_000;

export function createAuditRoutes(deps: {
  audit: AuditService;
  bus: EventBus;
  /** Which events a caller who is neither administrator nor auditor may follow. */
  visibleTo: (principal: Principal) => (event: AuditEvent) => boolean;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/audit",
      summary: "Audit events in sequence order, with filters and a cursor",
      tag: "audit",
      auth: "user",
      query: z.object({
        afterSeq: z.coerce.number().int().min(0).optional(),
        beforeSeq: z.coerce.number().int().min(1).optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
        order: z.enum(["asc", "desc"]).optional(),
        type: z.string().max(64).optional(),
        zone: z.string().max(63).optional(),
        subject: z.string().max(64).optional(),
        actor: z.string().max(128).optional(),
      }),
      reply: z.object({ events: z.array(eventSchema) }),
      async handler({ principal, query }) {
        requireAuditor(principal);
        return { events: await deps.audit.list(query) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/audit/verify",
      summary: "Recompute the hash chain: OK with the count, or the first broken sequence number and why",
      tag: "audit",
      auth: "user",
      reply: z.object({
        ok: z.boolean(),
        count: z.number(),
        firstBadSeq: z.number().nullable(),
        reason: z.string().nullable(),
        headHash: z.string().nullable(),
      }),
      async handler({ principal }) {
        requireAuditor(principal);
        const result = (await deps.audit.verify()) as unknown as Record<string, unknown>;
        return {
          ok: result.ok === true,
          count: Number(result.count ?? 0),
          firstBadSeq: (result.firstBadSeq as number | undefined) ?? null,
          reason: (result.reason as string | undefined) ?? null,
          headHash: (result.headHash as string | undefined) ?? null,
        };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/audit/export",
      summary: "Every audit event as JSON lines (application/x-ndjson)",
      tag: "audit",
      auth: "user",
      query: z.object({ afterSeq: z.coerce.number().int().min(0).optional() }),
      reply: z.unknown(),
      async handler({ principal, query, reply }) {
        requireAuditor(principal);
        reply.hijack();
        reply.raw.writeHead(200, { "content-type": "application/x-ndjson; charset=utf-8" });
        await deps.audit.exportJsonLines(
          (line) =>
            new Promise<void>((resolve) => {
              if (reply.raw.write(line)) resolve();
              else reply.raw.once("drain", resolve);
            }),
          { afterSeq: query.afterSeq },
        );
        reply.raw.end();
        return undefined;
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/events",
      summary:
        "Server-sent events of committed audit events, live (resume with Last-Event-ID or ?afterSeq); administrators and auditors see all, others what concerns them",
      tag: "audit",
      auth: "user",
      query: z.object({ afterSeq: z.coerce.number().int().min(0).optional() }),
      reply: z.unknown(),
      async handler({ principal, query, request, reply }) {
        // Administrators and auditors follow everything; anyone else only the events about them
        // (their own requests and grants) and about requests they may approve.
        const visible = principal.isAdmin || principal.isAuditor ? () => true : deps.visibleTo(principal);
        const lastEventId = Number(request.headers["last-event-id"]);
        let cursor =
          Number.isInteger(lastEventId) && lastEventId >= 0
            ? lastEventId
            : (query.afterSeq ?? (await deps.audit.head()).seq);
        reply.hijack();
        const out = reply.raw;
        out.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-store",
          connection: "keep-alive",
        });
        // Sent at once so clients see the stream open before the first event or keep-alive.
        out.write(": open\n\n");
        const send = (event: AuditEvent) => {
          if (event.seq <= cursor) return;
          cursor = event.seq;
          if (!visible(event)) return;
          out.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
        };
        // Subscribe first, then replay from the database, so nothing committed in between is missed.
        const buffered: AuditEvent[] = [];
        let replaying = true;
        const unsubscribe = deps.bus.subscribe((event) => (replaying ? buffered.push(event) : send(event)));
        for (;;) {
          const page = await deps.audit.list({ afterSeq: cursor, limit: 1000 });
          for (const event of page) send(event);
          if (page.length < 1000) break;
        }
        replaying = false;
        for (const event of buffered) send(event);
        const heartbeat = setInterval(() => out.write(": keep-alive\n\n"), HEARTBEAT_MS);
        request.raw.on("close", () => {
          clearInterval(heartbeat);
          unsubscribe();
        });
        return undefined;
      },
    }),
  ];
}

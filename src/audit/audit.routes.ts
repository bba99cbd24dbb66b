import type { IncomingHttpHeaders } from "node:http";
import {
  afterSeqQuery,
  auditEventsReply,
  auditQuery,
  streamReply,
  type VerifyReply,
  verifyReply,
} from "../api/audit.schema.js";
import { assert } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { Principal } from "../users/user.service.js";
import type { AnchorKeeper } from "./anchor.js";
import type { AuditService } from "./audit.service.js";
import type { EventStreams } from "./event-stream.js";

function requireAuditor(principal: Principal) {
  assert(
    principal.isAdmin || principal.isAuditor,
    "FORBIDDEN",
    "only administrators and auditors can read the audit log",
  );
}

export function createAuditRoutes(deps: {
  audit: AuditService;
  /** The open `/v1/events` streams, each filtered by the REST API's visibility rules per event. */
  streams: Pick<EventStreams, "serve">;
  /**
   * Binds to the credential a request presented (bearer token or session cookie) and checks it
   * again on each call: who it belongs to now, or null once it is revoked, logged out or expired.
   */
  recheckCredential: (request: {
    method: string;
    headers: IncomingHttpHeaders;
  }) => () => Promise<Principal | null>;
  /** The anchor kept outside the database (`audit.anchor`), which verify checks the chain against. */
  anchor?: Pick<AnchorKeeper, "verify">;
  /** Gateway transcripts, checked after the chain (each against its own chain and its audit events). */
  transcripts?: { verify(): Promise<NonNullable<VerifyReply["transcripts"]>> };
}): AnyRoute[] {
  /** A chain that verified is then judged with its transcripts: a broken transcript fails the verify. */
  async function withTranscripts(verified: VerifyReply): Promise<VerifyReply> {
    if (!verified.ok || !deps.transcripts) return verified;
    const transcripts = await deps.transcripts.verify();
    const [first] = transcripts.failures;
    if (transcripts.ok || !first) return { ...verified, transcripts };
    return {
      ...verified,
      ok: false,
      problem: `TRANSCRIPT_${first.problem}`,
      reason: `gateway session ${first.session} (grant ${first.grant ?? "unknown"}), record ${first.firstBadSeq}: ${first.reason}`,
      transcripts,
    };
  }

  return [
    defineRoute({
      method: "GET",
      url: "/v1/audit",
      summary: "Audit events in sequence order, with filters and a cursor",
      tag: "audit",
      auth: "user",
      query: auditQuery,
      reply: auditEventsReply,
      async handler({ principal, query }) {
        requireAuditor(principal);
        return { events: await deps.audit.list(query) };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/audit/verify",
      summary:
        "Recompute the hash chain and check it against the anchor (audit.anchor): OK with the count, or the first broken sequence number and why",
      tag: "audit",
      auth: "user",
      reply: verifyReply,
      async handler({ principal }) {
        requireAuditor(principal);
        const result = (await deps.audit.verify()) as unknown as Record<string, unknown>;
        const verified = {
          ok: result.ok === true,
          count: Number(result.count ?? 0),
          firstBadSeq: (result.firstBadSeq as number | undefined) ?? null,
          reason: (result.reason as string | undefined) ?? null,
          headHash: (result.headHash as string | undefined) ?? null,
          problem: (result.problem as string | undefined) ?? null,
          anchoredSeq: null as number | null,
        };
        // A chain cut back and its head rewound verifies on its own; only the anchor shows the cut.
        const anchored = verified.ok && deps.anchor ? await deps.anchor.verify() : null;
        if (anchored === null) return withTranscripts(verified);
        if (anchored.ok) return withTranscripts({ ...verified, anchoredSeq: anchored.anchoredSeq });
        return {
          ...verified,
          ok: false,
          firstBadSeq: anchored.firstBadSeq,
          reason: anchored.reason,
          problem: anchored.problem,
          anchoredSeq: anchored.anchoredSeq,
        };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/audit/export",
      summary: "Every audit event as JSON lines (application/x-ndjson)",
      tag: "audit",
      auth: "user",
      query: afterSeqQuery,
      reply: streamReply,
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
        "Server-sent events of committed audit events, live (resume with Last-Event-ID or ?afterSeq); administrators and auditors see all, others the events about requests and grants the API shows them; ends when the credential that opened it stops being valid",
      tag: "audit",
      auth: "user",
      query: afterSeqQuery,
      reply: streamReply,
      async handler({ principal, query, request, reply }) {
        const recheck = deps.recheckCredential(request);
        const lastEventId = Number(request.headers["last-event-id"]);
        const afterSeq =
          Number.isInteger(lastEventId) && lastEventId >= 0
            ? lastEventId
            : (query.afterSeq ?? (await deps.audit.head()).seq);
        reply.hijack();
        reply.raw.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-store",
          connection: "keep-alive",
        });
        deps.streams.serve({ out: reply.raw, afterSeq, follower: { principal, recheck } });
        return undefined;
      },
    }),
  ];
}

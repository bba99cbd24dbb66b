import type { SessionView, TranscriptReply } from "../api/sessions.schema.js";
import { FirebreakError } from "../errors.js";
import type { GrantRecord } from "../grants/grant.repo.js";
import type { Principal } from "../shared/principal.js";
import type { GatewaySession } from "./session.repo.js";
import type { GatewaySessions } from "./session.service.js";

function toView(session: GatewaySession): SessionView {
  return {
    id: session.id,
    grantId: session.grantId,
    protocol: session.protocol,
    resource: session.resource,
    user: session.user,
    clientAddress: session.clientAddress,
    startedAt: new Date(session.startedAt).toISOString(),
    endedAt: session.endedAt === null ? null : new Date(session.endedAt).toISOString(),
    endReason: session.endReason,
    records: session.records,
    digest: session.digest,
  };
}

/**
 * What the API shows of gateway sessions: a grant's sessions and a session's transcript, to whoever
 * may see the grant (its owner, approvers, reviewers, administrators and auditors: the grant's own
 * visibility). Anyone else is told the grant or session does not exist.
 */
export function createSessionViews(deps: {
  grants: { load(principal: Principal, id: string): Promise<GrantRecord> };
  sessions: Pick<GatewaySessions, "list" | "find" | "records">;
}) {
  return {
    async list(principal: Principal, grantId: string): Promise<SessionView[]> {
      await deps.grants.load(principal, grantId);
      return (await deps.sessions.list(grantId)).map(toView);
    },
    async transcript(
      principal: Principal,
      sessionId: string,
      page: { afterSeq?: number; limit?: number },
    ): Promise<TranscriptReply> {
      const session = await deps.sessions.find(sessionId);
      if (!session) throw new FirebreakError("NOT_FOUND", "no such session");
      try {
        await deps.grants.load(principal, session.grantId);
      } catch (error) {
        if (error instanceof FirebreakError && error.code === "NOT_FOUND")
          throw new FirebreakError("NOT_FOUND", "no such session");
        throw error;
      }
      const limit = page.limit ?? 500;
      const rows = await deps.sessions.records(sessionId, { afterSeq: page.afterSeq ?? 0, limit });
      const records = rows.map((row) =>
        "unreadable" in row
          ? { seq: row.seq, time: new Date(0).toISOString(), kind: "unreadable", payload: {}, hash: "" }
          : {
              seq: row.seq,
              time: new Date(row.time).toISOString(),
              kind: row.kind,
              payload: row.payload,
              hash: row.hash,
            },
      );
      return {
        session: toView(session),
        records,
        nextAfterSeq: rows.length === limit ? (rows[rows.length - 1]?.seq ?? null) : null,
      };
    },
  };
}
export type SessionViews = ReturnType<typeof createSessionViews>;

import type { Executor, GatewaySessionsTable } from "../db/types.js";
import type { TranscriptRecord } from "./transcript.js";

/** All SQL of gateway sessions, their transcripts and the credentials the gateway holds. */

export interface GatewaySession {
  id: string;
  grantId: string;
  protocol: GatewaySessionsTable["protocol"];
  resource: string;
  user: string;
  clientAddress: string | null;
  startedAt: number;
  endedAt: number | null;
  endReason: string | null;
  records: number;
  digest: string | null;
}

function toSession(row: GatewaySessionsTable): GatewaySession {
  return {
    id: row.id,
    grantId: row.grant_id,
    protocol: row.protocol,
    resource: row.resource,
    user: row.user_name,
    clientAddress: row.client_address,
    startedAt: Number(row.started_at),
    endedAt: row.ended_at === null ? null : Number(row.ended_at),
    endReason: row.end_reason,
    records: Number(row.record_count),
    digest: row.digest,
  };
}

export async function insertSession(db: Executor, session: GatewaySession): Promise<void> {
  await db
    .insertInto("gateway_sessions")
    .values({
      id: session.id,
      grant_id: session.grantId,
      protocol: session.protocol,
      resource: session.resource,
      user_name: session.user,
      client_address: session.clientAddress,
      started_at: session.startedAt,
      ended_at: null,
      end_reason: null,
      record_count: 0,
      digest: null,
    })
    .execute();
}

export async function insertRecords(db: Executor, records: readonly TranscriptRecord[]): Promise<void> {
  if (records.length === 0) return;
  await db
    .insertInto("gateway_records")
    .values(
      records.map((r) => ({
        session_id: r.sessionId,
        seq: r.seq,
        time: r.time,
        kind: r.kind,
        payload_json: JSON.stringify(r.payload),
        prev_hash: r.prevHash,
        hash: r.hash,
      })),
    )
    .execute();
  const last = records[records.length - 1] as TranscriptRecord;
  await db
    .updateTable("gateway_sessions")
    .set({ record_count: last.seq })
    .where("id", "=", last.sessionId)
    .execute();
}

/** Ends a session once (compare-and-set on `ended_at IS NULL`); false when it had ended already. */
export async function endSession(
  db: Executor,
  id: string,
  end: { at: number; reason: string; records: number; digest: string },
): Promise<boolean> {
  const result = await db
    .updateTable("gateway_sessions")
    .set({ ended_at: end.at, end_reason: end.reason, record_count: end.records, digest: end.digest })
    .where("id", "=", id)
    .where("ended_at", "is", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function findSession(db: Executor, id: string): Promise<GatewaySession | null> {
  const row = await db.selectFrom("gateway_sessions").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? toSession(row) : null;
}

export async function listSessionsOfGrant(db: Executor, grantId: string): Promise<GatewaySession[]> {
  const rows = await db
    .selectFrom("gateway_sessions")
    .selectAll()
    .where("grant_id", "=", grantId)
    .orderBy("started_at", "asc")
    .orderBy("id", "asc")
    .execute();
  return rows.map(toSession);
}

/** Sessions a page at a time, by id, for verification. */
export async function listSessionsPage(
  db: Executor,
  afterId: string,
  limit: number,
): Promise<GatewaySession[]> {
  const rows = await db
    .selectFrom("gateway_sessions")
    .selectAll()
    .where("id", ">", afterId)
    .orderBy("id", "asc")
    .limit(limit)
    .execute();
  return rows.map(toSession);
}

/** Sessions that were never ended (a crash): closed at the next start. */
export async function listOpenSessions(db: Executor): Promise<GatewaySession[]> {
  const rows = await db.selectFrom("gateway_sessions").selectAll().where("ended_at", "is", null).execute();
  return rows.map(toSession);
}

/**
 * One session's records in seq order, from `afterSeq`, at most `limit`. A payload that is not a
 * JSON object comes back as unreadable, for verification to report.
 */
export async function listRecords(
  db: Executor,
  sessionId: string,
  options: { afterSeq?: number; limit?: number } = {},
): Promise<(TranscriptRecord | { seq: number; unreadable: string })[]> {
  const rows = await db
    .selectFrom("gateway_records")
    .selectAll()
    .where("session_id", "=", sessionId)
    .where("seq", ">", options.afterSeq ?? 0)
    .orderBy("seq", "asc")
    .limit(options.limit ?? 1000)
    .execute();
  return rows.map((row) => {
    let payload: unknown;
    try {
      payload = JSON.parse(row.payload_json);
    } catch {
      payload = undefined;
    }
    if (payload === null || typeof payload !== "object" || Array.isArray(payload))
      return { seq: Number(row.seq), unreadable: `record ${row.seq}'s payload is not a JSON object` };
    return {
      sessionId: row.session_id,
      seq: Number(row.seq),
      time: Number(row.time),
      kind: row.kind,
      payload: payload as Record<string, unknown>,
      prevHash: row.prev_hash,
      hash: row.hash,
    };
  });
}

export interface GatewayCredential {
  grantId: string;
  resource: string;
  login: string;
  passwordEnc: string;
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

export async function insertGatewayCredential(
  db: Executor,
  credential: GatewayCredential,
  now: number,
): Promise<void> {
  await db
    .deleteFrom("gateway_credentials")
    .where("grant_id", "=", credential.grantId)
    .where("resource", "=", credential.resource)
    .execute();
  await db
    .insertInto("gateway_credentials")
    .values({
      grant_id: credential.grantId,
      resource: credential.resource,
      login: credential.login,
      password_enc: credential.passwordEnc,
      scram_salt: credential.salt,
      scram_iterations: credential.iterations,
      stored_key: credential.storedKey,
      server_key: credential.serverKey,
      created_at: now,
    })
    .execute();
}

export async function findGatewayCredential(
  db: Executor,
  grantId: string,
  resource: string,
): Promise<GatewayCredential | null> {
  const row = await db
    .selectFrom("gateway_credentials")
    .selectAll()
    .where("grant_id", "=", grantId)
    .where("resource", "=", resource)
    .executeTakeFirst();
  if (!row) return null;
  return {
    grantId: row.grant_id,
    resource: row.resource,
    login: row.login,
    passwordEnc: row.password_enc,
    salt: row.scram_salt,
    iterations: Number(row.scram_iterations),
    storedKey: row.stored_key,
    serverKey: row.server_key,
  };
}

import pg from "pg";
import type { Db, Executor, ReplicasTable } from "../db/types.js";

/** The channel the audit head's trigger notifies on (migration 2026-12-03T07-00-replicas). */
export const AUDIT_CHANNEL = "firebreak_audit";

/**
 * A dedicated PostgreSQL connection that LISTENs for appends to the audit chain and reads the head
 * on the same connection, so a head read that succeeds also proves the notifications can arrive.
 */
export interface AuditListener {
  /** The head's seq, read on the listening connection. */
  headSeq(): Promise<number>;
  close(): Promise<void>;
}

export async function openAuditListener(options: {
  url: string;
  applicationName: string;
  onNotify: (seq: number) => void;
  /** The connection is gone (terminated, network lost): called once. */
  onLost: (error: Error) => void;
}): Promise<AuditListener> {
  const client = new pg.Client({
    connectionString: options.url,
    application_name: options.applicationName,
    keepAlive: true,
  });
  let lost = false;
  const lose = (error: Error) => {
    if (lost) return;
    lost = true;
    options.onLost(error);
  };
  client.on("error", lose);
  client.on("end", () => lose(new Error("the connection ended")));
  client.on("notification", (message) => {
    if (message.channel === AUDIT_CHANNEL) options.onNotify(Number(message.payload ?? 0));
  });
  try {
    await client.connect();
    await client.query(`LISTEN ${AUDIT_CHANNEL}`);
  } catch (error) {
    lost = true;
    await client.end().catch(() => {});
    throw error;
  }
  return {
    async headSeq() {
      const { rows } = await client.query<{ seq: string | number }>(
        "SELECT seq FROM audit_head WHERE id = 1",
      );
      return Number(rows[0]?.seq ?? 0);
    },
    async close() {
      lost = true;
      await client.end().catch(() => {});
    },
  };
}

export type ReplicaRow = ReplicasTable;

export async function upsertReplica(db: Executor, row: ReplicaRow): Promise<void> {
  await db
    .insertInto("replicas")
    .values(row)
    .onConflict((c) =>
      c.column("id").doUpdateSet({
        config_digest: row.config_digest,
        address: row.address,
        heartbeat_at: row.heartbeat_at,
        seen_seq: row.seen_seq,
        current: row.current,
        not_current_reason: row.not_current_reason,
        stopped_at: row.stopped_at,
      }),
    )
    .execute();
}

/** Replicas that beat since `since` (stopped ones excluded), oldest first. */
export async function listReplicas(db: Db, since: number): Promise<ReplicaRow[]> {
  return db
    .selectFrom("replicas")
    .selectAll()
    .where("heartbeat_at", ">=", since)
    .where("stopped_at", "is", null)
    .orderBy("started_at")
    .orderBy("id")
    .execute();
}

/** Forgets replicas silent since before `before` (their rows only say they once ran). */
export async function deleteReplicasSilentSince(db: Db, before: number): Promise<void> {
  await db.deleteFrom("replicas").where("heartbeat_at", "<", before).execute();
}

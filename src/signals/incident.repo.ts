import type { Selectable } from "kysely";
import type { Executor, IncidentsTable } from "../db/types.js";

export interface IncidentRecord {
  id: string;
  source: string;
  externalId: string;
  zone: string;
  severity: number;
  title: string;
  openedAt: number;
  resolvedAt: number | null;
  /** The sender's time of the last event applied to the incident (epoch ms). */
  lastEventAt: number;
}

function toRecord(row: Selectable<IncidentsTable>): IncidentRecord {
  return {
    id: row.id,
    source: row.source,
    externalId: row.external_id,
    zone: row.zone,
    severity: row.severity,
    title: row.title,
    openedAt: row.opened_at,
    resolvedAt: row.resolved_at,
    lastEventAt: row.last_event_at,
  };
}

export async function findIncident(
  db: Executor,
  source: string,
  externalId: string,
): Promise<IncidentRecord | null> {
  const row = await db
    .selectFrom("incidents")
    .selectAll()
    .where("source", "=", source)
    .where("external_id", "=", externalId)
    .executeTakeFirst();
  return row ? toRecord(row) : null;
}

/**
 * Reads an incident for a change inside a transaction, holding its row until commit, so two
 * deliveries about one incident are judged one after the other against what the first wrote.
 * The lock is taken with an update that changes nothing, which both dialects understand (on
 * SQLite it takes the database's write lock).
 */
export async function lockIncident(
  db: Executor,
  source: string,
  externalId: string,
): Promise<IncidentRecord | null> {
  await db
    .updateTable("incidents")
    .set((eb) => ({ last_event_at: eb.ref("last_event_at") }))
    .where("source", "=", source)
    .where("external_id", "=", externalId)
    .execute();
  return findIncident(db, source, externalId);
}

/** Inserts an incident unless one with its source and external id exists; true when inserted. */
export async function insertIncident(db: Executor, incident: IncidentRecord): Promise<boolean> {
  const result = await db
    .insertInto("incidents")
    .values({
      id: incident.id,
      source: incident.source,
      external_id: incident.externalId,
      zone: incident.zone,
      severity: incident.severity,
      title: incident.title,
      opened_at: incident.openedAt,
      resolved_at: incident.resolvedAt,
      last_event_at: incident.lastEventAt,
    })
    .onConflict((conflict) => conflict.columns(["source", "external_id"]).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
}

export async function updateIncident(
  db: Executor,
  id: string,
  change: {
    severity: number;
    title: string;
    resolvedAt: number | null;
    openedAt: number;
    lastEventAt: number;
  },
): Promise<void> {
  await db
    .updateTable("incidents")
    .set({
      severity: change.severity,
      title: change.title,
      resolved_at: change.resolvedAt,
      opened_at: change.openedAt,
      last_event_at: change.lastEventAt,
    })
    .where("id", "=", id)
    .execute();
}

/** Open incidents in a zone, most severe first (severity 1 is the worst). */
export async function listOpenIncidents(db: Executor, zone?: string): Promise<IncidentRecord[]> {
  let query = db.selectFrom("incidents").selectAll().where("resolved_at", "is", null);
  if (zone) query = query.where("zone", "=", zone);
  const rows = await query.orderBy("severity").orderBy("opened_at").execute();
  return rows.map(toRecord);
}

import type { Executor } from "../db/types.js";

export interface IncidentRecord {
  id: string;
  source: string;
  externalId: string;
  zone: string;
  severity: number;
  title: string;
  openedAt: number;
  resolvedAt: number | null;
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
  return row
    ? {
        id: row.id,
        source: row.source,
        externalId: row.external_id,
        zone: row.zone,
        severity: row.severity,
        title: row.title,
        openedAt: row.opened_at,
        resolvedAt: row.resolved_at,
      }
    : null;
}

export async function insertIncident(db: Executor, incident: IncidentRecord): Promise<void> {
  await db
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
    })
    .execute();
}

export async function updateIncident(
  db: Executor,
  id: string,
  change: { severity: number; title: string; resolvedAt: number | null; openedAt: number },
): Promise<void> {
  await db
    .updateTable("incidents")
    .set({
      severity: change.severity,
      title: change.title,
      resolved_at: change.resolvedAt,
      opened_at: change.openedAt,
    })
    .where("id", "=", id)
    .execute();
}

/** Open incidents in a zone, most severe first (severity 1 is the worst). */
export async function listOpenIncidents(db: Executor, zone?: string): Promise<IncidentRecord[]> {
  let query = db.selectFrom("incidents").selectAll().where("resolved_at", "is", null);
  if (zone) query = query.where("zone", "=", zone);
  const rows = await query.orderBy("severity").orderBy("opened_at").execute();
  return rows.map((row) => ({
    id: row.id,
    source: row.source,
    externalId: row.external_id,
    zone: row.zone,
    severity: row.severity,
    title: row.title,
    openedAt: row.opened_at,
    resolvedAt: row.resolved_at,
  }));
}

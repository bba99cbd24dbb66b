import type { EmergencyKitsTable, Executor } from "../db/types.js";

export interface KitRecord {
  id: string;
  zone: string;
  resource: string;
  role: string;
  externalId: string;
  detail: Record<string, unknown>;
  journalKey: string;
  kitJson: string;
  state: EmergencyKitsTable["state"];
  createdAt: number;
  endsAt: number;
  closedAt: number | null;
  closeReason: string | null;
}

function toRecord(row: EmergencyKitsTable): KitRecord {
  return {
    id: row.id,
    zone: row.zone,
    resource: row.resource,
    role: row.role,
    externalId: row.external_id,
    detail: JSON.parse(row.detail_json) as Record<string, unknown>,
    journalKey: row.journal_key,
    kitJson: row.kit_json,
    state: row.state,
    createdAt: Number(row.created_at),
    endsAt: Number(row.ends_at),
    closedAt: row.closed_at === null ? null : Number(row.closed_at),
    closeReason: row.close_reason,
  };
}

export async function insertKit(db: Executor, kit: KitRecord): Promise<void> {
  await db
    .insertInto("emergency_kits")
    .values({
      id: kit.id,
      zone: kit.zone,
      resource: kit.resource,
      role: kit.role,
      external_id: kit.externalId,
      detail_json: JSON.stringify(kit.detail),
      journal_key: kit.journalKey,
      kit_json: kit.kitJson,
      state: kit.state,
      created_at: kit.createdAt,
      ends_at: kit.endsAt,
      closed_at: kit.closedAt,
      close_reason: kit.closeReason,
    })
    .execute();
}

export async function findKit(db: Executor, id: string): Promise<KitRecord | null> {
  const row = await db.selectFrom("emergency_kits").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? toRecord(row) : null;
}

export async function liveKits(db: Executor, zone?: string): Promise<KitRecord[]> {
  let query = db.selectFrom("emergency_kits").selectAll().where("state", "=", "live");
  if (zone !== undefined) query = query.where("zone", "=", zone);
  return (await query.orderBy("created_at", "desc").execute()).map(toRecord);
}

/** Compare-and-set: only one process closes a kit (false when it was closed already). */
export async function closeKit(db: Executor, id: string, now: number, reason: string): Promise<boolean> {
  const result = await db
    .updateTable("emergency_kits")
    .set({ state: "closed", closed_at: now, close_reason: reason })
    .where("id", "=", id)
    .where("state", "=", "live")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** True when this opening was recorded now; false when it had been imported before. */
export async function recordOpening(
  db: Executor,
  opening: {
    kitId: string;
    signature: string;
    opener: string;
    openedAt: number;
    grantId: string;
    now: number;
  },
): Promise<boolean> {
  const existing = await db
    .selectFrom("emergency_openings")
    .select("grant_id")
    .where("kit_id", "=", opening.kitId)
    .where("signature", "=", opening.signature)
    .executeTakeFirst();
  if (existing) return false;
  await db
    .insertInto("emergency_openings")
    .values({
      kit_id: opening.kitId,
      signature: opening.signature,
      opener: opening.opener,
      opened_at: opening.openedAt,
      grant_id: opening.grantId,
      imported_at: opening.now,
    })
    .execute();
  return true;
}

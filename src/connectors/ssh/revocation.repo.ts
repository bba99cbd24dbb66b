import type { Db } from "../../db/types.js";
import type { RevokedCertificate } from "./krl.js";

/** Replaces a zone's revoked set with what was just published, in one transaction. */
export async function saveRevocations(
  db: Db,
  zone: string,
  revoked: readonly RevokedCertificate[],
): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await tx.deleteFrom("ssh_revocations").where("zone", "=", zone).execute();
    for (const entry of revoked) {
      await tx
        .insertInto("ssh_revocations")
        .values({ zone, serial: entry.serial, key_id: entry.keyId, valid_before: entry.validBefore })
        .execute();
    }
  });
}

export async function loadRevocations(db: Db, zone: string): Promise<RevokedCertificate[]> {
  const rows = await db.selectFrom("ssh_revocations").selectAll().where("zone", "=", zone).execute();
  return rows.map((row) => ({ serial: row.serial, keyId: row.key_id, validBefore: row.valid_before }));
}

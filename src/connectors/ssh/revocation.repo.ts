import type { Db } from "../../db/types.js";

/** One revoked certificate: what a KRL names it by, and when it would have expired anyway. */
export interface RevokedCertificate {
  /** Decimal serial, as in the issued detail. */
  serial: string;
  /** The certificate's key id (the grant id); null to revoke by serial alone. */
  keyId: string | null;
  /** Epoch milliseconds of the certificate's valid-before, when known; used to prune the list. */
  validBefore: number | null;
}

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

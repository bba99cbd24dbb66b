import type { Executor } from "../db/types.js";

export async function findKeyMaterial(db: Executor, kind: string, scope: string) {
  return db
    .selectFrom("key_material")
    .selectAll()
    .where("kind", "=", kind)
    .where("scope", "=", scope)
    .executeTakeFirst();
}

/** Inserts unless another process got there first; returns what is stored either way. */
export async function insertKeyMaterial(
  db: Executor,
  row: { kind: string; scope: string; public_key: string; private_enc: string; created_at: number },
) {
  try {
    await db.insertInto("key_material").values(row).execute();
  } catch {
    // A concurrent first use inserted it; theirs wins so every process signs with the same CA.
  }
  return findKeyMaterial(db, row.kind, row.scope);
}

export async function listAllKeyMaterial(db: Executor) {
  return db.selectFrom("key_material").selectAll().execute();
}

export async function updateKeyMaterialCipher(db: Executor, kind: string, scope: string, privateEnc: string) {
  await db
    .updateTable("key_material")
    .set({ private_enc: privateEnc })
    .where("kind", "=", kind)
    .where("scope", "=", scope)
    .execute();
}

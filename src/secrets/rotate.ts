import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { migrateToLatest, openDatabase } from "../db/database.js";
import { secretAad } from "../grants/delivery.js";
import { listSealedSecrets, resealSecret } from "../grants/grant.repo.js";
import { listAllKeyMaterial, updateKeyMaterialCipher } from "./key.repo.js";
import { createSecretBox, loadMasterKeys } from "./secret-box.js";

/**
 * Re-encrypts every stored secret under a new master key, in one transaction. With a key file the
 * steps are: write `<file>.next`, re-seal, then promote it (keeping the old key in
 * `<file>.previous`); a crash anywhere leaves a state the next start finishes (see
 * loadMasterKeys). With FIREBREAK_MASTER_KEY the new key is returned to be put in the environment.
 */
export async function rotateMasterKey(options: {
  databaseUrl: string;
  keyFile: string;
  env: NodeJS.ProcessEnv;
}) {
  const keys = loadMasterKeys({ env: options.env, keyFile: options.keyFile, production: true });
  const fresh = randomBytes(32);
  const oldBox = createSecretBox(keys.current, keys.previous);
  const newBox = createSecretBox(fresh);
  const fromEnv = Boolean(options.env.FIREBREAK_MASTER_KEY);
  if (!fromEnv) writeFileSync(`${options.keyFile}.next`, `${fresh.toString("hex")}\n`, { mode: 0o600 });

  const handle = openDatabase(options.databaseUrl);
  let count = 0;
  try {
    await migrateToLatest(handle.db);
    await handle.db.transaction().execute(async (tx) => {
      for (const effect of await listSealedSecrets(tx)) {
        const plain = oldBox.open(effect.secretEnc, secretAad(effect.id));
        await resealSecret(tx, effect.id, newBox.seal(plain, secretAad(effect.id)));
        count++;
      }
      for (const row of await listAllKeyMaterial(tx)) {
        const aad = `key_material:${row.kind}:${row.scope}`;
        await updateKeyMaterialCipher(
          tx,
          row.kind,
          row.scope,
          newBox.seal(oldBox.open(row.private_enc, aad), aad),
        );
        count++;
      }
    });
  } finally {
    await handle.close();
  }
  if (!fromEnv) {
    const old = existsSync(options.keyFile) ? readFileSync(options.keyFile, "utf8").trim() : "";
    if (old) writeFileSync(`${options.keyFile}.previous`, `${old}\n`, { mode: 0o600, flag: "a" });
    renameSync(`${options.keyFile}.next`, options.keyFile);
  }
  return { resealed: count, keyId: newBox.keyId, newKey: fromEnv ? fresh.toString("hex") : null };
}

import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import type { ConnectorDeps } from "../plugins/contracts.js";
import { findKeyMaterial, insertKeyMaterial } from "./key.repo.js";
import type { SecretBox } from "./secret-box.js";

/** Key material (SSH CAs) kept encrypted in the database; the private half never touches disk in clear. */
export function createKeyStore(deps: { db: Db; box: SecretBox; now: () => number }): ConnectorDeps["keys"] {
  const aad = (kind: string, scope: string) => `key_material:${kind}:${scope}`;
  return {
    async getOrCreate(kind, scope, create) {
      let row = await findKeyMaterial(deps.db, kind, scope);
      if (!row) {
        const made = await create();
        row = await insertKeyMaterial(deps.db, {
          kind,
          scope,
          public_key: made.publicKey,
          private_enc: deps.box.seal(made.privateKey, aad(kind, scope)),
          created_at: deps.now(),
        });
      }
      if (!row) throw new FirebreakError("INTERNAL", "key material could not be stored");
      return { publicKey: row.public_key, privateKey: deps.box.open(row.private_enc, aad(kind, scope)) };
    },
  };
}

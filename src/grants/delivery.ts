import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import type { SecretBox } from "../secrets/secret-box.js";
import type { Principal } from "../users/user.service.js";
import { PATH_CONNECTOR_PREFIX } from "./effects.js";
import { findGrant, type GrantRecord, listEffects, markDelivered } from "./grant.repo.js";

/** Binds a sealed secret to its effect row, so a ciphertext copied to another row does not open. */
export function secretAad(effectId: string): string {
  return `grant_effects:${effectId}`;
}

type RefusalCode = "NOT_FOUND" | "FORBIDDEN" | "ALREADY_DELIVERED" | "INVALID_STATE";

/** Thrown inside the delivering transaction to undo it: another delivery wiped the secrets first. */
class DeliveredElsewhere extends Error {}

/** Hands a grant's credentials to its owner: the one way an issued secret leaves the server. */
export function createCredentialDelivery(deps: {
  db: Db;
  inTransaction: InTransaction;
  box: Pick<SecretBox, "open">;
  /** Who may know the grant exists; the same rule as for reading it. */
  canSee: (principal: Principal, grant: GrantRecord) => boolean;
}) {
  return {
    /**
     * The grant's credentials, once, to its owner: the secrets are decrypted, returned and wiped in
     * one transaction. A second fetch after a secret was shown, or anyone else, is refused, and the
     * refusal is audited. A grant whose credentials hold no secret (what they say is not worth
     * stealing) can be shown to its owner again, so `credential` then `connect` both work.
     */
    async deliverCredential(principal: Principal, id: string) {
      const grant = await findGrant(deps.db, id);
      if (!grant) throw new FirebreakError("NOT_FOUND", "no such grant");
      const refuse = async (code: RefusalCode, message: string) => {
        await deps.inTransaction((unit) =>
          unit.audit({
            type: "credential.delivery_refused",
            actor: principal.name,
            zone: grant.zone,
            resource: grant.resource,
            subject: grant.id,
            context: { grant: grant.id, owner: grant.user, reason: code },
          }),
        );
        throw new FirebreakError(code, message);
      };
      // Someone who may not see the grant is told it does not exist, like for any grant, but the
      // attempt on another person's credential is on record.
      if (!deps.canSee(principal, grant)) await refuse("NOT_FOUND", "no such grant");
      if (principal.name !== grant.user)
        await refuse("FORBIDDEN", "only the grant's owner can fetch its credential");
      if (grant.state !== "active")
        await refuse("INVALID_STATE", `the grant is ${grant.state}; its credential no longer exists`);
      const delivered = await deps
        .inTransaction(async (unit) => {
          const effects = (await listEffects(unit.tx, id)).filter(
            (e) => !e.connector.startsWith(PATH_CONNECTOR_PREFIX),
          );
          if (effects.some((e) => e.deliveredAt !== null)) return null;
          // PostgreSQL lets a second fetch read the same rows before the first commits its wipe; the
          // second one's wipe then finds them gone. Only the fetch that wiped every secret it read
          // may show them.
          const sealed = effects.filter((e) => e.secretEnc !== null).map((e) => e.id);
          if ((await markDelivered(unit.tx, id, sealed, unit.now)) !== sealed.length)
            throw new DeliveredElsewhere();
          const credentials = effects.map((e) => ({
            resource: e.resource,
            connector: e.connector,
            state: e.state,
            detail: Object.fromEntries(Object.entries(e.detail).filter(([key]) => key !== "publicKey")),
            secret: e.secretEnc ? deps.box.open(e.secretEnc, secretAad(e.id)) : null,
          }));
          await unit.audit({
            type: "credential.delivered",
            actor: principal.name,
            zone: grant.zone,
            resource: grant.resource,
            subject: grant.id,
            context: { grant: grant.id, resources: credentials.map((c) => c.resource) },
          });
          return credentials;
        })
        .catch((error: unknown) => {
          if (error instanceof DeliveredElsewhere) return null;
          throw error;
        });
      if (!delivered)
        await refuse(
          "ALREADY_DELIVERED",
          "the credential's secret was already shown once (by 'firebreak credential', 'firebreak connect' or the console) and is gone from the server; revoke and request again if it is lost",
        );
      return { grant, credentials: delivered ?? [] };
    },
  };
}
export type CredentialDelivery = ReturnType<typeof createCredentialDelivery>;

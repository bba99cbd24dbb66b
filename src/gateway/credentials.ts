import { randomBytes } from "node:crypto";
import type { FirebreakConfig } from "../config/schema.js";
import type { Db, Executor } from "../db/types.js";
import type { SecretBox } from "../secrets/secret-box.js";
import { deriveVerifier, type ScramVerifier } from "./postgres/scram.js";
import { findGatewayCredential, insertGatewayCredential } from "./session.repo.js";

/** Binds a sealed target password to its grant and resource, so a ciphertext copied elsewhere does not open. */
function credentialAad(grantId: string, resource: string): string {
  return `gateway_credentials:${grantId}:${resource}`;
}

/** Where users reach the PostgreSQL gateway: its public address, or where it listens. */
export function gatewayEndpoint(config: FirebreakConfig): { host: string; port: number } | null {
  const settings = config.gateway?.postgres;
  if (!settings) return null;
  const address = settings.publicAddress ?? settings.listen;
  const match = /^(.*):(\d+)$/.exec(address);
  if (!match) return null;
  return { host: (match[1] as string).replace(/^\[|\]$/g, ""), port: Number(match[2]) };
}

/** Whether a grant of `policy` reaches `resource` through the gateway: the resource says so, or the policy requires it. */
export function usesGateway(config: FirebreakConfig, policy: string | null, resourceName: string): boolean {
  const resource = config.resources?.[resourceName];
  if (resource?.type !== "postgres") return false;
  if (resource.access === "gateway") return true;
  return (
    policy !== null && (config.breakGlass ?? []).some((p) => p.name === policy && p.requireGateway === true)
  );
}

/**
 * The credentials the gateway holds for grants on gateway resources. At issue, the connector's
 * password is sealed here (it never leaves Firebreak) and a gateway token is made for the user,
 * of which only the SCRAM verifier is kept; the token itself is what the grant shows once.
 */
export function createGatewayCredentials(deps: {
  db: Db;
  box: Pick<SecretBox, "seal" | "open">;
  /** Where the running gateway listens, when `publicAddress` is not set (a `listen` port of 0 is chosen at start). */
  bound?: () => { host: string; port: number } | null;
}) {
  return {
    /**
     * Replaces an issued credential's detail and secret by the gateway's: the user is shown the
     * gateway's address, `grt_…` as user name, the resource as database, and a new token.
     */
    async bind(
      tx: Executor,
      now: number,
      config: FirebreakConfig,
      grant: { id: string },
      resourceName: string,
      issued: { detail: Record<string, unknown>; secret: string },
    ): Promise<{ detail: Record<string, unknown>; secret: string }> {
      const endpoint = config.gateway?.postgres?.publicAddress
        ? gatewayEndpoint(config)
        : (deps.bound?.() ?? gatewayEndpoint(config));
      const token = `fbgw_${randomBytes(24).toString("base64url")}`;
      const verifier = deriveVerifier(token);
      await insertGatewayCredential(
        tx,
        {
          grantId: grant.id,
          resource: resourceName,
          login: String(issued.detail.username),
          passwordEnc: deps.box.seal(issued.secret, credentialAad(grant.id, resourceName)),
          ...verifier,
        },
        now,
      );
      return {
        detail: {
          access: "gateway",
          host: endpoint?.host ?? null,
          port: endpoint?.port ?? null,
          username: grant.id,
          database: resourceName,
          externalId: issued.detail.externalId,
          validUntil: issued.detail.validUntil,
        },
        secret: token,
      };
    },

    /** The token's verifier, for authenticating a client; null when the grant has none here. */
    async verifier(grantId: string, resourceName: string): Promise<ScramVerifier | null> {
      const stored = await findGatewayCredential(deps.db, grantId, resourceName);
      return stored
        ? {
            salt: stored.salt,
            iterations: stored.iterations,
            storedKey: stored.storedKey,
            serverKey: stored.serverKey,
          }
        : null;
    },

    /** The target login and its password, only once a client has authenticated. */
    async targetLogin(
      grantId: string,
      resourceName: string,
    ): Promise<{ login: string; password: string } | null> {
      const stored = await findGatewayCredential(deps.db, grantId, resourceName);
      if (!stored) return null;
      return {
        login: stored.login,
        password: deps.box.open(stored.passwordEnc, credentialAad(grantId, resourceName)),
      };
    },
  };
}
export type GatewayCredentials = ReturnType<typeof createGatewayCredentials>;

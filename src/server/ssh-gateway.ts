import type { AuditEventInput } from "../audit/audit.repo.js";
import type { FirebreakConfig } from "../config/schema.js";
import { generateEd25519KeyPair } from "../connectors/ssh/keygen.js";
import type { createSshConnector } from "../connectors/ssh/ssh.connector.js";
import type { Db } from "../db/types.js";
import type { GatewaySessions, SessionHolder } from "../gateway/session.service.js";
import {
  createSshGateway,
  type SshGateway,
  type SshGatewayGrant,
  type SshRefusalCode,
} from "../gateway/ssh/ssh-gateway.js";
import type { UpstreamCredential } from "../gateway/ssh/upstream.js";
import { findGrant, listEffects } from "../grants/grant.repo.js";
import type { ConnectorDeps } from "../plugins/contracts.js";
import type { Clock } from "../shared/clock.js";

type SshConnector = ReturnType<typeof createSshConnector>;

function splitAddress(address: string): { host: string; port: number } {
  const match = /^\[?([^\]]+)\]?:(\d+)$/.exec(address);
  return { host: match?.[1] ?? address, port: Number(match?.[2] ?? 22) };
}

/**
 * Wires the SSH gateway for `firebreak serve` (`gateway.ssh`): its host key (configured, or made
 * once and kept sealed with the CA keys), the grant lookup (an active grant on an SSH resource
 * whose certificate named the user's key), the gateway's own key and certificate per grant (signed
 * by the zone CA with the grant's serial and key id, so the grant's KRL entry revokes it too; the
 * private key exists only in this process), and refusals audited as `gateway.refused`.
 */
export function createSshGatewayService(deps: {
  db: Db;
  clock: Clock;
  config: () => FirebreakConfig;
  sessions: GatewaySessions;
  holder: SessionHolder;
  keys: ConnectorDeps["keys"];
  connector: SshConnector;
  secret(ref: string): string;
  audit(event: AuditEventInput): Promise<unknown>;
  log: { error(message: string, fields?: Record<string, unknown>): void };
}) {
  let gateway: SshGateway | null = null;
  let bound: { host: string; port: number } | null = null;
  const credentials = new Map<string, { endsAt: number; credential: Promise<UpstreamCredential> }>();

  function credentialFor(
    grant: NonNullable<Awaited<ReturnType<typeof findGrant>>>,
    resource: Extract<NonNullable<FirebreakConfig["resources"]>[string], { type: "ssh" }>,
  ) {
    const now = deps.clock.now();
    for (const [id, held] of credentials) if (held.endsAt <= now) credentials.delete(id);
    const held = credentials.get(grant.id);
    if (held) return held.credential;
    const credential = (async () => {
      const pair = await generateEd25519KeyPair(`firebreak-gateway ${grant.id}`);
      const issued = await deps.connector.issue({
        grantId: grant.id,
        user: grant.user,
        zone: grant.zone,
        resourceName: grant.resource ?? "",
        resource,
        role: grant.role,
        startsAt: now,
        endsAt: grant.endsAt,
        sourceZone: null,
        sourceCidrs: [],
        clientAddress: null,
        publicKey: pair.publicKey,
      });
      return { privateKey: pair.privateKey, certificate: issued.secret ?? "" };
    })();
    credential.catch(() => credentials.delete(grant.id));
    credentials.set(grant.id, { endsAt: grant.endsAt, credential });
    return credential;
  }

  async function lookup(
    grantId: string,
    hostName: string | null,
  ): Promise<SshGatewayGrant | { refused: SshRefusalCode; reason: string }> {
    const grant = await findGrant(deps.db, grantId);
    if (!grant) return { refused: "GRANT_NOT_FOUND", reason: "no such grant" };
    if (grant.state !== "active" || grant.endsAt <= deps.clock.now())
      return { refused: "GRANT_NOT_ACTIVE", reason: `the grant is ${grant.state}` };
    const config = deps.config();
    const resource = grant.resource ? config.resources?.[grant.resource] : undefined;
    if (!grant.resource || resource?.type !== "ssh")
      return { refused: "GRANT_NOT_FOUND", reason: "the grant is not for an SSH resource" };
    const effect = (await listEffects(deps.db, grant.id)).find(
      (e) => e.connector === "ssh" && e.resource === grant.resource,
    );
    const fingerprint = effect?.detail.publicKeyFingerprint;
    if (typeof fingerprint !== "string")
      return { refused: "GRANT_NOT_ACTIVE", reason: "the grant has no certificate for a key" };
    const settings = config.gateway?.ssh?.resources?.[grant.resource];
    const hosts = settings?.hosts ?? {};
    let address: string | undefined;
    if (hostName !== null) address = hosts[hostName];
    else
      address = resource.address ?? (Object.keys(hosts).length === 1 ? Object.values(hosts)[0] : undefined);
    if (!address)
      return {
        refused: "LOGIN_INVALID",
        reason:
          hostName === null
            ? "the resource has several hosts: log in as grt_…+<host>"
            : "the resource has no such host",
      };
    const login = resource.roles[grant.role]?.principals?.[0];
    if (!login) return { refused: "GRANT_NOT_FOUND", reason: "the role names no principal to log in as" };
    const { host, port } = splitAddress(address);
    return {
      grant: { id: grant.id, user: grant.user, zone: grant.zone },
      endsAt: grant.endsAt,
      resource: grant.resource,
      userKeyFingerprint: fingerprint,
      allowForwarding: resource.roles[grant.role]?.allowForwarding === true,
      recordInput: settings?.recordInput !== false,
      target: {
        host,
        port,
        login,
        hostCertificateAuthorities: [await deps.connector.caPublicKey(grant.zone)],
        pinnedHostKeys: settings?.hostKeys ?? [],
      },
      credential: await credentialFor(grant, resource),
    };
  }

  return {
    address: () => bound,
    /** The gateway's host public key line, for users' known_hosts. */
    async hostPublicKey(): Promise<string | null> {
      const settings = deps.config().gateway?.ssh;
      if (!settings || settings.hostKey) return null;
      return (
        await deps.keys.getOrCreate("ssh-gateway-host", "gateway", () =>
          generateEd25519KeyPair("firebreak-gateway"),
        )
      ).publicKey;
    },
    async start(): Promise<{ host: string; port: number } | null> {
      const settings = deps.config().gateway?.ssh;
      if (!settings) return null;
      const hostKey = settings.hostKey
        ? deps.secret(settings.hostKey)
        : (
            await deps.keys.getOrCreate("ssh-gateway-host", "gateway", () =>
              generateEd25519KeyPair("firebreak-gateway"),
            )
          ).privateKey;
      gateway = createSshGateway({
        hostKey,
        clock: deps.clock,
        sessions: deps.sessions,
        holder: deps.holder,
        lookup,
        refused: (refusal) =>
          deps
            .audit({
              type: "gateway.refused",
              actor: "system:gateway",
              zone: null,
              resource: null,
              subject: refusal.grantId,
              context: {
                protocol: "ssh",
                clientAddress: refusal.clientAddress,
                code: refusal.code,
                reason: refusal.reason,
              },
            })
            .then(
              () => {},
              (error) => deps.log.error("gateway refusal not audited", { error: String(error) }),
            ),
        limits: {
          ...(settings.maxRecordingBytes ? { maxRecordingBytes: settings.maxRecordingBytes } : {}),
          ...(settings.maxChannels ? { maxChannels: settings.maxChannels } : {}),
          ...(settings.loginTimeout ? { loginGraceMs: settings.loginTimeout } : {}),
          ...(settings.authFailuresPerMinute ? { failuresPerMinute: settings.authFailuresPerMinute } : {}),
        },
      });
      const { host, port } = splitAddress(settings.listen);
      bound = { host, port: await gateway.listen(host, port) };
      return bound;
    },
    async stop(): Promise<void> {
      for (const grantId of deps.holder.grants())
        await deps.holder.cutGrant(grantId, "the server is stopping");
      await gateway?.close();
      gateway = null;
      bound = null;
      credentials.clear();
    },
  };
}
export type SshGatewayService = ReturnType<typeof createSshGatewayService>;

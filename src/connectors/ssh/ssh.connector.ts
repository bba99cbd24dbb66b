import { readFile, writeFile } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { NAME_PATTERN } from "../../config/schema.js";
import { FirebreakError } from "../../errors.js";
import { connectorForType } from "../../plugins/connector-for-type.js";
import type {
  ConnectorDeps,
  CredentialConnector,
  IssueContext,
  IssuedCredential,
  RevokeContext,
} from "../../plugins/contracts.js";
import { generateEd25519KeyPair, keygenOrFail, withPrivateDirectory, withPrivateKeyFile } from "./keygen.js";
import {
  buildKrlFile,
  KEY_ID_PATTERN,
  krlRevokes,
  parseSerial,
  type RevokedCertificate,
  serialForGrant,
} from "./krl.js";
import { hostCidr, normalizeCidr, parsePublicKey, rolePrincipals } from "./ssh-input.js";

export type { RevokedCertificate } from "./krl.js";
export { serialForGrant } from "./krl.js";
export { parsePublicKey } from "./ssh-input.js";

/** The kind under which CA key material is kept by `deps.keys`. */
export const SSH_CA_KEY_KIND = "ssh-ca";

/**
 * How far a certificate's valid-after is set before the grant's start, so a host whose clock is a
 * little behind Firebreak's does not refuse a certificate that was just issued. The end is never
 * moved: a certificate never outlives its grant.
 */
export const CLOCK_SKEW_BACKDATE_MS = 60_000;

/**
 * How long a revoked serial stays in the zone's KRL after the certificate's own valid-before.
 * Past it every host with a sane clock refuses the certificate anyway, so the list stops growing.
 */
export const REVOKED_RETENTION_AFTER_EXPIRY_MS = 24 * 60 * 60 * 1000;

export interface SshConnectorDeps extends ConnectorDeps {
  /**
   * Publishes a zone's complete KRL (to the endpoint hosts fetch it from, or a file). Called after
   * every revoke with the whole list, never a delta; `revoked` is the set it was built from, for
   * the caller to persist so `loadRevocations` can rebuild it after a restart.
   */
  publishRevocations?: (zone: string, krl: Buffer, revoked: readonly RevokedCertificate[]) => Promise<void>;
  /** The revoked set persisted for a zone, read once per zone before its first revoke or check. */
  loadRevocations?: (zone: string) => Promise<readonly RevokedCertificate[]>;
}

function assertZone(zone: unknown): string {
  if (typeof zone !== "string" || !NAME_PATTERN.test(zone)) {
    throw new FirebreakError("VALIDATION_FAILED", "the zone name is not a valid name");
  }
  return zone;
}

function assertKeyId(keyId: unknown): string {
  if (typeof keyId !== "string" || !KEY_ID_PATTERN.test(keyId)) {
    throw new FirebreakError("VALIDATION_FAILED", "the grant id is not a valid certificate key id");
  }
  return keyId;
}

/** ssh-keygen's UTC time form, `YYYYMMDDHHMMSSZ` (accepted by `-V` since OpenSSH 8.x). */
function keygenTime(epochMs: number): string {
  return `${new Date(epochMs).toISOString().replace(/[-:T]/g, "").slice(0, 14)}Z`;
}

function parseInstant(value: unknown): number | null {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string") {
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? null : parsed;
  }
  return null;
}

/**
 * The SSH connector: one Ed25519 user certificate authority per zone, kept by `deps.keys`; each
 * grant becomes an OpenSSH user certificate for the requester's own key, bound to the grant's
 * window, the role's principals and (when known) where the request came from. Early revocation
 * goes through a per-zone KRL that hosts read with `RevokedKeys`. See NOTES.md for the invariants.
 */
export function createSshConnector(deps: SshConnectorDeps) {
  /** The last KRL successfully published per zone: what hosts have, what verifyRevoked checks. */
  const publishedByZone = new Map<string, Buffer>();
  const lastVersionByZone = new Map<string, bigint>();
  const loadingByZone = new Map<string, Promise<Map<string, RevokedCertificate>>>();
  /** Revokes in one zone run one after another so each published KRL contains every earlier one. */
  const queueByZone = new Map<string, Promise<unknown>>();

  function inZoneQueue<T>(zone: string, work: () => Promise<T>): Promise<T> {
    const previous = queueByZone.get(zone) ?? Promise.resolve();
    const next = previous.then(work, work);
    queueByZone.set(
      zone,
      next.catch(() => undefined),
    );
    return next;
  }

  function revokedSet(zone: string): Promise<Map<string, RevokedCertificate>> {
    let loading = loadingByZone.get(zone);
    if (!loading) {
      loading = (async () => {
        const set = new Map<string, RevokedCertificate>();
        for (const entry of (await deps.loadRevocations?.(zone)) ?? []) {
          const serial = parseSerial(entry.serial);
          if (serial !== null && (entry.keyId === null || KEY_ID_PATTERN.test(entry.keyId))) {
            set.set(serial.toString(), { ...entry, serial: serial.toString() });
          }
        }
        return set;
      })();
      loading.catch(() => loadingByZone.delete(zone));
      loadingByZone.set(zone, loading);
    }
    return loading;
  }

  /** The zone's CA, created on first use (Ed25519, comment `firebreak-<zone>-ca`). */
  function certificateAuthority(zone: string) {
    assertZone(zone);
    return deps.keys.getOrCreate(SSH_CA_KEY_KIND, zone, () => generateEd25519KeyPair(`firebreak-${zone}-ca`));
  }

  function nextVersion(zone: string): bigint {
    const fromClock = BigInt(Math.floor(deps.now() / 1000));
    const previous = lastVersionByZone.get(zone) ?? 0n;
    const version = fromClock > previous ? fromClock : previous + 1n;
    lastVersionByZone.set(zone, version);
    return version;
  }

  /**
   * Builds the complete KRL for a zone from `revoked` (serials, or full entries). Exported for the
   * lead's persistence: after a restart the KRL is rebuilt from the stored set, not from memory.
   */
  async function buildKrl(
    zone: string,
    revoked: Iterable<RevokedCertificate | bigint | string>,
  ): Promise<Buffer> {
    const ca = await certificateAuthority(zone);
    const entries: RevokedCertificate[] = [];
    for (const item of revoked) {
      if (typeof item === "object") {
        entries.push(item);
        continue;
      }
      const serial = parseSerial(item);
      if (serial === null) throw new FirebreakError("VALIDATION_FAILED", "a revoked serial is malformed");
      entries.push({ serial: serial.toString(), keyId: null, validBefore: null });
    }
    return buildKrlFile(ca.publicKey, entries, nextVersion(zone));
  }

  /**
   * Publishes `set` plus `added` as the zone's complete KRL. The held set changes only after the
   * publish succeeded, so it always equals what hosts were given: a failed publish leaves nothing
   * that verifyRevoked could mistake for a revocation, and the retried revoke adds it again.
   */
  async function publishZone(zone: string, set: Map<string, RevokedCertificate>, added: RevokedCertificate) {
    const now = deps.now();
    const next = new Map(set);
    next.set(added.serial, added);
    for (const [serial, entry] of next) {
      if (entry.validBefore !== null && entry.validBefore + REVOKED_RETENTION_AFTER_EXPIRY_MS < now) {
        next.delete(serial);
      }
    }
    const entries = [...next.values()];
    const krl = await buildKrl(zone, entries);
    await deps.publishRevocations?.(zone, krl, entries);
    set.clear();
    for (const [serial, entry] of next) set.set(serial, entry);
    publishedByZone.set(zone, krl);
  }

  /**
   * The KRL hosts of a zone should have: the last one published, or after a restart one rebuilt
   * from the persisted set (`loadRevocations`). For the lead's KRL endpoint and for verifyRevoked.
   */
  async function currentKrl(zone: string): Promise<Buffer> {
    assertZone(zone);
    const published = publishedByZone.get(zone);
    if (published) return published;
    return inZoneQueue(zone, async () => {
      const existing = publishedByZone.get(zone);
      if (existing) return existing;
      const krl = await buildKrl(zone, (await revokedSet(zone)).values());
      publishedByZone.set(zone, krl);
      return krl;
    });
  }

  async function issue(context: IssueContext<"ssh">): Promise<IssuedCredential> {
    const zone = assertZone(context.zone);
    if (context.resource.zone !== zone) {
      throw new FirebreakError("VALIDATION_FAILED", "the resource does not belong to the grant's zone");
    }
    const keyId = assertKeyId(context.grantId);
    const role = context.resource.roles[context.role];
    if (!role) throw new FirebreakError("CONFIG_INVALID", `the resource has no role '${context.role}'`);
    const principals = rolePrincipals(role.principals, context.role);
    const publicKey = parsePublicKey(context.publicKey);
    if (
      !Number.isFinite(context.startsAt) ||
      !Number.isFinite(context.endsAt) ||
      context.endsAt <= context.startsAt
    ) {
      throw new FirebreakError("VALIDATION_FAILED", "the grant window is empty");
    }
    const validAfter = Math.floor((context.startsAt - CLOCK_SKEW_BACKDATE_MS) / 1000) * 1000;
    const validBefore = Math.floor(context.endsAt / 1000) * 1000;
    const sourceAddresses =
      context.sourceCidrs.length > 0
        ? [...new Set(context.sourceCidrs.map(normalizeCidr))]
        : context.clientAddress
          ? [hostCidr(context.clientAddress)].filter((cidr): cidr is string => cidr !== null)
          : [];
    const serial = serialForGrant(keyId);

    const options = ["-O", "clear", "-O", "permit-pty"];
    if (role.allowForwarding === true) {
      options.push("-O", "permit-port-forwarding", "-O", "permit-agent-forwarding");
    }
    if (sourceAddresses.length > 0) options.push("-O", `source-address=${sourceAddresses.join(",")}`);

    const ca = await certificateAuthority(zone);
    const certificate = await withPrivateDirectory(async (directory) => {
      const userKeyPath = join(directory, "user.pub");
      await writeFile(userKeyPath, `${publicKey.line} ${keyId}\n`, { mode: 0o600, flag: "wx" });
      await withPrivateKeyFile(directory, ca.privateKey, (caPath) =>
        keygenOrFail("sign the certificate", [
          "-q",
          "-s",
          caPath,
          "-I",
          keyId,
          "-n",
          principals.join(","),
          "-z",
          serial.toString(),
          "-V",
          `${keygenTime(validAfter)}:${keygenTime(validBefore)}`,
          ...options,
          userKeyPath,
        ]),
      );
      return (await readFile(join(directory, "user-cert.pub"), "utf8")).trim();
    });

    return {
      externalId: keyId,
      detail: {
        keyId,
        serial: serial.toString(),
        principals,
        validAfter: new Date(validAfter).toISOString(),
        validBefore: new Date(validBefore).toISOString(),
        caFingerprint: parsePublicKey(ca.publicKey).fingerprint,
        publicKeyFingerprint: publicKey.fingerprint,
        sourceAddresses,
        forwarding: role.allowForwarding === true,
        host: context.resource.address ?? null,
      },
      secret: `${certificate}\n`,
    };
  }

  /** What a revocation names: serial (from detail, else derived) and key id, and when it expires. */
  function revocationOf(context: RevokeContext<"ssh">): RevokedCertificate & { keyId: string } {
    const keyId = assertKeyId(context.externalId || context.grantId);
    const serial = parseSerial(context.detail.serial) ?? serialForGrant(keyId);
    return {
      serial: serial.toString(),
      keyId,
      validBefore: parseInstant(context.detail.validBefore),
    };
  }

  const connector: CredentialConnector<"ssh"> = {
    kind: "ssh",
    available: true,
    plannedExternalId: (grantId: string) => grantId,
    issue,

    /**
     * Adds the certificate to its zone's KRL and publishes the complete list. A certificate past
     * its valid-before is left alone: it has expired by itself on every host.
     */
    async revoke(context: RevokeContext<"ssh">): Promise<void> {
      const zone = assertZone(context.resource.zone);
      const entry = revocationOf(context);
      if (entry.validBefore !== null && deps.now() >= entry.validBefore) return;
      await inZoneQueue(zone, async () => {
        await publishZone(zone, await revokedSet(zone), entry);
      });
    },

    /**
     * True when the certificate has expired, or when the KRL last published for its zone revokes
     * it. The check signs a throwaway probe key with the zone CA under the same serial and key id
     * (valid only in 1970, so it can never log in) and asks `ssh-keygen -Q` about the published
     * bytes: it proves what hosts were given, not what this process remembers.
     */
    async verifyRevoked(context: RevokeContext<"ssh">): Promise<boolean> {
      const zone = assertZone(context.resource.zone);
      const entry = revocationOf(context);
      if (entry.validBefore !== null && deps.now() >= entry.validBefore) return true;
      const krl = await currentKrl(zone);
      const ca = await certificateAuthority(zone);
      const probe = await withPrivateDirectory(async (directory) => {
        const probePath = join(directory, "probe");
        await keygenOrFail("create a probe key", [
          "-q",
          "-t",
          "ed25519",
          "-N",
          "",
          "-C",
          "probe",
          "-f",
          probePath,
        ]);
        await withPrivateKeyFile(directory, ca.privateKey, (caPath) =>
          keygenOrFail("sign the probe certificate", [
            "-q",
            "-s",
            caPath,
            "-I",
            entry.keyId,
            "-n",
            "firebreak-probe",
            "-z",
            entry.serial,
            "-V",
            "0x1:0x2",
            "-O",
            "clear",
            `${probePath}.pub`,
          ]),
        );
        return readFile(`${probePath}-cert.pub`, "utf8");
      });
      return krlRevokes(krl, probe);
    },

    /** Certificates cannot be listed on hosts; their expiry is built in. */
    async listManaged(): Promise<string[]> {
      return [];
    },

    async close(): Promise<void> {
      await Promise.allSettled([...queueByZone.values()]);
    },
  };

  return {
    ...connectorForType(connector),
    /** The zone CA's public key line (creating the CA on first use), for `firebreak ssh-ca`. */
    async caPublicKey(zone: string): Promise<string> {
      return (await certificateAuthority(zone)).publicKey;
    },
    buildKrl,
    currentKrl,
    /** The revoked set held for a zone, for persistence and display. */
    async revokedCertificates(zone: string): Promise<RevokedCertificate[]> {
      return [...(await revokedSet(assertZone(zone))).values()];
    },
  };
}

export type SshConnector = ReturnType<typeof createSshConnector>;

/** sshd_config tokens we print: an absolute path of safe characters, nothing sshd would split or expand. */
const CONFIG_PATH_PATTERN = /^\/[A-Za-z0-9_./-]{1,255}$/;

/**
 * The sshd_config lines a host in `zone` needs, for `firebreak ssh-ca <zone>`: trust the zone's
 * user CA, read the zone's KRL at every login, and map certificate principals to local accounts.
 * The CA public key is printed as a comment with the file it belongs in.
 */
export function sshdConfigLines(
  zone: string,
  caPublicKey: string,
  krlPath: string,
  options: { caKeyPath?: string; principalsDirectory?: string } = {},
): string[] {
  assertZone(zone);
  const ca = parsePublicKey(caPublicKey);
  const caKeyPath = options.caKeyPath ?? `/etc/ssh/firebreak-${zone}-user-ca.pub`;
  const principalsDirectory = options.principalsDirectory ?? "/etc/ssh/auth_principals";
  for (const path of [krlPath, caKeyPath, principalsDirectory]) {
    if (!isAbsolute(path) || !CONFIG_PATH_PATTERN.test(path)) {
      throw new FirebreakError("VALIDATION_FAILED", "sshd_config paths must be absolute and plain");
    }
  }
  return [
    `# Firebreak break-glass access for zone '${zone}' (user CA ${ca.fingerprint}).`,
    `# Put the CA public key in ${caKeyPath}:`,
    `#   ${ca.line} firebreak-${zone}-ca`,
    `TrustedUserCAKeys ${caKeyPath}`,
    `# Keep ${krlPath} current from Firebreak's KRL for '${zone}' (e.g. fetched every minute).`,
    "# sshd reads it at every login; if it is missing or unreadable, sshd refuses all key logins.",
    `RevokedKeys ${krlPath}`,
    `# One file per local account, listing the certificate principals (the role's 'principals')`,
    "# allowed to log in as it, e.g. 'ops' in /etc/ssh/auth_principals/root.",
    `AuthorizedPrincipalsFile ${principalsDirectory}/%u`,
  ];
}

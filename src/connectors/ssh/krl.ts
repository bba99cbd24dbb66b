import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FirebreakError } from "../../errors.js";
import { keygenOrFail, runKeygen, withPrivateDirectory } from "./keygen.js";
import type { RevokedCertificate } from "./revocation.repo.js";

/**
 * OpenSSH key revocation lists (KRLs) for the per-zone user CAs. A KRL names certificates of one
 * CA by serial number and by key id; sshd reads the file named by `RevokedKeys` at every login,
 * so replacing the file revokes at once, with no restart.
 */

/** Serial numbers are 64-bit in OpenSSH; we keep to 63 bits so they fit a signed BIGINT column. */
const SERIAL_MASK = (1n << 63n) - 1n;

/** Key ids we sign and revoke: the grant id shape, nothing a KRL spec line could misread. */
export const KEY_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * The certificate serial for a grant: the first 63 bits of SHA-256 of the grant id, never zero
 * (OpenSSH treats serial 0 as "no serial", which a KRL cannot name). Deterministic, so a
 * revocation can name the serial even when the issued detail was lost in a crash.
 */
export function serialForGrant(grantId: string): bigint {
  const digest = createHash("sha256").update(`firebreak-ssh-serial:${grantId}`).digest();
  const serial = digest.readBigUInt64BE(0) & SERIAL_MASK;
  return serial === 0n ? 1n : serial;
}

/** Parses a serial from stored detail (a decimal string, a safe integer or a bigint); null if not one. */
export function parseSerial(value: unknown): bigint | null {
  let serial: bigint | null = null;
  if (typeof value === "bigint") serial = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) serial = BigInt(value);
  else if (typeof value === "string" && /^[1-9][0-9]{0,18}$/.test(value)) serial = BigInt(value);
  return serial !== null && serial > 0n && serial <= SERIAL_MASK ? serial : null;
}

// Declared with the rows that store it, so the repository imports nothing of the connector.
export type { RevokedCertificate };

/** The KRL specification text: one `serial:` and one `id:` line per certificate, validated first. */
export function krlSpecification(revoked: Iterable<RevokedCertificate>): string {
  const lines: string[] = [];
  for (const entry of revoked) {
    const serial = parseSerial(entry.serial);
    if (serial === null || (entry.keyId !== null && !KEY_ID_PATTERN.test(entry.keyId))) {
      throw new FirebreakError("VALIDATION_FAILED", "a revoked certificate entry is malformed");
    }
    lines.push(`serial: ${serial}`);
    if (entry.keyId !== null) lines.push(`id: ${entry.keyId}`);
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/**
 * Builds a complete KRL for one CA: `ssh-keygen -k -f krl -s ca.pub -z version spec`. The list is
 * always generated whole from `revoked`, never updated in place, so the published file is exactly
 * the set the caller holds. `version` lets hosts and operators tell a newer list from an older one.
 */
export async function buildKrlFile(
  caPublicKey: string,
  revoked: Iterable<RevokedCertificate>,
  version: bigint,
): Promise<Buffer> {
  const specification = krlSpecification(revoked);
  return withPrivateDirectory(async (directory) => {
    const caPath = join(directory, "ca.pub");
    const specPath = join(directory, "revoked.spec");
    const krlPath = join(directory, "revoked.krl");
    await writeFile(caPath, `${caPublicKey.trim()}\n`, { mode: 0o600 });
    await writeFile(specPath, specification, { mode: 0o600 });
    await keygenOrFail("build the key revocation list", [
      "-k",
      "-f",
      krlPath,
      "-s",
      caPath,
      "-z",
      version.toString(),
      specPath,
    ]);
    return readFile(krlPath);
  });
}

/**
 * Asks `ssh-keygen -Q` whether `krl` revokes `certificate` (a certificate line). ssh-keygen exits
 * non-zero both for "revoked" and for any error, so the answer is read from its report line, and
 * anything else is an error rather than a guess.
 */
export async function krlRevokes(krl: Buffer, certificate: string): Promise<boolean> {
  return withPrivateDirectory(async (directory) => {
    const krlPath = join(directory, "revoked.krl");
    const certificatePath = join(directory, "probe-cert.pub");
    await writeFile(krlPath, krl, { mode: 0o600 });
    await writeFile(certificatePath, `${certificate.trim()}\n`, { mode: 0o600 });
    const result = await runKeygen(["-Q", "-f", krlPath, certificatePath]);
    if (result.code === 0 && /: ok$/m.test(result.stdout)) return false;
    if (result.code !== 0 && /: REVOKED$/m.test(result.stdout)) return true;
    throw new FirebreakError("CONNECTOR_FAILED", "ssh-keygen could not check the key revocation list");
  });
}

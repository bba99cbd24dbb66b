import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname } from "node:path";
import { FirebreakError } from "../errors.js";

/**
 * Encryption at rest for secrets Firebreak must keep (issued passwords until delivered, SSH CA
 * private keys): AES-256-GCM under a master key. The stored form is
 * `v1.<key id>.<iv b64url>.<tag b64url>.<ciphertext b64url>`; the key id (first 8 hex of the key's
 * SHA-256) lets `rotate-master-key` tell old ciphertexts from new ones. `aad` binds a ciphertext
 * to its row, so one cannot be copied into another row and decrypted there.
 */
export interface SecretBox {
  readonly keyId: string;
  seal(plaintext: string, aad: string): string;
  open(sealed: string, aad: string): string;
}

export function keyIdOf(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 8);
}

export function createSecretBox(key: Buffer, previous: Buffer[] = []): SecretBox {
  if (key.length !== 32)
    throw new FirebreakError("CONFIG_INVALID", "the master key must be 32 bytes (base64 or hex encoded)");
  const keys = new Map([[keyIdOf(key), key], ...previous.map((k) => [keyIdOf(k), k] as const)]);
  const keyId = keyIdOf(key);
  return {
    keyId,
    seal(plaintext, aad) {
      const iv = randomBytes(12);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      cipher.setAAD(Buffer.from(aad));
      const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
      return [
        "v1",
        keyId,
        iv.toString("base64url"),
        cipher.getAuthTag().toString("base64url"),
        body.toString("base64url"),
      ].join(".");
    },
    open(sealed, aad) {
      const [version, id, iv, tag, body] = sealed.split(".");
      const k = id ? keys.get(id) : undefined;
      if (version !== "v1" || !k || !iv || !tag || body === undefined) {
        throw new FirebreakError(
          "INTERNAL",
          "a stored secret cannot be decrypted with the configured master key",
        );
      }
      try {
        const decipher = createDecipheriv("aes-256-gcm", k, Buffer.from(iv, "base64url"));
        decipher.setAAD(Buffer.from(aad));
        decipher.setAuthTag(Buffer.from(tag, "base64url"));
        return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString(
          "utf8",
        );
      } catch {
        throw new FirebreakError("INTERNAL", "a stored secret failed its integrity check");
      }
    },
  };
}

/** Decodes a 32-byte key written as 64 hex digits or base64. */
export function decodeMasterKey(text: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed)
    ? Buffer.from(trimmed, "hex")
    : Buffer.from(trimmed, "base64");
  if (key.length !== 32)
    throw new FirebreakError(
      "CONFIG_INVALID",
      "the master key must decode to 32 bytes (64 hex digits or base64)",
    );
  return key;
}

export interface MasterKeys {
  /** Seals new secrets. */
  current: Buffer;
  /** Still opens secrets sealed before a rotation finished. */
  previous: Buffer[];
}

function readKeyLines(path: string): Buffer[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map(decodeMasterKey);
}

/**
 * The master key: `FIREBREAK_MASTER_KEY` when set (with `FIREBREAK_MASTER_KEY_PREVIOUS`, comma-
 * separated, during a rotation), else the key file. In development mode a missing key file is
 * created (0600) on first start; in production mode a missing key is an error, since a generated
 * key next to the database protects nothing. A key file rotation leaves `<file>.next` (the new key,
 * promoted here if a crash interrupted the rotation) and `<file>.previous` (older keys, for reading).
 */
export function loadMasterKeys(options: {
  env: NodeJS.ProcessEnv;
  keyFile: string;
  production: boolean;
}): MasterKeys {
  const fromEnv = options.env.FIREBREAK_MASTER_KEY;
  if (fromEnv) {
    const previous = (options.env.FIREBREAK_MASTER_KEY_PREVIOUS ?? "")
      .split(",")
      .filter((k) => k.trim())
      .map(decodeMasterKey);
    return { current: decodeMasterKey(fromEnv), previous };
  }
  const next = `${options.keyFile}.next`;
  if (existsSync(next)) {
    // A rotation wrote the new key and may have re-sealed the database with it: finish it.
    const old = existsSync(options.keyFile) ? readFileSync(options.keyFile, "utf8").trim() : "";
    if (old) writeFileSync(`${options.keyFile}.previous`, `${old}\n`, { mode: 0o600, flag: "a" });
    renameSync(next, options.keyFile);
  }
  const previous = readKeyLines(`${options.keyFile}.previous`);
  if (existsSync(options.keyFile)) {
    const mode = statSync(options.keyFile).mode & 0o077;
    if (mode !== 0 && options.production) {
      throw new FirebreakError(
        "CONFIG_INVALID",
        `the master key file ${options.keyFile} is readable by group or others; chmod 600 it`,
      );
    }
    return { current: decodeMasterKey(readFileSync(options.keyFile, "utf8")), previous };
  }
  if (options.production) {
    throw new FirebreakError(
      "CONFIG_INVALID",
      "production mode needs a master key: set FIREBREAK_MASTER_KEY or provide the key file",
    );
  }
  const key = randomBytes(32);
  mkdirSync(dirname(options.keyFile), { recursive: true, mode: 0o700 });
  // Written whole to a private temporary file, then linked into place: several processes starting
  // at once agree on one key (the link fails for all but the first) and none reads a half-written file.
  const temporary = `${options.keyFile}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(temporary, `${key.toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  try {
    linkSync(temporary, options.keyFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    return { current: decodeMasterKey(readFileSync(options.keyFile, "utf8")), previous };
  } finally {
    unlinkSync(temporary);
  }
  chmodSync(options.keyFile, 0o600);
  return { current: key, previous };
}

import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPrivateKey,
  createPublicKey,
  sign,
  verify,
} from "node:crypto";
import { armor, Decrypter, Encrypter } from "age-encryption";
import { combine } from "shamir-secret-sharing";
import { z } from "zod";
import { type ErrorCode, FirebreakError } from "../errors.js";
import { canonicalJson } from "../shared/canonical-json.js";

/**
 * The emergency kit file and everything done with it offline (src/emergency/NOTES.md): the
 * kit's signature, a custodian's share, the opening and its journal. This module imports nothing
 * of the server, its database or its identity provider, so `firebreak emergency share|open`
 * work with all three down.
 */

export const KIT_FORMAT = "firebreak-emergency-kit-v1";
export const SHARE_FORMAT = "firebreak-emergency-share-v1";
export const JOURNAL_FORMAT = "firebreak-emergency-opening-v1";
const b64 = z.string().regex(/^[A-Za-z0-9+/=]*$/);

export const kitFileSchema = z.strictObject({
  format: z.literal(KIT_FORMAT),
  kitId: z.string().regex(/^kit_[a-z0-9]{8,40}$/),
  zone: z.string(),
  resource: z.string(),
  resourceType: z.string(),
  role: z.string(),
  createdAt: z.string(),
  endsAt: z.string(),
  threshold: z.number().int().min(2),
  /** The sealed credential: AES-256-GCM under the key that the shares split, with the kit id as AAD. */
  sealed: z.strictObject({ algorithm: z.literal("AES-256-GCM"), iv: b64, ciphertext: b64, tag: b64 }),
  /** The Ed25519 public key (SPKI PEM) of this kit's journal key, whose private half is sealed with the credential. */
  journalKey: z.string(),
  shares: z
    .array(z.strictObject({ custodian: z.string(), recipient: z.string(), encrypted: z.string() }))
    .min(2),
  signature: z.strictObject({ algorithm: z.literal("Ed25519"), keyId: z.string(), value: b64 }),
});
export type KitFile = z.infer<typeof kitFileSchema>;
export type UnsignedKit = Omit<KitFile, "signature">;

export const shareFileSchema = z.strictObject({
  format: z.literal(SHARE_FORMAT),
  kitId: z.string(),
  custodian: z.string(),
  share: b64,
});
export type ShareFile = z.infer<typeof shareFileSchema>;

/** What the sealed part holds once opened. */
export const sealedPayloadSchema = z.strictObject({
  credential: z.strictObject({
    type: z.string(),
    username: z.string(),
    secret: z.string(),
    detail: z.record(z.string(), z.unknown()),
  }),
  journalPrivateKey: z.string(),
});
export type SealedPayload = z.infer<typeof sealedPayloadSchema>;

export const journalEntrySchema = z.strictObject({
  format: z.literal(JOURNAL_FORMAT),
  kitId: z.string(),
  zone: z.string(),
  resource: z.string(),
  role: z.string(),
  opener: z.string(),
  reason: z.string(),
  custodians: z.array(z.string()),
  openedAt: z.string(),
  /** SHA-256 of the previous line of the journal (hex), or "" for the first. */
  previous: z.string(),
  /** Ed25519 signature by the kit's journal key over the entry without it. */
  signature: b64,
});
export type JournalEntry = z.infer<typeof journalEntrySchema>;

/** The bytes the audit key signs for a kit: its purpose and every field but the signature. */
export function kitMessage(kit: UnsignedKit): Buffer {
  return Buffer.from(canonicalJson({ purpose: KIT_FORMAT, kit }), "utf8");
}

function journalMessage(entry: Omit<JournalEntry, "signature">): Buffer {
  return Buffer.from(canonicalJson({ purpose: JOURNAL_FORMAT, entry }), "utf8");
}

function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: "spki", format: "der" });
  return `ed25519:${createHash("sha256").update(der).digest("hex").slice(0, 32)}`;
}

const refuse = (code: ErrorCode, message: string) => new FirebreakError(code, message);

/** Parses a kit file's text; KIT_INVALID naming what is wrong, never its content. */
export function parseKit(text: string): KitFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw refuse("KIT_INVALID", "the kit file is not JSON");
  }
  const parsed = kitFileSchema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw refuse(
      "KIT_INVALID",
      `not a Firebreak emergency kit (${first?.path.join(".") || "format"}: ${first?.message})`,
    );
  }
  return parsed.data;
}

/**
 * Checks the kit's signature against the pinned audit public key (PEM). A kit changed in any
 * field, or signed by another key, is refused with KIT_TAMPERED.
 */
export function verifyKit(kit: KitFile, pinnedPublicKeyPem: string): void {
  let keyId: string;
  try {
    keyId = keyIdOf(pinnedPublicKeyPem);
  } catch {
    throw refuse("KIT_INVALID", "the pinned public key is not an Ed25519 public key in PEM");
  }
  if (kit.signature.keyId !== keyId)
    throw refuse(
      "KIT_TAMPERED",
      `the kit is signed by ${kit.signature.keyId}, not by the pinned key ${keyId}: refused`,
    );
  const { signature, ...unsigned } = kit;
  let ok = false;
  try {
    ok = verify(
      null,
      kitMessage(unsigned),
      createPublicKey(pinnedPublicKeyPem),
      Buffer.from(signature.value, "base64"),
    );
  } catch {
    ok = false;
  }
  if (!ok)
    throw refuse(
      "KIT_TAMPERED",
      "the kit's signature does not match its content: it was changed after Firebreak signed it; refused",
    );
}

/** Signs an unsigned kit with the audit key (PEM or KeyObject private key). */
export function signKit(kit: UnsignedKit, privateKey: Parameters<typeof sign>[2], keyId: string): KitFile {
  return {
    ...kit,
    signature: {
      algorithm: "Ed25519",
      keyId,
      value: sign(null, kitMessage(kit), privateKey).toString("base64"),
    },
  };
}

/** Encrypts one share to a custodian's age X25519 recipient (ASCII-armoured age file). */
export async function encryptShare(share: ShareFile, recipient: string): Promise<string> {
  const encrypter = new Encrypter();
  encrypter.addRecipient(recipient);
  return armor.encode(await encrypter.encrypt(canonicalJson(share)));
}

/**
 * A custodian decrypts their share with their own age identity (`AGE-SECRET-KEY-1…`). Refused
 * when the kit holds no share for that identity.
 */
export async function decryptShare(kit: KitFile, identity: string): Promise<ShareFile> {
  const decrypter = new Decrypter();
  try {
    decrypter.addIdentity(identity.trim());
  } catch {
    throw refuse("SHARE_INVALID", "the identity is not an age secret key (AGE-SECRET-KEY-1…)");
  }
  for (const entry of kit.shares) {
    let text: string;
    try {
      text = await decrypter.decrypt(armor.decode(entry.encrypted), "text");
    } catch {
      continue;
    }
    const share = shareFileSchema.parse(JSON.parse(text));
    if (share.kitId !== kit.kitId || share.custodian !== entry.custodian)
      throw refuse("KIT_TAMPERED", "the share does not belong to this kit: refused");
    return share;
  }
  throw refuse("SHARE_INVALID", "this identity holds no share of this kit");
}

export function parseShare(text: string, name: string): ShareFile {
  try {
    return shareFileSchema.parse(JSON.parse(text));
  } catch {
    throw refuse("SHARE_INVALID", `${name} is not a decrypted Firebreak share`);
  }
}

/**
 * Combines k shares and unseals the credential. Fewer than the threshold, duplicates, shares of
 * another kit, or shares that do not combine to the key are refused; nothing is printed then.
 */
export async function unseal(kit: KitFile, shares: readonly ShareFile[]): Promise<SealedPayload> {
  const foreign = shares.find((share) => share.kitId !== kit.kitId);
  if (foreign)
    throw refuse("SHARE_FOREIGN", `a share is of kit ${foreign.kitId}, not of ${kit.kitId}: refused`);
  const custodians = new Set(shares.map((share) => share.custodian));
  if (custodians.size !== shares.length)
    throw refuse("SHARE_DUPLICATE", "the same custodian's share was given twice");
  if (shares.length < kit.threshold)
    throw refuse(
      "SHARES_TOO_FEW",
      `${shares.length} share${shares.length === 1 ? "" : "s"} given; this kit opens with ${kit.threshold} of ${kit.shares.length}`,
    );
  let key: Uint8Array;
  try {
    key = await combine(shares.map((share) => new Uint8Array(Buffer.from(share.share, "base64"))));
  } catch {
    throw refuse("SHARE_INVALID", "the shares do not combine (damaged or mixed shares)");
  }
  let plain: Buffer;
  try {
    const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(kit.sealed.iv, "base64"));
    decipher.setAAD(Buffer.from(kit.kitId, "utf8"));
    decipher.setAuthTag(Buffer.from(kit.sealed.tag, "base64"));
    plain = Buffer.concat([decipher.update(Buffer.from(kit.sealed.ciphertext, "base64")), decipher.final()]);
  } catch {
    throw refuse(
      "SHARE_INVALID",
      "the shares do not open this kit (damaged shares, or a share of another kit)",
    );
  }
  return sealedPayloadSchema.parse(JSON.parse(plain.toString("utf8")));
}

/** Seals a payload under a 32-byte key, bound to the kit id. */
export function seal(payload: SealedPayload, key: Uint8Array, kitId: string, iv: Buffer): KitFile["sealed"] {
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(Buffer.from(kitId, "utf8"));
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(payload), "utf8"), cipher.final()]);
  return {
    algorithm: "AES-256-GCM",
    iv: iv.toString("base64"),
    ciphertext: ciphertext.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
  };
}

/** The journal line recording an opening, signed with the kit's journal key (only an opener has it). */
export function journalEntry(
  kit: KitFile,
  payload: SealedPayload,
  opening: {
    opener: string;
    reason: string;
    custodians: string[];
    openedAt: Date;
    previousLine: string | null;
  },
): JournalEntry {
  const unsigned = {
    format: JOURNAL_FORMAT,
    kitId: kit.kitId,
    zone: kit.zone,
    resource: kit.resource,
    role: kit.role,
    opener: opening.opener,
    reason: opening.reason,
    custodians: [...opening.custodians].sort(),
    openedAt: opening.openedAt.toISOString(),
    previous:
      opening.previousLine === null ? "" : createHash("sha256").update(opening.previousLine).digest("hex"),
  } as const;
  const signature = sign(null, journalMessage(unsigned), createPrivateKey(payload.journalPrivateKey));
  return { ...unsigned, signature: signature.toString("base64") };
}

/** True when the entry was signed by the journal key of the kit whose public half is given. */
export function verifyJournalEntry(entry: JournalEntry, journalPublicKeyPem: string): boolean {
  const { signature, ...unsigned } = entry;
  try {
    return verify(
      null,
      journalMessage(unsigned),
      createPublicKey(journalPublicKeyPem),
      Buffer.from(signature, "base64"),
    );
  } catch {
    return false;
  }
}

/** Reads a journal (one JSON entry per line); lines that are not entries are reported, not trusted. */
export function parseJournal(text: string): { entries: JournalEntry[]; unreadable: number } {
  const entries: JournalEntry[] = [];
  let unreadable = 0;
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    try {
      entries.push(journalEntrySchema.parse(JSON.parse(line)));
    } catch {
      unreadable++;
    }
  }
  return { entries, unreadable };
}

/** How to connect with the opened credential, one line, for the opener's terminal. */
export function connectHint(kit: KitFile, payload: SealedPayload): string {
  const { detail, username } = payload.credential;
  const host = String(detail.host ?? "HOST");
  const port = detail.port === undefined ? "" : String(detail.port);
  switch (kit.resourceType) {
    case "postgres":
      return `PGPASSWORD=<password> psql "host=${host} port=${port || 5432} user=${username} dbname=${String(detail.database ?? "postgres")}"`;
    case "mariadb":
      return `mysql -h ${host} -P ${port || 3306} -u ${username} -p`;
    case "ssh":
      return `save the private key and certificate below, then: ssh -i KEY -o CertificateFile=KEY-cert.pub ${username}@HOST`;
    default:
      return `user ${username} on ${host}${port ? `:${port}` : ""}`;
  }
}

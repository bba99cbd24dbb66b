import { createHash } from "node:crypto";
import { isIPv4, isIPv6 } from "node:net";
import { FirebreakError } from "../../errors.js";

/**
 * Strict checks for everything that reaches `ssh-keygen` from outside: the requester's public key,
 * the role's principals, source CIDRs. They run before any file is written or process started, so
 * a rejected value never touches the CA.
 */

/** Key types we sign. No DSA (broken), no certificates (signing a certificate is meaningless). */
const KEY_FIELDS: Record<string, readonly string[]> = {
  "ssh-ed25519": ["type", "key"],
  "sk-ssh-ed25519@openssh.com": ["type", "key", "application"],
  "ecdsa-sha2-nistp256": ["type", "curve", "point"],
  "ecdsa-sha2-nistp384": ["type", "curve", "point"],
  "ecdsa-sha2-nistp521": ["type", "curve", "point"],
  "sk-ecdsa-sha2-nistp256@openssh.com": ["type", "curve", "point", "application"],
  "ssh-rsa": ["type", "exponent", "modulus"],
};
export const ALLOWED_KEY_TYPES: readonly string[] = Object.keys(KEY_FIELDS);

/** Longer than any key we accept (an RSA-16384 line is about 2,800 characters). */
export const MAX_PUBLIC_KEY_LENGTH = 8192;
const MIN_RSA_BITS = 2048;

export interface ParsedPublicKey {
  type: string;
  /** The base64 key blob, canonical. */
  blob: string;
  /** `type blob`, without the comment: the only form ever written to disk. */
  line: string;
  /** `SHA256:…`, as ssh-keygen -l prints it. */
  fingerprint: string;
}

function refuse(message: string): never {
  throw new FirebreakError("VALIDATION_FAILED", message);
}

/** Splits an SSH wire-format blob into its length-prefixed fields; null unless it is exactly that. */
function wireFields(blob: Buffer): Buffer[] | null {
  const fields: Buffer[] = [];
  let offset = 0;
  while (offset < blob.length) {
    if (offset + 4 > blob.length) return null;
    const length = blob.readUInt32BE(offset);
    offset += 4;
    if (length > blob.length - offset) return null;
    fields.push(blob.subarray(offset, offset + length));
    offset += length;
  }
  return fields;
}

/**
 * Validates an `authorized_keys`-format public key: `type base64 [comment]` on one line, nothing
 * before the type (so no `command=`/`from=` options), a type from ALLOWED_KEY_TYPES, canonical
 * base64 whose decoded blob names the same type and has exactly that type's fields (RSA at least
 * 2048 bits). Surrounding whitespace is trimmed; any control character, newline or non-ASCII
 * character anywhere is refused. The comment is checked and then dropped.
 */
export function parsePublicKey(text: unknown): ParsedPublicKey {
  if (typeof text !== "string" || text.trim() === "") refuse("an SSH public key is required");
  if (text.length > MAX_PUBLIC_KEY_LENGTH) refuse("the SSH public key is too long");
  // Only ASCII whitespace is trimmed (String.trim would also drop U+2028 and friends, hiding them).
  const trimmed = text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "");
  if (!/^[\x20-\x7e]+$/.test(trimmed)) {
    refuse("the SSH public key must be a single line of printable ASCII");
  }
  const match = /^([a-z0-9@.-]+) ([A-Za-z0-9+/]+={0,2})(?: +([\x20-\x7e]{0,256}))?$/.exec(trimmed);
  if (!match) refuse("the SSH public key must be 'type base64 [comment]' with no options");
  const [, type = "", encoded = ""] = match;
  const expected = KEY_FIELDS[type];
  if (!expected)
    refuse(`SSH key type '${type}' is not accepted (use one of: ${ALLOWED_KEY_TYPES.join(", ")})`);
  const blob = Buffer.from(encoded, "base64");
  if (encoded.length % 4 !== 0 || blob.toString("base64") !== encoded) {
    refuse("the SSH public key is not canonical base64");
  }
  const fields = wireFields(blob);
  if (!fields || fields.length !== expected.length || fields[0]?.toString("latin1") !== type) {
    refuse("the SSH public key's contents do not match its type");
  }
  if (type === "ssh-ed25519" || type === "sk-ssh-ed25519@openssh.com") {
    if (fields[1]?.length !== 32) refuse("the Ed25519 public key has the wrong length");
  } else if (type.startsWith("ecdsa-sha2-") || type.startsWith("sk-ecdsa-sha2-")) {
    const curve = type.replace(/^(sk-)?ecdsa-sha2-/, "").replace(/@openssh\.com$/, "");
    if (fields[1]?.toString("latin1") !== curve) refuse("the ECDSA public key names another curve");
  } else if (type === "ssh-rsa") {
    const modulus = fields[2] ?? Buffer.alloc(0);
    const bits = modulusBits(modulus);
    if (bits < MIN_RSA_BITS) refuse(`RSA keys must have at least ${MIN_RSA_BITS} bits`);
  }
  return {
    type,
    blob: encoded,
    line: `${type} ${encoded}`,
    fingerprint: fingerprintOf(blob),
  };
}

function modulusBits(modulus: Buffer): number {
  let start = 0;
  while (start < modulus.length && modulus[start] === 0) start += 1;
  if (start === modulus.length) return 0;
  const leading = modulus[start] ?? 0;
  return (modulus.length - start - 1) * 8 + (32 - Math.clz32(leading));
}

/** `SHA256:<unpadded base64>` of a key blob, the fingerprint form OpenSSH prints and logs. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/**
 * Certificate principals: lowercase letters, digits, `_`, `.`, `-`, starting with a letter, digit
 * or `_`, at most 63 characters. Commas (ssh-keygen's list separator), quotes, spaces and
 * wildcards can never be part of one.
 */
export const PRINCIPAL_PATTERN = /^[a-z0-9_][a-z0-9_.-]{0,62}$/;

/**
 * The principals a role signs into a certificate. A role without principals is a configuration
 * error, never an empty list: a certificate signed with no principals is valid for every user.
 */
export function rolePrincipals(principals: readonly string[] | undefined, role: string): string[] {
  if (!principals || principals.length === 0) {
    throw new FirebreakError("CONFIG_INVALID", `SSH role '${role}' names no principals`);
  }
  for (const principal of principals) {
    if (typeof principal !== "string" || !PRINCIPAL_PATTERN.test(principal)) {
      throw new FirebreakError(
        "CONFIG_INVALID",
        `SSH role '${role}' has a principal that is not 1-63 of a-z, 0-9, '_', '.', '-'`,
      );
    }
  }
  return [...new Set(principals)];
}

function ipv4Bytes(address: string): number[] {
  return address.split(".").map(Number);
}

/** 16 bytes of an IPv6 address; the caller has checked it with isIPv6 and excluded scope ids. */
function ipv6Bytes(address: string): number[] {
  let text = address;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  const last = text.slice(lastColon + 1);
  if (isIPv4(last)) {
    const [a = 0, b = 0, c = 0, d = 0] = ipv4Bytes(last);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", rest] = text.split("::") as [string, string | undefined];
  const headGroups = head === "" ? [] : head.split(":");
  const restGroups = rest === undefined || rest === "" ? [] : rest.split(":");
  const zeros = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill("0"), ...restGroups];
  for (const group of groups) {
    const value = Number.parseInt(group, 16);
    tail.push(value >> 8, value & 0xff);
  }
  return tail;
}

function maskBytes(bytes: number[], prefix: number): number[] {
  return bytes.map((byte, index) => {
    const bitsHere = Math.max(0, Math.min(8, prefix - index * 8));
    return byte & ((0xff << (8 - bitsHere)) & 0xff);
  });
}

/**
 * A CIDR in the form OpenSSH's `source-address` accepts: IPv4 or IPv6, prefix within range, host
 * bits cleared (`10.20.0.5/24` becomes `10.20.0.0/24`, the network the configuration means;
 * ssh-keygen would refuse the former). An IPv4-mapped IPv6 address becomes plain IPv4.
 */
export function normalizeCidr(cidr: unknown): string {
  if (typeof cidr !== "string" || cidr.length > 64) refuse("a source CIDR is malformed");
  const match = /^([0-9A-Fa-f:.]+)\/([0-9]{1,3})$/.exec(cidr);
  if (!match) refuse(`'${cidr}' is not a CIDR such as 10.20.0.0/24`);
  const [, rawAddress = "", rawPrefix = ""] = match;
  let address = rawAddress;
  let prefix = Number(rawPrefix);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] && isIPv4(mapped[1]) && prefix >= 96) {
    address = mapped[1];
    prefix -= 96;
  }
  if (isIPv4(address)) {
    if (prefix > 32) refuse(`'${cidr}' has a prefix longer than 32`);
    return `${maskBytes(ipv4Bytes(address), prefix).join(".")}/${prefix}`;
  }
  if (isIPv6(address)) {
    if (prefix > 128) refuse(`'${cidr}' has a prefix longer than 128`);
    const bytes = maskBytes(ipv6Bytes(address), prefix);
    const groups: string[] = [];
    for (let index = 0; index < 16; index += 2) {
      groups.push((((bytes[index] ?? 0) << 8) | (bytes[index + 1] ?? 0)).toString(16));
    }
    return `${groups.join(":")}/${prefix}`;
  }
  refuse(`'${cidr}' is not a CIDR such as 10.20.0.0/24`);
}

/** The single-host CIDR of a client address (`/32` or `/128`); null when it is not an IP address. */
export function hostCidr(address: string): string | null {
  const plain = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] ?? address;
  if (isIPv4(plain)) return normalizeCidr(`${plain}/32`);
  if (isIPv6(plain) && !plain.includes("%")) return normalizeCidr(`${plain}/128`);
  return null;
}

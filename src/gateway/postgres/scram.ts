import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks it, both sides: the gateway verifies a
 * client's token against a stored verifier (never the token itself), and proves a grant's login to
 * the target. Channel binding is not offered (no `-PLUS`), so clients send `n,,` or `y,,`.
 */

export const SCRAM_ITERATIONS = 4096;

export interface ScramVerifier {
  /** base64 */
  salt: string;
  iterations: number;
  /** base64 */
  storedKey: string;
  /** base64 */
  serverKey: string;
}

const hmac = (key: Buffer, text: string) => createHmac("sha256", key).update(text).digest();
const sha256 = (data: Buffer) => createHash("sha256").update(data).digest();

function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(password.normalize("NFKC"), salt, iterations, 32, "sha256");
}

/** The verifier of a secret: all the gateway keeps of a token. */
export function deriveVerifier(
  secret: string,
  salt = randomBytes(16),
  iterations = SCRAM_ITERATIONS,
): ScramVerifier {
  const salted = saltedPassword(secret, salt, iterations);
  return {
    salt: salt.toString("base64"),
    iterations,
    storedKey: sha256(hmac(salted, "Client Key")).toString("base64"),
    serverKey: hmac(salted, "Server Key").toString("base64"),
  };
}

/** Parses `a=1,b=2` (values may contain `=`). */
function attributes(text: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of text.split(",")) {
    const at = part.indexOf("=");
    if (at === 1) map.set(part[0] as string, part.slice(2));
  }
  return map;
}

const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;

/**
 * The server's side of one exchange. `first` takes the client-first-message and returns the
 * server-first-message; `final` takes the client-final-message and returns the server-final
 * message when the proof matches, or null.
 */
export function createScramServer(verifier: ScramVerifier) {
  let clientFirstBare = "";
  let serverFirst = "";
  let nonce = "";
  let gs2Header = "";
  return {
    first(message: string): string | null {
      // gs2-header: n,, or y,, (the client could bind but we offered no -PLUS); p= is refused.
      const match = /^([ny]),([^,]*),(.*)$/.exec(message);
      if (!match || (match[2] !== "" && !match[2]?.startsWith("a="))) return null;
      gs2Header = `${match[1]},${match[2]},`;
      clientFirstBare = match[3] as string;
      const clientNonce = attributes(clientFirstBare).get("r");
      if (!clientNonce || !PRINTABLE_NONCE.test(clientNonce) || clientNonce.length > 256) return null;
      nonce = clientNonce + randomBytes(18).toString("base64");
      serverFirst = `r=${nonce},s=${verifier.salt},i=${verifier.iterations}`;
      return serverFirst;
    },
    final(message: string): string | null {
      if (!serverFirst) return null;
      const proofAt = message.lastIndexOf(",p=");
      if (proofAt < 0) return null;
      const withoutProof = message.slice(0, proofAt);
      const fields = attributes(withoutProof);
      if (fields.get("c") !== Buffer.from(gs2Header).toString("base64")) return null;
      if (fields.get("r") !== nonce) return null;
      const proof = Buffer.from(message.slice(proofAt + 3), "base64");
      const storedKey = Buffer.from(verifier.storedKey, "base64");
      if (proof.length !== storedKey.length) return null;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const signature = hmac(storedKey, authMessage);
      const clientKey = Buffer.alloc(proof.length);
      for (let i = 0; i < proof.length; i++) clientKey[i] = (proof[i] as number) ^ (signature[i] as number);
      // Constant time: the comparison never stops at the first differing byte.
      if (!timingSafeEqual(sha256(clientKey), storedKey)) return null;
      return `v=${hmac(Buffer.from(verifier.serverKey, "base64"), authMessage).toString("base64")}`;
    },
  };
}

/** The client's side, for the gateway's login to the target. */
export function createScramClient(password: string) {
  const clientNonce = randomBytes(18).toString("base64");
  const clientFirstBare = `n=,r=${clientNonce}`;
  let expectedServerSignature = "";
  return {
    first(): string {
      return `n,,${clientFirstBare}`;
    },
    final(serverFirst: string): string {
      const fields = attributes(serverFirst);
      const nonce = fields.get("r");
      const salt = fields.get("s");
      const iterations = Number(fields.get("i"));
      if (
        !nonce?.startsWith(clientNonce) ||
        !salt ||
        !Number.isInteger(iterations) ||
        iterations < 1 ||
        iterations > 1_000_000
      )
        throw new Error("the target's SCRAM challenge is malformed");
      const salted = saltedPassword(password, Buffer.from(salt, "base64"), iterations);
      const clientKey = hmac(salted, "Client Key");
      const withoutProof = `c=biws,r=${nonce}`;
      const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const signature = hmac(sha256(clientKey), authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let i = 0; i < proof.length; i++) proof[i] = (clientKey[i] as number) ^ (signature[i] as number);
      expectedServerSignature = hmac(hmac(salted, "Server Key"), authMessage).toString("base64");
      return `${withoutProof},p=${proof.toString("base64")}`;
    },
    /** Whether the target proved it knows the verifier (mutual authentication). */
    check(serverFinal: string): boolean {
      const given = Buffer.from(attributes(serverFinal).get("v") ?? "");
      const expected = Buffer.from(expectedServerSignature);
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

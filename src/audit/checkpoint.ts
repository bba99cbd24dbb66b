import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import type { InTransaction } from "../db/transaction.js";
import { FirebreakError } from "../errors.js";
import { eventTypeAt, lockHead } from "./audit.repo.js";
import type { AuditEvent, ChainHead } from "./chain.js";
import { canonicalJson } from "./chain.js";

/**
 * Signed checkpoints: the chain's head (seq and hash) signed with Ed25519 and appended to the
 * chain itself as an `audit.checkpoint` event, so checkpoints reach every sink and every export
 * in order, and are themselves covered by the next checkpoint. See NOTES.md ("Checkpoints").
 */

export const CHECKPOINT_TYPE = "audit.checkpoint";
/** What the signature covers: this purpose string, the head's seq and hash (canonical JSON). */
export const CHECKPOINT_PURPOSE = "firebreak-audit-checkpoint-v1";

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** `ed25519:` + the first 32 hex digits of SHA-256 over the public key's SPKI DER. */
  keyId: string;
}

/** The `context` of an `audit.checkpoint` event. */
export interface CheckpointContext {
  checkpoint: ChainHead;
  algorithm: "Ed25519";
  keyId: string;
  /** base64 of the Ed25519 signature over `checkpointMessage(checkpoint)`. */
  signature: string;
  reason: string;
}

/** The bytes a checkpoint signs. */
export function checkpointMessage(head: ChainHead): Buffer {
  return Buffer.from(canonicalJson({ purpose: CHECKPOINT_PURPOSE, seq: head.seq, hash: head.hash }), "utf8");
}

export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  return `ed25519:${createHash("sha256").update(der).digest("hex").slice(0, 32)}`;
}

/** Reads an Ed25519 private key from PEM; CONFIG_INVALID (naming no key material) otherwise. */
export function loadSigningKey(pem: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: "pem" });
  } catch {
    throw new FirebreakError("CONFIG_INVALID", "audit.signingKey is not a PEM private key");
  }
  if (privateKey.asymmetricKeyType !== "ed25519") {
    throw new FirebreakError(
      "CONFIG_INVALID",
      `audit.signingKey must be an Ed25519 key, not ${privateKey.asymmetricKeyType ?? "a symmetric key"} (openssl genpkey -algorithm ed25519)`,
    );
  }
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/**
 * Reads an Ed25519 public key from PEM (a private key's PEM works too: its public half is used).
 * Throws a plain Error describing the problem, for the offline verifier to report.
 */
export function loadVerifyKey(pem: string): { publicKey: KeyObject; keyId: string } {
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: pem, format: "pem" });
  } catch {
    throw new Error("not a PEM public key");
  }
  if (publicKey.asymmetricKeyType !== "ed25519") {
    throw new Error(`not an Ed25519 key (${publicKey.asymmetricKeyType ?? "unknown type"})`);
  }
  return { publicKey, keyId: keyIdOf(publicKey) };
}

export function signCheckpoint(key: SigningKey, head: ChainHead, reason: string): CheckpointContext {
  return {
    checkpoint: { seq: head.seq, hash: head.hash },
    algorithm: "Ed25519",
    keyId: key.keyId,
    signature: sign(null, checkpointMessage(head), key.privateKey).toString("base64"),
    reason,
  };
}

/** True when `signature` (base64) is `publicKey`'s signature of the checkpoint of `head`. */
export function verifyCheckpointSignature(publicKey: KeyObject, head: ChainHead, signature: string): boolean {
  try {
    return verify(null, checkpointMessage(head), publicKey, Buffer.from(signature, "base64"));
  } catch {
    return false;
  }
}

/** Reads a checkpoint event's context; null when it is not a well-formed checkpoint. */
export function checkpointOf(event: Pick<AuditEvent, "type" | "context">): CheckpointContext | null {
  if (event.type !== CHECKPOINT_TYPE) return null;
  const context = event.context as Partial<CheckpointContext>;
  const head = context.checkpoint as Partial<ChainHead> | undefined;
  if (
    !head ||
    typeof head.seq !== "number" ||
    typeof head.hash !== "string" ||
    context.algorithm !== "Ed25519" ||
    typeof context.keyId !== "string" ||
    typeof context.signature !== "string"
  ) {
    return null;
  }
  return context as CheckpointContext;
}

/**
 * Writes checkpoints. `write` signs the current head and appends the checkpoint event, unless the
 * log is empty or its newest event already is a checkpoint (an idle log is not re-signed forever).
 * `afterWrite` runs after every attempt, written or not (the anchor checks the chain then).
 */
export function createCheckpointer(deps: {
  inTransaction: InTransaction;
  signingKey: () => SigningKey | null;
  afterWrite?: () => Promise<void>;
}) {
  return {
    async write(reason: string): Promise<ChainHead | null> {
      const key = deps.signingKey();
      if (key === null) return null;
      const signed = await deps.inTransaction(async (unit) => {
        // The head stays locked until commit, so the checkpoint at seq n always signs seq n - 1.
        const head = await lockHead(unit.tx);
        if (head.seq === 0) return null;
        if ((await eventTypeAt(unit.tx, head.seq)) === CHECKPOINT_TYPE) return null;
        await unit.audit({
          type: CHECKPOINT_TYPE,
          actor: "system:audit",
          context: signCheckpoint(key, head, reason) as unknown as Record<string, unknown>,
        });
        return head;
      });
      await deps.afterWrite?.();
      return signed;
    },
  };
}
export type Checkpointer = ReturnType<typeof createCheckpointer>;

/** Writes a checkpoint every `intervalMs` (when the head moved), and once more at `stop()`. */
export function createCheckpointSchedule(deps: {
  checkpointer: Checkpointer;
  intervalMs: () => number;
  onError: (error: unknown) => void;
}) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> = Promise.resolve();

  const tick = () => {
    running = deps.checkpointer.write("periodic").catch(deps.onError);
    schedule();
  };
  const schedule = () => {
    timer = setTimeout(tick, deps.intervalMs());
    timer.unref();
  };

  return {
    start() {
      if (timer === null) schedule();
    },
    /** Stops the timer and writes the shutdown checkpoint (errors are reported, not thrown). */
    async stop(): Promise<void> {
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
      await deps.checkpointer.write("shutdown").catch(deps.onError);
    },
  };
}

/**
 * Holds the signing key named by `audit.signingKey`. `init()` resolves it at start, where a key
 * that cannot be read stops the server; after a configuration change `current()` resolves the new
 * reference, and keeps signing with the previous key (reporting why) when the new one is unusable.
 */
export function createSigningKeyHolder(deps: {
  reference: () => string | undefined;
  secret: (ref: string) => string;
  onError: (error: unknown) => void;
}) {
  let loaded: string | undefined;
  let key: SigningKey | null = null;
  const resolve = (ref: string | undefined) => (ref === undefined ? null : loadSigningKey(deps.secret(ref)));
  return {
    init(): void {
      loaded = deps.reference();
      key = resolve(loaded);
    },
    current(): SigningKey | null {
      const ref = deps.reference();
      if (ref !== loaded) {
        loaded = ref;
        try {
          key = resolve(ref);
        } catch (error) {
          deps.onError(error);
        }
      }
      return key;
    },
  };
}

import { generateKeyPairSync } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../../test/support/databases.js";
import { createTransactionRunner } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { createManualClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";
import { listAuditEvents, readHead } from "./audit.repo.js";
import {
  CHECKPOINT_TYPE,
  checkpointOf,
  createCheckpointer,
  createSigningKeyHolder,
  loadSigningKey,
  loadVerifyKey,
  verifyCheckpointSignature,
} from "./checkpoint.js";

const pem = (type: "ed25519" | "rsa") =>
  (type === "rsa"
    ? generateKeyPairSync("rsa", { modulusLength: 2048 })
    : generateKeyPairSync("ed25519")
  ).privateKey
    .export({ type: "pkcs8", format: "pem" })
    .toString();

describe("signing keys", () => {
  it("accepts Ed25519 only, and says why otherwise without showing the key", () => {
    const key = loadSigningKey(pem("ed25519"));
    expect(key.keyId).toMatch(/^ed25519:[0-9a-f]{32}$/);
    expect(loadVerifyKey(key.publicKey.export({ type: "spki", format: "pem" }).toString()).keyId).toBe(
      key.keyId,
    );
    expect(() => loadSigningKey(pem("rsa"))).toThrow(/must be an Ed25519 key, not rsa/);
    expect(() => loadSigningKey("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")).toThrow(
      /^audit.signingKey is not a PEM private key$/,
    );
  });

  it("keeps signing with the previous key when a new reference cannot be used", () => {
    let reference: string | undefined = "file:/good";
    const files: Record<string, string> = { "file:/good": pem("ed25519"), "file:/bad": "garbage" };
    const errors: unknown[] = [];
    const holder = createSigningKeyHolder({
      reference: () => reference,
      secret: (ref) => files[ref] as string,
      onError: (error) => errors.push(error),
    });
    holder.init();
    const first = holder.current();
    reference = "file:/bad";
    expect(holder.current()).toBe(first);
    expect(errors).toHaveLength(1);
    reference = undefined;
    expect(holder.current()).toBeNull();
  });
});

describe.each(DIALECTS)("checkpoints on %s", (dialect) => {
  let database: TestDatabase;
  let db: Db;
  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    db = database.handle.db;
  });
  afterEach(async () => {
    await database.drop();
  });

  it("sign the event just before them, and are not repeated while nothing new was written", async () => {
    const clock = createManualClock();
    const inTransaction = createTransactionRunner({ db, clock, bus: createEventBus() });
    const key = loadSigningKey(pem("ed25519"));
    const checkpointer = createCheckpointer({ inTransaction, signingKey: () => key });
    expect(await checkpointer.write("periodic")).toBeNull();
    for (let index = 0; index < 3; index++)
      await inTransaction((unit) =>
        unit.audit({ type: "request.created", actor: "alice", context: { index } }),
      );
    const before = await readHead(db);
    expect(await checkpointer.write("periodic")).toEqual(before);
    expect(await checkpointer.write("periodic")).toBeNull();
    const [event] = await listAuditEvents(db, { type: CHECKPOINT_TYPE });
    const checkpoint = event ? checkpointOf(event) : null;
    expect(event).toMatchObject({ seq: before.seq + 1, prevHash: before.hash, actor: "system:audit" });
    expect(checkpoint).toMatchObject({
      checkpoint: before,
      algorithm: "Ed25519",
      keyId: key.keyId,
      reason: "periodic",
    });
    expect(verifyCheckpointSignature(key.publicKey, before, checkpoint?.signature ?? "")).toBe(true);
    expect(
      verifyCheckpointSignature(
        key.publicKey,
        { ...before, seq: before.seq + 1 },
        checkpoint?.signature ?? "",
      ),
    ).toBe(false);

    // Without a key configured, nothing is written.
    expect(await createCheckpointer({ inTransaction, signingKey: () => null }).write("periodic")).toBeNull();
  });
});

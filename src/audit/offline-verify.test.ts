import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { type AuditEvent, GENESIS_HASH, hashEvent } from "./chain.js";
import { CHECKPOINT_TYPE, keyIdOf, loadSigningKey, type SigningKey, signCheckpoint } from "./checkpoint.js";
import { type ExportVerifyOptions, verifyExportLines } from "./offline-verify.js";

function newKey(): SigningKey {
  const { privateKey } = generateKeyPairSync("ed25519");
  return loadSigningKey(privateKey.export({ type: "pkcs8", format: "pem" }).toString());
}

type Draft = Omit<AuditEvent, "seq" | "prevHash" | "hash">;

const draft = (index: number): Draft => ({
  id: `evt_${String(index).padStart(24, "0")}`,
  time: new Date(Date.UTC(2026, 10, 29, 2, 0, index)).toISOString(),
  type: "request.created",
  actor: "alice",
  zone: "vault",
  resource: null,
  subject: `req_${index}`,
  context: { purpose: "restore the ledger", index },
});

/** Re-links `drafts` into a chain from seq 1, recomputing every hash (as an attacker with the file could). */
function relink(drafts: readonly (Draft | AuditEvent)[]): AuditEvent[] {
  const out: AuditEvent[] = [];
  let prevHash = GENESIS_HASH;
  for (const [index, item] of drafts.entries()) {
    const fields = { ...item, seq: index + 1 };
    const hash = hashEvent(prevHash, fields);
    out.push({ ...fields, prevHash, hash } as AuditEvent);
    prevHash = hash;
  }
  return out;
}

/** A chain of `count` events with a signed checkpoint appended after each seq in `checkpointAfter`. */
function chain(count: number, key: SigningKey, checkpointAfter: number[]): AuditEvent[] {
  const events: AuditEvent[] = [];
  let prevHash = GENESIS_HASH;
  const push = (item: Draft) => {
    const fields = { ...item, seq: events.length + 1 };
    const hash = hashEvent(prevHash, fields);
    events.push({ ...fields, prevHash, hash });
    prevHash = hash;
  };
  for (let index = 1; index <= count; index++) {
    push(draft(index));
    if (checkpointAfter.includes(index)) {
      const head = { seq: events.length, hash: prevHash };
      push({
        id: `evt_cp${String(index).padStart(22, "0")}`,
        time: draft(index).time,
        type: CHECKPOINT_TYPE,
        actor: "system:audit",
        zone: null,
        resource: null,
        subject: null,
        context: signCheckpoint(key, head, "periodic") as unknown as Record<string, unknown>,
      });
    }
  }
  return events;
}

function verify(events: readonly (AuditEvent | string)[], options: ExportVerifyOptions = {}) {
  const lines = events.map((event) => (typeof event === "string" ? event : JSON.stringify(event)));
  return verifyExportLines(async function* () {
    for (const [index, text] of lines.entries()) yield { number: index + 1, text };
  }, options);
}

const key = newKey();
const keys = [{ publicKey: key.publicKey, keyId: key.keyId }];
// 20 events, checkpoints after event 8 (seq 9) and 16 (seq 18), then 4 events: 22 in all.
const intact = chain(20, key, [8, 16]);

describe("offline verification of an exported stream", () => {
  it("accepts an intact export and reports what the signatures cover", async () => {
    expect(intact).toHaveLength(22);
    expect(await verify(intact, { keys })).toMatchObject({
      ok: true,
      events: 22,
      checkpoints: 2,
      lastSignedSeq: 17,
      unsignedTail: 4,
      lastSeq: 22,
      problem: null,
    });
    expect(await verify(intact)).toMatchObject({ ok: true, checkpoints: 0, uncheckedCheckpoints: 2 });
    expect(await verify(intact, { keys, requireSignedEnd: true })).toMatchObject({
      ok: false,
      problem: "UNSIGNED_END",
      firstBadSeq: 19,
    });
  });

  it("skips lines repeated by at-least-once delivery, and ignores derived members", async () => {
    const withExtras = intact.map((event) => ({
      ...event,
      severity: "low",
      links: { event: "https://x/audit" },
    }));
    const repeated = [...withExtras.slice(0, 10), ...withExtras.slice(6, 10), ...withExtras.slice(10)];
    expect(await verify(repeated as AuditEvent[], { keys })).toMatchObject({
      ok: true,
      events: 22,
      duplicates: 4,
    });
  });

  it("names the first bad event for each kind of naive tampering", async () => {
    const removed = intact.filter((event) => event.seq !== 5);
    const reordered = [...intact.slice(0, 4), intact[5], intact[4], ...intact.slice(6)] as AuditEvent[];
    const altered = intact.map((event) =>
      event.seq === 5 ? { ...event, context: { ...event.context, purpose: "something else" } } : event,
    );
    const rehashed = intact.map((event) => {
      if (event.seq !== 5) return event;
      const changed = { ...event, actor: "mallory" };
      return { ...changed, hash: hashEvent(changed.prevHash, changed) };
    });
    const forged = { ...(intact[4] as AuditEvent), id: "evt_forged", actor: "mallory" };
    const duplicateSeq = [
      ...intact.slice(0, 5),
      { ...forged, hash: hashEvent(forged.prevHash, forged) },
      ...intact.slice(5),
    ];
    // Inserted with the later events renumbered but not rehashed.
    const shifted = [
      ...intact.slice(0, 4),
      ...relink([...intact.slice(0, 4), { ...draft(99), actor: "mallory" }]).slice(4),
      ...intact.slice(4).map((event) => ({ ...event, seq: event.seq + 1 })),
    ];
    // Removed with the later events renumbered but not rehashed.
    const closedUp = [
      ...intact.slice(0, 4),
      ...intact.slice(5).map((event) => ({ ...event, seq: event.seq - 1 })),
    ];
    const cases: [string, (AuditEvent | string)[], string, number][] = [
      ["removed", removed, "REMOVED", 5],
      ["reordered", reordered, "REORDERED", 5],
      ["altered", altered, "ALTERED", 5],
      ["altered and rehashed", rehashed, "ALTERED", 5],
      ["a second event at a seq", duplicateSeq, "INSERTED", 5],
      ["inserted and renumbered", shifted, "INSERTED", 5],
      ["removed and renumbered", closedUp, "REMOVED", 5],
      ["first removed", intact.slice(1), "REMOVED", 1],
      ["garbage line", [...intact.slice(0, 4), "{not json", ...intact.slice(4)], "UNREADABLE", 5],
    ];
    const results = [];
    for (const [name, events] of cases) {
      const result = await verify(events, { keys });
      results.push({ name, ok: result.ok, problem: result.problem, firstBadSeq: result.firstBadSeq });
      expect(result.reason).toEqual(expect.any(String));
    }
    expect(results).toEqual(
      cases.map(([name, , problem, firstBadSeq]) => ({ name, ok: false, problem, firstBadSeq })),
    );
  });

  it("catches a chain recomputed after tampering through the signed checkpoints", async () => {
    // Insert an event at seq 12 and recompute every hash after it: the chain itself verifies,
    // but the checkpoint now at seq 19 signed a different seq 17.
    const drafts = intact.map(({ seq: _seq, prevHash: _prev, hash: _hash, ...rest }) => rest);
    const inserted = relink([
      ...drafts.slice(0, 11),
      { ...draft(77), actor: "mallory" },
      ...drafts.slice(11),
    ]);
    expect(await verify(inserted)).toMatchObject({ ok: true });
    expect(await verify(inserted, { keys })).toMatchObject({
      ok: false,
      problem: "CHECKPOINT_MISMATCH",
      firstBadSeq: 10,
      line: 19,
    });

    const removed = relink(drafts.filter((_, index) => index !== 2));
    expect(await verify(removed, { keys })).toMatchObject({
      ok: false,
      problem: "CHECKPOINT_MISMATCH",
      firstBadSeq: 1,
    });

    // A checkpoint rewritten by someone without the key: its signature fails.
    const cp = intact[8] as AuditEvent;
    const forgedContext = { ...cp.context, signature: Buffer.alloc(64, 1).toString("base64") };
    const forged = relink(
      drafts.map((item, index) => (index === 8 ? { ...item, context: forgedContext } : item)),
    );
    expect(await verify(forged, { keys })).toMatchObject({
      ok: false,
      problem: "BAD_SIGNATURE",
      firstBadSeq: 1,
    });

    // Signed by another key: not trusted.
    const other = newKey();
    expect(
      await verify(intact, { keys: [{ publicKey: other.publicKey, keyId: keyIdOf(other.publicKey) }] }),
    ).toMatchObject({
      ok: false,
      problem: "UNKNOWN_KEY",
      firstBadSeq: 1,
    });
  });

  it("passes an export cut back to a checkpoint, even with --require-signed-end, unless an anchor holds what was cut", async () => {
    // Events 19-22 after the checkpoint at seq 18 removed, and a checkpoint at seq 23 anchored
    // before that: the export still ends in a valid signature.
    const anchored = chain(20, key, [8, 16, 20]);
    const cut = anchored.slice(0, 18);
    expect(await verify(cut, { keys, requireSignedEnd: true })).toMatchObject({ ok: true, events: 18 });
    const checkpoint = anchored.at(-1) as AuditEvent;
    expect(checkpoint).toMatchObject({ seq: 23, type: CHECKPOINT_TYPE });
    const anchor = {
      seq: 23,
      hash: checkpoint.hash,
      prevHash: checkpoint.prevHash,
      source: "anchor.jsonl line 1",
    };
    expect(await verify(cut, { keys, requireSignedEnd: true, anchors: [anchor] })).toMatchObject({
      ok: false,
      problem: "BEHIND_ANCHOR",
      firstBadSeq: 19,
      reason: expect.stringContaining("the chain ends at seq 18, but anchor.jsonl line 1 holds seq 23"),
    });
    // Rewritten after seq 18 and grown past the anchor: another event sits at the anchored seq.
    const regrown = relink([...anchored.slice(0, 18), ...chain(12, key, []).slice(6)]);
    expect(await verify(regrown, { anchors: [anchor] })).toMatchObject({
      ok: false,
      problem: "ANCHOR_MISMATCH",
      firstBadSeq: 1,
    });
    // With the key, the checkpoint at seq 18 vouches for everything up to it.
    expect(await verify(regrown, { keys, anchors: [anchor] })).toMatchObject({
      ok: false,
      problem: "ANCHOR_MISMATCH",
      firstBadSeq: 19,
    });
    // The untouched export holds it.
    expect(await verify(anchored, { keys, requireSignedEnd: true, anchors: [anchor] })).toMatchObject({
      ok: true,
      anchors: 1,
      anchoredSeq: 23,
    });
  });

  it("refuses an empty stream, and a stream with nothing signed when a key is given", async () => {
    expect(await verify([])).toMatchObject({ ok: false, problem: "EMPTY" });
    const unsigned = chain(5, key, []);
    expect(await verify(unsigned)).toMatchObject({ ok: true, events: 5 });
    expect(await verify(unsigned, { keys })).toMatchObject({
      ok: false,
      problem: "NOT_SIGNED",
      firstBadSeq: 1,
    });
  });
});

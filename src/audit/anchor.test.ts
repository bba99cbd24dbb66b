import { generateKeyPairSync } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../../test/support/databases.js";
import { createTransactionRunner } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { createManualClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";
import {
  type AnchorPoint,
  checkAnchorLocation,
  createAnchorKeeper,
  judgeAnchors,
  readAnchorPoints,
  writeAnchorFile,
} from "./anchor.js";
import { listAuditEvents, readHead } from "./audit.repo.js";
import { createAuditService } from "./audit.service.js";
import { type AuditEvent, GENESIS_HASH, hashEvent } from "./chain.js";
import { CHECKPOINT_TYPE, createCheckpointer, loadSigningKey } from "./checkpoint.js";

/** A chain of `count` plain events from seq 1, hashes computed as Firebreak does. */
function chainOf(count: number, tag = "original"): AuditEvent[] {
  const events: AuditEvent[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= count; seq++) {
    const fields = {
      seq,
      id: `evt_${tag}_${seq}`,
      time: new Date(Date.UTC(2026, 11, 3, 5, 0, seq)).toISOString(),
      type: "request.created",
      actor: "alice",
      zone: "vault",
      resource: null,
      subject: `req_${seq}`,
      context: { tag, seq },
    };
    const hash = hashEvent(prevHash, fields);
    events.push({ ...fields, prevHash, hash });
    prevHash = hash;
  }
  return events;
}

const pointOf = (event: AuditEvent, source = "anchor line 1"): AnchorPoint => ({
  seq: event.seq,
  hash: event.hash,
  prevHash: event.prevHash,
  source,
});

const viewOf = (events: readonly AuditEvent[]) => ({
  lastSeq: events.at(-1)?.seq ?? 0,
  hashAt: (seq: number) => events.find((event) => event.seq === seq)?.hash,
});

const temporaryDirectories: string[] = [];
async function temporaryDirectory(): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), "firebreak-anchor-"));
  temporaryDirectories.push(path);
  return path;
}
afterEach(async () => {
  for (const path of temporaryDirectories.splice(0)) await rm(path, { recursive: true, force: true });
});

describe("judging a chain against its anchors", () => {
  const original = chainOf(20);

  it("accepts a chain that still holds every anchored event, and one that grew past them", () => {
    expect(judgeAnchors([pointOf(original[9] as AuditEvent)], viewOf(original))).toBeNull();
    expect(
      judgeAnchors(
        original.map((event) => pointOf(event)),
        viewOf(original),
      ),
    ).toBeNull();
    expect(judgeAnchors([], viewOf([]))).toBeNull();
  });

  it("names the first missing seq when the tail was cut and the head rewound", () => {
    const truncated = original.slice(0, 12);
    expect(judgeAnchors([pointOf(original[17] as AuditEvent)], viewOf(truncated))).toEqual({
      problem: "BEHIND_ANCHOR",
      firstBadSeq: 13,
      reason:
        "the chain ends at seq 12, but anchor line 1 holds seq 18: seq 13 to 18 were removed from the end of the chain and its head rewound",
    });
  });

  it("places a rewrite exactly when the anchors hold the events around it", () => {
    // Cut back to seq 12 and grown again with other events: what a running server appends after
    // an attacker rewound its head.
    const regrown = original.slice(0, 12);
    for (const forged of chainOf(20, "forged").slice(12)) {
      const prevHash = (regrown.at(-1) as AuditEvent).hash;
      regrown.push({ ...forged, prevHash, hash: hashEvent(prevHash, forged) });
    }
    const everyEvent = original.map((event) => pointOf(event, `sink.jsonl line ${event.seq}`));
    expect(judgeAnchors(everyEvent, viewOf(regrown))).toMatchObject({
      problem: "ANCHOR_MISMATCH",
      firstBadSeq: 13,
      reason: "seq 13 is not the event sink.jsonl line 13 holds: it was rewritten",
    });
    // With the newest checkpoint alone, the rewrite lies somewhere before it.
    expect(judgeAnchors([pointOf(original[17] as AuditEvent)], viewOf(regrown))).toMatchObject({
      problem: "ANCHOR_MISMATCH",
      firstBadSeq: 1,
    });
    expect(
      judgeAnchors(
        [pointOf(original[4] as AuditEvent), pointOf(original[17] as AuditEvent)],
        viewOf(regrown),
      ),
    ).toMatchObject({ problem: "ANCHOR_MISMATCH", firstBadSeq: 6 });
  });
});

describe("anchor files", () => {
  const original = chainOf(6);

  it("are read as JSON lines of events, keeping the first copy of a seq, sink extras ignored", async () => {
    const directory = await temporaryDirectory();
    const path = join(directory, "sink.jsonl");
    const rewritten = chainOf(6, "forged");
    const lines = [
      ...original.map((event) => JSON.stringify({ ...event, severity: "low", links: { event: "x" } })),
      "",
      JSON.stringify(rewritten[4]),
    ];
    await writeFile(path, `${lines.join("\n")}\n`);
    const points = await readAnchorPoints([path]);
    expect(points.map((point) => point.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(points[4]).toEqual({
      seq: 5,
      hash: original[4]?.hash,
      prevHash: original[4]?.prevHash,
      source: `${path} line 5`,
    });
  });

  it("refuse a line that is not an event, or whose hash does not match it", async () => {
    const directory = await temporaryDirectory();
    const garbled = join(directory, "garbled.jsonl");
    await writeFile(garbled, `${JSON.stringify(original[0])}\n{"seq": 2}\n`);
    await expect(readAnchorPoints([garbled])).rejects.toThrow(
      `${garbled} line 2 is not an audit event: id is not a string`,
    );
    const edited = join(directory, "edited.jsonl");
    await writeFile(edited, `${JSON.stringify({ ...original[0], actor: "mallory" })}\n`);
    await expect(readAnchorPoints([edited])).rejects.toThrow(/line 1 does not match its own hash/);
    const empty = join(directory, "empty.jsonl");
    await writeFile(empty, "\n");
    await expect(readAnchorPoints([empty])).rejects.toThrow(/holds no audit event/);
  });

  it("are replaced atomically, leaving no temporary file behind", async () => {
    const directory = await temporaryDirectory();
    const path = join(directory, "anchor.jsonl");
    await writeAnchorFile(path, [original[2] as AuditEvent]);
    await writeAnchorFile(path, [original[2] as AuditEvent, original[5] as AuditEvent]);
    expect(await readFile(path, "utf8")).toBe(
      `${JSON.stringify(original[2])}\n${JSON.stringify(original[5])}\n`,
    );
    expect(await readdir(directory)).toEqual(["anchor.jsonl"]);
  });

  it("may not live inside the data directory, even through a symbolic link", async () => {
    const data = await temporaryDirectory();
    const elsewhere = await temporaryDirectory();
    await expect(checkAnchorLocation(join(elsewhere, "anchor.jsonl"), [data])).resolves.toBeUndefined();
    await expect(checkAnchorLocation(join(data, "anchor.jsonl"), [data])).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining("is inside the data directory"),
    });
    await mkdir(join(data, "nested"));
    await symlink(join(data, "nested"), join(elsewhere, "link"));
    await expect(checkAnchorLocation(join(elsewhere, "link", "anchor.jsonl"), [data])).rejects.toMatchObject({
      code: "CONFIG_INVALID",
    });
    await expect(
      checkAnchorLocation(join(elsewhere, "missing", "anchor.jsonl"), [data]),
    ).rejects.toMatchObject({ code: "CONFIG_INVALID", message: expect.stringContaining("does not exist") });
    await expect(checkAnchorLocation("anchor.jsonl", [data])).rejects.toMatchObject({
      code: "CONFIG_INVALID",
    });
  });
});

describe.each(DIALECTS)("the server's anchor on %s", (dialect) => {
  let database: TestDatabase;
  let db: Db;
  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    db = database.handle.db;
  });
  afterEach(async () => {
    await database.drop();
  });

  async function setUp() {
    const directory = await temporaryDirectory();
    const file = join(directory, "anchor.jsonl");
    const inTransaction = createTransactionRunner({ db, clock: createManualClock(), bus: createEventBus() });
    const errors: unknown[] = [];
    const keeper = createAnchorKeeper({
      db,
      inTransaction,
      file: () => file,
      dataDirectories: [],
      onError: (error) => errors.push(error),
    });
    await keeper.init();
    const key = loadSigningKey(
      generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    );
    const checkpointer = createCheckpointer({
      inTransaction,
      signingKey: () => key,
      afterWrite: () => keeper.sync(),
    });
    const append = async (count: number) => {
      for (let index = 0; index < count; index++)
        await inTransaction((unit) =>
          unit.audit({ type: "incident.opened", actor: "system", context: { index } }),
        );
    };
    /** The newest anchored checkpoint (the file's last line). */
    const anchored = async () => {
      const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
      return JSON.parse(lines.at(-1) as string) as AuditEvent;
    };
    return { file, keeper, checkpointer, append, anchored, errors, inTransaction };
  }

  /** What an attacker with write access to the database does: cut the tail, rewind the head. */
  async function truncateTo(seq: number) {
    const [last] = await listAuditEvents(db, { afterSeq: seq - 1, limit: 1 });
    await db.deleteFrom("audit_events").where("seq", ">", seq).execute();
    await db
      .updateTable("audit_head")
      .set({ seq, hash: last?.hash ?? "" })
      .where("id", "=", 1)
      .execute();
  }

  const alerts = async () =>
    (await listAuditEvents(db, { type: "alert.raised" })).filter(
      (event) => event.context.alert === "audit-anchor-mismatch",
    );

  it("follows each checkpoint, and an untouched chain passes at start and in verify", async () => {
    const { keeper, checkpointer, append, anchored, errors } = await setUp();
    expect(await keeper.verify()).toBeNull();
    await append(3);
    await checkpointer.write("periodic");
    const first = await anchored();
    expect(first).toMatchObject({ seq: 4, type: CHECKPOINT_TYPE });
    await append(2);
    await checkpointer.write("periodic");
    const second = await anchored();
    expect(second).toMatchObject({ seq: 7, type: CHECKPOINT_TYPE });
    // Nothing new: no checkpoint is written and the anchor stays.
    await checkpointer.write("periodic");
    expect(await anchored()).toEqual(second);
    await expect(keeper.checkAtStart()).resolves.toBeUndefined();
    expect(await keeper.verify()).toEqual({ ok: true, anchoredSeq: 7 });
    expect(errors).toEqual([]);
  });

  it("anchors the newest checkpoint at start when the anchor is new", async () => {
    const { keeper, append, anchored, inTransaction } = await setUp();
    await append(2);
    // Written while no anchor was configured: the checkpointer here does not sync.
    const key = loadSigningKey(
      generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    );
    await createCheckpointer({ inTransaction, signingKey: () => key }).write("periodic");
    await append(1);
    await keeper.checkAtStart();
    expect(await anchored()).toMatchObject({ seq: 3, type: CHECKPOINT_TYPE });
  });

  it("catches a chain cut back behind it: verify without it passes, with it fails, and it is never overwritten", async () => {
    const { file, keeper, checkpointer, append, anchored, errors } = await setUp();
    await append(3);
    await checkpointer.write("periodic"); // seq 4
    await append(3);
    await checkpointer.write("periodic"); // seq 8
    const before = await anchored();
    expect(before.seq).toBe(8);

    await truncateTo(4);
    // The limit this closes: the chain and its rewound head agree, so the database alone says intact.
    expect(await createAuditService({ db }).verify()).toMatchObject({ ok: true, count: 4 });
    expect(await keeper.verify()).toMatchObject({
      ok: false,
      anchoredSeq: 8,
      problem: "BEHIND_ANCHOR",
      firstBadSeq: 5,
    });
    await expect(keeper.checkAtStart()).rejects.toMatchObject({
      code: "AUDIT_ANCHOR_MISMATCH",
      message: expect.stringContaining(`move ${file} aside`),
    });
    // The refused start leaves one alert, and a second refused start does not add another.
    await expect(keeper.checkAtStart()).rejects.toMatchObject({ code: "AUDIT_ANCHOR_MISMATCH" });
    expect(await alerts()).toHaveLength(1);
    expect((await alerts())[0]?.context).toMatchObject({
      severity: "critical",
      problem: "BEHIND_ANCHOR",
      firstBadSeq: 5,
      anchorSeq: 8,
      anchorHash: before.hash,
    });

    // A server that keeps running grows the chain past the anchored seq again; its checkpoints
    // must not replace the anchor with the rewritten chain's.
    await append(6);
    await checkpointer.write("periodic");
    expect(await anchored()).toEqual(before);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "AUDIT_ANCHOR_MISMATCH" });
    // The older checkpoint kept in the anchor still agrees, which places the rewrite after it.
    expect(await keeper.verify()).toMatchObject({ ok: false, problem: "ANCHOR_MISMATCH", firstBadSeq: 5 });
    expect((await readFile(file, "utf8")).trimEnd().split("\n")).toHaveLength(2);
    expect(await alerts()).toHaveLength(1);
  });

  it("refuses to start on an anchor file it cannot read, and does not overwrite it", async () => {
    const { file, keeper, checkpointer, append, errors } = await setUp();
    await append(2);
    await writeFile(file, "not an event\n");
    await expect(keeper.checkAtStart()).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    await checkpointer.write("periodic");
    expect(await readFile(file, "utf8")).toBe("not an event\n");
    expect(errors).toHaveLength(1);
    expect(await keeper.verify()).toMatchObject({ ok: false, problem: "ANCHOR_UNREADABLE" });
    expect((await readHead(db)).seq).toBe(3);
  });
});

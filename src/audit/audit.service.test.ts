import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../../test/support/databases.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import { appendAuditEvent, listAuditEvents } from "./audit.repo.js";
import { createAuditService } from "./audit.service.js";
import { type AuditEvent, GENESIS_HASH, hashEvent } from "./chain.js";

const T0 = Date.parse("2026-11-29T02:00:00.000Z");
const EVENTS = 10;

async function appendEvents(db: Db, count: number, from = 0): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for (let index = from; index < from + count; index++) {
    const event = await db.transaction().execute((tx) =>
      appendAuditEvent(
        tx,
        {
          type: "request.created",
          actor: "alice",
          zone: "payments-db",
          subject: `req_${index}`,
          context: { purpose: "failover", ticket: `INC-${index}`, approvers: ["carol"] },
        },
        T0 + index * 1000,
      ),
    );
    events.push(event);
  }
  return events;
}

async function eventAt(db: Db, seq: number): Promise<AuditEvent> {
  const [event] = await listAuditEvents(db, { afterSeq: seq - 1, limit: 1 });
  if (!event || event.seq !== seq) throw new Error(`no event ${seq}`);
  return event;
}

// Inserted the way an attacker with database access would: a well-formed row whose hash is
// computed correctly by the published algorithm.
async function insertForged(db: Db, seq: number, prevHash: string): Promise<void> {
  const forged = {
    seq,
    id: "evt_forged",
    time: new Date(T0).toISOString(),
    type: "review.completed",
    actor: "mallory",
    zone: "payments-db",
    resource: null,
    subject: "grt_1",
    context: { outcome: "accepted" },
  };
  const hash = hashEvent(prevHash, forged);
  await sql`INSERT INTO audit_events (seq, id, time, type, actor, zone, resource, subject, context_json, prev_hash, hash)
    VALUES (${seq}, ${forged.id}, ${T0}, ${forged.type}, ${forged.actor}, ${forged.zone}, NULL, ${forged.subject},
    ${JSON.stringify(forged.context)}, ${prevHash}, ${hash})`.execute(db);
}

describe.each(DIALECTS)("audit service on %s", (dialect) => {
  let database: TestDatabase | undefined;
  let db: Db;
  let audit: ReturnType<typeof createAuditService>;

  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    db = database.handle.db;
    audit = createAuditService({ db });
  });
  afterEach(async () => {
    await database?.drop();
  });

  it("verifies an empty log", async () => {
    expect(await audit.verify()).toEqual({ ok: true, count: 0, headHash: GENESIS_HASH });
  });

  it("verifies 50 events and reports the count and head hash", async () => {
    const events = await appendEvents(db, 50);
    expect(await audit.verify()).toEqual({ ok: true, count: 50, headHash: events[49]?.hash });
    expect(await audit.head()).toEqual({ seq: 50, hash: events[49]?.hash });
  });

  it("verifies correctly while appends keep landing", async () => {
    await appendEvents(db, 20);
    let writing = true;
    const writer = (async () => {
      let index = 20;
      while (writing) await appendEvents(db, 1, index++);
    })();
    try {
      for (let round = 0; round < 10; round++) {
        const result = await audit.verify();
        expect(result).toMatchObject({ ok: true });
        expect(result.count).toBeGreaterThanOrEqual(20);
      }
    } finally {
      writing = false;
      await writer;
    }
    expect(await audit.verify()).toMatchObject({ ok: true });
  });

  describe("catches direct tampering with the table", () => {
    beforeEach(async () => {
      await appendEvents(db, EVENTS);
      expect(await audit.verify()).toMatchObject({ ok: true, count: EVENTS });
    });

    it("an edited context", async () => {
      await sql`UPDATE audit_events SET context_json = ${'{"approvers":["mallory"],"purpose":"failover","ticket":"INC-3"}'} WHERE seq = 4`.execute(
        db,
      );
      expect(await audit.verify()).toMatchObject({
        ok: false,
        count: 3,
        firstBadSeq: 4,
        problem: "HASH_MISMATCH",
      });
    });

    it("an edited type", async () => {
      await sql`UPDATE audit_events SET type = 'request.cancelled' WHERE seq = 6`.execute(db);
      expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: 6, problem: "HASH_MISMATCH" });
    });

    it("an edited time", async () => {
      await sql`UPDATE audit_events SET time = time - 3600000 WHERE seq = 2`.execute(db);
      expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: 2, problem: "HASH_MISMATCH" });
    });

    it("an edit whose hash was recomputed, at the next link", async () => {
      const original = await eventAt(db, 5);
      const edited = { ...original, actor: "mallory" };
      await sql`UPDATE audit_events SET actor = 'mallory', hash = ${hashEvent(edited.prevHash, edited)} WHERE seq = 5`.execute(
        db,
      );
      expect(await audit.verify()).toMatchObject({
        ok: false,
        firstBadSeq: 6,
        problem: "PREV_HASH_MISMATCH",
      });
    });

    it("a context that is no longer JSON", async () => {
      await sql`UPDATE audit_events SET context_json = '{"approvers":' WHERE seq = 7`.execute(db);
      expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: 7, problem: "UNREADABLE" });
    });

    it("a deleted middle row", async () => {
      await sql`DELETE FROM audit_events WHERE seq = 5`.execute(db);
      const result = await audit.verify();
      expect(result).toMatchObject({ ok: false, count: 4, firstBadSeq: 5, problem: "SEQ_GAP" });
      expect(!result.ok && result.reason).toContain("seq 5 is missing");
    });

    it("a deleted first row", async () => {
      await sql`DELETE FROM audit_events WHERE seq = 1`.execute(db);
      expect(await audit.verify()).toMatchObject({ ok: false, count: 0, firstBadSeq: 1, problem: "SEQ_GAP" });
    });

    it("a deleted last row, against the head", async () => {
      await sql`DELETE FROM audit_events WHERE seq = ${EVENTS}`.execute(db);
      expect(await audit.verify()).toMatchObject({
        ok: false,
        count: EVENTS - 1,
        firstBadSeq: EVENTS,
        problem: "HEAD_MISMATCH",
      });
    });

    it("a forged row with a plausible hash appended past the head", async () => {
      const last = await eventAt(db, EVENTS);
      await insertForged(db, EVENTS + 1, last.hash);
      expect(await audit.verify()).toMatchObject({
        ok: false,
        firstBadSeq: EVENTS + 1,
        problem: "HEAD_MISMATCH",
      });
    });

    it("a forged row with a plausible hash inserted in the middle", async () => {
      const before = await eventAt(db, 5);
      // Make room at seq 6 in two steps: seq is a primary key, checked row by row.
      await sql`UPDATE audit_events SET seq = -(seq + 1) WHERE seq > 5`.execute(db);
      await sql`UPDATE audit_events SET seq = -seq WHERE seq < 0`.execute(db);
      await insertForged(db, 6, before.hash);
      expect(await audit.verify()).toMatchObject({
        ok: false,
        count: 6,
        firstBadSeq: 7,
        problem: "PREV_HASH_MISMATCH",
      });
    });

    it("two rows whose seqs were swapped", async () => {
      await sql`UPDATE audit_events SET seq = -1 WHERE seq = 3`.execute(db);
      await sql`UPDATE audit_events SET seq = 3 WHERE seq = 8`.execute(db);
      await sql`UPDATE audit_events SET seq = 8 WHERE seq = -1`.execute(db);
      expect(await audit.verify()).toMatchObject({
        ok: false,
        count: 2,
        firstBadSeq: 3,
        problem: "PREV_HASH_MISMATCH",
      });
    });

    it("a head moved back to hide the newest events", async () => {
      const earlier = await eventAt(db, 7);
      await sql`UPDATE audit_head SET seq = 7, hash = ${earlier.hash} WHERE id = 1`.execute(db);
      expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: 8, problem: "HEAD_MISMATCH" });
    });

    it("but not a context merely re-spaced, whose meaning is unchanged", async () => {
      const original = await db
        .selectFrom("audit_events")
        .select("context_json")
        .where("seq", "=", 4)
        .executeTakeFirstOrThrow();
      const respaced = JSON.stringify(JSON.parse(original.context_json), null, 2);
      await sql`UPDATE audit_events SET context_json = ${respaced} WHERE seq = 4`.execute(db);
      expect(await audit.verify()).toMatchObject({ ok: true, count: EVENTS });
    });
  });

  it("exports JSON lines that an outside tool can re-hash", async () => {
    const events = await appendEvents(db, 12);
    const lines: string[] = [];
    const result = await audit.exportJsonLines(async (line) => {
      lines.push(line);
    });
    expect(result).toEqual({ count: 12, lastSeq: 12 });
    expect(lines.every((line) => line.endsWith("\n") && !line.slice(0, -1).includes("\n"))).toBe(true);
    const parsed = lines.map((line) => JSON.parse(line) as AuditEvent);
    expect(parsed).toEqual(events);
    for (const { hash, ...fields } of parsed) expect(hashEvent(fields.prevHash, fields)).toBe(hash);

    const rest: string[] = [];
    expect(await audit.exportJsonLines((line) => void rest.push(line), { afterSeq: 10 })).toEqual({
      count: 2,
      lastSeq: 12,
    });
    expect(rest.map((line) => (JSON.parse(line) as AuditEvent).seq)).toEqual([11, 12]);
  });

  it("stops an export at an unreadable row with INTERNAL", async () => {
    await appendEvents(db, 3);
    await sql`UPDATE audit_events SET context_json = 'not json' WHERE seq = 2`.execute(db);
    const lines: string[] = [];
    const error = await audit
      .exportJsonLines((line) => void lines.push(line))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(FirebreakError);
    expect((error as FirebreakError).code).toBe("INTERNAL");
    expect(lines).toHaveLength(1);
  });
});

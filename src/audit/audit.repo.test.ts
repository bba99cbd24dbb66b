import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../../test/support/databases.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import {
  type AuditEventInput,
  appendAuditEvent,
  appendAuditEvents,
  listAuditEvents,
  readHead,
  streamAllEvents,
} from "./audit.repo.js";
import { type AuditEvent, GENESIS_HASH, verifyChain } from "./chain.js";

const T0 = Date.parse("2026-11-29T02:00:00.000Z");

function eventInput(index: number): AuditEventInput {
  return {
    type: index % 2 === 0 ? "request.created" : "request.approved",
    actor: index % 3 === 0 ? "alice" : "carol",
    zone: index % 5 === 0 ? "bastion" : "payments-db",
    subject: `req_${index}`,
    context: { purpose: "restore the ledger replica", ticket: `INC-${index}`, index },
  };
}

async function appendInOwnTransactions(db: Db, count: number): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  for (let index = 0; index < count; index++) {
    events.push(await db.transaction().execute((tx) => appendAuditEvent(tx, eventInput(index), T0 + index)));
  }
  return events;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(FirebreakError);
  expect((error as FirebreakError).code).toBe(code);
}

describe.each(DIALECTS)("audit repository on %s", (dialect) => {
  let database: TestDatabase | undefined;
  let db: Db;

  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    db = database.handle.db;
  });
  afterEach(async () => {
    await database?.drop();
  });

  it("appends 50 events in transactions into a chain that verifies", async () => {
    const appended = await appendInOwnTransactions(db, 50);

    expect(appended.map((event) => event.seq)).toEqual(Array.from({ length: 50 }, (_, index) => index + 1));
    expect(appended[0]?.prevHash).toBe(GENESIS_HASH);
    const last = appended[49] as AuditEvent;
    expect(await readHead(db)).toEqual({ seq: 50, hash: last.hash });
    expect(await verifyChain(streamAllEvents(db), await readHead(db))).toEqual({
      ok: true,
      count: 50,
      headHash: last.hash,
    });
  });

  it("appends a batch of 450 events in one transaction (one head bump, chunked inserts) after single ones", async () => {
    await appendInOwnTransactions(db, 3);
    const inputs = Array.from({ length: 450 }, (_, index) => eventInput(index + 3));
    const batch = await db.transaction().execute((tx) => appendAuditEvents(tx, inputs, T0 + 10));
    const after = await appendInOwnTransactions(db, 1);

    expect(batch.map((event) => event.seq)).toEqual(Array.from({ length: 450 }, (_, index) => index + 4));
    expect(batch.map((event) => event.subject)).toEqual(inputs.map((input) => input.subject));
    for (let index = 1; index < batch.length; index++)
      expect(batch[index]?.prevHash).toBe(batch[index - 1]?.hash);
    expect(after[0]?.seq).toBe(454);
    expect(after[0]?.prevHash).toBe(batch[449]?.hash);
    const read = await listAuditEvents(db, { afterSeq: 3, limit: 450 });
    expect(read).toEqual(batch);
    expect(await verifyChain(streamAllEvents(db), await readHead(db))).toMatchObject({
      ok: true,
      count: 454,
    });
  });

  it("writes nothing of a batch when one of its events is invalid", async () => {
    await appendInOwnTransactions(db, 2);
    const inputs = [eventInput(2), { ...eventInput(3), type: "Not A Type" }];
    await expectCode(
      db.transaction().execute((tx) => appendAuditEvents(tx, inputs, T0)),
      "VALIDATION_FAILED",
    );
    expect((await readHead(db)).seq).toBe(2);
    expect(await listAuditEvents(db, { afterSeq: 2 })).toEqual([]);
  });

  it("returns exactly the event that is read back, in its public shape", async () => {
    const appended = await db.transaction().execute((tx) =>
      appendAuditEvent(
        tx,
        {
          type: "grant.activated",
          actor: "alice",
          zone: "payments-db",
          resource: "payments-pg",
          subject: "grt_1",
          context: { factors: ["totp"], sourceZone: "bastion", skipped: undefined, at: new Date(T0) },
        },
        T0 + 123,
      ),
    );
    expect(appended).toMatchObject({
      seq: 1,
      time: "2026-11-29T02:00:00.123Z",
      type: "grant.activated",
      resource: "payments-pg",
      context: { factors: ["totp"], sourceZone: "bastion", at: "2026-11-29T02:00:00.000Z" },
    });
    expect(appended.id).toMatch(/^evt_[0-9a-f]{24}$/);
    expect(appended.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await listAuditEvents(db)).toEqual([appended]);
  });

  it("commits the event with the caller's transaction and leaves no gap when it rolls back", async () => {
    await expect(
      db.transaction().execute(async (tx) => {
        await appendAuditEvent(tx, eventInput(0), T0);
        throw new Error("the state change failed");
      }),
    ).rejects.toThrow("the state change failed");
    expect(await readHead(db)).toEqual({ seq: 0, hash: GENESIS_HASH });

    const event = await db.transaction().execute((tx) => appendAuditEvent(tx, eventInput(1), T0));
    expect(event.seq).toBe(1);
    expect(event.prevHash).toBe(GENESIS_HASH);
  });

  it("keeps the chain gapless under 20 concurrent transactions, some rolling back", async () => {
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, index) =>
        db.transaction().execute(async (tx) => {
          // A state change and its event, committed or discarded together.
          await tx
            .insertInto("incidents")
            .values({
              id: `inc_${index}`,
              source: "test",
              external_id: `${index}`,
              zone: "payments-db",
              severity: 1,
              title: "ledger down",
              opened_at: T0,
              resolved_at: null,
            })
            .execute();
          const event = await appendAuditEvent(
            tx,
            { ...eventInput(index), subject: `inc_${index}` },
            T0 + index,
          );
          // Hold the head lock a moment so the other transactions really queue behind it.
          await new Promise((resolve) => setTimeout(resolve, 5));
          if (index % 4 === 3) throw new Error("rolled back on purpose");
          return event;
        }),
      ),
    );

    const committed = outcomes.filter((outcome) => outcome.status === "fulfilled");
    expect(committed).toHaveLength(15);
    const events = await listAuditEvents(db, { limit: 1000 });
    expect(events.map((event) => event.seq)).toEqual(Array.from({ length: 15 }, (_, index) => index + 1));
    const incidents = await db.selectFrom("incidents").select("id").orderBy("id").execute();
    expect(events.map((event) => event.subject).sort()).toEqual(incidents.map((incident) => incident.id));
    expect(await verifyChain(streamAllEvents(db), await readHead(db))).toMatchObject({ ok: true, count: 15 });
  });

  it("opens a transaction of its own when given the database", async () => {
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, index) => appendAuditEvent(db, eventInput(index), T0)),
    );
    expect(results.map((event) => event.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await verifyChain(streamAllEvents(db), await readHead(db))).toMatchObject({ ok: true, count: 10 });
  });

  it("stores hostile text in the context unchanged and still verifies", async () => {
    const hostile = {
      quote: `'; DROP TABLE audit_events; --"`,
      long: "x".repeat(10_000),
      unicode: "Zoë 🔥 決済 \u202Eevil",
      controls: "nul\u0000 tab\t lone\uD800 surrogate",
    };
    const event = await appendAuditEvent(
      db,
      { type: "decision.denied", actor: "alice", context: { hostile } },
      T0,
    );
    expect(event.context).toEqual({ hostile });
    expect((await listAuditEvents(db))[0]?.context).toEqual({ hostile });
    expect(await verifyChain(streamAllEvents(db), await readHead(db))).toMatchObject({ ok: true, count: 1 });
  });

  it("refuses, identically on both databases, fields the columns cannot hold, and writes nothing", async () => {
    const valid = eventInput(0);
    await expectCode(appendAuditEvent(db, { ...valid, zone: "z".repeat(64) }, T0), "VALIDATION_FAILED");
    await expectCode(appendAuditEvent(db, { ...valid, actor: "a".repeat(129) }, T0), "VALIDATION_FAILED");
    await expectCode(appendAuditEvent(db, { ...valid, actor: "" }, T0), "VALIDATION_FAILED");
    await expectCode(appendAuditEvent(db, { ...valid, subject: "req\u0000" }, T0), "VALIDATION_FAILED");
    await expectCode(appendAuditEvent(db, { ...valid, resource: "bad\uDC00" }, T0), "VALIDATION_FAILED");
    await expectCode(appendAuditEvent(db, { ...valid, type: "Request Created" }, T0), "VALIDATION_FAILED");
    await expectCode(appendAuditEvent(db, { ...valid, context: { n: Number.NaN } }, T0), "VALIDATION_FAILED");
    await expectCode(appendAuditEvent(db, valid, Number.NaN), "VALIDATION_FAILED");
    // 63 code points is within the column even when it takes more UTF-16 units.
    await appendAuditEvent(db, { ...valid, zone: "🔥".repeat(63) }, T0);
    expect(await readHead(db)).toMatchObject({ seq: 1 });
  });

  it("lists a page with filters, cursors and either order", async () => {
    await appendInOwnTransactions(db, 30);

    expect((await listAuditEvents(db)).length).toBe(30);
    const page = await listAuditEvents(db, { afterSeq: 10, limit: 5 });
    expect(page.map((event) => event.seq)).toEqual([11, 12, 13, 14, 15]);
    const newest = await listAuditEvents(db, { order: "desc", limit: 3 });
    expect(newest.map((event) => event.seq)).toEqual([30, 29, 28]);
    const older = await listAuditEvents(db, { order: "desc", beforeSeq: 28, limit: 2 });
    expect(older.map((event) => event.seq)).toEqual([27, 26]);

    const approvals = await listAuditEvents(db, { type: "request.approved" });
    expect(approvals).toHaveLength(15);
    expect(approvals.every((event) => event.type === "request.approved")).toBe(true);
    expect((await listAuditEvents(db, { zone: "bastion" })).map((event) => event.seq)).toEqual([
      1, 6, 11, 16, 21, 26,
    ]);
    expect((await listAuditEvents(db, { subject: "req_7" })).map((event) => event.seq)).toEqual([8]);
    expect((await listAuditEvents(db, { actor: "alice", afterSeq: 20 })).map((event) => event.seq)).toEqual([
      22, 25, 28,
    ]);

    await expectCode(listAuditEvents(db, { limit: 1001 }), "VALIDATION_FAILED");
    await expectCode(listAuditEvents(db, { limit: 0 }), "VALIDATION_FAILED");
  });

  it("streams every event across pages, from any cursor", async () => {
    await appendInOwnTransactions(db, 23);
    const seqs: number[] = [];
    for await (const record of streamAllEvents(db, { pageSize: 7 })) seqs.push(record.seq);
    expect(seqs).toEqual(Array.from({ length: 23 }, (_, index) => index + 1));

    const after: number[] = [];
    for await (const record of streamAllEvents(db, { afterSeq: 14, pageSize: 3 })) after.push(record.seq);
    expect(after).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23]);
  });
});

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../../test/support/databases.js";
import { events } from "../../test/support/service-fixtures.js";
import { createTransactionRunner } from "../db/transaction.js";
import { createManualClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";
import { createGatewaySessions, createSessionHolder } from "./session.service.js";
import { hashRecord } from "./transcript.js";

const GRANT = { id: "grt_gatewaytest1", user: "alice", zone: "payments-db" };

describe.each(DIALECTS)("gateway sessions on %s", (dialect) => {
  let database: TestDatabase;
  let sessions: ReturnType<typeof createGatewaySessions>;
  const clock = createManualClock();

  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    const db = database.handle.db;
    sessions = createGatewaySessions({
      db,
      clock,
      inTransaction: createTransactionRunner({ db, clock, bus: createEventBus() }),
    });
  });
  afterEach(async () => {
    await database.drop();
  });

  async function recordedSession() {
    const session = await sessions.start({
      grant: GRANT,
      protocol: "postgres",
      resource: "payments-pg",
      clientAddress: "127.0.0.1",
    });
    session.record("startup", { database: "payments-pg", application: "psql" });
    session.record("statement", { text: "select 1", tag: "SELECT 1", rows: 1 }, { audit: true });
    clock.advance(5);
    session.record("statement", { text: "select 2", tag: "SELECT 1", rows: 1 }, { audit: true });
    session.record("statement", { text: "drop table t", sqlstate: "42501" }, { audit: true });
    const end = await session.end("client disconnected");
    return { session, end };
  }

  it("records a session with its start, statements and end in the audit chain, and verifies it", async () => {
    const { session, end } = await recordedSession();
    expect(end.records).toBe(4);
    const [stored] = await sessions.list(GRANT.id);
    expect(stored).toMatchObject({
      id: session.id,
      records: 4,
      digest: end.digest,
      endReason: "client disconnected",
    });
    const records = await sessions.records(session.id);
    expect(records.map((r) => ("kind" in r ? r.kind : "?"))).toEqual([
      "startup",
      "statement",
      "statement",
      "statement",
    ]);
    const db = database.handle.db;
    expect((await events(db, "session.started"))[0]?.context).toMatchObject({
      session: session.id,
      protocol: "postgres",
    });
    const statements = await events(db, "session.statement");
    expect(statements.map((e) => e.context.text)).toEqual(["select 1", "select 2", "drop table t"]);
    expect(statements.every((e) => e.subject === GRANT.id)).toBe(true);
    expect((await events(db, "session.ended"))[0]?.context).toMatchObject({ records: 4, digest: end.digest });
    expect(await sessions.verify()).toEqual({ ok: true, sessions: 1, records: 4, failures: [] });
    // Ending twice writes nothing more.
    await session.end("again");
    expect(await events(db, "session.ended")).toHaveLength(1);
  });

  it("catches an edited record, even with its hash recomputed", async () => {
    const { session } = await recordedSession();
    const db = database.handle.db;
    await db
      .updateTable("gateway_records")
      .set({ payload_json: JSON.stringify({ text: "select 3", tag: "SELECT 1", rows: 1 }) })
      .where("session_id", "=", session.id)
      .where("seq", "=", 3)
      .execute();
    let verdict = await sessions.verify();
    expect(verdict.ok).toBe(false);
    expect(verdict.failures[0]).toMatchObject({
      session: session.id,
      firstBadSeq: 3,
      problem: "HASH_MISMATCH",
    });

    // Rewriting the hashes from there on does not help: the audit chain named the original.
    const rows = await db
      .selectFrom("gateway_records")
      .selectAll()
      .where("session_id", "=", session.id)
      .orderBy("seq")
      .execute();
    let prev = rows[1]?.hash as string;
    for (const row of rows.slice(2)) {
      const hash = hashRecord(prev, {
        sessionId: row.session_id,
        seq: Number(row.seq),
        time: Number(row.time),
        kind: row.kind,
        payload: JSON.parse(row.payload_json),
      });
      await db
        .updateTable("gateway_records")
        .set({ prev_hash: prev, hash })
        .where("session_id", "=", session.id)
        .where("seq", "=", row.seq)
        .execute();
      prev = hash;
    }
    await db.updateTable("gateway_sessions").set({ digest: prev }).where("id", "=", session.id).execute();
    verdict = await sessions.verify();
    expect(verdict.failures[0]).toMatchObject({ firstBadSeq: 3, problem: "ANCHOR_MISMATCH" });
  });

  it("catches a deleted record, an inserted one, and a removed session", async () => {
    const { session } = await recordedSession();
    const db = database.handle.db;
    await db
      .deleteFrom("gateway_records")
      .where("session_id", "=", session.id)
      .where("seq", "=", 4)
      .execute();
    expect((await sessions.verify()).failures[0]).toMatchObject({ problem: "SEQ_GAP", firstBadSeq: 4 });

    const second = await recordedSession();
    await db.deleteFrom("gateway_records").where("session_id", "=", session.id).execute();
    await db.deleteFrom("gateway_sessions").where("id", "=", session.id).execute();
    const [record] = await db
      .selectFrom("gateway_records")
      .selectAll()
      .where("session_id", "=", second.session.id)
      .where("seq", "=", 1)
      .execute();
    await db
      .insertInto("gateway_records")
      .values({ ...(record as NonNullable<typeof record>), seq: 5 })
      .execute();
    const verdict = await sessions.verify();
    expect(verdict.failures.map((f) => [f.session, f.problem])).toEqual([
      [second.session.id, "PREV_HASH_MISMATCH"],
      [session.id, "SESSION_MISSING"],
    ]);
  });

  it("ends sessions a crash left open with the records that were written", async () => {
    const session = await sessions.start({
      grant: GRANT,
      protocol: "ssh",
      resource: "web",
      clientAddress: null,
    });
    session.record("command", { text: "uptime" });
    await session.flush();
    expect(await sessions.endOrphans()).toBe(1);
    expect((await sessions.list(GRANT.id))[0]).toMatchObject({ records: 1 });
    expect((await sessions.verify()).ok).toBe(true);
  });
});

describe("session holder", () => {
  it("cuts every session of a grant and counts what is left", async () => {
    const holder = createSessionHolder();
    const cut: string[] = [];
    const releaseA = holder.hold("grt_a", "ses_1", (reason) => {
      cut.push(reason);
      releaseA();
    });
    holder.hold("grt_a", "ses_2", () => {});
    holder.hold("grt_b", "ses_3", () => {});
    expect(holder.count("grt_a")).toBe(2);
    expect(await holder.cutGrant("grt_a", "revoked", 50)).toBe(1);
    expect(cut).toEqual(["revoked"]);
    expect(holder.count("grt_b")).toBe(1);
    expect(await holder.cutGrant("grt_none", "revoked")).toBe(0);
  });
});

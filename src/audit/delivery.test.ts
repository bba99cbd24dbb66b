import { hostname } from "node:os";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDatabase, DIALECTS, type TestDatabase } from "../../test/support/databases.js";
import type { AuditSinkConfig } from "../config/schema.js";
import { createTransactionRunner } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import type { AuditSink } from "../plugins/contracts.js";
import type { SinkRegistry } from "../plugins/registry.js";
import { createManualClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";
import type { SinkRecord } from "./analyst-view.js";
import type { AuditEventInput } from "./audit.repo.js";
import { listAuditEvents, readHead } from "./audit.repo.js";
import { type AuditDelivery, backoffDelay, createAuditDelivery, DEFAULT_DELIVERY } from "./delivery.js";
import { readSinkState } from "./outbox.repo.js";
import { createRelatedLookup } from "./related.js";
import { SinkDeliveryError } from "./sinks/sink-error.js";

const T0 = Date.parse("2026-11-29T02:00:00.000Z");

/**
 * A sink that keeps the contract's rules: records arrive in the order given; a refusal says how
 * many leading records did arrive. `refuse` decides which records it refuses, `hang` makes it
 * ignore its signal and never answer.
 */
function createFakeSink() {
  const delivered: SinkRecord[] = [];
  const batches: number[][] = [];
  const state = {
    refuse: (_record: SinkRecord): boolean => false,
    hang: false,
  };
  const sink: AuditSink = {
    kind: "syslog",
    target: "tcp://fake.test:514",
    async deliver(records) {
      batches.push(records.map((record) => record.event.seq));
      if (state.hang) return new Promise<void>(() => {});
      for (const [index, record] of records.entries()) {
        if (state.refuse(record)) throw new SinkDeliveryError("refused", index);
        delivered.push(record);
      }
    },
    async close() {},
  };
  return { sink, delivered, batches, state, seqs: () => delivered.map((record) => record.event.seq) };
}
type FakeSink = ReturnType<typeof createFakeSink>;

const sinkConfig = (name: string, extra: Partial<AuditSinkConfig> = {}): AuditSinkConfig =>
  ({ name, type: "syslog", url: "tcp://fake.test:514", ...extra }) as AuditSinkConfig;

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe.each(DIALECTS)("audit delivery on %s", (dialect) => {
  let database: TestDatabase;
  let db: Db;
  let clock: ReturnType<typeof createManualClock>;
  let bus: ReturnType<typeof createEventBus>;
  let inTransaction: ReturnType<typeof createTransactionRunner>;
  const running: AuditDelivery[] = [];
  const logged: string[] = [];

  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    db = database.handle.db;
    clock = createManualClock(T0);
    bus = createEventBus();
    inTransaction = createTransactionRunner({ db, clock, bus });
    logged.length = 0;
  });
  afterEach(async () => {
    for (const delivery of running.splice(0)) await delivery.stop();
    await database.drop();
    expect(logged).toEqual([]);
  });

  function start(sinks: AuditSinkConfig[], fakes = new Map<string, FakeSink>()) {
    const make = (config: AuditSinkConfig) => {
      let fake = fakes.get(config.name);
      if (!fake) {
        fake = createFakeSink();
        fakes.set(config.name, fake);
      }
      return fake.sink;
    };
    const registry: SinkRegistry = { file: make, syslog: make, "splunk-hec": make, webhook: make };
    for (const config of sinks) make(config);
    let current = sinks;
    const delivery = createAuditDelivery({
      db,
      clock,
      inTransaction,
      bus,
      registry,
      sinkDeps: { secret: () => "", hostname: "test", procId: "1", now: () => clock.now() },
      related: createRelatedLookup(db),
      config: () => ({ sinks: current, delivery: undefined }),
      publicUrl: () => null,
      log: { error: (message, fields) => logged.push(`${message} ${JSON.stringify(fields)}`) },
      random: () => 0.5,
      pollIntervalMs: 20,
    });
    running.push(delivery);
    return {
      delivery,
      fakes,
      fake: (name: string) => fakes.get(name) as FakeSink,
      setSinks(next: AuditSinkConfig[]) {
        current = next;
      },
    };
  }

  const append = (input: Partial<AuditEventInput> = {}) =>
    inTransaction((unit) =>
      unit.audit({ type: "request.created", actor: "alice", zone: "vault", context: {}, ...input }),
    );
  const appendMany = async (
    count: number,
    input: (index: number) => Partial<AuditEventInput> = () => ({}),
  ) => {
    for (let index = 0; index < count; index++) await append(input(index));
  };
  const head = async () => (await readHead(db)).seq;
  const alerts = async () =>
    (await listAuditEvents(db, { type: "alert.raised", limit: 1000 })).filter(
      (event) => event.context.alert === "audit-sink-failing",
    );

  it("delivers every event once, in order and in batches, and only what a sink's filter lets through", async () => {
    const { delivery, fake } = start([
      sinkConfig("all", { delivery: { batchSize: 3 } as never }),
      sinkConfig("grants", { filter: { types: ["grant.*"], zones: ["vault"] } }),
      sinkConfig("serious", { filter: { minSeverity: "medium" } }),
    ]);
    await appendMany(10, (index) => ({
      type: index % 3 === 0 ? "grant.activated" : index % 3 === 1 ? "request.created" : "alert.raised",
      zone: index === 9 ? "cache" : "vault",
    }));
    await delivery.start();
    await appendMany(2);
    expect(await delivery.flush(10_000)).toBe(true);
    expect(fake("all").seqs()).toEqual(Array.from({ length: 12 }, (_, index) => index + 1));
    expect(fake("all").batches.every((batch) => batch.length <= 3)).toBe(true);
    expect(fake("grants").seqs()).toEqual([1, 4, 7]);
    expect(fake("serious").delivered.map((record) => record.event.type)).toEqual([
      "grant.activated",
      "alert.raised",
      "grant.activated",
      "alert.raised",
      "grant.activated",
      "alert.raised",
      "grant.activated",
    ]);
    for (const name of ["all", "grants", "serious"])
      expect((await readSinkState(db, name))?.deliveredSeq).toBe(await head());
    const status = await delivery.status();
    expect(status.map((sink) => [sink.name, sink.state, sink.lagEvents, sink.deliveredTotal])).toEqual([
      ["all", "idle", 0, 12],
      ["grants", "idle", 0, 3],
      ["serious", "idle", 0, 7],
    ]);
  });

  it("backs off exponentially with jitter on the injected clock, dead-letters after the last attempt, alerts once, and recovers", async () => {
    expect(
      [1, 2, 3, 4, 30].map((attempts) =>
        backoffDelay(
          attempts,
          { ...DEFAULT_DELIVERY, initialBackoffMs: 1000, maxBackoffMs: 3000 },
          () => 0.5,
        ),
      ),
    ).toEqual([750, 1500, 2250, 2250, 2250]);
    expect(backoffDelay(1, DEFAULT_DELIVERY, () => 0)).toBe(500);
    expect(backoffDelay(1, DEFAULT_DELIVERY, () => 0.999_999)).toBe(1000);

    const { delivery, fake } = start([
      sinkConfig("siem", { delivery: { maxAttempts: 3, initialBackoff: 1000, maxBackoff: 60_000 } as never }),
    ]);
    await delivery.start();
    fake("siem").state.refuse = (record) => record.event.subject === "poison";
    await appendMany(5, (index) => ({ subject: index === 2 ? "poison" : `req_${index}` }));
    const state = () => readSinkState(db, "siem");

    // Events 1 and 2 arrive; 3 is refused: one failure, the cursor after what did arrive.
    await until("a first failure", async () => (await state())?.attempts === 1);
    expect(fake("siem").seqs()).toEqual([1, 2]);
    expect(await state()).toMatchObject({
      deliveredSeq: 2,
      attempts: 1,
      nextAttemptAt: T0 + 750,
      lastError: "refused",
    });
    const tries = () => fake("siem").batches.filter((batch) => batch.includes(3)).length;
    expect(tries()).toBe(1);

    // Nothing happens before the backoff has passed, however often the sink is woken.
    clock.advance(749);
    delivery.poke();
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(tries()).toBe(1);
    clock.advance(1);
    delivery.poke();
    await until("a second failure", async () => (await state())?.attempts === 2);
    // After a batch failed, one event at a time: the retry is event 3 alone.
    expect(fake("siem").batches.at(-1)).toEqual([3]);
    expect((await state())?.nextAttemptAt).toBe(T0 + 750 + 1500);

    clock.advance(1500);
    delivery.poke();
    await until("the dead letter", async () => (await delivery.deadLetters("siem")).length === 1);
    expect(await delivery.deadLetters("siem")).toMatchObject([
      { seq: 3, attempts: 3, state: "dead", lastError: "refused" },
    ]);
    expect(await alerts()).toHaveLength(1);
    expect((await alerts())[0]).toMatchObject({
      actor: "system:audit-delivery",
      context: { sink: "siem", seq: 3, attempts: 3, error: "refused", severity: "high" },
    });
    // The rest goes on, the alert included, and the recovery is recorded once.
    await until(
      "recovery",
      async () => (await listAuditEvents(db, { type: "audit.sink_recovered" })).length === 1,
    );
    expect(await delivery.flush(10_000)).toBe(true);
    const types = fake("siem").delivered.map((record) => record.event.type);
    expect(fake("siem").seqs()).not.toContain(3);
    expect(types).toContain("alert.raised");
    expect(types.at(-1)).toBe("audit.sink_recovered");
    expect(await state()).toMatchObject({ failing: false, attempts: 0, deliveredSeq: await head() });
  });

  it("raises one alert for a whole outage, and its alerts, also undeliverable, do not feed more alerts", async () => {
    const { delivery, fake } = start([
      sinkConfig("dead", { delivery: { maxAttempts: 2, initialBackoff: 1000 } as never }),
    ]);
    fake("dead").state.refuse = () => true;
    await delivery.start();
    await appendMany(3);
    for (let step = 0; step < 60; step++) {
      clock.advance(120_000);
      delivery.poke();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await until(
      "everything dead",
      async () => (await readSinkState(db, "dead"))?.deliveredSeq === (await head()),
    );
    // Three events and the one alert, all dead; nothing else was written.
    expect(await head()).toBe(4);
    expect(await alerts()).toHaveLength(1);
    expect((await delivery.deadLetters("dead")).map((letter) => letter.seq)).toEqual([1, 2, 3, 4]);
    expect((await delivery.status())[0]).toMatchObject({
      state: "failing",
      deadLetters: { dead: 4, queued: 0 },
    });
  });

  it("replays dead letters, and everything from a given seq, on request", async () => {
    const { delivery, fake } = start([sinkConfig("siem", { delivery: { maxAttempts: 1 } as never })]);
    fake("siem").state.refuse = (record) => record.event.subject === "poison";
    await delivery.start();
    await appendMany(4, (index) => ({ subject: index === 1 ? "poison" : null }));
    await until("the dead letter", async () => (await delivery.deadLetters("siem")).length === 1);
    fake("siem").state.refuse = () => false;
    expect(await delivery.flush(10_000)).toBe(true);
    const before = fake("siem").seqs().length;

    expect(await delivery.replay("siem", "erin")).toEqual({ queued: 1, rewoundTo: null });
    await until("the replay", async () => (await delivery.deadLetters("siem", "replayed")).length === 1);
    expect(fake("siem").seqs().slice(before)).toContain(2);
    const requested = await listAuditEvents(db, { type: "audit.replay_requested" });
    expect(requested).toMatchObject([
      { actor: "erin", context: { sink: "siem", deadLetters: 1, fromSeq: null } },
    ]);

    await delivery.flush(10_000);
    const mark = fake("siem").seqs().length;
    expect(await delivery.replay("siem", "erin", { fromSeq: 3 })).toEqual({ queued: 0, rewoundTo: 2 });
    expect(await delivery.flush(10_000)).toBe(true);
    const again = fake("siem").seqs().slice(mark);
    expect(again[0]).toBe(3);
    expect(again).toEqual(Array.from({ length: (await head()) - 2 }, (_, index) => index + 3));
    await expect(delivery.replay("nope", "erin")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("lets one process deliver to a sink at a time, and takes over from one that died", async () => {
    const fakesA = new Map<string, FakeSink>();
    const fakesB = new Map<string, FakeSink>();
    const a = start([sinkConfig("siem")], fakesA);
    const b = start([sinkConfig("siem")], fakesB);
    await a.delivery.start();
    await appendMany(3);
    expect(await a.delivery.flush(10_000)).toBe(true);
    await b.delivery.start();
    await appendMany(3);
    await until("A to deliver", async () => (await readSinkState(db, "siem"))?.deliveredSeq === 6);
    b.delivery.poke();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(a.fake("siem").seqs()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(fakesB.get("siem")?.seqs() ?? []).toEqual([]);

    // A holder on another machine keeps its lease until it expires: a process starting now waits.
    // Both local processes stop first (releasing their leases), so the only holder is the other machine.
    for (const stopped of [a.delivery, b.delivery]) {
      await stopped.stop();
      running.splice(running.indexOf(stopped), 1);
    }
    await db
      .updateTable("audit_sink_state")
      .set({ lease_owner: "elsewhere/1/abc", lease_until: clock.now() + 60_000 })
      .execute();
    const fakesC = new Map<string, FakeSink>();
    const c = start([sinkConfig("siem")], fakesC);
    await c.delivery.start();
    await appendMany(1);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(fakesC.get("siem")?.seqs() ?? []).toEqual([]);
    clock.advance(60_001);
    c.delivery.poke();
    await until("C to take over after expiry", () => (fakesC.get("siem")?.seqs() ?? []).includes(7));

    // A holder on this machine whose process is gone is taken over at once.
    await c.delivery.stop();
    running.splice(running.indexOf(c.delivery), 1);
    await db
      .updateTable("audit_sink_state")
      .set({ lease_owner: `${hostname().slice(0, 40)}/2147483646/dead`, lease_until: clock.now() + 600_000 })
      .execute();
    const fakesD = new Map<string, FakeSink>();
    const d = start([sinkConfig("siem")], fakesD);
    await d.delivery.start();
    await appendMany(1);
    d.delivery.poke();
    await until("D to take over from a dead process", () => (fakesD.get("siem")?.seqs() ?? []).includes(8));
  });

  it("starts a new sink at the head when asked, follows configuration changes, and times out hung deliveries", async () => {
    await appendMany(5);
    const setup = start([sinkConfig("fresh", { startAt: "newest" })]);
    await setup.delivery.start();
    expect((await readSinkState(db, "fresh"))?.deliveredSeq).toBe(5);
    await appendMany(1);
    expect(await setup.delivery.flush(10_000)).toBe(true);
    expect(setup.fake("fresh").seqs()).toEqual([6]);

    setup.setSinks([
      sinkConfig("fresh", { startAt: "newest" }),
      sinkConfig("slow", { delivery: { timeout: 50, initialBackoff: 10 } as never }),
    ]);
    const slow = createFakeSink();
    slow.state.hang = true;
    setup.fakes.set("slow", slow);
    await setup.delivery.reconfigure();
    await until(
      "the hung delivery to time out",
      async () => (await readSinkState(db, "slow"))?.lastError === "timed out",
    );
    slow.state.hang = false;
    clock.advance(60_000);
    setup.delivery.poke();
    expect(await setup.delivery.flush(10_000)).toBe(true);
    expect(slow.seqs()).toEqual([1, 2, 3, 4, 5, 6]);

    setup.setSinks([sinkConfig("slow", { delivery: { timeout: 50, initialBackoff: 10 } as never })]);
    await setup.delivery.reconfigure();
    expect((await setup.delivery.status()).map((sink) => sink.name)).toEqual(["slow"]);
  });
});

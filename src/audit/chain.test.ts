import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  type AuditEvent,
  canonicalJson,
  GENESIS_HASH,
  type HashedFields,
  hashEvent,
  type UnreadableRecord,
  verifyChain,
} from "./chain.js";

const sample: Omit<HashedFields, "prevHash"> = {
  seq: 1,
  id: "evt_000000000000000000000001",
  time: "2026-11-29T02:14:07.123Z",
  type: "request.created",
  actor: "alice",
  zone: "payments-db",
  resource: null,
  subject: "req_1",
  context: { severity: 1, reason: "café ☕ 決済", approvers: ["carol"] },
};

function buildChain(length: number): AuditEvent[] {
  const events: AuditEvent[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= length; seq++) {
    const fields = { ...sample, seq, id: `evt_${seq}`, context: { n: seq } };
    const hash = hashEvent(prevHash, fields);
    events.push({ ...fields, prevHash, hash });
    prevHash = hash;
  }
  return events;
}

describe("canonicalJson", () => {
  it("sorts keys recursively, so member order never changes the encoding", () => {
    const a = { b: 1, a: { y: [1, { d: 2, c: 3 }], x: true }, c: null };
    const b = { c: null, a: { x: true, y: [1, { c: 3, d: 2 }] }, b: 1 };
    expect(canonicalJson(a)).toBe('{"a":{"x":true,"y":[1,{"c":3,"d":2}]},"b":1,"c":null}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
  });

  it("writes unicode as itself, and orders keys by UTF-16 code units as RFC 8785 does", () => {
    // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FFFD in UTF-16 order
    // although it comes after it in code point order.
    const encoded = canonicalJson({ "\uFFFD": 1, "😀": 2, é: "日本", z: "ñ" });
    expect(encoded).toBe('{"z":"ñ","é":"日本","😀":2,"\uFFFD":1}');
  });

  it("escapes control characters and lone surrogates so the output is always valid UTF-8", () => {
    expect(canonicalJson({ s: 'a"b\\c\n\u0000\u001f\uD800' })).toBe(
      '{"s":"a\\"b\\\\c\\n\\u0000\\u001f\\ud800"}',
    );
  });

  it("keeps no whitespace and writes numbers in their shortest form", () => {
    expect(canonicalJson({ list: [1, -0, 2.5, 1e21, 10_000] })).toBe('{"list":[1,0,2.5,1e+21,10000]}');
  });

  it("re-encodes what it parses to the same bytes (what is stored verifies)", () => {
    const value = { when: new Date(0), missing: undefined, list: [undefined, "x"], nested: { b: 2, a: 1 } };
    const encoded = canonicalJson(value);
    expect(encoded).toBe('{"list":[null,"x"],"nested":{"a":1,"b":2},"when":"1970-01-01T00:00:00.000Z"}');
    expect(canonicalJson(JSON.parse(encoded))).toBe(encoded);
  });

  it("refuses values JSON cannot carry faithfully", () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ n: Number.POSITIVE_INFINITY })).toThrow(TypeError);
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(TypeError);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(TypeError);
  });
});

describe("hashEvent", () => {
  it("is SHA-256 over the documented canonical bytes (a pinned vector: changing it breaks stored chains)", () => {
    const canonical =
      '{"actor":"alice","context":{"approvers":["carol"],"reason":"café ☕ 決済","severity":1},' +
      `"id":"evt_000000000000000000000001","prevHash":"${GENESIS_HASH}","resource":null,"seq":1,` +
      '"subject":"req_1","time":"2026-11-29T02:14:07.123Z","type":"request.created","zone":"payments-db"}';
    const expected = "2f5c60fd091d37cee99c4ce89c62f950bc08f928b317b21a93737b71a9b7c019";
    expect(createHash("sha256").update(Buffer.from(canonical, "utf8")).digest("hex")).toBe(expected);
    expect(hashEvent(GENESIS_HASH, sample)).toBe(expected);
  });

  it("covers every field, the previous hash included", () => {
    const base = hashEvent(GENESIS_HASH, sample);
    const variants: Omit<HashedFields, "prevHash">[] = [
      { ...sample, seq: 2 },
      { ...sample, id: "evt_other" },
      { ...sample, time: "2026-11-29T02:14:07.124Z" },
      { ...sample, type: "request.approved" },
      { ...sample, actor: "mallory" },
      { ...sample, zone: null },
      { ...sample, resource: "payments-pg" },
      { ...sample, subject: "req_2" },
      { ...sample, context: { ...sample.context, severity: 2 } },
    ];
    for (const variant of variants) expect(hashEvent(GENESIS_HASH, variant)).not.toBe(base);
    expect(hashEvent("1".repeat(64), sample)).not.toBe(base);
  });

  it("ignores the order in which context members were written", () => {
    const reordered = { ...sample, context: { approvers: ["carol"], reason: "café ☕ 決済", severity: 1 } };
    expect(hashEvent(GENESIS_HASH, reordered)).toBe(hashEvent(GENESIS_HASH, sample));
  });
});

describe("verifyChain", () => {
  it("accepts an intact chain and reports its count and head hash", async () => {
    const events = buildChain(5);
    const last = events[4] as AuditEvent;
    expect(await verifyChain(events, { seq: 5, hash: last.hash })).toEqual({
      ok: true,
      count: 5,
      headHash: last.hash,
    });
  });

  it("accepts an empty chain whose head is the genesis", async () => {
    expect(await verifyChain([], { seq: 0, hash: GENESIS_HASH })).toEqual({
      ok: true,
      count: 0,
      headHash: GENESIS_HASH,
    });
  });

  it("reads async iterables", async () => {
    async function* generate() {
      yield* buildChain(3);
    }
    expect(await verifyChain(generate())).toMatchObject({ ok: true, count: 3 });
  });

  it("names an edited field by a hash mismatch at that seq", async () => {
    const events = buildChain(5);
    events[2] = { ...(events[2] as AuditEvent), actor: "mallory" };
    expect(await verifyChain(events)).toMatchObject({
      ok: false,
      count: 2,
      firstBadSeq: 3,
      problem: "HASH_MISMATCH",
    });
  });

  it("finds a deleted event by the gap it leaves", async () => {
    const events = buildChain(5);
    events.splice(1, 1);
    expect(await verifyChain(events)).toMatchObject({ ok: false, firstBadSeq: 2, problem: "SEQ_GAP" });
  });

  it("finds reordered events by their broken links", async () => {
    const events = buildChain(5);
    const [third, fourth] = [events[2] as AuditEvent, events[3] as AuditEvent];
    events[2] = { ...fourth, seq: 3 };
    events[3] = { ...third, seq: 4 };
    expect(await verifyChain(events)).toMatchObject({
      ok: false,
      firstBadSeq: 3,
      problem: "PREV_HASH_MISMATCH",
    });
  });

  it("finds an edit whose hash was recomputed at the next link", async () => {
    const events = buildChain(5);
    const edited = { ...(events[1] as AuditEvent), actor: "mallory" };
    edited.hash = hashEvent(edited.prevHash, edited);
    events[1] = edited;
    expect(await verifyChain(events)).toMatchObject({
      ok: false,
      firstBadSeq: 3,
      problem: "PREV_HASH_MISMATCH",
    });
  });

  it("requires the first event to start from the genesis hash", async () => {
    const events = buildChain(5).slice(1);
    const rebased = events.map((event) => ({ ...event, seq: event.seq - 1 }));
    expect(await verifyChain(rebased)).toMatchObject({
      ok: false,
      firstBadSeq: 1,
      problem: "PREV_HASH_MISMATCH",
    });
  });

  it("reports an unreadable row where it sits", async () => {
    const events: (AuditEvent | UnreadableRecord)[] = buildChain(3);
    events[1] = { seq: 2, unreadable: "context_json is not valid JSON" };
    expect(await verifyChain(events)).toMatchObject({ ok: false, firstBadSeq: 2, problem: "UNREADABLE" });
  });

  it("compares the end of the chain with the head", async () => {
    const events = buildChain(5);
    const head = { seq: 5, hash: (events[4] as AuditEvent).hash };
    expect(await verifyChain(events.slice(0, 4), head)).toMatchObject({
      ok: false,
      count: 4,
      firstBadSeq: 5,
      problem: "HEAD_MISMATCH",
    });
    expect(await verifyChain(events, { seq: 4, hash: (events[3] as AuditEvent).hash })).toMatchObject({
      ok: false,
      firstBadSeq: 5,
      problem: "HEAD_MISMATCH",
    });
    expect(await verifyChain(events, { seq: 5, hash: "f".repeat(64) })).toMatchObject({
      ok: false,
      firstBadSeq: 5,
      problem: "HEAD_MISMATCH",
    });
  });
});

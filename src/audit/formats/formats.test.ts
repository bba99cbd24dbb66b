import { describe, expect, it } from "vitest";
import { parseRfc5424 } from "../../../test/audit-stream/support/rfc5424.js";
import { type SinkRecord, toSinkRecord } from "../analyst-view.js";
import { type AuditEvent, GENESIS_HASH, hashEvent } from "../chain.js";
import { cefLine, escapeCefValue } from "./cef.js";
import { formatters, syslogBody } from "./index.js";
import { OCSF_CLASSES, ocsfObject } from "./ocsf.js";
import { SD_ID, syslogMessage, truncateUtf8 } from "./rfc5424.js";

const HOSTILE = 'a "quoted" ] bracket \\ backslash\nnew line ünïcödé 🔥 | pipe = equals';

function event(overrides: Partial<AuditEvent> = {}): AuditEvent {
  const fields = {
    seq: 42,
    id: "evt_0123456789abcdef01234567",
    time: "2026-11-29T02:14:07.123Z",
    type: "grant.activated",
    actor: "alice",
    zone: "payments-db",
    resource: "payments-pg",
    subject: "grt_mi3k2a9f4c1b8e0d7a6f",
    context: {
      grant: "grt_mi3k2a9f4c1b8e0d7a6f",
      request: "req_mi3k2a9f4c1b8e0d7a6e",
      requester: "alice",
      role: "admin",
      policy: "payments-db-emergency",
      purpose: HOSTILE,
      ticket: "INC-4711",
      approvers: ["carol"],
      factors: [{ kind: "totp", at: "2026-11-29T02:13:00.000Z" }],
      signals: { incident: { open: true, severity: 1, id: "INC-4711" } },
      sourceZone: "bastion",
      clientAddress: "10.20.0.7",
    },
    ...overrides,
  };
  return { ...fields, prevHash: GENESIS_HASH, hash: hashEvent(GENESIS_HASH, fields) };
}

const header = { facility: 10, hostname: "fb-1.example", appName: "firebreak", procId: "4242" };
const record = (e = event()): SinkRecord => toSinkRecord(e, null, "https://firebreak.example.com/");

describe("RFC 5424 messages", () => {
  it("parse strictly, escape hostile parameter values, and carry the whole event in MSG", () => {
    const r = record();
    const text = syslogMessage(r, syslogBody("rfc5424", r, header), header);
    const parsed = parseRfc5424(Buffer.from(text, "utf8"));
    expect(parsed).toMatchObject({
      pri: 10 * 8 + 4,
      timestamp: "2026-11-29T02:14:07.123Z",
      hostname: "fb-1.example",
      appName: "firebreak",
      procId: "4242",
      msgId: "grant.activated",
      bom: true,
    });
    const params = parsed.structuredData.get(SD_ID);
    expect(params?.get("purpose")).toEqual([HOSTILE]);
    expect(params?.get("approvers")).toEqual(["carol"]);
    expect(params?.get("factors")).toEqual(["totp@2026-11-29T02:13:00.000Z"]);
    expect(params?.get("link")).toEqual(["https://firebreak.example.com/grants/grt_mi3k2a9f4c1b8e0d7a6f"]);
    expect(parsed.structuredData.get("meta")?.get("sequenceId")).toEqual(["42"]);
    const body = JSON.parse(parsed.msg ?? "");
    expect(body).toMatchObject({ ...r.event, severity: "medium" });
    expect(hashEvent(body.prevHash, body)).toBe(r.event.hash);
  });

  it("cut to the configured size at a character boundary, keeping a parseable header", () => {
    const r = record(event({ context: { purpose: "🔥".repeat(2000) } }));
    const text = syslogMessage(r, syslogBody("json", r, { ...header, maxBytes: 1000 }), {
      ...header,
      maxBytes: 1000,
    });
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(1000);
    expect(() => parseRfc5424(Buffer.from(text, "utf8"))).not.toThrow();
    expect(truncateUtf8("aé🔥", 4)).toBe("aé");
  });

  it("sanitise header fields and keep seq within the sequenceId range", () => {
    const r = record(
      event({ seq: 2_147_483_648, type: "a.very-long-event-type-name-that-exceeds-thirty-two" }),
    );
    const parsed = parseRfc5424(
      Buffer.from(syslogMessage(r, "x", { ...header, hostname: "bad host" }), "utf8"),
    );
    expect(parsed.hostname).toBe("bad_host");
    expect(parsed.msgId?.length).toBe(32);
    expect(parsed.structuredData.get("meta")?.get("sequenceId")).toEqual(["1"]);
  });
});

/** Splits a CEF extension on unescaped `key=` boundaries, undoing the escapes. */
function parseCefExtension(extension: string): Record<string, string> {
  const out: Record<string, string> = {};
  const pattern = /(?:^| )([A-Za-z0-9]+)=((?:\\.|[^\\])*?)(?= [A-Za-z0-9]+=|$)/g;
  for (const match of extension.matchAll(pattern)) {
    out[match[1] as string] = (match[2] as string).replace(/\\(.)/g, (_, c: string) =>
      c === "n" ? "\n" : c === "r" ? "\r" : c,
    );
  }
  return out;
}

describe("CEF", () => {
  it("escapes header and extension values so that every field reads back exactly", () => {
    const line = cefLine(record(), "fb-1");
    const fields = line.split(/(?<!\\)\|/);
    expect(fields.slice(0, 7).map((field, index) => (index === 5 ? "…" : field))).toEqual([
      "CEF:0",
      "Firebreak",
      "Firebreak",
      expect.any(String),
      "grant.activated",
      "…",
      "5",
    ]);
    const extension = parseCefExtension(fields.slice(7).join("|"));
    expect(extension).toMatchObject({
      externalId: "evt_0123456789abcdef01234567",
      suser: "alice",
      duser: "alice",
      src: "10.20.0.7",
      cs1Label: "zone",
      cs1: "payments-db",
      cs4Label: "purpose",
      cs4: HOSTILE,
      cs5: "INC-4711",
      cs6: "bastion",
      flexString1: "carol",
      cn1: "42",
    });
    expect(JSON.parse(extension.fbContext ?? "{}")).toEqual(record().event.context);
    expect(escapeCefValue("a=b\\c\nd")).toBe("a\\=b\\\\c\\nd");
  });
});

describe("OCSF", () => {
  it("maps each event type to its class, with type_uid = class_uid * 100 + activity_id", () => {
    for (const [type, mapping] of Object.entries(OCSF_CLASSES)) {
      const object = ocsfObject(record(event({ type })));
      expect({ type, class_uid: object.class_uid, type_uid: object.type_uid }).toEqual({
        type,
        class_uid: mapping.classUid,
        type_uid: mapping.classUid * 100 + mapping.activityId,
      });
      expect(object.category_uid).toBe(Math.floor(mapping.classUid / 1000));
    }
    expect(ocsfObject(record(event({ type: "something.new" }))).class_uid).toBe(0);
    const denied = ocsfObject(
      record(
        event({ type: "decision.denied", context: { reasons: [{ code: "NOT_ELIGIBLE", message: "no" }] } }),
      ),
    );
    expect(denied).toMatchObject({
      class_uid: 3003,
      status_id: 2,
      status: "Failure",
      status_detail: "NOT_ELIGIBLE: no",
    });
  });

  it("keeps everything OCSF has no attribute for under unmapped", () => {
    const object = ocsfObject(record());
    expect(object).toMatchObject({
      class_uid: 3005,
      activity_name: "Assign Privileges",
      severity_id: 3,
      privileges: ["admin"],
      metadata: { uid: "evt_0123456789abcdef01234567", sequence: 42, product: { name: "Firebreak" } },
      src_endpoint: { ip: "10.20.0.7", zone: "bastion" },
      unmapped: {
        purpose: HOSTILE,
        ticket: "INC-4711",
        approvers: ["carol"],
        signals: { incident: { open: true, severity: 1, id: "INC-4711" } },
        links: { grant: "https://firebreak.example.com/grants/grt_mi3k2a9f4c1b8e0d7a6f" },
      },
    });
  });
});

describe("the JSON format", () => {
  it("is the exported event plus derived severity, links and related facts", () => {
    const related = {
      request: "req_1",
      user: "alice",
      role: "admin",
      policy: null,
      purpose: "p",
      ticket: null,
      approvers: ["carol"],
      factors: [],
      signals: {},
      sourceZone: null,
      clientAddress: null,
    };
    const e = event({ type: "credential.issued", context: { grant: "grt_x", user: "alice", role: "admin" } });
    const rendered = formatters.json(toSinkRecord(e, related, null), header).data as Record<string, unknown>;
    expect(rendered).toEqual({ ...e, severity: "low", related });
  });
});

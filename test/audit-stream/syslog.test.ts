import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { hashEvent } from "../../src/audit/chain.js";
import { verifyExportFiles } from "../../src/audit/offline-verify.js";
import { REASON, type TestApp } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";
import {
  createSelfSignedCertificate,
  type ReceivedSyslog,
  startStreamReceiver,
  startUdpReceiver,
  waitFor,
} from "./support/receivers.js";
import { PUBLIC_URL, runBreakGlass, startStreamApp, streamConfig } from "./support/stream-app.js";

const SD = "firebreak@32473";
const param = (entry: ReceivedSyslog, name: string) => entry.message.structuredData.get(SD)?.get(name)?.[0];

describe.each(DIALECTS)("syslog and file sinks on %s", (dialect) => {
  let t: TestApp | undefined;
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    const errors = t?.serverErrors ?? [];
    await t?.close();
    t = undefined;
    for (const cleanup of cleanups.splice(0)) await cleanup();
    expect(errors, "the server logged failures").toEqual([]);
  });

  it("streams every event, in order, to strict RFC 5424 receivers over TCP, TLS and UDP, and to files", async () => {
    const certificate = createSelfSignedCertificate();
    const tcp = await startStreamReceiver();
    const secure = await startStreamReceiver({ tls: certificate });
    const udp = await startUdpReceiver();
    cleanups.push(tcp.stop, secure.stop, udp.close);
    const directory = await mkdtemp(join(tmpdir(), "firebreak-sink-"));
    const jsonPath = join(directory, "audit.jsonl");
    const ocsfPath = join(directory, "audit.ocsf.jsonl");
    t = await startStreamApp(
      dialect,
      streamConfig({
        sinks: [
          `{ name: siem, type: syslog, url: "${tcp.url}", format: rfc5424 }`,
          `{ name: siem-tls, type: syslog, url: "${secure.url}", tls: { ca: "file:${certificate.certPath}" } }`,
          `{ name: siem-udp, type: syslog, url: "${udp.url}", format: cef, facility: local4 }`,
          `{ name: lake, type: file, path: "${jsonPath}" }`,
          `{ name: lake-ocsf, type: file, path: "${ocsfPath}", format: ocsf }`,
        ],
      }),
    );
    const { grantId, requestId } = await runBreakGlass(t);
    expect(await t.app.services.auditDelivery.flush(15_000)).toBe(true);
    const events = await t.auditEvents();
    const ids = events.map((event) => (event as unknown as { id: string }).id);
    expect(events.length).toBeGreaterThan(10);

    await waitFor("the UDP datagrams", () => udp.received.length >= ids.length);
    expect(tcp.errors).toEqual([]);
    expect(secure.errors).toEqual([]);
    expect(udp.errors).toEqual([]);
    expect(tcp.ids()).toEqual(ids);
    expect(secure.ids()).toEqual(ids);
    expect(udp.received.map((entry) => entry.message.structuredData.get(SD)?.get("id")?.[0])).toEqual(ids);

    // Header and structured data: facility authpriv (10) and the event's severity; MSG is the event.
    for (const [index, entry] of tcp.received.entries()) {
      const event = events[index] as unknown as Record<string, unknown>;
      expect(entry.message.facility).toBe(10);
      expect(entry.message.appName).toBe("firebreak");
      expect(entry.message.msgId).toBe(event.type);
      expect(entry.message.timestamp).toBe(event.time);
      expect(entry.message.structuredData.get("meta")?.get("sequenceId")).toEqual([String(event.seq)]);
      expect(param(entry, "seq")).toBe(String(event.seq));
      expect(entry.message.bom).toBe(true);
      const body = JSON.parse(entry.message.msg ?? "") as Record<string, unknown> & { prevHash: string };
      expect(body).toMatchObject(event);
      expect(hashEvent(body.prevHash, body as never)).toBe(event.hash);
    }
    expect(udp.received.every((entry) => entry.message.facility === 20)).toBe(true);
    expect(
      udp.received.every((entry) => (entry.message.msg ?? "").startsWith("CEF:0|Firebreak|Firebreak|")),
    ).toBe(true);

    // Context in full, without a second lookup: on the activation, and on events whose service
    // recorded only the grant id (the issued credential), through what delivery looked up.
    const byType = (type: string) => {
      const found = tcp.received.find((entry) => entry.message.msgId === type);
      if (!found) throw new Error(`no ${type} message`);
      return found;
    };
    for (const type of ["grant.activated", "credential.issued", "grant.revoked", "revocation.verified"]) {
      const entry = byType(type);
      expect({ type, zone: param(entry, "zone") }).toEqual({ type, zone: "vault" });
      expect(param(entry, "grant")).toBe(grantId);
      expect(param(entry, "request")).toBe(requestId);
      expect(param(entry, "user")).toBe("alice");
      expect(param(entry, "purpose")).toBe(REASON);
      expect(param(entry, "ticket")).toBe("INC-4711");
      expect(param(entry, "approvers")).toBe("carol");
      expect(param(entry, "sourceZone")).toBe("bastion");
      expect(param(entry, "clientAddress")).toBe("127.0.0.1");
      expect(JSON.parse(param(entry, "signals") ?? "{}")).toMatchObject({
        incident: { open: true, severity: 2 },
      });
      expect(param(entry, "link")).toBe(`${PUBLIC_URL}/grants/${grantId}`);
    }
    expect(param(byType("credential.issued"), "resource")).toBe("vault-pg");
    expect(param(byType("grant.revoked"), "reasons")).toContain("work finished early");
    const denied = byType("decision.denied");
    expect(param(denied, "user")).toBe("frank");
    expect(param(denied, "reasons")).toMatch(/[A-Z_]+: /);
    expect(denied.message.severity).toBe(4);

    // The JSON file is the export format: it verifies offline, chain and all.
    const verified = await verifyExportFiles([jsonPath]);
    expect(verified).toMatchObject({ ok: true, events: ids.length, duplicates: 0 });
    const ocsf = (await readFile(ocsfPath, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(ocsf.map((line) => (line.metadata as { uid: string }).uid)).toEqual(ids);
    const activation = ocsf.find(
      (line) => (line.metadata as { event_code: string }).event_code === "grant.activated",
    );
    expect(activation).toMatchObject({
      class_uid: 3005,
      activity_id: 1,
      type_uid: 300501,
      privileges: ["admin"],
      user: { name: "alice" },
      unmapped: { purpose: REASON, ticket: "INC-4711", approvers: ["carol"], source_zone: "bastion" },
    });
  });
});

import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AuditSinkConfig } from "../../config/schema.js";
import { type SinkRecord, toSinkRecord } from "../analyst-view.js";
import { type AuditEvent, GENESIS_HASH, hashEvent } from "../chain.js";
import { verifyExportFiles } from "../offline-verify.js";
import { createFileSink } from "./file.sink.js";

function chain(count: number, from = 1): SinkRecord[] {
  const records: SinkRecord[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = from; seq < from + count; seq++) {
    const fields = {
      seq,
      id: `evt_${String(seq).padStart(24, "0")}`,
      time: new Date(Date.UTC(2026, 10, 29, 2, 0, seq)).toISOString(),
      type: "request.created",
      actor: "alice",
      zone: "vault",
      resource: null,
      subject: null,
      context: { purpose: "line\nbreaks stay inside one line", seq },
    };
    const hash = hashEvent(prevHash, fields);
    const event: AuditEvent = { ...fields, prevHash, hash };
    records.push(toSinkRecord(event, null, null));
    prevHash = hash;
  }
  return records;
}

const deps = { secret: () => "", hostname: "test", procId: "1", now: () => 0 };
const signal = new AbortController().signal;

describe("the JSON-lines file sink", () => {
  let directory: string;
  beforeEach(async () => {
    directory = await mkdtemp(join(tmpdir(), "firebreak-file-sink-"));
  });
  afterEach(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it("appends one line per event, rotating by size at line boundaries and keeping `keep` files", async () => {
    const path = join(directory, "audit.jsonl");
    // Seqs 10 to 49: lines of equal length, so ten fit in each file.
    const records = chain(40, 10);
    const lineBytes = Buffer.byteLength(`${JSON.stringify({ ...records[0]?.event, severity: "low" })}\n`);
    const sink = createFileSink(
      { name: "lake", type: "file", path, rotate: { size: lineBytes * 10 + 5, keep: 2 } } as AuditSinkConfig,
      deps,
    );
    expect(sink.target).toBe(`file:${path}`);
    for (let index = 0; index < 40; index += 7) await sink.deliver(records.slice(index, index + 7), signal);
    await sink.close();
    expect((await readdir(directory)).sort()).toEqual(["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]);
    const lines = async (name: string) =>
      (await readFile(join(directory, name), "utf8")).trimEnd().split("\n");
    const seqs = async (name: string) =>
      (await lines(name)).map((line) => (JSON.parse(line) as AuditEvent).seq);
    // Ten lines per file: the newest in the live file, older ones rotated, the oldest dropped.
    expect(await seqs("audit.jsonl")).toEqual(Array.from({ length: 10 }, (_, index) => index + 40));
    expect(await seqs("audit.jsonl.1")).toEqual(Array.from({ length: 10 }, (_, index) => index + 30));
    expect(await seqs("audit.jsonl.2")).toEqual(Array.from({ length: 10 }, (_, index) => index + 20));
    for (const name of ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"])
      for (const line of await lines(name)) expect(Buffer.byteLength(`${line}\n`)).toBe(lineBytes);
  });

  it("writes exactly the export format, which verifies offline across rotated files", async () => {
    const path = join(directory, "audit.jsonl");
    const sink = createFileSink(
      { name: "lake", type: "file", path, rotate: { size: 4000, keep: 100 } } as AuditSinkConfig,
      deps,
    );
    await sink.deliver(chain(30), signal);
    await sink.close();
    const files = (await readdir(directory))
      .filter((name) => name !== "audit.jsonl")
      .sort((a, b) => Number(b.split(".").at(-1)) - Number(a.split(".").at(-1)))
      .map((name) => join(directory, name));
    expect(files.length).toBeGreaterThan(1);
    expect(await verifyExportFiles([...files, path])).toMatchObject({ ok: true, events: 30 });
  });

  it("fails a delivery it cannot write, naming no path beyond its target", async () => {
    const blocker = join(directory, "not-a-directory");
    await writeFile(blocker, "x");
    const sink = createFileSink(
      { name: "lake", type: "file", path: join(blocker, "audit.jsonl") } as AuditSinkConfig,
      deps,
    );
    await expect(sink.deliver(chain(1), signal)).rejects.toMatchObject({
      name: "SinkDeliveryError",
      delivered: 0,
    });
    await expect(sink.deliver(chain(1), signal)).rejects.toThrow(/^(failed|.*\(E[A-Z]+\))$/);
  });
});

import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { openDatabase } from "../../src/db/database.js";
import { processTestConfig } from "../process/fixtures.js";
import { DIALECTS } from "../support/databases.js";
import {
  apiClient,
  createEmptyDatabase,
  describeResult,
  killAllProcesses,
  parseJson,
  processGroup,
  temporaryDirectory,
  waitFor,
} from "../support/process.js";
import { createSigningKeyFiles } from "./support/stream-app.js";

// Real processes on a shared machine: generous limits, so load slows these tests but never fails them.
vi.setConfig({ testTimeout: 180_000 });
afterAll(killAllProcesses);

type Event = { seq: number; id: string; type: string; hash: string; context: Record<string, unknown> };

/**
 * What an attacker with write access to the database does to hide what happened after `seq`:
 * delete every later event and rewind the head row to `seq`, so the chain and its head agree.
 */
async function cutChainBackTo(url: string, seq: number): Promise<void> {
  const handle = openDatabase(url);
  try {
    const kept = await handle.db
      .selectFrom("audit_events")
      .select("hash")
      .where("seq", "=", seq)
      .executeTakeFirstOrThrow();
    await handle.db.deleteFrom("audit_events").where("seq", ">", seq).execute();
    await handle.db.updateTable("audit_head").set({ seq, hash: kept.hash }).where("id", "=", 1).execute();
  } finally {
    await handle.close();
  }
}

describe.each(DIALECTS)("the chain's head anchored outside the database, on %s", (dialect) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("catches a tail cut back with the head rewound: online, offline on an export, at the next checkpoint and at start", async () => {
    const group = processGroup();
    cleanups.push(() => group.killAll());
    const directory = await temporaryDirectory();
    cleanups.push(directory.remove);
    // Outside the data directory (for SQLite, the database file's own temporary directory).
    const outside = await temporaryDirectory();
    cleanups.push(outside.remove);
    const database = await createEmptyDatabase(dialect);
    cleanups.push(database.drop);
    const key = createSigningKeyFiles();
    const anchorFile = join(outside.path, "anchor.jsonl");
    const sinkFile = join(outside.path, "lake.jsonl");
    const config = join(directory.path, "firebreak.yaml");
    // The sink keeps grant events only: checkpoints must reach it all the same.
    await writeFile(
      config,
      `${processTestConfig()}audit:\n  signingKey: file:${key.privatePath}\n  checkpoint: { interval: 1h }\n  anchor: { file: "${anchorFile}" }\n  sinks:\n    - { name: lake, type: file, path: "${sinkFile}", filter: { types: ["grant.*"] } }\n`,
    );
    const serve = { config, db: database.url };
    const incidents = async (url: string, token: string, from: number, count: number) => {
      const admin = apiClient(url, token);
      for (let index = from; index < from + count; index++)
        await admin.post("/v1/incidents", {
          id: `INC-${index}`,
          zone: "vault",
          severity: 3,
          title: "noise",
          status: "open",
        });
    };
    /** The newest anchored checkpoint: the anchor file's last line. */
    const readAnchor = async () =>
      JSON.parse((await readFile(anchorFile, "utf8")).trimEnd().split("\n").at(-1) as string) as Event;
    const sinkCheckpoints = async () =>
      (await readFile(sinkFile, "utf8").catch(() => ""))
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as Event);

    const first = await group.startServer(serve);
    const token = first.admin?.token ?? "";
    await incidents(first.url, token, 0, 4);
    const signed = await group.cli(["--json", "audit", "checkpoint"], { url: first.url, token });
    expect(signed.code, describeResult(signed)).toBe(0);
    const kept = parseJson<{ seq: number }>(signed).seq + 1; // the checkpoint event itself
    expect(await readAnchor()).toMatchObject({ seq: kept, type: "audit.checkpoint" });
    await incidents(first.url, token, 4, 4);
    await first.stop(); // the shutdown checkpoint is anchored too
    const anchored = await readAnchor();
    expect(anchored).toMatchObject({ type: "audit.checkpoint", context: { reason: "shutdown" } });
    expect(anchored.seq).toBeGreaterThan(kept + 4);

    // An untouched chain starts, and passes with every anchor.
    const second = await group.startServer(serve);
    const online = await group.cli(["--json", "audit", "verify"], { url: second.url, token });
    expect(online.code, describeResult(online)).toBe(0);
    expect(parseJson(online)).toMatchObject({ ok: true, anchoredSeq: anchored.seq });
    await waitFor(async () => (await sinkCheckpoints()).some((event) => event.seq === anchored.seq), {
      what: "the filtered sink to receive the shutdown checkpoint",
      timeoutMs: 30_000,
    });
    const delivered = await sinkCheckpoints();
    expect(delivered.map((event) => event.type)).toEqual(["audit.checkpoint", "audit.checkpoint"]);
    const withAnchors = await group.cli(
      ["--json", "audit", "verify", "--anchor", anchorFile, "--anchor", sinkFile],
      { url: second.url, token },
    );
    expect(withAnchors.code, describeResult(withAnchors)).toBe(0);
    expect(parseJson(withAnchors)).toMatchObject({ ok: true, anchors: 2, anchoredSeq: anchored.seq });

    // The attack, while the server runs: everything after the first checkpoint goes.
    await cutChainBackTo(database.url, kept);

    const exported = await group.cli(["audit", "export"], { url: second.url, token });
    expect(exported.code, describeResult(exported)).toBe(0);
    const exportFile = join(directory.path, "export.jsonl");
    await writeFile(exportFile, exported.stdout);
    const offline = (extra: string[]) =>
      group.cli([
        "--json",
        "audit",
        "verify",
        "--file",
        exportFile,
        "--public-key",
        key.publicPath,
        "--require-signed-end",
        ...extra,
      ]);
    // The limit an anchor closes: cut back to a checkpoint, the export verifies and ends signed.
    const unanchored = await offline([]);
    expect(unanchored.code, describeResult(unanchored)).toBe(0);
    expect(parseJson(unanchored)).toMatchObject({ ok: true, events: kept, unsignedTail: 0 });
    for (const anchor of [anchorFile, sinkFile]) {
      const caught = await offline(["--anchor", anchor]);
      expect(caught.code, describeResult(caught)).toBe(1);
      expect(parseJson(caught)).toMatchObject({
        ok: false,
        problem: "BEHIND_ANCHOR",
        firstBadSeq: kept + 1,
        reason: expect.stringContaining(`the chain ends at seq ${kept}, but ${anchor} line`),
      });
    }
    const human = await group.cli(["audit", "verify", "--file", exportFile, "--anchor", anchorFile]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(`BROKEN: BEHIND_ANCHOR at seq ${kept + 1}`);

    // Online, the server's own anchor shows the cut, and so does the sink's copy.
    const behind = await group.cli(["--json", "audit", "verify"], { url: second.url, token });
    expect(behind.code, describeResult(behind)).toBe(1);
    expect(parseJson(behind)).toMatchObject({
      ok: false,
      problem: "BEHIND_ANCHOR",
      firstBadSeq: kept + 1,
      anchoredSeq: anchored.seq,
    });

    // The server goes on appending past the anchored seq; its next checkpoint raises the alert
    // and leaves the anchor as it was.
    await incidents(second.url, token, 8, anchored.seq - kept + 2);
    const again = await group.cli(["--json", "audit", "checkpoint"], { url: second.url, token });
    expect(again.code, describeResult(again)).toBe(0);
    expect(await readAnchor()).toEqual(anchored);
    const { events: alerts } = await apiClient(second.url, token).get<{ events: Event[] }>(
      "/v1/audit?type=alert.raised",
    );
    expect(alerts.filter((event) => event.context.alert === "audit-anchor-mismatch")).toMatchObject([
      {
        context: {
          severity: "critical",
          // The server grew the chain past the anchored seq again: another event sits there now,
          // and the older checkpoint the anchor keeps places the rewrite just after it.
          problem: "ANCHOR_MISMATCH",
          firstBadSeq: kept + 1,
          anchorSeq: anchored.seq,
        },
      },
    ]);
    const rewritten = await group.cli(["--json", "audit", "verify"], { url: second.url, token });
    expect(parseJson(rewritten)).toMatchObject({
      ok: false,
      problem: "ANCHOR_MISMATCH",
      firstBadSeq: kept + 1,
    });
    const fromSink = await group.cli(["--json", "audit", "verify", "--anchor", sinkFile], {
      url: second.url,
      token,
    });
    expect(fromSink.code, describeResult(fromSink)).toBe(1);
    expect(parseJson(fromSink)).toMatchObject({
      ok: false,
      problem: "ANCHOR_MISMATCH",
      firstBadSeq: kept + 1,
    });
    await second.stop();

    // A restart refuses the chain that lost its anchor.
    const refused = group.spawnServer(serve);
    await expect(refused.started).rejects.toThrow(/exited \(code 1[\s\S]*AUDIT_ANCHOR_MISMATCH/);

    // Accepting the chain as it is means moving the anchor aside; the chain alone then verifies,
    // and only the anchor kept aside (or the sink's copy) still shows what was removed.
    const setAside = join(outside.path, "anchor.jsonl.lost");
    await rename(anchorFile, setAside);
    const third = await group.startServer(serve);
    const alone = await group.cli(["--json", "audit", "verify"], { url: third.url, token });
    expect(alone.code, describeResult(alone)).toBe(0);
    expect(parseJson(alone)).toMatchObject({ ok: true });
    const lost = await group.cli(["--json", "audit", "verify", "--anchor", setAside], {
      url: third.url,
      token,
    });
    expect(lost.code, describeResult(lost)).toBe(1);
    expect(parseJson(lost)).toMatchObject({ ok: false, problem: "ANCHOR_MISMATCH", firstBadSeq: kept + 1 });
    await third.stop();
  });
});

// Only SQLite keeps its data in a directory of this machine that the anchor could share.
describe("the anchor's location", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("refuses an anchor file inside the data directory at start", async () => {
    const group = processGroup();
    cleanups.push(() => group.killAll());
    const directory = await temporaryDirectory();
    cleanups.push(directory.remove);
    const key = createSigningKeyFiles();
    const config = join(directory.path, "firebreak.yaml");
    await writeFile(
      config,
      `${processTestConfig()}audit:\n  signingKey: file:${key.privatePath}\n  anchor: { file: "${join(directory.path, "data", "anchor.jsonl")}" }\n`,
    );
    const refused = group.spawnServer({
      config,
      db: `sqlite:${join(directory.path, "data", "firebreak.db")}`,
    });
    await expect(refused.started).rejects.toThrow(/CONFIG_INVALID[\s\S]*inside the data directory/);
  });
});

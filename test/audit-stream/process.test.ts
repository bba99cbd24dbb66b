import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { processTestConfig } from "../process/fixtures.js";
import {
  apiClient,
  describeResult,
  killAllProcesses,
  parseJson,
  processGroup,
  temporaryDirectory,
  waitFor,
} from "../support/process.js";
import { type StreamReceiver, startStreamReceiver } from "./support/receivers.js";
import { createSigningKeyFiles } from "./support/stream-app.js";

// Real processes on a shared machine: generous limits, so load slows these tests but never fails them.
vi.setConfig({ testTimeout: 120_000 });
afterAll(killAllProcesses);

type Event = { seq: number; id: string; type: string; context: Record<string, unknown> };

function configWith(audit: string): string {
  return `${processTestConfig()}audit:\n${audit}`;
}

describe("a Firebreak process and its audit stream", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it("killed in the middle of a delivery, resumes where it stopped and loses nothing", async () => {
    const group = processGroup();
    cleanups.push(() => group.killAll());
    const directory = await temporaryDirectory();
    cleanups.push(directory.remove);
    const receiver: StreamReceiver = await startStreamReceiver();
    cleanups.push(receiver.stop);
    const config = join(directory.path, "firebreak.yaml");
    await writeFile(
      config,
      configWith(
        `  sinks:\n    - { name: siem, type: syslog, url: "${receiver.url}", delivery: { batchSize: 10, timeout: 60s } }\n`,
      ),
    );
    const db = `sqlite:${join(directory.path, "firebreak.db")}`;
    const first = await group.startServer({ config, db });
    const admin = apiClient(first.url, first.admin?.token ?? "");
    const incidents = async (from: number, count: number) => {
      for (let index = from; index < from + count; index++)
        await admin.post("/v1/incidents", {
          id: `INC-${index}`,
          zone: "vault",
          severity: 3,
          title: "noise",
          status: "open",
        });
    };

    await incidents(0, 40);
    await waitFor(async () => receiver.received.length >= 20, { what: "delivery to be under way" });
    // The receiver hangs: the next batch is written and waits for its confirmation when the
    // process dies. Then more events are committed that no delivery has seen.
    receiver.pause();
    await incidents(40, 30);
    await new Promise((resolve) => setTimeout(resolve, 300));
    first.signal("SIGKILL");
    await first.exited;
    const beforeRestart = new Set(receiver.ids()).size;
    receiver.resume();

    const second = await group.startServer({ config, db });
    const api = apiClient(second.url, first.admin?.token ?? "");
    const all = async () => {
      const { events } = await api.get<{ events: Event[] }>("/v1/audit?limit=1000");
      return events.map((event) => event.id);
    };
    await waitFor(
      async () => {
        const ids = await all();
        const got = new Set(receiver.ids());
        return ids.every((id) => got.has(id));
      },
      { what: "every event at the receiver", timeoutMs: 30_000 },
    );
    const ids = await all();
    const received = receiver.ids();
    expect(receiver.errors).toEqual([]);
    expect(beforeRestart).toBeLessThan(ids.length);
    expect(received.filter((id, index) => received.indexOf(id) === index)).toEqual(
      ids.slice(0, new Set(received).size),
    );
    // It resumed from its cursor, not from the start: only the unconfirmed batch came twice.
    expect(received.length - new Set(received).size).toBeLessThanOrEqual(10);
    // `audit sinks` shows where the sink stands; `--replay --from-seq` sends everything again from there.
    const token = first.admin?.token ?? "";
    const listed = await group.cli(["--json", "audit", "sinks"], { url: second.url, token });
    expect(listed.code, describeResult(listed)).toBe(0);
    expect(parseJson<{ sinks: unknown[] }>(listed).sinks).toMatchObject([
      { name: "siem", type: "syslog", target: receiver.url, deadLetters: { dead: 0, queued: 0 } },
    ]);
    const table = await group.cli(["audit", "sinks"], { url: second.url, token });
    expect(table.stdout).toMatch(
      /^SINK\s+TYPE\s+TARGET\s+STATE\s+DELIVERED\s+LAG\s+FAILURES\s+DEAD\s+LAST ERROR\nsiem\s+syslog\s+tcp:\/\/127\.0\.0\.1:\d+/,
    );
    const before = receiver.received.length;
    const replay = await group.cli(["--json", "audit", "sinks", "--replay", "siem", "--from-seq", "60"], {
      url: second.url,
      token,
    });
    expect(replay.code, describeResult(replay)).toBe(0);
    expect(parseJson(replay)).toMatchObject({ sink: "siem", queued: 0, rewoundTo: 59 });
    const head = (await all()).length;
    await waitFor(async () => receiver.received.length - before >= head - 59, {
      what: "the replay from seq 60",
    });
    const unknown = await group.cli(["--json", "audit", "sinks", "--replay", "nope"], {
      url: second.url,
      token,
    });
    expect(unknown.code).toBe(1);
    expect(parseJson(unknown)).toMatchObject({ error: { code: "NOT_FOUND" } });
  });

  it("signs checkpoints, and `audit verify --file --public-key` catches removed, reordered, altered and inserted events offline", async () => {
    const group = processGroup();
    cleanups.push(() => group.killAll());
    const directory = await temporaryDirectory();
    cleanups.push(directory.remove);
    const key = createSigningKeyFiles();
    const config = join(directory.path, "firebreak.yaml");
    const sinkFile = join(directory.path, "audit.jsonl");
    await writeFile(
      config,
      configWith(
        `  signingKey: file:${key.privatePath}\n  checkpoint: { interval: 1h }\n  sinks:\n    - { name: lake, type: file, path: "${sinkFile}" }\n`,
      ),
    );
    const db = `sqlite:${join(directory.path, "firebreak.db")}`;
    const server = await group.startServer({ config, db });
    const token = server.admin?.token ?? "";
    const admin = apiClient(server.url, token);
    for (let index = 0; index < 6; index++)
      await admin.post("/v1/incidents", {
        id: `INC-${index}`,
        zone: "vault",
        severity: 3,
        title: "noise",
        status: "open",
      });
    const checkpoint = await group.cli(["--json", "audit", "checkpoint"], { url: server.url, token });
    expect(checkpoint.code, describeResult(checkpoint)).toBe(0);
    expect(parseJson(checkpoint)).toMatchObject({ signed: true });
    for (let index = 6; index < 12; index++)
      await admin.post("/v1/incidents", {
        id: `INC-${index}`,
        zone: "vault",
        severity: 3,
        title: "noise",
        status: "open",
      });
    // A clean stop signs the head once more and lets the sink take it.
    await server.stop();

    const lines = (await import("node:fs")).readFileSync(sinkFile, "utf8").trimEnd().split("\n");
    const events = lines.map((line) => JSON.parse(line) as Event);
    const checkpoints = events.filter((event) => event.type === "audit.checkpoint");
    expect(checkpoints.map((event) => event.context.reason)).toEqual(["requested", "shutdown"]);
    expect(events.at(-1)?.type).toBe("audit.checkpoint");

    const verify = async (name: string, content: string[], extra: string[] = []) => {
      const path = join(directory.path, `${name}.jsonl`);
      await writeFile(path, `${content.join("\n")}\n`);
      const result = await group.cli([
        "--json",
        "audit",
        "verify",
        "--file",
        path,
        "--public-key",
        key.publicPath,
        ...extra,
      ]);
      return { result, body: parseJson<Record<string, unknown>>(result) };
    };

    const intact = await verify("intact", lines, ["--require-signed-end"]);
    expect(intact.result.code, describeResult(intact.result)).toBe(0);
    expect(intact.body).toMatchObject({ ok: true, events: lines.length, checkpoints: 2, unsignedTail: 0 });
    const human = await group.cli([
      "audit",
      "verify",
      "--file",
      join(directory.path, "intact.jsonl"),
      "--public-key",
      key.publicPath,
    ]);
    expect(human.stdout).toMatch(/^OK: \d+ events/);

    // Duplicates from at-least-once delivery are not tampering.
    const duplicated = await verify("duplicated", [
      ...lines.slice(0, 8),
      ...lines.slice(5, 8),
      ...lines.slice(8),
    ]);
    expect(duplicated.body).toMatchObject({ ok: true, duplicates: 3 });

    const target = 5; // seq 5, well inside the first signed range
    const at = (seq: number) => lines[seq - 1] as string;
    const cases: [string, string[], string, number][] = [
      ["removed", lines.filter((_, index) => index !== target - 1), "REMOVED", target],
      [
        "reordered",
        [...lines.slice(0, target - 1), at(target + 1), at(target), ...lines.slice(target + 1)],
        "REORDERED",
        target,
      ],
      [
        "altered",
        lines.map((line, index) => (index === target - 1 ? line.replace("noise", "quiet") : line)),
        "ALTERED",
        target,
      ],
      [
        "inserted",
        [
          ...lines.slice(0, target),
          at(target)
            .replace(/"seq":\d+/, `"seq":${target}`)
            .replace("INC-", "INC-9"),
          ...lines.slice(target),
        ],
        "INSERTED",
        target,
      ],
    ];
    for (const [name, content, problem, seq] of cases) {
      const { result, body } = await verify(name, content);
      expect({ name, code: result.code, problem: body.problem, firstBadSeq: body.firstBadSeq }).toEqual({
        name,
        code: 1,
        problem,
        firstBadSeq: seq,
      });
    }

    // A forged tail: a wrong key is not accepted either.
    const stranger = createSigningKeyFiles();
    const wrongKey = await group.cli([
      "--json",
      "audit",
      "verify",
      "--file",
      join(directory.path, "intact.jsonl"),
      "--public-key",
      stranger.publicPath,
    ]);
    expect(wrongKey.code).toBe(1);
    expect(parseJson(wrongKey)).toMatchObject({ ok: false, problem: "UNKNOWN_KEY", firstBadSeq: 1 });
  });
});

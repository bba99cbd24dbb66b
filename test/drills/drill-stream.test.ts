import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import YAML from "yaml";
import { main } from "../../src/cli/main.js";
import { startTestApp, type TestApp } from "../support/app.js";
import {
  createPgFixture,
  DIRECTORY,
  dropPgAccounts,
  PG_ADMIN_URL,
  type PgFixture,
  pgAccounts,
  uniqueTag,
} from "../support/jit.js";
import { waitFor } from "../support/process.js";

/**
 * `firebreak drill run NAME` prints each step as it ends (issue 16.3). The run is held at its
 * delivery step by a webhook sink whose receiver answers nothing until the test says so: the CLI
 * must have printed the steps before it while the run cannot have finished, which proves the
 * streaming by the order of events, not by timing.
 */

const tag = uniqueTag();
const PREFIX = `ds${tag}_`;
let pgFixture: PgFixture;
let app: TestApp;
let url: string;
let receiver: Server;
const held: ServerResponse[] = [];
let holding = true;

function config(receiverUrl: string) {
  return YAML.stringify({
    version: 1,
    directory: DIRECTORY,
    zones: { "stream-pg": {} },
    resources: {
      "stream-pg-db": {
        zone: "stream-pg",
        type: "postgres",
        address: "127.0.0.1:5432",
        connection: { url: PG_ADMIN_URL },
        namePrefix: PREFIX,
        roles: { admin: { grants: [pgFixture.reader] } },
      },
    },
    breakGlass: [
      {
        name: "pg-emergency",
        zone: "stream-pg",
        roles: ["admin"],
        eligible: ["group:sre"],
        duration: { default: "15m", max: "1h" },
      },
    ],
    drills: [
      { name: "pg-stream", policy: "pg-emergency", resource: "stream-pg-db", role: "admin", every: "7d" },
    ],
    audit: {
      sinks: [{ name: "soar", type: "webhook", url: receiverUrl, secret: "env:SOAR_SECRET", format: "json" }],
    },
  });
}

/** Runs the CLI in this process, collecting what it writes to stdout and stderr. */
async function cli(args: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    stdout.push(String(chunk));
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
  const previous = process.exitCode;
  process.exitCode = undefined;
  const done = main(["node", "firebreak", "--server", url, ...args]).finally(() => {
    out.mockRestore();
    err.mockRestore();
    process.exitCode = previous;
  });
  return { stdout, stderr, done };
}

beforeAll(async () => {
  pgFixture = await createPgFixture(tag);
  receiver = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      if (holding) held.push(response);
      else response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/firebreak`;
  app = await startTestApp("sqlite", {
    config: config(receiverUrl),
    env: { SOAR_SECRET: `whsec_${Buffer.alloc(32, 9).toString("base64")}` },
  });
  app.clock.set(Date.now());
  await app.app.http.listen({ host: "127.0.0.1", port: 0 });
  url = `http://127.0.0.1:${(app.app.http.server.address() as AddressInfo).port}`;
  process.env.FIREBREAK_TOKEN = app.adminToken;
});

afterAll(async () => {
  delete process.env.FIREBREAK_TOKEN;
  holding = false;
  for (const response of held) response.writeHead(200).end();
  receiver?.closeAllConnections();
  await app?.close();
  await new Promise((resolve) => receiver?.close(resolve));
  await dropPgAccounts(PREFIX).catch(() => {});
  await pgFixture?.drop().catch(() => {});
});

describe("drill run streams its steps", () => {
  it("prints each step while the run is still going, then the result", async () => {
    holding = true;
    const run = await cli(["drill", "run", "pg-stream"]);
    let settled = false;
    run.done.then(() => {
      settled = true;
    });
    // The steps up to `refused` arrive while the delivery step waits for the held sink.
    await waitFor(async () => run.stdout.join("").includes(" refused "), {
      timeoutMs: 30_000,
      what: "the refused step line",
    });
    const printed = run.stdout.join("");
    expect(printed).not.toContain(" delivery ");
    expect(settled).toBe(false);
    const rows = await app.app.db.selectFrom("drill_runs").select(["outcome"]).execute();
    expect(rows.map((row) => row.outcome)).toEqual(["running"]);
    // Let the sink take everything: the delivery step passes and the run ends.
    holding = false;
    for (const response of held.splice(0)) response.writeHead(200).end();
    expect(await run.done).toBe(0);
    const lines = run.stdout.join("").trimEnd().split("\n");
    expect(lines[0]).toBe("drill pg-stream: running");
    expect(lines.slice(1, 7).map((line) => line.trim().split(/\s+/).slice(0, 2))).toEqual([
      ["ok", "decision"],
      ["ok", "issue"],
      ["ok", "login"],
      ["ok", "revoke"],
      ["ok", "refused"],
      ["ok", "delivery"],
    ]);
    expect(lines[7]).toBe("drill pg-stream (stream-pg): passed");
    expect(lines[8]).toMatch(/^run drl_\S+, grant grt_\S+$/);
    expect(await pgAccounts(PREFIX)).toEqual([]);
  });

  it("--json prints one final document, the run as the JSON reply holds it", async () => {
    holding = false;
    const run = await cli(["--json", "drill", "run", "pg-stream"]);
    expect(await run.done).toBe(0);
    const document = JSON.parse(run.stdout.join(""));
    expect(Object.keys(document)).toEqual(["run"]);
    expect(document.run.outcome).toBe("passed");
    expect(document.run.steps).toHaveLength(6);
  });

  it("answers JSON lines when asked, and a refusal before the first step as an ordinary error", async () => {
    const streamed = await app.call("POST", "/v1/drills/pg-stream/run", {
      headers: { accept: "application/x-ndjson" },
    });
    expect(streamed.status).toBe(200);
    expect(String(streamed.headers["content-type"])).toContain("application/x-ndjson");
    const lines = streamed.text
      .trimEnd()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(lines.slice(0, 6).map((line) => line.step.name)).toEqual([
      "decision",
      "issue",
      "login",
      "revoke",
      "refused",
      "delivery",
    ]);
    expect(lines[6].run.outcome).toBe("passed");
    expect(lines).toHaveLength(7);
    const missing = await app.call("POST", "/v1/drills/nope/run", {
      headers: { accept: "application/x-ndjson" },
    });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("NOT_FOUND");
    const cliMissing = await cli(["drill", "run", "nope"]);
    expect(await cliMissing.done).toBe(1);
    expect(cliMissing.stderr.join("")).toContain("no drill named 'nope'");
  });
});

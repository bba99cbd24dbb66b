/**
 * Issue 12 end to end, in process against the real PostgreSQL: a grant on a gateway resource
 * shows a gateway token (never the database password), psql and node-postgres (simple and
 * extended protocol, pipelining, COPY, CancelRequest) work through the gateway, every statement is
 * recorded in a transcript that `audit verify` checks, the session is cut at expiry and at revoke,
 * and hostile input is refused without harm to a good session.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startTestApp, type TestApp } from "../support/app.js";
import {
  createPgFixture,
  dropPgAccounts,
  PG_ADMIN_URL,
  type PgFixture,
  pgLoginOutcome,
  uniqueTag,
  withPgAdmin,
} from "../support/jit.js";

vi.setConfig({ testTimeout: 30_000, hookTimeout: 60_000 });
const run = promisify(execFile);

const tag = uniqueTag();
const PREFIX = `gw${tag}_`;
let fixture: PgFixture;
let test: TestApp;
let gateway: { host: string; port: number };
let tlsDirectory = "";

function config() {
  return `version: 1
auditors: [group:security]
directory:
  users:
    alice: { groups: [sre] }
    bob: { groups: [sre] }
    erin: { groups: [security] }
zones:
  gw: { cidrs: [127.0.0.0/8] }
resources:
  ledger-pg:
    zone: gw
    type: postgres
    address: 127.0.0.1:5432
    connection: { url: "${PG_ADMIN_URL}" }
    namePrefix: ${PREFIX}
    access: gateway
    roles:
      admin:
        grants: [${fixture.reader}]
        statements:
          - deny: "statement.command.startsWith('DROP') || statement.command == 'TRUNCATE'"
            message: DROP and TRUNCATE are not part of this purpose
          - allow: "true"
breakGlass:
  - name: ledger
    zone: gw
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
gateway:
  postgres:
    listen: 127.0.0.1:0
    startupTimeout: 1s
    tls: { cert: "file:${tlsDirectory}/gw.crt", key: "file:${tlsDirectory}/gw.key" }
    maxConnectionsPerAddress: 40
    authFailuresPerMinute: 6
`;
}

interface Issued {
  grant: string;
  token: string;
  detail: Record<string, unknown>;
}

async function issue(user: string): Promise<Issued> {
  const request = await test.call("POST", "/v1/requests", {
    as: user,
    body: { resource: "ledger-pg", role: "admin", reason: "the primary is down and needs a hand" },
  });
  expect(request.status, request.text).toBe(201);
  const activated = await test.call("POST", `/v1/requests/${request.body.id}/activate`, {
    as: user,
    body: {},
  });
  expect(activated.status, activated.text).toBe(201);
  const grant = activated.body.grant?.id ?? activated.body.id;
  const credential = await test.call("POST", `/v1/grants/${grant}/credential`, { as: user });
  expect(credential.status, credential.text).toBe(200);
  const [view] = credential.body.credentials;
  return { grant, token: view.secret, detail: view.detail };
}

function client(issued: Issued, overrides: Partial<pg.ClientConfig> = {}) {
  const c = new pg.Client({
    host: gateway.host,
    port: gateway.port,
    user: issued.grant,
    password: issued.token,
    database: "ledger-pg",
    connectionTimeoutMillis: 5_000,
    ...overrides,
  });
  c.on("error", () => {});
  return c;
}

async function connectError(issued: Issued, overrides: Partial<pg.ClientConfig> = {}) {
  const c = client(issued, overrides);
  try {
    await c.connect();
    await c.end();
    return { code: "ok", message: "" };
  } catch (error) {
    return { code: String((error as { code?: string }).code), message: String((error as Error).message) };
  }
}

async function transcript(grant: string) {
  await new Promise((r) => setTimeout(r, 250));
  const sessions = await test.app.services.gatewaySessions.list(grant);
  const records = [];
  for (const session of sessions)
    records.push(...(await test.app.services.gatewaySessions.records(session.id)));
  return { sessions, records: records as { kind: string; payload: Record<string, unknown> }[] };
}

beforeAll(async () => {
  tlsDirectory = await mkdtemp(join(tmpdir(), "fb-gw-tls-"));
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-keyout",
    join(tlsDirectory, "gw.key"),
    "-out",
    join(tlsDirectory, "gw.crt"),
  ]);
  fixture = await createPgFixture(tag);
  await withPgAdmin((c) => c.query(`GRANT INSERT ON ${fixture.table} TO ${fixture.reader}`));
  test = await startTestApp("sqlite", { config: config() });
  // The target checks the login's VALID UNTIL on its own clock: the grant's window must be real time.
  test.clock.set(Date.now());
  gateway = test.app.services.gateways.address() as { host: string; port: number };
});

afterAll(async () => {
  await test?.close();
  await dropPgAccounts(PREFIX);
  await fixture?.drop();
  if (tlsDirectory) await rm(tlsDirectory, { recursive: true, force: true });
});

describe("the PostgreSQL gateway", () => {
  it("shows a gateway token bound to the grant, never the database password", async () => {
    const issued = await issue("alice");
    expect(issued.detail).toMatchObject({ access: "gateway", username: issued.grant, database: "ledger-pg" });
    expect(issued.token).toMatch(/^fbgw_/);
    // The token is no database password: the target refuses it for the grant's login.
    expect(await pgLoginOutcome(String(issued.detail.externalId), issued.token)).toBe("28P01");
    const c = client(issued);
    await c.connect();
    const simple = await c.query(`select amount from ${fixture.table} where id = 1`);
    expect(simple.rows).toEqual([{ amount: 100 }]);
    // Extended protocol, named and unnamed, several in flight at once (pipelined by the driver's queue).
    const results = await Promise.all([
      c.query({ name: "by-id", text: `select amount from ${fixture.table} where id = $1`, values: [1] }),
      c.query({ name: "by-id", text: `select amount from ${fixture.table} where id = $1`, values: [2] }),
      c.query(`select $1::text as secret_value`, ["hunter2"]),
    ]);
    expect(results.map((r) => r.rowCount)).toEqual([1, 0, 1]);
    await expect(c.query("select * from no_such_table")).rejects.toMatchObject({ code: "42P01" });
    expect((await c.query("select 1 as still")).rows).toEqual([{ still: 1 }]);
    await c.end();

    const { sessions, records } = await transcript(issued.grant);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]?.endedAt).not.toBeNull();
    const statements = records.filter((r) => r.kind === "statement").map((r) => r.payload);
    expect(statements.map((s) => [s.protocol, s.text, s.tag, s.rows, s.sqlstate])).toEqual([
      ["simple", `select amount from ${fixture.table} where id = 1`, "SELECT 1", 1, null],
      ["extended", `select amount from ${fixture.table} where id = $1`, "SELECT 1", 1, null],
      ["extended", `select amount from ${fixture.table} where id = $1`, "SELECT 0", 0, null],
      ["extended", "select $1::text as secret_value", "SELECT 1", 1, null],
      ["simple", "select * from no_such_table", null, 0, "42P01"],
      ["simple", "select 1 as still", "SELECT 1", 1, null],
    ]);
    // Bound values are kept as their length and hash, not their text.
    expect(statements[3]?.params).toEqual([
      { length: 7, sha256: "f52fbd32b2b3b86ff88ef6c490628285f482af15ddcb29541f94bcf526a3f6c7" },
    ]);
    expect(JSON.stringify(records)).not.toContain("hunter2");
    const verify = await test.call("GET", "/v1/audit/verify");
    expect(verify.body).toMatchObject({ ok: true, transcripts: { ok: true, sessions: 1 } });

    // An edited transcript is caught by audit verify.
    await test.app.db
      .updateTable("gateway_records")
      .set({ payload_json: JSON.stringify({ ...statements[0], text: "select 2" }) })
      .where("session_id", "=", sessions[0]?.id as string)
      .where("seq", "=", 2)
      .execute();
    const broken = await test.call("GET", "/v1/audit/verify");
    expect(broken.body).toMatchObject({ ok: false, problem: "TRANSCRIPT_HASH_MISMATCH" });
    await test.app.db
      .updateTable("gateway_records")
      .set({ payload_json: JSON.stringify(statements[0]) })
      .where("session_id", "=", sessions[0]?.id as string)
      .where("seq", "=", 2)
      .execute();
    // The API shows the sessions and the transcript to whoever may see the grant, and to nobody else.
    const listed = await test.call("GET", `/v1/grants/${issued.grant}/sessions`, { as: "alice" });
    expect(listed.body.sessions).toMatchObject([{ id: sessions[0]?.id, protocol: "postgres", records: 7 }]);
    expect((await test.call("GET", `/v1/grants/${issued.grant}/sessions`, { as: "bob" })).status).toBe(404);
    const page = await test.call("GET", `/v1/sessions/${sessions[0]?.id}/transcript?limit=3`, { as: "erin" });
    expect(page.body.records.map((r: { seq: number; kind: string }) => [r.seq, r.kind])).toEqual([
      [1, "startup"],
      [2, "statement"],
      [3, "statement"],
    ]);
    expect(page.body.nextAfterSeq).toBe(3);
    expect((await test.call("GET", `/v1/sessions/${sessions[0]?.id}/transcript`, { as: "bob" })).status).toBe(
      404,
    );
    const restored = await test.call("GET", "/v1/audit/verify");
    expect(restored.body.ok, restored.text).toBe(true);
    const revoked = await test.call("POST", `/v1/grants/${issued.grant}/revoke`, {
      as: "alice",
      body: { reason: "done" },
    });
    expect(revoked.status, revoked.text).toBe(200);
  });

  it("refuses what the statement rules deny with 42501, records it, alerts, and the session goes on", async () => {
    const issued = await issue("alice");
    const c = client(issued);
    await c.connect();
    await expect(c.query(`select 1; /* hidden */ DROP TABLE ${fixture.table}`)).rejects.toMatchObject({
      code: "42501",
      message: "DROP and TRUNCATE are not part of this purpose",
    });
    // Extended protocol: the refused Parse fails its message; the statement after its Sync runs.
    const [refused, after] = await Promise.allSettled([
      c.query({ name: "wipe", text: `truncate ${fixture.table}` }),
      c.query({ text: `select count(*)::int as n from ${fixture.table} where id = $1`, values: [1] }),
    ]);
    expect(refused).toMatchObject({ status: "rejected", reason: { code: "42501" } });
    expect(after).toMatchObject({ status: "fulfilled", value: { rows: [{ n: 1 }] } });
    expect((await c.query(`select amount from ${fixture.table}`)).rows).toEqual([{ amount: 100 }]);
    await c.end();
    await withPgAdmin(async (admin) => {
      expect((await admin.query(`select count(*)::int as n from ${fixture.table}`)).rows).toEqual([{ n: 1 }]);
    });
    const { records } = await transcript(issued.grant);
    const statements = records.filter((r) => r.kind === "statement").map((r) => r.payload);
    expect(
      statements.map((s) => [s.sqlstate, (s.refused as { rule?: string } | undefined)?.rule ?? null]),
    ).toEqual([
      ["42501", "statements[0]"],
      ["42501", "statements[0]"],
      [null, null],
      [null, null],
    ]);
    expect(statements[2]?.classification).toMatchObject({ statements: [{ category: "read" }] });
    const alerts = (await test.auditEvents()).filter(
      (e) =>
        e.type === "alert.raised" && e.context.alert === "statement-refused" && e.subject === issued.grant,
    );
    expect(alerts).toHaveLength(2);
    await test.call("POST", `/v1/grants/${issued.grant}/revoke`, { as: "alice", body: { reason: "done" } });
  });

  it("firebreak sessions lists a grant's sessions and prints a transcript", async () => {
    const issued = await issue("bob");
    const c = client(issued);
    await c.connect();
    await c.query("select 'from the cli test' as marker");
    await c.end();
    await transcript(issued.grant);
    const address = await test.app.http.listen({ host: "127.0.0.1", port: 0 });
    const env = { FIREBREAK_URL: process.env.FIREBREAK_URL, FIREBREAK_TOKEN: process.env.FIREBREAK_TOKEN };
    process.env.FIREBREAK_URL = address;
    process.env.FIREBREAK_TOKEN = await test.token("bob");
    const printed: string[] = [];
    let humanEnd = 0;
    const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
      printed.push(String(chunk));
      return true;
    });
    try {
      const { buildProgram } = await import("../../src/cli/main.js");
      const human = ["node", "firebreak", "sessions", issued.grant, "--transcript"];
      await (await buildProgram(human.slice(2))).parseAsync(human);
      humanEnd = printed.length;
      const json = ["node", "firebreak", "--json", "sessions", issued.grant, "--transcript"];
      await (await buildProgram(json.slice(2))).parseAsync(json);
    } finally {
      spy.mockRestore();
      process.env.FIREBREAK_URL = env.FIREBREAK_URL;
      process.env.FIREBREAK_TOKEN = env.FIREBREAK_TOKEN;
      if (env.FIREBREAK_URL === undefined) delete process.env.FIREBREAK_URL;
      if (env.FIREBREAK_TOKEN === undefined) delete process.env.FIREBREAK_TOKEN;
    }
    const text = printed.slice(0, humanEnd).join("");
    expect(text).toContain("select 'from the cli test' as marker");
    expect(text).toContain("SELECT 1 rows=1");
    const parsed = JSON.parse(printed.slice(humanEnd).join(""));
    expect(parsed.sessions).toHaveLength(1);
    expect(parsed.transcripts[0].records.map((r: { kind: string }) => r.kind)).toEqual([
      "startup",
      "statement",
    ]);
    await test.call("POST", `/v1/grants/${issued.grant}/revoke`, { as: "bob", body: { reason: "done" } });
  });

  it("carries psql, COPY in both directions, and CancelRequest", async () => {
    const issued = await issue("alice");
    const env = { ...process.env, PGPASSWORD: issued.token, PGCONNECT_TIMEOUT: "5" };
    const args = [
      "-X",
      "-q",
      "-A",
      "-t",
      "-v",
      "ON_ERROR_STOP=1",
      `host=${gateway.host} port=${gateway.port} dbname=ledger-pg user=${issued.grant} sslmode=require`,
    ];
    const script =
      "create temp table t (a int);\ncopy t from stdin;\n7\n8\n\\.\nselect sum(a) from t;\ncopy t to stdout;\n";
    const child = execFile("psql", args, { env });
    child.stdin?.end(script);
    const output = await new Promise<string>((resolve, reject) => {
      let out = "";
      let err = "";
      child.stdout?.on("data", (d) => (out += d));
      child.stderr?.on("data", (d) => (err += d));
      child.on("close", (code) =>
        code === 0 ? resolve(out) : reject(new Error(`psql exited ${code}: ${err}`)),
      );
    });
    expect(output.trim().split("\n")).toEqual(["15", "7", "8"]);

    const c = client(issued);
    await c.connect();
    const { processID, secretKey } = c as unknown as { processID: number; secretKey: number };
    const sleeping = c.query("select pg_sleep(20)");
    await new Promise((r) => setTimeout(r, 300));
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(gateway.port, gateway.host, () => {
        const packet = Buffer.alloc(16);
        packet.writeInt32BE(16, 0);
        packet.writeInt32BE(80877102, 4);
        packet.writeInt32BE(processID, 8);
        packet.writeInt32BE(secretKey, 12);
        socket.end(packet);
      });
      socket.on("close", () => resolve());
      socket.on("error", reject);
    });
    await expect(sleeping).rejects.toMatchObject({ code: "57014" });
    await c.end();
    const { records } = await transcript(issued.grant);
    const statements = records.filter((r) => r.kind === "statement").map((r) => r.payload);
    expect(statements.find((s) => String(s.text).startsWith("copy t from stdin"))).toMatchObject({
      tag: "COPY 2",
      rows: 2,
    });
    expect(statements.find((s) => String(s.text).startsWith("copy t to stdout"))).toMatchObject({
      tag: "COPY 2",
    });
    // psql asked for TLS and got it; node-postgres (ssl off) was answered in the clear.
    expect(
      records
        .filter((r) => r.kind === "startup")
        .map((r) => r.payload.tls)
        .sort(),
    ).toEqual([false, true]);
    expect(statements.find((s) => s.text === "select pg_sleep(20)")).toMatchObject({ sqlstate: "57014" });
    await test.call("POST", `/v1/grants/${issued.grant}/revoke`, { as: "alice", body: { reason: "done" } });
  });

  it("cuts the session at revoke with 57P01 naming the grant, and refuses it afterwards with the end time", async () => {
    const issued = await issue("alice");
    const c = client(issued);
    await c.connect();
    let cutError: { code?: string; message?: string } | null = null;
    c.on("error", (error) => {
      cutError ??= error as never;
    });
    const revoked = await test.call("POST", `/v1/grants/${issued.grant}/revoke`, {
      as: "alice",
      body: { reason: "done" },
    });
    expect(revoked.status, revoked.text).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(cutError).toMatchObject({ code: "57P01" });
    expect(String((cutError as unknown as Error).message)).toContain(issued.grant);
    expect(test.app.services.heldSessions.count(issued.grant)).toBe(0);
    const after = await connectError(issued);
    expect(after.code).toBe("28000");
    expect(after.message).toMatch(/ended at \d{4}-\d\d-\d\dT/);
    const grant = await test.call("GET", `/v1/grants/${issued.grant}`, { as: "alice" });
    expect(grant.body.revocation?.status ?? grant.body.grant?.revocation?.status, grant.text).toBe(
      "verified",
    );
  });

  it("cuts the session at expiry on the injected clock", async () => {
    const issued = await issue("bob");
    const c = client(issued);
    await c.connect();
    let cutError: { code?: string } | null = null;
    c.on("error", (error) => {
      cutError ??= error as never;
    });
    test.clock.advance(31 * 60_000);
    await test.runScheduler();
    await new Promise((r) => setTimeout(r, 300));
    const ended = await transcript(issued.grant);
    expect(cutError, JSON.stringify(ended.sessions)).toMatchObject({ code: "57P01" });
    expect((await connectError(issued)).message).toContain("expired");
    test.clock.set(Date.now());
  });

  it("refuses hostile input without harm to a good session", async () => {
    const good = await issue("alice");
    const c = client(good);
    await c.connect();
    const other = await issue("bob");

    // Someone else's token for this grant, and a made-up grant.
    expect((await connectError(good, { password: other.token })).code).toBe("28P01");
    expect((await connectError({ ...good, grant: "grt_nosuchgrant" })).code).toBe("28P01");

    const raw = async (bytes: Buffer, wait = 1_500) =>
      new Promise<Buffer>((resolve) => {
        const socket = net.connect(gateway.port, gateway.host, () => socket.write(bytes));
        const chunks: Buffer[] = [];
        socket.on("data", (d) => chunks.push(d));
        socket.on("close", () => resolve(Buffer.concat(chunks)));
        socket.on("error", () => resolve(Buffer.concat(chunks)));
        setTimeout(() => socket.destroy(), wait);
      });
    // A 2 GiB startup length, a truncated packet held open (the startup timeout ends it), garbage.
    const huge = Buffer.alloc(8);
    huge.writeUInt32BE(0x80000000, 0);
    expect((await raw(huge)).toString("latin1")).toContain("invalid startup packet length");
    const truncated = Buffer.alloc(6);
    truncated.writeUInt32BE(100, 0);
    expect((await raw(truncated, 3_000)).toString("latin1")).toContain("startup took too long");
    expect((await raw(Buffer.from("GET / HTTP/1.1\r\n\r\n"))).toString("latin1")).toContain("08P01");

    // A 2 GiB message after a good login closes that connection only.
    const victim = client(other);
    await victim.connect();
    victim.on("error", () => {});
    const stream = (victim as unknown as { connection: { stream: net.Socket } }).connection.stream;
    const bomb = Buffer.alloc(5);
    bomb.write("Q", 0, "latin1");
    bomb.writeUInt32BE(0x80000000, 1);
    stream.write(bomb);
    await new Promise((r) => setTimeout(r, 300));
    expect(stream.destroyed || !stream.writable).toBe(true);

    // Many connections from one address: past maxConnectionsPerAddress they are refused at once.
    const held: net.Socket[] = [];
    const answers: Promise<string>[] = [];
    for (let i = 0; i < 45; i++) {
      const socket = net.connect(gateway.port, gateway.host);
      held.push(socket);
      answers.push(
        new Promise((resolve) => {
          let text = "";
          socket.on("data", (d) => (text += d.toString("latin1")));
          socket.on("close", () => resolve(text));
          socket.on("error", () => resolve(text));
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 300));
    for (const socket of held) socket.destroy();
    expect(
      (await Promise.all(answers)).filter((t) => t.includes("too many connections")).length,
    ).toBeGreaterThan(0);

    // Wrong tokens from one address are rate-limited.
    const codes = [];
    for (let i = 0; i < 8; i++) codes.push((await connectError(good, { password: "fbgw_wrong" })).code);
    expect(codes.slice(-1)).toEqual(["53300"]);

    // The good session never noticed.
    expect((await c.query("select 42 as fine")).rows).toEqual([{ fine: 42 }]);
    await c.end();
    const refused = (await test.auditEvents()).filter((e) => e.type === "gateway.refused");
    expect(refused.map((e) => e.context.reason)).toEqual(
      expect.arrayContaining(["bad-token", "rate-limited"]),
    );
    expect(JSON.stringify(refused)).not.toContain(good.token);
  });
});

import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { type App, createApp } from "../../src/server/app.js";
import { createManualClock } from "../../src/shared/clock.js";
import { createTestDatabase, type TestDatabase, type TestDialect } from "./databases.js";

/**
 * The configuration the end-to-end suites run against. It is written for the tests, not borrowed
 * from examples/, so every guard has a policy that exercises it:
 *
 * - vault-emergency: one approval from leads, justification and ticket, source zone bastion
 *   (127.0.0.0/8, which is where `inject` requests come from), an incident condition, auto-approval
 *   on severity 1, review by security that blocks when overdue.
 * - app-operator: two approval steps (leads, then security); dave sits in both groups.
 * - sam is both eligible (sre) and an approver (leads) for vault-emergency.
 * - cache-flush: one approval, auto-approved during a severity-1 incident, no incident needed.
 * - sandbox-debug: no approvals at all; review within 1h that blocks when overdue.
 * - vault-read-mfa: no approvals, but activation needs a TOTP factor.
 */
export const TEST_CONFIG = `version: 1
auditors: [group:security]

directory:
  users:
    alice: { groups: [sre] }
    bob: { groups: [sre] }
    carol: { groups: [leads] }
    lena: { groups: [leads] }
    dave: { groups: [leads, security] }
    erin: { groups: [security] }
    frank: { groups: [dev] }
    sam: { groups: [sre, leads] }

zones:
  bastion: { cidrs: [127.0.0.0/8], enforcement: enforce }
  office: { cidrs: [10.99.0.0/16] }
  vault: { cidrs: [10.40.0.0/24], enforcement: enforce, labels: { tier: data } }
  app: { cidrs: [10.30.0.0/24], enforcement: enforce }
  cache: {}
  sandbox: {}

flows:
  - { from: app, to: vault, ports: [tcp/5432] }

resources:
  vault-pg:
    zone: vault
    type: log
    address: 10.40.0.5:5432
    roles:
      read: { grants: [pg_read_all_data] }
      admin: { grants: [vault_owner] }
  app-hosts:
    zone: app
    type: log
    roles:
      operator: { principals: [ops] }

standing:
  - { group: sre, zone: app, role: read }

breakGlass:
  - name: vault-emergency
    zone: vault
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
    justification: { minLength: 20, ticket: "^INC-[0-9]+$" }
    sourceZones: [bastion]
    when: "signals.incident.open && signals.incident.severity <= 2"
    autoApprove: { when: "signals.incident.severity == 1" }
    review: { within: 72h, blockWhenOverdue: true, by: [group:security] }
    pendingExpiry: 15m

  - name: app-operator
    zone: app
    roles: [operator]
    eligible: [group:sre]
    duration: { default: 1h, max: 4h }
    approvals:
      - { from: group:leads, count: 1 }
      - { from: group:security, count: 1 }
    justification: { minLength: 10 }
    review: { within: 7d, by: [group:security] }
    pendingExpiry: 30m

  - name: cache-flush
    zone: cache
    roles: [flush]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
    justification: { minLength: 10 }
    autoApprove: { when: "signals.incident.severity == 1" }
    review: { within: 24h, by: [group:security] }

  - name: sandbox-debug
    zone: sandbox
    roles: [debug]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
    review: { within: 1h, blockWhenOverdue: true, by: [group:security] }

  - name: vault-read-mfa
    zone: vault
    roles: [read]
    eligible: [group:sre]
    duration: { default: 15m, max: 1h }
    factors: [totp]
`;

/** A reason long enough for every policy above. */
export const REASON = "primary is down, failing over to the replica";

export type ManualClock = ReturnType<typeof createManualClock>;

/** Who a call is made as: a directory user's name, `admin`, a raw bearer token, or nobody. */
export type Caller = string | { token: string } | null;

export interface CallOptions {
  as?: Caller;
  body?: unknown;
  /** Sent as-is (with the headers given), for malformed bodies. */
  rawBody?: string | Buffer;
  headers?: Record<string, string>;
  /** The client address the server sees; `inject` uses 127.0.0.1 (the bastion zone) by default. */
  remoteAddress?: string;
}

export interface Reply {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: replies are checked field by field in tests
  body: any;
  text: string;
  headers: Record<string, unknown>;
}

export interface TestApp {
  /** The running app (a new one after `restart`). */
  readonly app: App;
  clock: ManualClock;
  dialect: TestDialect;
  configPath: string;
  adminToken: string;
  /** What the server logged as unknown failures (each was answered 500 INTERNAL). */
  serverErrors: string[];
  /** A bearer token for `user` (minted once through the API by the administrator). */
  token(user: string): Promise<string>;
  call(method: "GET" | "POST" | "DELETE", url: string, options?: CallOptions): Promise<Reply>;
  /** Replaces the configuration file (not applied until a reload). */
  writeConfig(text: string): Promise<void>;
  /**
   * Stops the app and starts a new one on the same database, configuration and clock, as a
   * restart of the server process would; returns what the new start reported.
   */
  restart(): Promise<{ admin: { user: string; token: string } | null }>;
  /** One expiry pass at the clock's current time. */
  runScheduler(): Promise<number>;
  count(table: "requests" | "grants" | "audit_events" | "approvals" | "users"): Promise<number>;
  /** Every audit event, in sequence order, read through the API as the administrator. */
  auditEvents(): Promise<AuditEventView[]>;
  close(): Promise<void>;
}

export interface AuditEventView {
  seq: number;
  type: string;
  actor: string;
  zone: string | null;
  resource: string | null;
  subject: string | null;
  context: Record<string, unknown>;
}

/**
 * Starts Firebreak in process on a fresh migrated database of `dialect`, with a manual clock and
 * the configuration written to a temporary directory. The HTTP server is not bound to a port:
 * calls go through Fastify's `inject`, which runs the same routing, parsing and error handling.
 */
export async function startTestApp(
  dialect: TestDialect,
  options: {
    config?: string;
    start?: boolean;
    env?: NodeJS.ProcessEnv;
    /** How often open `/v1/events` streams re-check their credential (the server's default otherwise). */
    eventStreamRecheckMs?: number;
  } = {},
): Promise<TestApp> {
  const directory = await mkdtemp(join(tmpdir(), "firebreak-e2e-"));
  const configPath = join(directory, "firebreak.yaml");
  await writeFile(configPath, options.config ?? TEST_CONFIG);
  const database: TestDatabase = await createTestDatabase(dialect);
  const clock = createManualClock(Date.parse("2026-03-03T02:00:00.000Z"));
  // Unknown failures (answered as 500 INTERNAL) are logged by the server; kept so a test can show why.
  const serverErrors: string[] = [];
  const log = {
    info() {},
    error(message: string, fields?: Record<string, unknown>) {
      serverErrors.push(`${message} ${JSON.stringify(fields ?? {})}`);
    },
  };
  let app: App;
  try {
    app = await createApp({
      configPath,
      databaseUrl: database.url,
      clock,
      env: options.env ?? {},
      log,
      eventStreamRecheckMs: options.eventStreamRecheckMs,
    });
  } catch (error) {
    await database.drop();
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  let adminToken = "";
  if (options.start !== false) {
    const started = await app.start(null);
    if (!started.admin) throw new Error("the first start of a fresh database returned no admin token");
    adminToken = started.admin.token;
  }
  const tokens = new Map<string, string>([["admin", adminToken]]);

  async function call(
    method: "GET" | "POST" | "DELETE",
    url: string,
    callOptions: CallOptions = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...(callOptions.headers ?? {}) };
    const caller = callOptions.as === undefined ? "admin" : callOptions.as;
    if (caller !== null) {
      const bearer = typeof caller === "string" ? await token(caller) : caller.token;
      headers.authorization = `Bearer ${bearer}`;
    }
    let payload: string | Buffer | undefined;
    if (callOptions.rawBody !== undefined) payload = callOptions.rawBody;
    else if (callOptions.body !== undefined) {
      payload = JSON.stringify(callOptions.body);
      headers["content-type"] ??= "application/json";
    }
    const response = await app.http.inject({
      method,
      url,
      headers,
      ...(payload === undefined ? {} : { payload }),
      ...(callOptions.remoteAddress ? { remoteAddress: callOptions.remoteAddress } : {}),
    });
    let body: unknown = null;
    try {
      body = response.body.length > 0 ? JSON.parse(response.body) : null;
    } catch {
      body = null;
    }
    return { status: response.statusCode, body, text: response.body, headers: response.headers };
  }

  async function token(user: string): Promise<string> {
    const known = tokens.get(user);
    if (known) return known;
    const minted = await call("POST", `/v1/users/${encodeURIComponent(user)}/tokens`, { as: "admin" });
    if (minted.status !== 201) throw new Error(`could not mint a token for ${user}: ${minted.text}`);
    tokens.set(user, minted.body.token);
    return minted.body.token;
  }

  return {
    get app() {
      return app;
    },
    clock,
    dialect,
    configPath,
    adminToken,
    serverErrors,
    token,
    call,
    writeConfig: (text) => writeFile(configPath, text),
    async restart() {
      await app.stop();
      app = await createApp({
        configPath,
        databaseUrl: database.url,
        clock,
        env: options.env ?? {},
        log,
        eventStreamRecheckMs: options.eventStreamRecheckMs,
      });
      const started = await app.start(null);
      return { admin: started.admin };
    },
    runScheduler: () => app.services.scheduler.runDue(),
    async count(table) {
      const row = await app.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<number>().as("count"))
        .executeTakeFirstOrThrow();
      return Number(row.count);
    },
    async auditEvents() {
      const events: AuditEventView[] = [];
      for (;;) {
        const after = events.at(-1)?.seq ?? 0;
        const page = await call("GET", `/v1/audit?afterSeq=${after}&limit=1000`);
        if (page.status !== 200) throw new Error(`GET /v1/audit failed: ${page.text}`);
        events.push(...page.body.events);
        if (page.body.events.length < 1000) return events;
      }
    },
    async close() {
      try {
        await app.stop();
      } finally {
        await database.drop();
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
}

/** Asserts an error reply: its status, its stable code, and the documented error shape. */
export function expectError(reply: Reply, status: number, code: string): void {
  expect({ status: reply.status, code: reply.body?.error?.code }).toEqual({ status, code });
  expect(typeof reply.body.error.message).toBe("string");
  expect(reply.body.error.requestId).toMatch(/^rq_[0-9a-f]{16}$/);
}

/** Asserts a success reply, showing the body when it is not one. */
export function expectStatus(reply: Reply, status: number): void {
  expect({ status: reply.status, body: reply.status === status ? "…" : reply.body }).toEqual({
    status,
    body: "…",
  });
}

/** A well-formed id of the given kind that names nothing. */
export function randomId(kind: "req" | "grt"): string {
  return `${kind}_${Date.now().toString(36)}${randomBytes(8).toString("hex")}`;
}

/** What an error reply must never carry: a stack frame, a source path, or database driver text. */
const INTERNALS = [
  /\n\s+at\s/,
  /node_modules/,
  /\.(ts|js):\d+/,
  /SQLITE_|better-sqlite3|sqlite3?\b/i,
  /invalid byte sequence|syntax error at or near|violates .* constraint|duplicate key|relation "[a-z_]+"/i,
  /\b(insert into|delete from)\b/i,
  /\bselect\b[\s\S]*\bfrom\b\s+"?[a-z_]+"?/i,
  /\bupdate\b\s+"?[a-z_]+"?\s+set\b/i,
];

/** The first sign of the server's internals in a reply, or null when there is none. */
export function findInternals(reply: Reply): string | null {
  const found = INTERNALS.find((pattern) => pattern.test(reply.text));
  return found ? `reply matched ${found}` : null;
}

/** Asserts that a reply exposes nothing of the server's internals. */
export function expectNoInternals(reply: Reply): void {
  expect(findInternals(reply), reply.text.slice(0, 300)).toBeNull();
}

/**
 * Collects every wrong answer of a loop over many inputs, so one run lists them all instead of
 * stopping at the first. End with `expect(problems.list).toEqual([])`.
 */
export function createProblems() {
  const list: string[] = [];
  return {
    list,
    /** A refusal: a 4xx with one of `codes`, in the documented error shape, free of internals. */
    refused(reply: Reply, label: string, codes: readonly string[]) {
      const error = reply.body?.error;
      const shaped = typeof error?.message === "string" && /^rq_/.test(String(error?.requestId));
      if (reply.status < 400 || reply.status >= 500 || !codes.includes(error?.code) || !shaped) {
        list.push(`${label}: ${reply.status} ${reply.text.slice(0, 200)}`);
        return;
      }
      const leak = findInternals(reply);
      if (leak) list.push(`${label}: ${leak}`);
    },
    check(condition: boolean, label: string) {
      if (!condition) list.push(label);
    },
  };
}

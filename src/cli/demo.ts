import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { verifyReply } from "../api/audit.schema.js";
import { credentialReply, grantViewSchema, reviewsReply } from "../api/grants.schema.js";
import { requestViewSchema } from "../api/requests.schema.js";
import { sessionsReply, transcriptReply } from "../api/sessions.schema.js";
import { incidentReply } from "../api/system.schema.js";
import { issuedTokenReply } from "../api/users.schema.js";
import type { Client } from "./client.js";
import { safeText } from "./format.js";

const DEMO_ZONE = "payments-db";
const DEMO_ROLE = "admin";
/** The demo configuration's PostgreSQL resource behind the gateway, and its role with statement rules. */
const LEDGER_RESOURCE = "payments-ledger";
const LEDGER_ROLE = "sql";
/** What psql sends through the gateway: a read, a refused DROP, then a statement the expiry cuts. */
const LEDGER_SCRIPT = [
  "SELECT current_user AS login, current_database() AS db;",
  "DROP TABLE payments_ledger;",
  "SELECT pg_sleep(120);",
].join("\n");

/**
 * The 2 a.m. story against a running server loaded with examples/firebreak.yaml: an incident
 * opens, an on-call SRE asks for admin on the payments database, a lead approves, the SRE
 * activates, the grant expires by itself, and the use waits for review. Every step is narrated
 * and lands in the audit chain, which is verified at the end.
 */
export async function runDemo(options: { client: Client; json: boolean; stepDelayMs: number }) {
  const admin = options.client;
  const say = (text: string) => {
    if (!options.json) process.stdout.write(`${text}\n`);
  };
  const pause = () => new Promise((r) => setTimeout(r, options.stepDelayMs));
  const steps: { step: string; detail: unknown }[] = [];
  const record = (step: string, detail: unknown) => steps.push({ step, detail });

  const { createClient } = await import("./client.js");
  const as = async (user: string) => {
    const { token } = await admin.post(`/v1/users/${user}/tokens`, {}, issuedTokenReply);
    return createClient({ url: admin.url, token });
  };

  say("02:03  PagerDuty wakes alice (SRE on call): payments are failing, the database is refusing writes.");
  const incidentId = `demo-${Date.now().toString(36)}`;
  await admin.post(
    "/v1/incidents",
    {
      id: incidentId,
      zone: DEMO_ZONE,
      severity: 2,
      title: "payments-db refusing writes",
      status: "open",
    },
    incidentReply,
  );
  record("incident.opened", { id: incidentId, zone: DEMO_ZONE, severity: 2 });
  say(`       Incident ${incidentId} (severity 2) is open in zone ${DEMO_ZONE}.`);
  await pause();

  const alice = await as("alice");
  const carol = await as("carol");
  const erin = await as("erin");

  say(
    `02:05  alice holds no admin rights anywhere. She asks for '${DEMO_ROLE}' on ${DEMO_ZONE} for 20 seconds (a demo-sized window).`,
  );
  const request = await alice.post(
    "/v1/requests",
    {
      zone: DEMO_ZONE,
      role: DEMO_ROLE,
      duration: "20s",
      reason: "payments-db refuses writes; need to clear a stuck replication slot",
      ticket: "INC-4711",
    },
    requestViewSchema,
  );
  record("request.created", request);
  say(`       ${request.id}: ${request.state}; ${request.next}`);
  await pause();

  say("02:06  alice tries to approve her own request. Firebreak refuses:");
  try {
    await alice.post(`/v1/requests/${request.id}/approve`, {}, requestViewSchema);
  } catch (error) {
    say(`       ${(error as Error).message} [${(error as { code?: string }).code}]`);
    record("self-approval.refused", { code: (error as { code?: string }).code });
  }
  await pause();

  say("02:07  carol (payments lead) approves.");
  const approved = await carol.post(
    `/v1/requests/${request.id}/approve`,
    { comment: "go; keep it to the slot" },
    requestViewSchema,
  );
  record("request.approved", approved);
  say(`       ${approved.id}: ${approved.state}; ${approved.next}`);
  await pause();

  say("02:08  alice activates. The grant exists from now until its window ends.");
  const grant = await alice.post(`/v1/requests/${request.id}/activate`, {}, grantViewSchema);
  record("grant.activated", grant);
  say(`       ${grant.id}: ${grant.state}, ${grant.secondsLeft}s left (until ${grant.endsAt})`);

  say("02:09  alice fixes the database. Nobody revokes anything by hand: the window simply ends.");
  let current = grant;
  for (let waited = 0; waited < 60 && current.state === "active"; waited++) {
    await new Promise((r) => setTimeout(r, 1000));
    current = await alice.get(`/v1/grants/${grant.id}`, grantViewSchema);
    if (current.state === "active" && current.secondsLeft % 5 === 0)
      say(`       ${current.secondsLeft}s left`);
  }
  record("grant.expired", current);
  say(`02:10  ${current.id}: ${current.state}; revocation ${current.revocation.status}.`);
  await pause();

  await ledgerAct({ alice, carol, say, record });
  await pause();

  say(
    `02:12  The use now waits for review by someone who neither asked nor approved (erin, security): due ${current.review.dueAt ?? "-"}.`,
  );
  const { reviews } = await erin.get("/v1/reviews", reviewsReply);
  record("review.pending", { reviews: reviews.map((r) => r.id) });
  say(`       reviews due: ${reviews.map((r) => r.id).join(", ") || "none"}`);

  await admin.post(
    "/v1/incidents",
    {
      id: incidentId,
      zone: DEMO_ZONE,
      severity: 2,
      title: "payments-db refusing writes",
      status: "resolved",
    },
    incidentReply,
  );
  record("incident.resolved", { id: incidentId });
  const verify = await admin.get("/v1/audit/verify", verifyReply);
  record("audit.verified", verify);
  say(
    `02:13  Incident resolved. Audit chain: ${verify.ok ? "OK" : "BROKEN"}, ${verify.count} events. See them with 'firebreak audit tail'.`,
  );
  if (options.json) process.stdout.write(`${JSON.stringify({ steps }, null, 2)}\n`);
}

type Say = (text: string) => void;
type RecordStep = (step: string, detail: unknown) => void;

/**
 * The gateway act (issue 12): alice asks for SQL on the payments ledger, a PostgreSQL resource
 * reached only through the gateway, and runs psql with the gateway token her grant showed once.
 * The transcript shows her statement, the statement rules refuse a DROP (42501), and the session is
 * cut when the grant expires (57P01). Without a PostgreSQL server at the configured target the act
 * says so and is skipped: the embedded fallback (PGlite) is not built.
 */
async function ledgerAct({
  alice,
  carol,
  say,
  record,
}: {
  alice: Client;
  carol: Client;
  say: Say;
  record: RecordStep;
}) {
  say(
    `02:10  alice also needs to look at the ledger itself. She asks for '${LEDGER_ROLE}' on ${LEDGER_RESOURCE} (PostgreSQL, through the gateway) for 15 seconds; carol approves.`,
  );
  let grantId: string;
  try {
    const request = await alice.post(
      "/v1/requests",
      {
        resource: LEDGER_RESOURCE,
        role: LEDGER_ROLE,
        duration: "15s",
        reason: "read the stuck replication slot's rows in the ledger",
        ticket: "INC-4711",
      },
      requestViewSchema,
    );
    await carol.post(
      `/v1/requests/${request.id}/approve`,
      { comment: "read only, please" },
      requestViewSchema,
    );
    const grant = await alice.post(`/v1/requests/${request.id}/activate`, {}, grantViewSchema);
    if (grant.state !== "active") throw new Error(`grant ${grant.id} is ${grant.state}`);
    grantId = grant.id;
    say(`       ${grant.id}: ${grant.state}, ${grant.secondsLeft}s left.`);
  } catch (error) {
    const code = (error as { code?: string }).code;
    say(
      `       Skipped: ${safeText((error as Error).message)}${code ? ` [${code}]` : ""}. This act needs a PostgreSQL server at the resource's target (127.0.0.1:5432 in examples/firebreak.yaml) and the gateway configured; the embedded fallback (PGlite) is not built yet.`,
    );
    record("gateway.skipped", { code: code ?? null });
    return;
  }

  const { credentials } = await alice.post(`/v1/grants/${grantId}/credential`, {}, credentialReply);
  const credential = credentials.find((c) => c.resource === LEDGER_RESOURCE && c.secret !== null);
  if (!credential) {
    say("       Skipped: the grant showed no gateway credential.");
    record("gateway.skipped", { code: "NO_CREDENTIAL" });
    return;
  }
  const d = credential.detail as { host?: string; port?: number; username?: string; database?: string };
  say(
    `       The credential: gateway ${d.host}:${d.port}, user ${d.username}, dbname ${d.database}, and a token shown once (never the database's password).`,
  );
  say("02:10  alice runs psql through the gateway:");
  for (const line of LEDGER_SCRIPT.split("\n")) say(`         ${line}`);
  const psql = await runPsql(d, credential.secret as string, LEDGER_SCRIPT, (line) =>
    say(`       | ${line}`),
  );
  record("gateway.psql", { exitCode: psql.code, output: psql.lines });
  if (psql.lines.some((l) => l.includes("57P01")))
    say("       The window ended: the gateway cut the session (57P01) at expiry, mid-statement.");

  // The gateway writes a session's records and its end a moment after the client sees the cut.
  let { sessions } = await alice.get(`/v1/grants/${grantId}/sessions`, sessionsReply);
  for (let i = 0; i < 20 && (sessions.length === 0 || sessions.some((s) => s.endedAt === null)); i++) {
    await new Promise((r) => setTimeout(r, 250));
    ({ sessions } = await alice.get(`/v1/grants/${grantId}/sessions`, sessionsReply));
  }
  say(`02:11  The transcript (${sessions.length} session(s); 'firebreak sessions ${grantId} --transcript'):`);
  for (const session of sessions) {
    const page = await alice.get(`/v1/sessions/${session.id}/transcript?limit=1000`, transcriptReply);
    for (const r of page.records) {
      if (r.kind !== "statement") continue;
      const p = r.payload as {
        text?: string;
        tag?: string;
        sqlstate?: string;
        refused?: { rule?: string; message?: string };
      };
      const outcome = p.refused
        ? `REFUSED by ${safeText(String(p.refused.rule ?? ""))}: ${safeText(String(p.refused.message ?? ""))}`
        : p.sqlstate
          ? `ERROR ${safeText(p.sqlstate)}`
          : safeText(String(p.tag ?? ""));
      say(`       statement: ${safeText(String(p.text ?? ""))} -> ${outcome}`);
    }
    say(`       session ${session.id} ended: ${safeText(session.endReason ?? "still open")}`);
    record("gateway.transcript", {
      session: session.id,
      endReason: session.endReason,
      records: page.records.length,
    });
  }
}

/** Runs psql with the token in a 0600 passfile (removed after), feeding `script` on stdin. */
async function runPsql(
  d: { host?: string; port?: number; username?: string; database?: string },
  secret: string,
  script: string,
  onLine: (line: string) => void,
): Promise<{ code: number | null; lines: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), "firebreak-demo-"));
  const passfile = join(dir, "pgpass");
  const escapePass = (v: string) => v.replace(/([\\:])/g, "\\$1");
  await writeFile(
    passfile,
    `${escapePass(String(d.host))}:${d.port}:*:${escapePass(String(d.username))}:${escapePass(secret)}\n`,
    {
      mode: 0o600,
    },
  );
  const lines: string[] = [];
  try {
    return await new Promise((resolve) => {
      const child = spawn("psql", ["-X", "-v", "VERBOSITY=verbose", "-P", "pager=off"], {
        env: {
          ...process.env,
          PGHOST: d.host,
          PGPORT: String(d.port),
          PGUSER: d.username,
          PGDATABASE: d.database,
          PGPASSFILE: passfile,
          PGCONNECT_TIMEOUT: "10",
        },
        stdio: ["pipe", "pipe", "pipe"],
      });
      const guard = setTimeout(() => child.kill("SIGTERM"), 90_000);
      let pending = "";
      const take = (chunk: Buffer) => {
        pending += chunk.toString("utf8");
        const parts = pending.split("\n");
        pending = parts.pop() ?? "";
        for (const part of parts) {
          if (part.trim() === "" || part.startsWith("\t") || /^LOCATION:/.test(part.trim())) continue;
          lines.push(part);
          onLine(safeText(part));
        }
      };
      child.stdout.on("data", take);
      child.stderr.on("data", take);
      child.on("error", (error) => {
        clearTimeout(guard);
        const line = `cannot start psql: ${(error as NodeJS.ErrnoException).code ?? "error"}`;
        lines.push(line);
        onLine(line);
        resolve({ code: null, lines });
      });
      child.on("close", (code) => {
        clearTimeout(guard);
        if (pending.trim() !== "") {
          lines.push(pending);
          onLine(safeText(pending));
        }
        resolve({ code, lines });
      });
      child.stdin.end(`${script}\n`);
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

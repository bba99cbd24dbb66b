import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { createApp } from "../server/app.js";

/**
 * Issue 15, points 1 and 2: how long the CLI takes to start, beside `node -e 0` in the same run,
 * and the time to access: from "I need in" (a break-glass request a severity-1 incident
 * auto-approves) to a statement run in a session on the real PostgreSQL target, through the API
 * alone and through the CLI (`request --activate`, then `connect` running one statement in psql),
 * with where the time goes. The server runs in this process; the CLI is the built dist/cli/main.js.
 */
const SOCKET = "/var/run/postgresql";
/** The database scripts/test-setup.sh makes require passwords (SCRAM) over TCP: the others trust. */
const DATABASE = "firebreak_pwtest";
const STARTS = Number(process.env.FIREBREAK_BENCH_CLI_STARTS ?? 15);
const ACCESSES = Number(process.env.FIREBREAK_BENCH_ACCESSES ?? 15);
const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLI = join(REPO_ROOT, "dist", "cli", "main.js");

function p50(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(sorted.length / 2) - 1)] ?? Number.NaN;
}
const ms = (value: number) => `${value.toFixed(1).padStart(7)} ms`;

/** Runs a program to its end; rejects on a non-zero exit with what it printed. */
function runProgram(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  input?: string,
): Promise<{ stdout: string; elapsedMs: number }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const elapsedMs = performance.now() - start;
      if (code === 0) resolve({ stdout, elapsedMs });
      else reject(new Error(`${args.join(" ")} exited ${code}: ${stderr.slice(0, 500)}`));
    });
    child.stdin.end(input ?? "");
  });
}

async function withAdmin<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ host: SOCKET, user: "postgres", database });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const config = (database: string, owner: string) => `version: 1
directory:
  users:
    sre: { groups: [sre] }
zones:
  db: {}
resources:
  access-pg:
    zone: db
    type: postgres
    namePrefix: tta_
    address: 127.0.0.1:5432
    connection: { url: "postgres://postgres@localhost/${database}?host=${SOCKET}" }
    roles: { admin: { grants: [${owner}] } }
breakGlass:
  - name: outage
    zone: db
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    approvals: [{ from: group:leads, count: 1 }]
    justification: { minLength: 10, ticket: '^INC-[0-9]+$' }
    when: "signals.incident.open && signals.incident.severity <= 2"
    autoApprove: { when: "signals.incident.severity == 1" }
`;

interface Credential {
  secret: string | null;
  detail: Record<string, unknown>;
}

/** A session on the target with the issued credential, running one statement. */
async function openSession(database: string, credential: Credential) {
  const connectStart = performance.now();
  const client = new pg.Client({
    host: String(credential.detail.host ?? "127.0.0.1"),
    port: Number(credential.detail.port ?? 5432),
    user: String(credential.detail.username ?? ""),
    password: credential.secret ?? "",
    database,
  });
  await client.connect();
  const connectMs = performance.now() - connectStart;
  const queryStart = performance.now();
  await client.query("SELECT 1");
  const queryMs = performance.now() - queryStart;
  await client.end();
  return { connectMs, queryMs };
}

export async function runTimeToAccessBenchmarks(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "firebreak-access-"));
  const database = DATABASE;
  // Roles are the cluster's: a name of this run's own, dropped at the end.
  const owner = `fb_access_owner_${randomBytes(4).toString("hex")}`;
  const app = await createApp({
    configPath: await writeText(join(dir, "firebreak.yaml"), config(database, owner)),
    databaseUrl: `sqlite:${join(dir, "fb.db")}`,
    masterKeyFile: join(dir, "master.key"),
    log: { info() {}, error: (message, fields) => console.error(message, fields) },
  });
  try {
    await withAdmin(database, (c) => c.query(`CREATE ROLE ${owner} NOLOGIN`));
    const { admin } = await app.start({ host: "127.0.0.1", port: 0 });
    const address = app.http.server.address();
    const base = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    const call = async (method: string, path: string, token: string, body?: unknown) => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const json = (await response.json()) as Record<string, unknown> & { error?: { code: string } };
      if (!response.ok)
        throw new Error(
          `${method} ${path}: ${response.status} ${json.error?.code} ${JSON.stringify(json.error)}`,
        );
      return json;
    };
    const adminToken = admin?.token ?? "";
    const sre = (await call("POST", "/v1/users/sre/tokens", adminToken, {})).token as string;
    await call("POST", "/v1/incidents", adminToken, {
      id: "INC-1",
      zone: "db",
      severity: 1,
      title: "the database refuses writes",
      status: "open",
    });
    const env = { ...process.env, FIREBREAK_URL: base, FIREBREAK_TOKEN: sre, XDG_CONFIG_HOME: dir };

    // 1. Start-up: the same program, side by side with node's own start.
    const starts = async (args: readonly string[]) => {
      const samples: number[] = [];
      for (let i = 0; i < STARTS; i++)
        samples.push((await runProgram(process.execPath, args, env)).elapsedMs);
      return p50(samples);
    };
    const httpSamples: number[] = [];
    for (let i = 0; i < STARTS; i++) {
      const start = performance.now();
      await call("GET", "/v1/whoami", sre);
      httpSamples.push(performance.now() - start);
    }
    const node = await starts(["-e", "0"]);
    const version = await starts([CLI, "--version"]);
    const help = await starts([CLI, "--help"]);
    const whoami = await starts([CLI, "whoami"]);
    const whoamiCall = p50(httpSamples);
    console.log(`\n(15.1) CLI start-up, p50 of ${STARTS} runs each (wall time of the whole process)`);
    console.log(`  node -e 0                 ${ms(node)}   the floor`);
    console.log(
      `  firebreak --version       ${ms(version)}   ${(version / node).toFixed(2)}x node -e 0 (goal 1.5x)`,
    );
    console.log(
      `  firebreak --help          ${ms(help)}   ${(help / node).toFixed(2)}x node -e 0 (goal 1.5x)`,
    );
    console.log(
      `  firebreak whoami          ${ms(whoami)}   goal 2x node -e 0 + the call = ${ms(2 * node + whoamiCall)} (the call alone, from a warm client: ${whoamiCall.toFixed(1)} ms)`,
    );

    // 2. Time to access through the API alone: request (auto-approved), activate, credential, session.
    const body = (i: number) => ({
      zone: "db",
      role: "admin",
      duration: "10m",
      reason: `the payments database refuses writes (${i})`,
      ticket: `INC-${1000 + i}`,
    });
    const api = { request: [], activate: [], credential: [], connect: [], query: [], total: [] } as Record<
      string,
      number[]
    >;
    const closeGrant = async (grantId: string) =>
      call("POST", `/v1/grants/${grantId}/revoke`, adminToken, { reason: "benchmark done" });
    for (let i = 0; i < ACCESSES; i++) {
      const t0 = performance.now();
      const request = await call("POST", "/v1/requests", sre, body(i));
      const t1 = performance.now();
      if (request.state !== "approved")
        throw new Error(`request not auto-approved: ${String(request.state)}`);
      const grant = await call("POST", `/v1/requests/${String(request.id)}/activate`, sre, {});
      const t2 = performance.now();
      const issued = await call("POST", `/v1/grants/${String(grant.id)}/credential`, sre, {});
      const t3 = performance.now();
      const credential = (issued.credentials as Credential[])[0] as Credential;
      const session = await openSession(database, credential);
      api.total?.push(performance.now() - t0);
      api.request?.push(t1 - t0);
      api.activate?.push(t2 - t1);
      api.credential?.push(t3 - t2);
      api.connect?.push(session.connectMs);
      api.query?.push(session.queryMs);
      await closeGrant(String(grant.id));
    }

    // The peers of each step, measured here: a bare HTTP call, a bare CREATE ROLE + GRANT, a bare
    // SCRAM login with a known password.
    const bareRole: number[] = [];
    const bareLogin: number[] = [];
    await withAdmin(database, async (c) => {
      for (let i = 0; i < ACCESSES; i++) {
        const name = `fb_access_bare_${i}_${randomBytes(3).toString("hex")}`;
        const password = randomBytes(18).toString("base64url");
        const start = performance.now();
        await c.query(
          `CREATE ROLE ${name} LOGIN PASSWORD '${password}' VALID UNTIL 'infinity' IN ROLE ${owner}`,
        );
        bareRole.push(performance.now() - start);
        const login = await openSession(database, {
          secret: password,
          detail: { username: name, host: "127.0.0.1", port: 5432 },
        });
        bareLogin.push(login.connectMs);
        await c.query(`DROP ROLE ${name}`);
      }
    });

    // 3. The same through the CLI: two commands, as a responder types them.
    const cli = { request: [], connect: [], total: [] } as Record<string, number[]>;
    for (let i = 0; i < ACCESSES; i++) {
      const b = body(100 + i);
      const t0 = performance.now();
      const created = await runProgram(
        process.execPath,
        [
          CLI,
          "--json",
          "request",
          "db",
          "--role",
          "admin",
          "--for",
          "10m",
          "--reason",
          b.reason,
          "--ticket",
          b.ticket,
          "--activate",
        ],
        env,
      );
      const t1 = performance.now();
      const { grant } = JSON.parse(created.stdout) as { grant: { id: string } | null };
      if (!grant) throw new Error(`request --activate gave no grant: ${created.stdout.slice(0, 300)}`);
      await runProgram(process.execPath, [CLI, "connect", grant.id], env, "SELECT 1;\n");
      const t2 = performance.now();
      cli.request?.push(t1 - t0);
      cli.connect?.push(t2 - t1);
      cli.total?.push(t2 - t0);
      await closeGrant(grant.id);
    }

    const row = (name: string, value: number, peer = "") =>
      console.log(`  ${name.padEnd(44)}${ms(value)}   ${peer}`);
    console.log(
      `\n(15.2) time to access, p50 of ${ACCESSES}: an auto-approved break-glass request (severity-1 incident open) to a statement run on the real PostgreSQL target`,
    );
    console.log("  through the API alone (a warm HTTP client):");
    row(
      "POST /v1/requests (policy, database, audit)",
      p50(api.request ?? []),
      `bare HTTP call (GET /v1/whoami): ${whoamiCall.toFixed(1)} ms`,
    );
    row(
      "POST .../activate (role creation, audit)",
      p50(api.activate ?? []),
      `bare CREATE ROLE ... IN ROLE: ${p50(bareRole).toFixed(1)} ms`,
    );
    row("POST .../credential (once)", p50(api.credential ?? []));
    row(
      "session on the target (TCP, SCRAM login)",
      p50(api.connect ?? []),
      `bare SCRAM login: ${p50(bareLogin).toFixed(1)} ms`,
    );
    row("SELECT 1", p50(api.query ?? []));
    row("total", p50(api.total ?? []), "goal under 100 ms");
    console.log(
      "  through the CLI (firebreak request --activate, then firebreak connect running SELECT 1 in psql):",
    );
    row(
      "firebreak --json request ... --activate",
      p50(cli.request ?? []),
      `CLI start alone (--version): ${version.toFixed(1)} ms`,
    );
    row("firebreak connect (credential, psql, SCRAM)", p50(cli.connect ?? []));
    row("total", p50(cli.total ?? []), "goal under 1000 ms");
  } finally {
    await app.stop();
    await withAdmin(database, (c) => c.query(`DROP ROLE IF EXISTS ${owner}`)).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

async function writeText(path: string, text: string): Promise<string> {
  await writeFile(path, text);
  return path;
}

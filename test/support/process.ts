/**
 * Real Firebreak processes for process-level tests: servers spawned from `dist/` (which `npm test`
 * builds before vitest runs), the CLI run as a child process, signals delivered to real pids.
 *
 * Every child is tracked twice: by the `ProcessGroup` that started it, so a test (even one running
 * concurrently with others) ends exactly its own processes, and in a module-wide set that
 * `killAllProcesses()` and an exit hook sweep, so a failed test never leaves a server behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { POSTGRES_ADMIN_URL, type TestDialect } from "./databases.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The built program; the tests exercise exactly what `npm run build` produced. */
export const CLI_PATH = join(REPO_ROOT, "dist", "cli", "main.js");

/**
 * A CLI run is mostly CPU (loading the program); more at once than there are CPUs only makes each
 * slower, and its timeout meaningless. Tests running concurrently queue here instead.
 */
const cliSlots = createSemaphore(Math.max(2, availableParallelism()));

function createSemaphore(size: number) {
  let free = size;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else free++;
  };
  return {
    async acquire(): Promise<() => void> {
      if (free > 0) free--;
      else await new Promise<void>((resolvePromise) => waiting.push(resolvePromise));
      return release;
    },
  };
}

// The CLI falls back to the file `firebreak login` writes; a config home that does not exist keeps
// a developer's own login out of the tests (and leaves nothing to clean up: no test logs in).
const isolatedConfigHome = join(tmpdir(), `firebreak-tests-no-login-${process.pid}`);

const everyChild = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of everyChild) child.kill("SIGKILL");
  rmSync(isolatedConfigHome, { recursive: true, force: true });
});

function childEnvironment(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CONFIG_HOME: isolatedConfigHome, NO_COLOR: "1" };
  delete env.FIREBREAK_URL;
  delete env.FIREBREAK_TOKEN;
  delete env.NODE_OPTIONS;
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name];
    else env[name] = value;
  }
  return env;
}

function requireBuild() {
  if (!existsSync(CLI_PATH))
    throw new Error(`${CLI_PATH} is missing: run 'npm run build' first ('npm test' does it for you)`);
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

function exitOf(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolvePromise) =>
    child.once("exit", (code, signal) => resolvePromise({ code, signal })),
  );
}

export interface ServerProcess {
  readonly pid: number;
  /** `http://127.0.0.1:PORT`, as the server printed it. */
  readonly url: string;
  /** The administrator created on first start, or null when the database already had one. */
  readonly admin: { user: string; token: string } | null;
  /** Everything the server has written to stderr (its JSON log lines). */
  stderr(): string;
  /** Resolves when the process has exited, however it ended. */
  readonly exited: Promise<Exit>;
  /** True while the process runs. */
  alive(): boolean;
  signal(signal: NodeJS.Signals): void;
  /** Sends the signal (SIGTERM by default) and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

export interface ServerOptions {
  config: string;
  /** What `--db` takes: `sqlite:PATH` or a PostgreSQL URL. */
  db: string;
  /** Port 0 lets the kernel choose a free port, without the race of probing for one first. */
  listen?: string;
  env?: Record<string, string | undefined>;
  /** How long start-up (migrations, recovery) may take before the test fails. */
  timeoutMs?: number;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** FIREBREAK_URL; omitted means no server is configured at all. */
  url?: string;
  /** FIREBREAK_TOKEN. */
  token?: string;
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/** The processes one test started; `killAll` ends them and only them. */
export interface ProcessGroup {
  /** Spawns `firebreak --json serve …` and resolves once it printed its JSON line (it is listening). */
  spawnServer(options: ServerOptions): { child: ChildProcess; started: Promise<ServerProcess> };
  /** Spawns a server and waits until `/readyz` answers ready. */
  startServer(options: ServerOptions): Promise<ServerProcess>;
  /** Runs `firebreak ARGS…` to completion and captures its exit code and output. */
  cli(args: string[], options?: CliOptions): Promise<CliResult>;
  /** SIGKILLs every process of this group that is still running and waits for them to exit. */
  killAll(): Promise<void>;
}

export function processGroup(): ProcessGroup {
  const mine = new Set<ChildProcess>();

  function track(child: ChildProcess) {
    mine.add(child);
    everyChild.add(child);
    child.once("exit", () => {
      mine.delete(child);
      everyChild.delete(child);
    });
  }

  function spawnServer(options: ServerOptions) {
    requireBuild();
    const args = [
      CLI_PATH,
      "--json",
      "serve",
      "--config",
      options.config,
      "--db",
      options.db,
      "--listen",
      options.listen ?? "127.0.0.1:0",
    ];
    const child = spawn(process.execPath, args, {
      cwd: REPO_ROOT,
      env: childEnvironment(options.env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    track(child);
    const exited = exitOf(child);
    let stdout = "";
    let stderr = "";
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timeoutMs = options.timeoutMs ?? 20_000;
    const started = new Promise<ServerProcess>((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`the server printed nothing within ${timeoutMs} ms\nstderr:\n${stderr}`));
      }, timeoutMs);
      exited.then((exit) => {
        clearTimeout(timer);
        reject(
          new Error(
            `the server exited (code ${exit.code}, signal ${exit.signal}) before it was listening\nstdout:\n${stdout}\nstderr:\n${stderr}`,
          ),
        );
      });
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        stdout += chunk;
        const newline = stdout.indexOf("\n");
        if (newline < 0) return;
        clearTimeout(timer);
        let line: { listening?: unknown; admin?: unknown };
        try {
          line = JSON.parse(stdout.slice(0, newline)) as typeof line;
        } catch {
          // Under --json a failed start prints its error as pretty JSON over several lines; wait
          // for the exit so the failure is reported whole.
          const report = () =>
            reject(new Error(`the server did not start\nstdout:\n${stdout}\nstderr:\n${stderr}`));
          Promise.race([exited, sleep(2_000)]).then(report);
          return;
        }
        if (typeof line.listening !== "string" || !line.listening.startsWith("http")) {
          reject(new Error(`the server's first line names no address: ${stdout.slice(0, newline)}`));
          return;
        }
        const server: ServerProcess = {
          pid: child.pid ?? -1,
          url: line.listening,
          admin: (line.admin ?? null) as ServerProcess["admin"],
          stderr: () => stderr,
          exited,
          alive: () => child.exitCode === null && child.signalCode === null,
          signal: (signal) => {
            child.kill(signal);
          },
          async stop(signal = "SIGTERM") {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        };
        resolvePromise(server);
      });
    });
    // A server that fails to start is reported through `started`; never as an unhandled rejection.
    started.catch(() => {});
    return { child, started };
  }

  async function startServer(options: ServerOptions) {
    const server = await spawnServer(options).started;
    await waitForReady(server.url);
    return server;
  }

  async function cli(args: string[], options: CliOptions = {}): Promise<CliResult> {
    requireBuild();
    const release = await cliSlots.acquire();
    try {
      return await runCli(args, options);
    } finally {
      release();
    }
  }

  function runCli(args: string[], options: CliOptions): Promise<CliResult> {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      cwd: REPO_ROOT,
      env: childEnvironment({
        FIREBREAK_URL: options.url,
        FIREBREAK_TOKEN: options.token,
        ...options.env,
      }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    track(child);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const timeoutMs = options.timeoutMs ?? 60_000;
    return new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(
          new Error(
            `'firebreak ${args.join(" ")}' did not finish within ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`,
          ),
        );
      }, timeoutMs);
      // 'close' (not 'exit') so every byte of output has been read.
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        resolvePromise({ code, signal, stdout, stderr });
      });
    });
  }

  async function killAll() {
    const running = [...mine];
    for (const child of running) child.kill("SIGKILL");
    await Promise.all(running.map(exitOf));
  }

  return { spawnServer, startServer, cli, killAll };
}

/** Ends every process any group started; the safety net for afterAll. */
export async function killAllProcesses(): Promise<void> {
  const running = [...everyChild];
  for (const child of running) child.kill("SIGKILL");
  await Promise.all(running.map(exitOf));
}

/** Parses a CLI result's stdout as JSON, failing with everything the command printed. */
export function parseJson<T = unknown>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `expected JSON on stdout (exit ${result.code})\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}

/** Describes a CLI result for assertion messages. */
export function describeResult(result: CliResult): string {
  return `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | null | false>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== null && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${options.what ?? "a condition"}${lastError ? `: ${String(lastError)}` : ""}`,
      );
    await sleep(options.intervalMs ?? 50);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Sleeps until the wall clock has passed `epochMs` (plus a margin for the server's own timers). */
export async function sleepUntil(epochMs: number, marginMs = 250): Promise<void> {
  const wait = epochMs + marginMs - Date.now();
  if (wait > 0) await sleep(wait);
}

/** Polls `/readyz` until it answers 200 with `status: ready`. */
export async function waitForReady(url: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(
    async () => {
      const response = await fetch(`${url}/readyz`);
      const body = (await response.json()) as { status?: string };
      return response.status === 200 && body.status === "ready";
    },
    { timeoutMs, what: `${url}/readyz to answer ready` },
  );
}

/** A failure the server answered with its error shape. */
export class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly body: unknown,
  ) {
    super(`HTTP ${status} ${code}: ${JSON.stringify(body)}`);
  }
}

/**
 * A minimal JSON client for arranging state quickly; what is under test goes through the CLI.
 * Non-2xx answers throw `HttpFailure` with the server's error code.
 */
export function apiClient(url: string, token: string) {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (!response.ok) {
      const code = (parsed as { error?: { code?: string } } | undefined)?.error?.code ?? "UNKNOWN";
      throw new HttpFailure(response.status, code, parsed);
    }
    return parsed as T;
  }
  return {
    url,
    token,
    get: <T>(path: string) => call<T>("GET", path),
    post: <T>(path: string, body: unknown = {}) => call<T>("POST", path, body),
  };
}
export type ApiClient = ReturnType<typeof apiClient>;

/** A temporary directory, removed by the returned `remove`. */
export async function temporaryDirectory(): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), "firebreak-process-"));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export async function writeText(path: string, text: string): Promise<string> {
  await writeFile(path, text, "utf8");
  return path;
}

/**
 * A database nobody has migrated yet, for tests of what the server does on its very first start:
 * an empty file for SQLite, a new empty database on the local server for PostgreSQL. PostgreSQL
 * being unreachable fails the test; it is never skipped.
 */
export async function createEmptyDatabase(
  dialect: TestDialect,
): Promise<{ url: string; drop(): Promise<void> }> {
  if (dialect === "sqlite") {
    const directory = await temporaryDirectory();
    const path = await writeText(join(directory.path, "firebreak.db"), "");
    return { url: `sqlite:${path}`, drop: directory.remove };
  }
  // Lowercase hex only, so the name needs no quoting.
  const name = `firebreak_proc_${randomBytes(8).toString("hex")}`;
  await withPostgresAdmin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await withPostgresAdmin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function withPostgresAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `PostgreSQL is required by the process tests but is unreachable (${error instanceof Error ? error.message : String(error)}); start it or set FIREBREAK_TEST_POSTGRES_URL`,
    );
  }
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

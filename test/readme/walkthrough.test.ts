import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { createTestDatabase } from "../support/databases.js";
import { CLI_PATH, killAllProcesses, processGroup, REPO_ROOT } from "../support/process.js";

/**
 * README's walkthrough, run as written. Every ```sh block that follows a `<!-- walkthrough -->`
 * line is taken from README.md itself and run by bash, in order, in one shell, against a fresh
 * server started with the example configuration, so a README that drifts from the product fails
 * here. What the test changes, and only that:
 * - `firebreak` is a shell function running the built CLI (what `npm link` puts on PATH), and
 *   the `npm link` line itself is not run (it would change the machine's global packages);
 * - the server's address and the administrator's token stand for `http://127.0.0.1:8080` and
 *   `fbk_…`, which the reader copies from the first start;
 * - `req_…` and `grt_…` stand for the id the last `request` and `activate` printed, which the
 *   reader copies from the screen.
 */

vi.setConfig({ testTimeout: 240_000 });
afterAll(killAllProcesses);

const MARKER = "<!-- walkthrough -->";

function walkthroughBlocks(readme: string): string[] {
  const blocks: string[] = [];
  let at = readme.indexOf(MARKER);
  while (at >= 0) {
    const open = readme.indexOf("```sh\n", at);
    const close = readme.indexOf("\n```", open + 6);
    if (open < 0 || close < 0) throw new Error("a walkthrough marker is not followed by a ```sh block");
    blocks.push(readme.slice(open + 6, close));
    at = readme.indexOf(MARKER, close);
  }
  return blocks;
}

const PRELUDE = String.raw`set -euo pipefail
firebreak() {
  local out status=0
  out=$(node "$FIREBREAK_CLI" "$@") || status=$?
  printf '%s\n' "$out"
  case "$1" in
    request) REQ=$(grep -oE 'req_[a-z0-9]+' <<<"$out" | head -n 1 || true) ;;
    activate) GRT=$(grep -oE 'grt_[a-z0-9]+' <<<"$out" | head -n 1 || true) ;;
  esac
  return "$status"
}
`;

function runBash(script: string, env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn("bash", ["-c", script], { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("README's walkthrough", () => {
  it("finds the marked blocks in README.md", async () => {
    const blocks = walkthroughBlocks(await readFile(join(REPO_ROOT, "README.md"), "utf8"));
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    const all = blocks.join("\n");
    for (const command of ["firebreak demo", "firebreak request", "firebreak approve", "firebreak review"])
      expect(all).toContain(command);
  });

  it("runs as written, in order, against a fresh server with the example configuration", async ({
    onTestFinished,
  }) => {
    const database = await createTestDatabase("sqlite");
    onTestFinished(database.drop);
    const group = processGroup();
    onTestFinished(group.killAll);
    const server = await group.startServer({
      config: join(REPO_ROOT, "examples", "firebreak.yaml"),
      db: database.url,
    });
    expect(server.admin?.token).toMatch(/^fbk_/);
    const blocks = walkthroughBlocks(await readFile(join(REPO_ROOT, "README.md"), "utf8"));
    const body = blocks
      .join("\n")
      .split("\n")
      .map((line) => (line.startsWith("npm link") ? `: ${line}` : line))
      .join("\n")
      .replaceAll("http://127.0.0.1:8080", server.url)
      .replaceAll("fbk_…", server.admin?.token ?? "")
      .replaceAll("req_…", '"$REQ"')
      .replaceAll("grt_…", '"$GRT"');
    const env: NodeJS.ProcessEnv = { ...process.env, FIREBREAK_CLI: CLI_PATH, NO_COLOR: "1" };
    delete env.FIREBREAK_URL;
    delete env.FIREBREAK_TOKEN;
    // No saved login of the developer's is used.
    env.XDG_CONFIG_HOME = join(tmpdir(), `firebreak-readme-no-login-${process.pid}`);
    const result = await runBash(`${PRELUDE}\n${body}\n`, env);
    const shown = `exit ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;
    expect(result.code, shown).toBe(0);
    // What each part of the story should have shown the reader.
    expect(result.stdout, shown).toMatch(/chain intact/i);
    expect(result.stdout, shown).toMatch(/req_[a-z0-9]+ {2}PENDING/);
    expect(result.stdout, shown).toMatch(/approved by carol: go/);
    expect(result.stdout, shown).toMatch(/grt_[a-z0-9]+ {2}REVOKED/);
    expect(result.stdout, shown).toMatch(/grt_[a-z0-9]+ {2}REVOKED[\s\S]*review: accepted by erin/);
    expect(result.stdout.match(/NEEDS APPROVAL/g) ?? [], shown).toHaveLength(2);
  });
});

import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CLI_PATH, temporaryDirectory, writeText } from "../support/process.js";

/**
 * The CLI loads only what the command runs (issue 15.1): node's module loader reports every file
 * the built program loads, and a command's list must hold none of what it does not use. Timings
 * are measured in `npm run bench` (src/bench/cli.bench.ts), not asserted here.
 */
const run = promisify(execFile);
let directory: Awaited<ReturnType<typeof temporaryDirectory>>;
let register: string;

beforeAll(async () => {
  directory = await temporaryDirectory();
  const hooks = await writeText(
    join(directory.path, "hooks.mjs"),
    `export async function load(url, context, next) {
      if (url.startsWith("file:")) process.stderr.write("LOADED " + url + "\\n");
      return next(url, context);
    }\n`,
  );
  register = await writeText(
    join(directory.path, "register.mjs"),
    `import { register } from "node:module";\nregister(${JSON.stringify(`file://${hooks}`)});\n`,
  );
});
afterAll(() => directory?.remove());

/** The files under src/ (as built) and the packages a command loads. */
async function loads(...args: string[]): Promise<{ files: string[]; packages: Set<string> }> {
  let stderr: string;
  try {
    ({ stderr } = await run(process.execPath, ["--import", register, CLI_PATH, ...args], {
      env: { ...process.env, FIREBREAK_URL: "http://127.0.0.1:9", FIREBREAK_TOKEN: "not-a-token" },
    }));
  } catch (error) {
    stderr = String((error as { stderr?: string }).stderr ?? "");
  }
  const urls = [...stderr.matchAll(/^LOADED (.+)$/gm)].map((m) => m[1] as string);
  const files = urls.filter((u) => u.includes("/dist/")).map((u) => u.slice(u.indexOf("/dist/") + 6));
  const packages = new Set(
    urls
      .filter((u) => u.includes("/node_modules/"))
      .map(
        (u) =>
          u
            .split("/node_modules/")
            .at(-1)
            ?.match(/^(@[^/]+\/[^/]+|[^/]+)/)?.[1] ?? u,
      ),
  );
  return { files, packages };
}

const SERVER_PACKAGES = [
  "fastify",
  "kysely",
  "pg",
  "better-sqlite3",
  "mysql2",
  "prom-client",
  "openid-client",
];

describe("what a command loads", () => {
  test("--version and --help load commander and the command definitions only: no zod, no schema", async () => {
    for (const args of [["--version"], ["--help"], ["help", "audit"], ["request", "--help"]]) {
      const { files, packages } = await loads(...args);
      expect([...packages], args.join(" ")).toEqual(["commander"]);
      expect(
        files.filter(
          (f) =>
            !/^(cli|segmentation\/segmentation\.cli|agent\/agent\.cli|config\/(patterns|duration)|version|errors)\.?/.test(
              f,
            ),
        ),
      ).toEqual([]);
    }
    // A bare --version registers no command and reports no failure.
    expect((await loads("--version")).files.sort()).toEqual(
      ["cli/client.js", "cli/context.js", "cli/format.js", "cli/main.js", "version.js"].sort(),
    );
  });

  test("an API call loads its reply schema and the client, and no server code", async () => {
    const { files, packages } = await loads("whoami");
    expect(files).toContain("api/users.schema.js");
    expect(files).toContain("cli/client.js");
    expect(
      files.filter((f) => /^(server|db|http|grants|requests|policy|connectors|config\/schema)/.test(f)),
    ).toEqual([]);
    for (const name of [...SERVER_PACKAGES, "@bufbuild/cel", "yaml"])
      expect(packages.has(name), name).toBe(false);
    // The session module was registered, no other command's.
    expect(files.filter((f) => f.startsWith("cli/commands/"))).toEqual(["cli/commands/session.js"]);
  });
});

import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FirebreakError } from "../../errors.js";
import { NETNS_PATTERN } from "./nftables.settings.js";
import type { NftCommand } from "./ruleset.js";

/**
 * Runs the `nft` program: JSON batches in (`nft -j -f FILE`, one atomic kernel transaction each),
 * JSON listings out. The batch goes through a private temporary file because nft opens
 * `/dev/stdin` by path, which fails on the socket pairs Node gives a child as standard input. With `netns`, nft runs inside that network namespace
 * (`ip netns exec`), for a gateway that is itself a namespace. No shell is involved: arguments are
 * passed as a list, and the only variable ones (namespace, table) are validated first.
 */

const MAX_OUTPUT = 512 * 1024 * 1024;

export interface NftRunner {
  /** Applies one batch atomically; throws CONNECTOR_FAILED with nft's message when it is refused. */
  apply(commands: readonly NftCommand[]): Promise<void>;
  /** `nft -j list table inet NAME`, parsed; null when the table does not exist. */
  listTable(table: string): Promise<NftCommand[] | null>;
  /** `nft -j list set inet TABLE NAME`, parsed. */
  listSet(table: string, name: string): Promise<NftCommand[]>;
  readonly where: string;
}

function run(
  argv: readonly string[],
  input: string | null,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = argv as [string, ...string[]];
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    child.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_OUTPUT) out.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => err.push(chunk));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      }),
    );
    child.stdin.on("error", () => {});
    child.stdin.end(input ?? undefined);
  });
}

export function createNftRunner(options: { netns?: string | null; binary?: string } = {}): NftRunner {
  const netns = options.netns ?? null;
  if (netns !== null && !NETNS_PATTERN.test(netns))
    throw new FirebreakError(
      "VALIDATION_FAILED",
      "a network namespace name of letters, digits, '.', '_' or '-'",
    );
  const binary = options.binary ?? "nft";
  const prefix = netns ? ["ip", "netns", "exec", netns, binary] : [binary];
  const where = netns ? `network namespace ${netns}` : "this host";

  function failure(what: string, stderr: string): FirebreakError {
    // nft's own message names the rule it refused; it holds no secret, only our generated rules.
    const detail = stderr.trim().split("\n").slice(0, 6).join("\n").slice(0, 1500);
    return new FirebreakError(
      "CONNECTOR_FAILED",
      `nft ${what} failed in ${where}: ${detail || "no message"}`,
    );
  }

  async function list(args: string[], missingIsNull: boolean): Promise<NftCommand[] | null> {
    let result: Awaited<ReturnType<typeof run>>;
    try {
      result = await run([...prefix, "-j", ...args], null);
    } catch {
      throw new FirebreakError(
        "CONNECTOR_FAILED",
        `cannot run '${binary}' in ${where}; is nftables installed?`,
      );
    }
    if (result.code !== 0) {
      if (missingIsNull && /No such file or directory|does not exist/i.test(result.stderr)) return null;
      throw failure(args.join(" "), result.stderr);
    }
    const parsed = JSON.parse(result.stdout) as { nftables?: NftCommand[] };
    return parsed.nftables ?? [];
  }

  return {
    where,
    async apply(commands) {
      if (commands.length === 0) return;
      const directory = await mkdtemp(join(tmpdir(), "firebreak-nft-"));
      const file = join(directory, "batch.json");
      let result: Awaited<ReturnType<typeof run>>;
      try {
        await writeFile(file, JSON.stringify({ nftables: commands }), { mode: 0o600 });
        result = await run([...prefix, "-j", "-f", file], null);
      } catch {
        throw new FirebreakError(
          "CONNECTOR_FAILED",
          `cannot run '${binary}' in ${where}; is nftables installed?`,
        );
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
      if (result.code !== 0) throw failure("-j -f", result.stderr);
    },
    listTable: (table) => list(["list", "table", "inet", table], true),
    async listSet(table, name) {
      return (await list(["list", "set", "inet", table, name], false)) ?? [];
    },
  };
}

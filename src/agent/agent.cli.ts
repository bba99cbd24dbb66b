import { hostname } from "node:os";
import { type Command, Option } from "commander";
import { readCredentials } from "../cli/client.js";
import { parseDuration } from "../config/duration.js";
import { NAME_PATTERN } from "../config/patterns.js";

function logLine(level: string, message: string, fields: Record<string, unknown> = {}) {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);
}

/** This host's name as an agent name (lowercase, invalid characters made '-'). */
export function defaultAgentName(): string {
  const name = hostname()
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, "-")
    .replace(/^[-_]+|[-_]+$/g, "")
    .slice(0, 63);
  return NAME_PATTERN.test(name) ? name : "agent";
}

/** `firebreak agent`: follows the server's desired network state and enforces it with nftables. */
export function registerAgentCommand(
  program: Command,
  context: { server(): string | undefined; fail(message: string, code: string): Error },
): void {
  program
    .command("agent")
    .description("enforce the server's desired network state on this host (nftables), failing closed")
    .addOption(new Option("--enforcer <kind>", "how to enforce").choices(["nftables"]).default("nftables"))
    .option("--token <token>", "an agent's API token (or $FIREBREAK_TOKEN)")
    .option("--name <name>", "this agent's name, as the server lists it", defaultAgentName())
    .option("--grace <duration>", "how long without the server before grant paths are dropped", "30s")
    .option(
      "--drift-check <duration>",
      "how often the loaded rules are compared with the desired ones",
      "10s",
    )
    .option("--netns <name>", "enforce inside this network namespace (a gateway namespace)")
    .option("--table <name>", "the nftables table Firebreak owns (inet family)", "firebreak")
    .action(
      async (options: {
        token?: string;
        name: string;
        grace: string;
        driftCheck: string;
        netns?: string;
        table: string;
      }) => {
        const { TABLE_PATTERN } = await import("../enforcers/nftables/nftables.settings.js");
        if (!NAME_PATTERN.test(options.name))
          throw context.fail("--name takes 1-63 lowercase letters, digits, '-' or '_'", "VALIDATION_FAILED");
        if (!TABLE_PATTERN.test(options.table))
          throw context.fail(
            "--table takes a lowercase letter, then letters, digits or '_'",
            "VALIDATION_FAILED",
          );
        let graceMs: number;
        let driftCheckMs: number;
        try {
          graceMs = parseDuration(options.grace);
          driftCheckMs = parseDuration(options.driftCheck);
        } catch {
          throw context.fail("durations look like '30s', '5m' or '1h'", "VALIDATION_FAILED");
        }
        const saved = await readCredentials();
        const url = context.server() ?? process.env.FIREBREAK_URL ?? saved.url ?? "http://127.0.0.1:8080";
        const token = options.token ?? process.env.FIREBREAK_TOKEN ?? saved.token;
        if (!token)
          throw context.fail("an agent token is needed: --token or $FIREBREAK_TOKEN", "UNAUTHENTICATED");
        // Loaded when the agent runs, so that every other command of the CLI loads no enforcer.
        const [{ createNftRunner }, { createNftablesEnforcer }, { createAgent }, { createHttpStateSource }] =
          await Promise.all([
            import("../enforcers/nftables/nft.js"),
            import("../enforcers/nftables/nftables.enforcer.js"),
            import("./agent.js"),
            import("./sources.js"),
          ]);
        const enforcer = createNftablesEnforcer({
          runner: createNftRunner({ netns: options.netns ?? null }),
          table: options.table,
        });
        const agent = createAgent({
          name: options.name,
          enforcerKind: "nftables",
          source: createHttpStateSource({ url, token, agent: options.name, enforcer: "nftables", graceMs }),
          enforcer,
          graceMs,
          driftCheckMs,
          log: { info: (m, f) => logLine("info", m, f), error: (m, f) => logLine("error", m, f) },
          onApplied: (result, failedClosed) =>
            logLine("info", "applied", {
              mode: result.mode,
              openGrants: result.openGrants.length,
              failedClosed,
              durationMs: Math.round(result.durationMs),
              ...(result.skipped.length ? { skipped: result.skipped } : {}),
            }),
        });
        logLine("info", "agent started", { name: options.name, server: url, where: enforcer.where, graceMs });
        const controller = new AbortController();
        const stop = () => controller.abort();
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
        // Rules stay loaded when the agent stops: standing flows keep working, and every grant path
        // still ends at its grant's end through its kernel timeout.
        await agent.run(controller.signal);
        logLine("info", "agent stopped", { name: options.name });
      },
    );
}

import { type Command, Option } from "commander";
import type { CommandContext } from "../context.js";
import { out } from "../context.js";
import { safeText } from "../format.js";

/** `serve`, `validate`, `schema` and `rotate-master-key`: the server and its files, no client. */
export function registerServerCommands(program: Command, context: CommandContext) {
  program
    .command("serve")
    .description("run the Firebreak server")
    .option("--config <file>", "configuration file", "firebreak.yaml")
    .option("--db <url>", "database: sqlite:PATH or postgres://…", "sqlite:./data/firebreak.db")
    .option("--listen <address>", "host:port or :port to listen on", ":8080")
    .option(
      "--master-key-file <file>",
      "the key that encrypts stored secrets (or set FIREBREAK_MASTER_KEY)",
      "./data/master.key",
    )
    .option("--production", "refuse to start without a provided master key (no key file is generated)")
    .addOption(
      new Option(
        "--enforcer <kind>",
        "network paths: recorded only (log), by agents, or by this host's nftables",
      )
        .choices(["log", "agent", "nftables"])
        .default("log"),
    )
    .option("--netns <name>", "with --enforcer nftables: enforce inside this network namespace")
    .action(
      async (options: {
        config: string;
        db: string;
        listen: string;
        masterKeyFile: string;
        production?: boolean;
        enforcer: "log" | "agent" | "nftables";
        netns?: string;
      }) => {
        const { runServe } = await import("../serve.js");
        await runServe({ ...options, json: context.globals().json === true });
      },
    );

  program
    .command("validate")
    .description("check a configuration file and report every error with file, line and column")
    .argument("[file]", "configuration file", "firebreak.yaml")
    .action(async (file: string) => {
      const { formatIssue, loadConfigFile } = await import("../../config/load.js");
      const result = await loadConfigFile(file);
      if (!result.ok) {
        if (context.globals().json) out({ ok: false, errors: result.errors });
        else
          process.stderr.write(
            `${result.errors.map((issue) => safeText(formatIssue(issue))).join("\n")}\n${result.errors.length} error(s) in ${safeText(file)}\n`,
          );
        process.exitCode = 1;
        return;
      }
      context.emit({ ok: true, digest: result.digest, warnings: result.warnings }, () =>
        [...result.warnings.map((w) => `warning: ${safeText(formatIssue(w))}`), `${safeText(file)}: OK`].join(
          "\n",
        ),
      );
    });

  program
    .command("schema")
    .description("print the JSON Schema of firebreak.yaml")
    .action(async () => out((await import("../../config/json-schema.js")).configJsonSchema()));
}

export function registerKeyRotationCommand(program: Command, context: CommandContext) {
  program
    .command("rotate-master-key")
    .description("re-encrypt every stored secret under a new master key (run on the server host)")
    .option("--db <url>", "database: sqlite:PATH or postgres://…", "sqlite:./data/firebreak.db")
    .option(
      "--master-key-file <file>",
      "the key file (ignored when FIREBREAK_MASTER_KEY is set)",
      "./data/master.key",
    )
    .action(async (options: { db: string; masterKeyFile: string }) => {
      const { rotateMasterKey } = await import("../../secrets/rotate.js");
      const result = await rotateMasterKey({
        databaseUrl: options.db,
        keyFile: options.masterKeyFile,
        env: process.env,
      });
      context.emit(result, () =>
        result.newKey
          ? `re-encrypted ${result.resealed} secrets under key ${result.keyId}.\nSet FIREBREAK_MASTER_KEY to this new key (shown once) and the old one in FIREBREAK_MASTER_KEY_PREVIOUS until restarted:\n${result.newKey}`
          : `re-encrypted ${result.resealed} secrets under key ${result.keyId}; ${options.masterKeyFile} now holds it`,
      );
    });
}

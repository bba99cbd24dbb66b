#!/usr/bin/env node
import { Command, type Option } from "commander";
import { registerAgentCommand } from "../agent/agent.cli.js";
import { registerSegmentationCommands } from "../segmentation/segmentation.cli.js";
import { VERSION } from "../version.js";
import { registerAuditCommands } from "./commands/audit.js";
import { registerConfigCommands } from "./commands/config.js";
import { registerDemoCommand } from "./commands/demo.js";
import { registerExplainCommand } from "./commands/explain.js";
import { registerFactorCommands } from "./commands/factors.js";
import { registerCredentialCommands, registerGrantCommands } from "./commands/grants.js";
import { registerIncidentCommands } from "./commands/incidents.js";
import { registerRequestCommands } from "./commands/requests.js";
import { registerKeyRotationCommand, registerServerCommands } from "./commands/server.js";
import { registerSessionCommands } from "./commands/session.js";
import { registerUserCommands } from "./commands/users.js";
import { registerSshCaCommand, registerZoneCommands } from "./commands/zones.js";
import { createCommandContext, type Globals } from "./context.js";
import { reportFailure } from "./exit.js";

/**
 * The `firebreak` program. Each area registers its commands from src/cli/commands (and
 * segmentation, agent); their renderers are in render.ts and the exit codes in exit.ts. Server
 * code is imported inside the commands that need it, so client commands start without it.
 */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name("firebreak")
    .description("Break-glass access for micro-segmented infrastructure")
    .version(VERSION)
    .option("--json", "print machine-readable JSON")
    .option(
      "--server <url>",
      "the Firebreak server (default: $FIREBREAK_URL, the login file, or http://127.0.0.1:8080)",
    )
    .exitOverride() // before any .command(): subcommands copy it when created, so their usage errors exit 2
    .showHelpAfterError("(add --help for usage and examples)")
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const context = createCommandContext(() => program.opts<Globals>());
  // The order here is the order `firebreak --help` lists the commands in.
  registerServerCommands(program, context);
  registerSessionCommands(program, context);
  registerRequestCommands(program, context);
  registerCredentialCommands(program, context);
  registerKeyRotationCommand(program, context);
  registerGrantCommands(program, context);
  registerExplainCommand(program, context);
  registerZoneCommands(program, context);
  registerUserCommands(program, context);
  registerAuditCommands(program, context);
  registerConfigCommands(program, context);
  registerSshCaCommand(program, context);
  registerFactorCommands(program, context);
  registerIncidentCommands(program, context);
  registerDemoCommand(program, context);
  registerSegmentationCommands(program, context);
  registerAgentCommand(program, { server: () => context.globals().server, fail: context.fail });

  program.addHelpText("after", HELP_EXAMPLES);
  checkRequiredOptionsAfterUnknownOnes(program);
  return program;
}

const HELP_EXAMPLES = `
Examples:
  firebreak request payments-db --role admin --for 30m --reason "payments-db refuses writes" --ticket INC-4711
  firebreak requests --state pending            what waits for your approval
  firebreak approve req_... --comment "go"
  firebreak activate req_...                    the grant starts now
  firebreak connect grt_...                     psql / mysql / ssh with the credential, never printed
  firebreak explain alice payments-db --role admin --config firebreak.yaml --incident 2

Environment: FIREBREAK_URL (the server), FIREBREAK_TOKEN (your token; or 'firebreak login').
Exit codes: 0 success, 1 refused or failed (explain: DENY), 2 usage error.`;

/**
 * Commander checks required options before unknown ones, so a typo (\`--rol admin\`) was reported
 * as a missing \`--role\`. Required options are checked here instead, after commander has refused
 * unknown options (its preAction hooks run after that check).
 */
function checkRequiredOptionsAfterUnknownOnes(root: Command) {
  const required = new WeakMap<Command, Option[]>();
  const walk = (command: Command) => {
    const mandatory = command.options.filter((option) => option.mandatory);
    for (const option of mandatory) option.mandatory = false;
    if (mandatory.length) required.set(command, mandatory);
    for (const sub of command.commands) walk(sub);
  };
  walk(root);
  root.hook("preAction", (_root, action) => {
    for (const option of required.get(action) ?? []) {
      if (action.getOptionValue(option.attributeName()) === undefined)
        action.error(`error: required option '${option.flags}' not specified`, {
          code: "commander.missingMandatoryOptionValue",
          exitCode: 2,
        });
    }
  });
}

/** Runs the program; exit codes: 0 success, 1 refused or failed, 2 usage error. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  const json = argv.includes("--json");
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    return reportFailure(error, json);
  }
}

const invokedDirectly =
  process.argv[1] && (await import("node:url")).pathToFileURL(process.argv[1]).href === import.meta.url;
const invokedAsBin = process.argv[1]?.endsWith("/firebreak") ?? false;
if (invokedDirectly || invokedAsBin) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}

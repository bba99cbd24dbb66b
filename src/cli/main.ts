#!/usr/bin/env node
import { Command, type Option } from "commander";
import { VERSION } from "../version.js";
import { type CommandContext, createCommandContext, type Globals } from "./context.js";

/**
 * One line of the command table: the top-level commands a module registers, in the order
 * `firebreak --help` lists them, and how to load and register that module. The module is
 * import()ed only when one of its commands runs (or the whole list is shown), so a command loads
 * what it runs and nothing else; test/cli/command-table.test.ts checks `names` against what
 * `register` defines.
 */
export interface CommandModule {
  names: readonly string[];
  register(program: Command, context: CommandContext): Promise<void>;
}

/**
 * Every command of `firebreak`. To add one: put its definition in a module whose top-level imports
 * are only commander and cheap CLI helpers (schemas, renderers and anything heavy import()ed inside
 * the action), then add a line here, where it should appear in the help.
 */
export const COMMANDS: readonly CommandModule[] = [
  {
    names: ["serve", "validate", "schema"],
    register: async (p, c) => (await import("./commands/server.js")).registerServerCommands(p, c),
  },
  {
    names: ["login", "logout", "whoami"],
    register: async (p, c) => (await import("./commands/session.js")).registerSessionCommands(p, c),
  },
  {
    names: ["request", "requests", "show", "approve", "cancel", "deny", "activate"],
    register: async (p, c) => (await import("./commands/requests.js")).registerRequestCommands(p, c),
  },
  {
    names: ["credential", "connect"],
    register: async (p, c) => (await import("./commands/grants.js")).registerCredentialCommands(p, c),
  },
  {
    names: ["rotate-master-key"],
    register: async (p, c) => (await import("./commands/server.js")).registerKeyRotationCommand(p, c),
  },
  {
    names: ["grants", "revoke", "reviews", "review"],
    register: async (p, c) => (await import("./commands/grants.js")).registerGrantCommands(p, c),
  },
  {
    names: ["sessions"],
    register: async (p, c) => (await import("./commands/sessions.js")).registerSessionCommands(p, c),
  },
  {
    names: ["explain"],
    register: async (p, c) => (await import("./commands/explain.js")).registerExplainCommand(p, c),
  },
  {
    names: ["zones"],
    register: async (p, c) => (await import("./commands/zones.js")).registerZoneCommands(p, c),
  },
  {
    names: ["users"],
    register: async (p, c) => (await import("./commands/users.js")).registerUserCommands(p, c),
  },
  {
    names: ["audit"],
    register: async (p, c) => (await import("./commands/audit.js")).registerAuditCommands(p, c),
  },
  {
    names: ["config"],
    register: async (p, c) => (await import("./commands/config.js")).registerConfigCommands(p, c),
  },
  {
    names: ["replicas"],
    register: async (p, c) => (await import("./commands/replicas.js")).registerReplicaCommands(p, c),
  },
  {
    names: ["ssh-ca"],
    register: async (p, c) => (await import("./commands/zones.js")).registerSshCaCommand(p, c),
  },
  {
    names: ["mfa"],
    register: async (p, c) => (await import("./commands/factors.js")).registerFactorCommands(p, c),
  },
  {
    names: ["incident"],
    register: async (p, c) => (await import("./commands/incidents.js")).registerIncidentCommands(p, c),
  },
  {
    names: ["drills", "drill", "readiness"],
    register: async (p, c) => (await import("./commands/drills.js")).registerDrillCommands(p, c),
  },
  {
    names: ["emergency"],
    register: async (p, c) => (await import("./commands/emergency.js")).registerEmergencyCommands(p, c),
  },
  {
    names: ["demo"],
    register: async (p, c) => (await import("./commands/demo.js")).registerDemoCommand(p, c),
  },
  {
    names: ["reach", "lint", "export-policies"],
    register: async (p, c) =>
      (await import("../segmentation/segmentation.cli.js")).registerSegmentationCommands(p, c),
  },
  {
    names: ["agent"],
    register: async (p, c) =>
      (await import("../agent/agent.cli.js")).registerAgentCommand(p, {
        server: () => c.globals().server,
        fail: c.fail,
      }),
  },
];

/** The root options that take a value, so the word after them is no command name. */
const ROOT_OPTIONS_WITH_VALUE = new Set(["--server"]);

/**
 * The command `argv` names (its first word that is no root option or root option value), or null
 * when it names none (`firebreak`, `firebreak --version`).
 */
export function commandNamed(argv: readonly string[]): string | null {
  for (let index = 2; index < argv.length; index++) {
    const word = argv[index] as string;
    if (word === "--") return argv[index + 1] ?? null;
    if (!word.startsWith("-")) return word;
    if (ROOT_OPTIONS_WITH_VALUE.has(word)) index++;
  }
  return null;
}

/**
 * Which table lines `argv` needs: the one that defines the command it names; none for a bare
 * `--version`; all of them for help, an unknown command (commander's suggestions) or no command.
 */
function modulesFor(argv: readonly string[]): readonly CommandModule[] {
  const name = commandNamed(argv);
  if (name === null) {
    const words = argv.slice(2);
    const versionOnly =
      words.some((w) => w === "--version" || w === "-V") && !words.some((w) => w === "--help" || w === "-h");
    return versionOnly ? [] : COMMANDS;
  }
  const owner = COMMANDS.find((entry) => entry.names.includes(name));
  return owner ? [owner] : COMMANDS;
}

/**
 * The `firebreak` program with the commands `argv` needs (all of them by default, for help and
 * tests). Each area registers its commands from src/cli/commands (and segmentation, agent); their
 * renderers are in render.ts and the exit codes in exit.ts. Schemas, renderers and server code are
 * imported inside the actions that need them, so a command starts with commander and its own
 * definition only.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
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
  // The order of COMMANDS is the order `firebreak --help` lists the commands in.
  for (const entry of argv ? modulesFor(argv) : COMMANDS) await entry.register(program, context);

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
  const json = argv.includes("--json");
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    // Help and version are printed already; the failure report (and what it loads) is not needed.
    const code = (error as { code?: unknown } | null)?.code;
    if (code === "commander.helpDisplayed" || code === "commander.version" || code === "commander.help")
      return 0;
    return (await import("./exit.js")).reportFailure(error, json);
  }
}

const invokedDirectly =
  process.argv[1] && (await import("node:url")).pathToFileURL(process.argv[1]).href === import.meta.url;
const invokedAsBin = process.argv[1]?.endsWith("/firebreak") ?? false;
if (invokedDirectly || invokedAsBin) {
  main(process.argv).then((code) => {
    process.exitCode = code;
    // A failed command has printed its report (stdout and stderr are synchronous for files and
    // pipes on Linux); a server that failed while starting may still hold database connections
    // or listeners that would keep the process alive for seconds, so a failure ends it now.
    if (code !== 0) process.exit(code);
  });
}

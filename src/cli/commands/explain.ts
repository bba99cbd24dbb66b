import { type Command, CommanderError } from "commander";
import type { DecisionReply } from "../../api/decisions.schema.js";
import { CliFailure, type CommandContext, targetBody } from "../context.js";
import { describeExplanation } from "../render.js";

/** `explain`: why a user may or may not take a role, from the server or offline from a file. */
export function registerExplainCommand(program: Command, context: CommandContext) {
  program
    .command("explain")
    .description("why a user may or may not take a role, and what it would take")
    .argument("<user>", "user name")
    .argument("<target>", "zone or resource name")
    .requiredOption("--role <role>", "the role")
    .option("--for <duration>", "requested duration")
    .option("--reason <text>", "justification to test", "")
    .option("--ticket <id>", "ticket to test")
    .option("--source-zone <zone>", "the zone the request would come from")
    .option(
      "--incident <severity>",
      "with --config: assume an incident of this severity (1 worst to 5) is open in the zone",
    )
    .option("--config <file>", "explain offline from this configuration file (no server)")
    .option("--blast-radius", "also show how the grant would change what its source zone reaches")
    .action(
      async (
        user: string,
        target: string,
        options: {
          role: string;
          for?: string;
          reason: string;
          ticket?: string;
          sourceZone?: string;
          incident?: string;
          config?: string;
          blastRadius?: boolean;
        },
      ) => {
        let result: DecisionReply;
        const severity = options.incident === undefined ? undefined : Number(options.incident);
        if (severity !== undefined && !(Number.isInteger(severity) && severity >= 1 && severity <= 5))
          throw new CommanderError(2, "usage", "--incident takes a severity from 1 (worst) to 5");
        if (severity !== undefined && !options.config)
          throw new CommanderError(
            2,
            "usage",
            "--incident simulates a signal offline: give --config FILE (a server uses its real incidents)",
          );
        if (options.config) {
          // Offline: the same decision service the server's /v1/decisions uses, on the file.
          const { formatIssue, loadConfigFile } = await import("../../config/load.js");
          const { compilePolicy } = await import("../../policy/engine.js");
          const { explainDecision, simulatedSignals } = await import("../../decisions/decision.service.js");
          const { parseDuration } = await import("../../config/duration.js");
          const loaded = await loadConfigFile(options.config);
          if (!loaded.ok) throw new CliFailure(loaded.errors.map(formatIssue).join("\n"), "CONFIG_INVALID");
          const isResource = Object.hasOwn(loaded.config.resources ?? {}, target);
          const sourceZone = options.sourceZone ?? null;
          result = explainDecision(
            compilePolicy(loaded.config),
            {
              subject: { name: user, groups: loaded.config.directory?.users[user]?.groups ?? [] },
              target: isResource ? { resource: target } : { zone: target },
              role: options.role,
              durationMs: options.for ? parseDuration(options.for) : undefined,
              reason: options.reason,
              ticket: options.ticket ?? null,
              sourceZone,
            },
            { signals: simulatedSignals(sourceZone, severity), blockingOverdueReviews: 0, now: Date.now() },
          );
        } else {
          const { decisionReply } = await import("../../api/decisions.schema.js");
          const c = await context.client();
          result = await c.post(
            "/v1/decisions",
            {
              user,
              ...(await targetBody(c, target)),
              role: options.role,
              duration: options.for,
              reason: options.reason,
              ticket: options.ticket,
              ...(options.sourceZone ? { sourceZone: options.sourceZone } : {}),
            },
            decisionReply,
          );
        }
        const { blastRadiusFor, describeBlastRadius } = await import(
          "../../segmentation/segmentation.cli.js"
        );
        const blast = options.blastRadius ? await blastRadiusFor(context, { ...options, target }) : undefined;
        context.emit(blast ? { ...result, blastRadius: blast } : result, () =>
          [
            describeExplanation(result.user, target, options.role, result.explanation),
            ...(blast ? [describeBlastRadius(blast)] : []),
          ].join("\n"),
        );
        // A gate in CI: a decision that refuses exits 1 (ALLOW and NEEDS APPROVAL exit 0).
        if (result.explanation.decision.outcome === "deny") process.exitCode = 1;
      },
    );
}

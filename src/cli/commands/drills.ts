import type { Command } from "commander";
import type { DrillRunView, DrillStepView, PolicyReadinessView } from "../../api/drills.schema.js";
import { CliFailure, type CommandContext } from "../context.js";
import { table } from "../format.js";

function stepLine(step: DrillStepView): string {
  const mark = step.outcome === "passed" ? "ok  " : step.outcome === "failed" ? "FAIL" : "skip";
  return `  ${mark} ${step.name.padEnd(9)} ${String(step.ms).padStart(6)} ms${step.message ? `  ${step.message}` : ""}`;
}

function runSummary(run: DrillRunView): string {
  return [
    `drill ${run.drill} (${run.zone}): ${run.outcome}${run.failedStep ? ` at ${run.failedStep}` : ""}`,
    ...run.steps.map(stepLine),
    `run ${run.id}${run.grantId ? `, grant ${run.grantId}` : ""}`,
  ].join("\n");
}

function readinessText(policies: readonly PolicyReadinessView[]): string {
  if (policies.length === 0) return "(no break-glass policies)";
  const lines: string[] = [];
  for (const policy of policies) {
    lines.push(
      `${policy.policy} (${policy.zone}, ${policy.roles.join("/")}): ${policy.ready ? `ready: ${policy.readyUsers.join(", ")}` : "NOBODY READY"}`,
    );
    for (const blocker of policy.blockers) lines.push(`  ! ${blocker.code}: ${blocker.message}`);
    for (const person of policy.eligible)
      lines.push(
        person.ready
          ? `  ${person.user}: ready`
          : `  ${person.user}: ${person.blockers.map((b) => `${b.code} (${b.message})`).join("; ") || "blocked by the policy-wide problems above"}`,
      );
    if (policy.unknown.length > 0)
      lines.push(`  (not checked offline: ${policy.unknown.join(", ")}; ask the server for those)`);
  }
  return lines.join("\n");
}

/** `drills`, `drill run NAME`, `readiness` (issue 16). */
export function registerDrillCommands(program: Command, context: CommandContext) {
  program
    .command("drills")
    .description("each break-glass drill: last result, next run, overdue")
    .action(async () => {
      const { drillsReply } = await import("../../api/drills.schema.js");
      const { drills } = await (await context.client()).get("/v1/drills", drillsReply);
      context.emit({ drills }, () =>
        table(
          drills.map((d) => [
            d.name,
            d.zone,
            `${d.resource}/${d.role}`,
            d.last ? `${d.last.outcome}${d.last.failedStep ? ` at ${d.last.failedStep}` : ""}` : "never run",
            d.last?.startedAt ?? "-",
            d.nextRunAt ?? "-",
            d.overdue ? "OVERDUE" : "",
          ]),
          ["DRILL", "ZONE", "TARGET", "LAST", "LAST RUN", "NEXT RUN", ""],
        ),
      );
    });

  program
    .command("drill")
    .description("run a break-glass drill now")
    .command("run")
    .description("run the drill NAME now (administrators) and print each step")
    .argument("<name>", "the drill's name")
    .action(async (name: string) => {
      const { drillRunReply } = await import("../../api/drills.schema.js");
      const { run } = await (await context.client()).post(
        `/v1/drills/${encodeURIComponent(name)}/run`,
        {},
        drillRunReply,
      );
      context.emit({ run }, () => runSummary(run));
      if (run.outcome === "failed") process.exitCode = 1;
    });

  program
    .command("readiness")
    .description("for every break-glass policy: who could use it now, and what stands in each person's way")
    .option("--config <file>", "offline, from this configuration file (factors and reviews are not known)")
    .action(async (options: { config?: string }) => {
      let policies: PolicyReadinessView[];
      if (options.config) {
        const { formatIssue, loadConfigFile } = await import("../../config/load.js");
        const { compilePolicy } = await import("../../policy/engine.js");
        const { assessReadiness } = await import("../../drills/readiness.js");
        const loaded = await loadConfigFile(options.config);
        if (!loaded.ok) throw new CliFailure(loaded.errors.map(formatIssue).join("\n"), "CONFIG_INVALID");
        const users = Object.entries(loaded.config.directory?.users ?? {}).map(([name, user]) => ({
          name,
          groups: user.groups,
        }));
        policies = assessReadiness(loaded.config, compilePolicy(loaded.config), {
          users,
          factors: null,
          overdueReviews: null,
          now: Date.now(),
        });
      } else {
        const { readinessReply } = await import("../../api/drills.schema.js");
        ({ policies } = await (await context.client()).get("/v1/readiness", readinessReply));
      }
      context.emit({ policies }, () => readinessText(policies));
    });
}

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

/** The lines of a JSON-lines body, as they arrive. */
async function* jsonLines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    for (let newline = pending.indexOf("\n"); newline >= 0; newline = pending.indexOf("\n")) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line) yield line;
    }
  }
  if (pending.trim()) yield pending.trim();
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
      const path = `/v1/drills/${encodeURIComponent(name)}/run`;
      const client = await context.client();
      if (context.globals().json) {
        // --json: one document at the end, the same `{run}` the JSON reply holds.
        const { drillRunReply } = await import("../../api/drills.schema.js");
        const { run } = await client.post(path, {}, drillRunReply);
        context.emit({ run }, () => runSummary(run));
        if (run.outcome === "failed") process.exitCode = 1;
        return;
      }
      const { drillRunStreamLine } = await import("../../api/drills.schema.js");
      const { checkReply } = await import("../client.js");
      const body = await client.stream(path, undefined, { body: {}, accept: "application/x-ndjson" });
      process.stdout.write(`drill ${name}: running\n`);
      let run: DrillRunView | null = null;
      for await (const text of jsonLines(body)) {
        const line = checkReply(drillRunStreamLine, JSON.parse(text), `a line of the reply to POST ${path}`);
        if ("step" in line) process.stdout.write(`${stepLine(line.step)}\n`);
        else if ("run" in line) run = line.run;
        else throw new CliFailure(line.error.message, line.error.code, { requestId: line.error.requestId });
      }
      if (!run)
        throw new CliFailure("the server ended the drill's reply before the run's result", "BAD_REPLY");
      process.stdout.write(
        `drill ${run.drill} (${run.zone}): ${run.outcome}${run.failedStep ? ` at ${run.failedStep}` : ""}\nrun ${run.id}${run.grantId ? `, grant ${run.grantId}` : ""}\n`,
      );
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

import type { Command } from "commander";
import type { CommandContext } from "../context.js";
import { safeText } from "../format.js";

/** `incident open|resolve`: incidents declared by hand (administrators). */
export function registerIncidentCommands(program: Command, context: CommandContext) {
  const incident = program
    .command("incident")
    .description("declare or resolve an incident by hand (administrators)");
  incident
    .command("open")
    .argument("<zone>", "the zone affected")
    .requiredOption("--id <id>", "an identifier for the incident, e.g. INC-4711")
    .option("--severity <n>", "1 (worst) to 5", "3")
    .option("--title <text>", "what is happening", "")
    .action(async (zone: string, options: { id: string; severity: string; title: string }) => {
      const { incidentReply } = await import("../../api/system.schema.js");
      const result = await (await context.client()).post(
        "/v1/incidents",
        {
          id: options.id,
          zone,
          severity: Number(options.severity),
          title: options.title,
          status: "open",
        },
        incidentReply,
      );
      context.emit(
        result,
        () =>
          `incident ${safeText(options.id)} open in ${safeText(zone)} (severity ${safeText(options.severity)})`,
      );
    });
  incident
    .command("resolve")
    .argument("<zone>", "the zone affected")
    .requiredOption("--id <id>", "the incident's identifier")
    .action(async (zone: string, options: { id: string }) => {
      const { incidentReply } = await import("../../api/system.schema.js");
      const result = await (await context.client()).post(
        "/v1/incidents",
        { id: options.id, zone, status: "resolved" },
        incidentReply,
      );
      context.emit(result, () => `incident ${safeText(options.id)} resolved in ${safeText(zone)}`);
    });
}

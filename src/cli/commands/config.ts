import type { Command } from "commander";
import type { CommandContext } from "../context.js";
import { safeText } from "../format.js";
import { describeConfigChange } from "../render.js";

/** `config reload`: the running configuration (administrators). */
export function registerConfigCommands(program: Command, context: CommandContext) {
  const config = program.command("config").description("the running configuration");
  config
    .command("reload")
    .description("ask the server to re-read its configuration file (administrators)")
    .action(async () => {
      const { reloadReply } = await import("../../api/system.schema.js");
      const result = await (await context.client()).post("/v1/config/reload", {}, reloadReply);
      context.emit(result, () =>
        result.changed
          ? [
              `applied configuration ${safeText(result.digest.slice(0, 12))}`,
              ...describeConfigChange(result.summary),
            ].join("\n")
          : `unchanged: configuration ${safeText(result.digest.slice(0, 12))} is already running`,
      );
    });
}

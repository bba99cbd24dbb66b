import type { Command } from "commander";
import type { CommandContext } from "../context.js";

/** `demo`: the 2 a.m. story against a running server. */
export function registerDemoCommand(program: Command, context: CommandContext) {
  program
    .command("demo")
    .description("play the 2 a.m. story against a running server (needs an administrator token)")
    .option("--step-delay <ms>", "pause between steps", "700")
    .action(async (options: { stepDelay: string }) => {
      const { runDemo } = await import("../demo.js");
      await runDemo({
        client: await context.client(),
        json: context.globals().json === true,
        stepDelayMs: Number(options.stepDelay) || 0,
      });
    });
}

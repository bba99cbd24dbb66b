import type { Command } from "commander";
import { registerAuditStreamCommands } from "../audit-stream.js";
import type { CommandContext } from "../context.js";
import { printEvent, printEventHeader } from "../render.js";

/** `audit tail|export` here; verify, sinks, checkpoint and public-key in audit-stream.ts. */
export function registerAuditCommands(program: Command, context: CommandContext) {
  const audit = program.command("audit").description("read and verify the audit chain");
  registerAuditStreamCommands(audit, context);
  audit
    .command("tail")
    .description("show the newest events")
    .option("-n, --lines <n>", "how many", "20")
    .option("-f, --follow", "keep printing new events as they are committed")
    .action(async (options: { lines: string; follow?: boolean }) => {
      const { auditEventSchema, auditEventsReply } = await import("../../api/audit.schema.js");
      const { checkReply } = await import("../client.js");
      const json = context.globals().json === true;
      const c = await context.client();
      const n = Math.min(Math.max(Number.parseInt(options.lines, 10) || 20, 1), 1000);
      const { events } = await c.get(`/v1/audit?order=desc&limit=${n}`, auditEventsReply);
      const ordered = events.reverse();
      printEventHeader(json);
      for (const event of ordered) printEvent(event, json);
      if (!options.follow) return;
      const after = ordered.at(-1)?.seq ?? 0;
      const stream = await c.stream(`/v1/events?afterSeq=${after}`);
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let split = buffer.indexOf("\n\n");
        while (split >= 0) {
          const frame = buffer.slice(0, split);
          buffer = buffer.slice(split + 2);
          const data = frame.split("\n").find((line) => line.startsWith("data: "));
          if (data)
            printEvent(
              checkReply(auditEventSchema, JSON.parse(data.slice(6)), "an event of /v1/events"),
              json,
            );
          split = buffer.indexOf("\n\n");
        }
      }
    });
  audit
    .command("export")
    .description("write every event as JSON lines to standard output")
    .action(async () => {
      const stream = await (await context.client()).stream("/v1/audit/export");
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
    });
}

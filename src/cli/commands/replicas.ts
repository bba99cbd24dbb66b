import type { Command } from "commander";
import type { CommandContext } from "../context.js";
import { table } from "../format.js";

/** `replicas`: the serving processes on the database; `replicas reload`: reload them all. */
export function registerReplicaCommands(program: Command, context: CommandContext) {
  const replicas = program
    .command("replicas")
    .description("list the server replicas on this database with their last heartbeat")
    .action(async () => {
      const { replicasReply } = await import("../../api/replicas.schema.js");
      const result = await (await context.client()).get("/v1/replicas", replicasReply);
      context.emit(result, () =>
        [
          table(
            result.replicas.map((r) => [
              `${r.id}${r.self ? " *" : ""}`,
              `${r.hostname}:${r.pid}`,
              r.version,
              r.configDigest.slice(0, 12),
              r.lastHeartbeatAt,
              r.live ? (r.current ? "current" : `not current: ${r.notCurrentReason ?? "?"}`) : "silent",
            ]),
            ["REPLICA", "HOST:PID", "VERSION", "CONFIG", "LAST HEARTBEAT", "STATE"],
          ),
          ...(result.configMismatch ? ["warning: the live replicas run different configurations"] : []),
        ].join("\n"),
      );
    });
  replicas
    .command("reload")
    .description("ask every replica to re-read its configuration file (administrators)")
    .action(async () => {
      const { replicaReloadReply } = await import("../../api/replicas.schema.js");
      const result = await (await context.client()).post("/v1/replicas/reload", {}, replicaReloadReply);
      context.emit(result, () => `asked ${result.replicas} live replica(s) to reload their configuration`);
    });
}

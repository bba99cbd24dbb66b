import type { Command } from "commander";
import type { CommandContext } from "../context.js";
import { table } from "../format.js";

/** `zones`: zones with their resources, policies and open incidents. */
export function registerZoneCommands(program: Command, context: CommandContext) {
  program
    .command("zones")
    .description("list zones with their resources, policies and open incidents")
    .action(async () => {
      const { zonesReply } = await import("../../api/zones.schema.js");
      const { zones } = await (await context.client()).get("/v1/zones", zonesReply);
      context.emit({ zones }, () =>
        table(
          zones.map((z) => [
            z.name,
            z.enforcement,
            z.resources.map((r) => `${r.name}(${r.type})`).join(", ") || "-",
            z.policies.map((p) => p.name).join(", ") || "-",
            z.openIncidents.map((i) => `sev${i.severity}: ${i.title}`).join("; ") || "-",
          ]),
          ["ZONE", "MODE", "RESOURCES", "BREAK-GLASS POLICIES", "OPEN INCIDENTS"],
        ),
      );
    });
}

/** `ssh-ca`: what a zone's SSH hosts need to trust Firebreak's certificates. */
export function registerSshCaCommand(program: Command, context: CommandContext) {
  program
    .command("ssh-ca")
    .description("print a zone's SSH user CA public key and the sshd_config lines its hosts need")
    .argument("<zone>", "the zone")
    .action(async (zone: string) => {
      const { sshCaReply } = await import("../../api/zones.schema.js");
      const result = await (await context.client()).get(
        `/v1/zones/${encodeURIComponent(zone)}/ssh-ca`,
        sshCaReply,
      );
      context.emit(result, () =>
        [
          result.publicKey,
          "",
          ...result.sshdConfig,
          "",
          `# Revocation list: ${result.krlUrl || `/v1/zones/${result.zone}/ssh-krl`} (fetch it to the RevokedKeys path every minute)`,
        ].join("\n"),
      );
    });
}

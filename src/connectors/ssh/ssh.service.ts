import { FirebreakError } from "../../errors.js";
import type { Runtime } from "../../runtime/runtime.service.js";
import { type SshConnector, sshdConfigLines } from "./ssh.connector.js";

/**
 * What an SSH host needs from Firebreak: the zone's user CA with the sshd_config lines that trust
 * it, and the zone's revocation list. Only zones with an SSH resource have either.
 */
export function createSshHostService(deps: {
  ssh: Pick<SshConnector, "caPublicKey" | "currentKrl">;
  current: () => Pick<Runtime, "config">;
}) {
  const requireSshZone = (zone: string) => {
    const resources = Object.values(deps.current().config.resources ?? {});
    if (!resources.some((r) => r.zone === zone && r.type === "ssh")) {
      throw new FirebreakError("NOT_FOUND", `zone '${zone.slice(0, 63)}' has no SSH resource`);
    }
  };
  return {
    async trust(zone: string) {
      requireSshZone(zone);
      const publicKey = await deps.ssh.caPublicKey(zone);
      const base = deps.current().config.server?.publicUrl?.replace(/\/+$/, "") ?? "";
      return {
        zone,
        publicKey,
        krlUrl: `${base}/v1/zones/${zone}/ssh-krl`,
        sshdConfig: sshdConfigLines(zone, publicKey, `/etc/ssh/firebreak-${zone}.krl`),
      };
    },
    async revocationList(zone: string): Promise<Buffer> {
      requireSshZone(zone);
      return deps.ssh.currentKrl(zone);
    },
  };
}
export type SshHostService = ReturnType<typeof createSshHostService>;

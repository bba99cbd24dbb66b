import { sshCaReply, sshKrlReply, sshZoneParams } from "../../api/zones.schema.js";
import { FirebreakError } from "../../errors.js";
import { type AnyRoute, defineRoute } from "../../http/route.js";
import type { Runtime } from "../../runtime/runtime.service.js";
import { type SshConnector, sshdConfigLines } from "./ssh.connector.js";

/** The CA public key and sshd_config lines a host needs, and the revocation list hosts fetch. */
export function createSshRoutes(deps: { ssh: SshConnector; current: () => Runtime }): AnyRoute[] {
  const requireSshZone = (zone: string) => {
    const resources = Object.values(deps.current().config.resources ?? {});
    if (!resources.some((r) => r.zone === zone && r.type === "ssh")) {
      throw new FirebreakError("NOT_FOUND", `zone '${zone.slice(0, 63)}' has no SSH resource`);
    }
  };
  return [
    defineRoute({
      method: "GET",
      url: "/v1/zones/:zone/ssh-ca",
      summary: "The zone's SSH user CA public key and the sshd_config lines a host needs",
      tag: "ssh",
      auth: "user",
      params: sshZoneParams,
      reply: sshCaReply,
      async handler({ params }) {
        requireSshZone(params.zone);
        const publicKey = await deps.ssh.caPublicKey(params.zone);
        const base = deps.current().config.server?.publicUrl?.replace(/\/+$/, "") ?? "";
        return {
          zone: params.zone,
          publicKey,
          krlUrl: `${base}/v1/zones/${params.zone}/ssh-krl`,
          sshdConfig: sshdConfigLines(params.zone, publicKey, `/etc/ssh/firebreak-${params.zone}.krl`),
        };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/zones/:zone/ssh-krl",
      summary: "The zone's OpenSSH key revocation list (binary); hosts fetch it for RevokedKeys",
      tag: "ssh",
      auth: "none",
      params: sshZoneParams,
      reply: sshKrlReply,
      async handler({ params, reply }) {
        requireSshZone(params.zone);
        const krl = await deps.ssh.currentKrl(params.zone);
        reply.hijack();
        reply.raw.writeHead(200, {
          "content-type": "application/octet-stream",
          "cache-control": "no-store",
          "content-length": krl.length,
        });
        reply.raw.end(krl);
        return undefined;
      },
    }),
  ];
}

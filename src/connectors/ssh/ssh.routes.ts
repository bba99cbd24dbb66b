import { sshCaReply, sshKrlReply, sshZoneParams } from "../../api/zones.schema.js";
import { type AnyRoute, defineRoute } from "../../http/route.js";
import type { SshHostService } from "./ssh.service.js";

/** The CA public key and sshd_config lines a host needs, and the revocation list hosts fetch. */
export function createSshRoutes(deps: { hosts: SshHostService }): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/zones/:zone/ssh-ca",
      summary: "The zone's SSH user CA public key and the sshd_config lines a host needs",
      tag: "ssh",
      auth: "user",
      params: sshZoneParams,
      reply: sshCaReply,
      handler: ({ params }) => deps.hosts.trust(params.zone),
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
        const krl = await deps.hosts.revocationList(params.zone);
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

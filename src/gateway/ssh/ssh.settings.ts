import { z } from "zod";
import { addressSchema, durationSchema, secretRefSchema } from "../../config/primitives.js";

const hostKeyLine = z
  .string()
  .regex(
    /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|rsa-sha2-(256|512)|ssh-rsa) [A-Za-z0-9+/]+={0,3}( .*)?$/,
    "an SSH public key line such as 'ssh-ed25519 AAAA…'",
  );

/** Per resource: which hosts a login may name, which host keys are pinned, what is recorded. */
const sshGatewayResource = z.strictObject({
  hosts: z
    .record(
      z.string().regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, "a host name of lowercase letters, digits, '.' or '-'"),
      addressSchema,
    )
    .optional()
    .describe("Hosts a login may name as 'grt_…+<name>' ('host:port'); default: the resource's address"),
  hostKeys: z
    .array(hostKeyLine)
    .max(50)
    .optional()
    .describe(
      "Host keys pinned for this resource's hosts (host certificates from the zone's CA are trusted too)",
    ),
  recordInput: z.boolean().optional().describe("Record what the user types in shells (default true)"),
});

/**
 * `gateway.ssh`: the SSH gateway (src/gateway/ssh/NOTES.md). Off unless `listen` is set. Users log
 * in with `ssh grt_…@gateway` (or `grt_…+host`) and the key they gave at activation.
 */
export const sshGatewaySettings = z.strictObject({
  listen: z
    .string()
    .regex(/^([A-Za-z0-9.-]{1,253}|\[[0-9a-fA-F:]+\]):([0-9]{1,5})$/, "an address such as '0.0.0.0:2222'")
    .refine((address) => Number(/:(\d+)$/.exec(address)?.[1]) <= 65_535, "a port from 0 to 65535")
    .describe("Where the SSH gateway listens, 'host:port' (port 0 picks a free one)"),
  hostKey: secretRefSchema
    .optional()
    .describe(
      "The gateway's OpenSSH host private key; default: an Ed25519 key made once and kept sealed in the database",
    ),
  maxRecordingBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .max(16 * 1024 * 1024 * 1024)
    .optional()
    .describe("Shell and exec bytes recorded per session; past it the session is cut (default 64 MiB)"),
  maxChannels: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .optional()
    .describe("Channels open at once per connection (default 10)"),
  loginTimeout: durationSchema
    .optional()
    .describe("A connection must authenticate within this (default 20s)"),
  authFailuresPerMinute: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .optional()
    .describe("Failed logins from one client address per minute before it is refused (default 10)"),
  resources: z
    .record(z.string(), sshGatewayResource)
    .optional()
    .describe("Per SSH resource: hosts, pinned host keys, input recording"),
});
export type SshGatewaySettings = z.output<typeof sshGatewaySettings>;

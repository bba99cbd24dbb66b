import { z } from "zod";
import { addressSchema, durationSchema, secretRefSchema } from "../config/primitives.js";
import { sshGatewaySettings } from "./ssh/ssh.settings.js";

/**
 * `gateway.postgres`: the PostgreSQL wire-protocol gateway (src/gateway/postgres/NOTES.md). Off
 * unless `listen` is set. Users connect with `user=grt_…`, `dbname=<resource>` and the gateway
 * token their grant showed them once.
 */
export const postgresGatewaySettings = z.strictObject({
  listen: z
    .string()
    .regex(/^([A-Za-z0-9.-]{1,253}|\[[0-9a-fA-F:]+\]):([0-9]{1,5})$/, "an address such as '0.0.0.0:6432'")
    .refine((address) => Number(/:(\d+)$/.exec(address)?.[1]) <= 65_535, "a port from 0 to 65535")
    .describe("Where the gateway listens, 'host:port' (for example '0.0.0.0:6432'; port 0 picks a free one)"),
  publicAddress: addressSchema
    .optional()
    .describe("The 'host:port' users connect to, shown with a grant's credential (default: listen)"),
  tls: z
    .strictObject({
      cert: secretRefSchema.describe("PEM certificate chain ('file:/…' or 'env:NAME')"),
      key: secretRefSchema.describe("PEM private key ('file:/…' or 'env:NAME')"),
    })
    .optional()
    .describe("Answer SSLRequest with TLS; without it the gateway answers 'N' (SCRAM still hides the token)"),
  startupTimeout: durationSchema
    .optional()
    .describe("A connection must finish its startup and authentication within this (default 10s)"),
  maxConnectionsPerAddress: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .optional()
    .describe("Open connections one client address may hold at once (default 100)"),
  authFailuresPerMinute: z
    .number()
    .int()
    .min(1)
    .max(10_000)
    .optional()
    .describe("Failed authentications from one client address per minute before it is refused (default 10)"),
});
export type PostgresGatewaySettings = z.output<typeof postgresGatewaySettings>;

/** `gateway`: protocol gateways that stand between a grant's user and the target. */
export const gatewaySettingsSchema = z
  .strictObject({
    postgres: postgresGatewaySettings.optional(),
    ssh: sshGatewaySettings.optional(),
  })
  .describe(
    "Protocol gateways: the user never holds the target's credential, and every statement is recorded",
  );

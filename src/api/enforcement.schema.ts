import { z } from "zod";
import { NAME_PATTERN } from "../config/primitives.js";
import { networkStateSchema } from "../segmentation/network-state.js";
import { ID_PATTERN } from "../shared/id-pattern.js";

/**
 * Enforcement agents: the desired network state they long-poll and the reports they send. The
 * network state's schema stays with the code that builds and digests it; unlike the other areas,
 * this file therefore needs Node (the console does not read it).
 */

const MAX_WAIT_SECONDS = 55;

const agentName = z
  .string()
  .regex(NAME_PATTERN, "an agent name of 1-63 lowercase letters, digits, '-' or '_'");
const item = z.string().max(1000);

export const desiredStateQuery = z.object({
  agent: agentName.optional(),
  enforcer: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,31}$/)
    .default("nftables"),
  grace: z.coerce.number().int().min(0).max(86_400_000).default(30_000),
  after: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  wait: z.coerce.number().int().min(0).max(MAX_WAIT_SECONDS).default(0),
});

export const desiredStateReply = z.object({
  changed: z.boolean(),
  digest: z.string(),
  serverTime: z.number(),
  state: networkStateSchema.nullable(),
});

export const agentReportSchema = z.strictObject({
  agent: agentName,
  enforcer: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
  status: z.enum(["applied", "failed-closed", "error"]),
  digest: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable(),
  graceMs: z.number().int().min(0).max(86_400_000),
  mode: z.enum(["unchanged", "grants", "replaced"]).nullable(),
  notOpen: z.array(z.string().regex(ID_PATTERN)).max(1000),
  skipped: z.array(z.strictObject({ subject: item, reason: item })).max(100),
  drift: z.strictObject({ removed: z.array(item).max(200), restored: z.array(item).max(200) }),
  error: z.string().max(1000).nullable(),
  durationMs: z.number().min(0).max(3_600_000),
  where: z.string().max(200),
});

/** What an agent reports after each apply: the remote agent builds it, the server records it. */
export type AgentReport = z.infer<typeof agentReportSchema>;

export const reportReply = z.object({ accepted: z.boolean() });

export const agentsReply = z.object({
  agents: z.array(
    z.object({
      name: z.string(),
      enforcer: z.string(),
      status: z.string(),
      inContact: z.boolean(),
      lastSeenAt: z.string(),
      graceMs: z.number(),
      appliedDigest: z.string().nullable(),
      appliedAt: z.string().nullable(),
      current: z.boolean(),
      openGrants: z.number().nullable(),
      report: z.record(z.string(), z.unknown()),
    }),
  ),
});

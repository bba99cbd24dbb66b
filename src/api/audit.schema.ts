import { z } from "zod";
import { nameSchema, SINK_TYPES } from "../config/schema.js";

/** The audit chain: events, verify, export, the live stream, sinks, dead letters, checkpoints. */

export const auditEventSchema = z.object({
  seq: z.number(),
  id: z.string(),
  time: z.string(),
  type: z.string(),
  actor: z.string(),
  zone: z.string().nullable(),
  resource: z.string().nullable(),
  subject: z.string().nullable(),
  context: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditEventView = z.infer<typeof auditEventSchema>;

export const auditQuery = z.object({
  afterSeq: z.coerce.number().int().min(0).optional(),
  beforeSeq: z.coerce.number().int().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  order: z.enum(["asc", "desc"]).optional(),
  type: z.string().max(64).optional(),
  zone: z.string().max(63).optional(),
  subject: z.string().max(64).optional(),
  actor: z.string().max(128).optional(),
});

export const auditEventsReply = z.object({ events: z.array(auditEventSchema) });

export const verifyReply = z.object({
  ok: z.boolean(),
  count: z.number(),
  firstBadSeq: z.number().nullable(),
  reason: z.string().nullable(),
  headHash: z.string().nullable(),
  problem: z.string().nullable(),
  anchoredSeq: z.number().nullable(),
});
export type VerifyReply = z.infer<typeof verifyReply>;

/** `/v1/audit/export` and `/v1/events`: where to start; the reply is a stream, not JSON. */
export const afterSeqQuery = z.object({ afterSeq: z.coerce.number().int().min(0).optional() });

export const streamReply = z.unknown();

export const sinkStatusSchema = z.object({
  name: z.string(),
  type: z.enum(SINK_TYPES),
  format: z.string(),
  target: z.string().nullable(),
  state: z.enum(["idle", "delivering", "retrying", "failing", "misconfigured", "starting"]),
  deliveredSeq: z.number(),
  headSeq: z.number(),
  lagEvents: z.number(),
  lagSeconds: z.number(),
  attempts: z.number(),
  nextAttemptAt: z.string().nullable(),
  lastError: z.string().nullable(),
  lastErrorAt: z.string().nullable(),
  lastDeliveredAt: z.string().nullable(),
  deliveredTotal: z.number(),
  errorTotal: z.number(),
  deadLetters: z.object({ dead: z.number(), queued: z.number(), replayed: z.number() }),
  filter: z
    .object({
      types: z.array(z.string()).optional(),
      zones: z.array(z.string()).optional(),
      minSeverity: z.string().optional(),
    })
    .nullable(),
});

export const sinksReply = z.object({ sinks: z.array(sinkStatusSchema) });

const deadLetterState = z.enum(["dead", "queued", "replayed"]);

export const deadLetterSchema = z.object({
  seq: z.number(),
  eventId: z.string(),
  attempts: z.number(),
  lastError: z.string(),
  state: deadLetterState,
  deadAt: z.string(),
  replayedAt: z.string().nullable(),
});

export const sinkParams = z.object({ name: nameSchema });

export const deadLettersQuery = z.object({ state: deadLetterState.optional() });

export const deadLettersReply = z.object({ deadLetters: z.array(deadLetterSchema) });

export const replayBody = z.strictObject({ fromSeq: z.number().int().min(1).optional() }).optional();

export const replayReply = z.object({
  sink: z.string(),
  queued: z.number(),
  rewoundTo: z.number().nullable(),
});

export const checkpointReply = z.object({
  signed: z.boolean(),
  seq: z.number().nullable(),
  hash: z.string().nullable(),
  keyId: z.string().nullable(),
});

export const checkpointKeyReply = z.object({
  keyId: z.string(),
  algorithm: z.literal("Ed25519"),
  publicKey: z.string(),
});

import { z } from "zod";
import { nameSchema } from "../config/primitives.js";
import { SINK_TYPES } from "../config/schema.js";

/**
 * Audit delivery: sinks, their dead letters and replay, checkpoints and the checkpoint key. The
 * sink types come from the configuration's plug-in registry, so unlike most areas this file
 * needs the server's modules (the console does not read it).
 */

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

import { z } from "zod";

/** The audit chain: events, verify, export and the live stream. Sinks are in sinks.schema.ts. */

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
  /** Gateway session transcripts checked against their chains and audit events (issue 12). */
  transcripts: z
    .object({
      ok: z.boolean(),
      sessions: z.number(),
      records: z.number(),
      failures: z.array(
        z.object({
          session: z.string(),
          grant: z.string().nullable(),
          firstBadSeq: z.number(),
          problem: z.string(),
          reason: z.string(),
        }),
      ),
    })
    .nullable()
    .optional(),
});
export type VerifyReply = z.infer<typeof verifyReply>;

/** `/v1/audit/export` and `/v1/events`: where to start; the reply is a stream, not JSON. */
export const afterSeqQuery = z.object({ afterSeq: z.coerce.number().int().min(0).optional() });

export const streamReply = z.unknown();

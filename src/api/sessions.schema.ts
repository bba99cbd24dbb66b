import { z } from "zod";

/** Gateway sessions and their transcripts: `/v1/grants/{id}/sessions`, `/v1/sessions/{id}/transcript`. */

export const sessionViewSchema = z.object({
  id: z.string(),
  grantId: z.string(),
  protocol: z.string(),
  resource: z.string(),
  user: z.string(),
  clientAddress: z.string().nullable(),
  startedAt: z.string(),
  endedAt: z.string().nullable(),
  endReason: z.string().nullable(),
  records: z.number(),
  /** The last record's hash once the session ended; `session.ended` in the audit chain carries it too. */
  digest: z.string().nullable(),
});
export type SessionView = z.infer<typeof sessionViewSchema>;

export const sessionsReply = z.object({ sessions: z.array(sessionViewSchema) });

export const transcriptRecordSchema = z.object({
  seq: z.number(),
  time: z.string(),
  kind: z.string(),
  /** `statement`: protocol, text, tag, rows, sqlstate, durationMs, params, classification, refused. */
  payload: z.record(z.string(), z.unknown()),
  hash: z.string(),
});
export type TranscriptRecordView = z.infer<typeof transcriptRecordSchema>;

export const transcriptReply = z.object({
  session: sessionViewSchema,
  records: z.array(transcriptRecordSchema),
  /** Pass as `afterSeq` for the next page; null at the end. */
  nextAfterSeq: z.number().nullable(),
});
export type TranscriptReply = z.infer<typeof transcriptReply>;

export const sessionIdParams = z.object({
  id: z.string().regex(/^ses_[a-z0-9]{1,60}$/, "a session id such as 'ses_…'"),
});
export const transcriptQuery = z.object({
  afterSeq: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

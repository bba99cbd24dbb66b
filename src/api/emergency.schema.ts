import { z } from "zod";

/** Emergency kits (src/emergency): the current kit of a zone, and a journal of openings reported. */

export const emergencyZoneParams = z.object({ zone: z.string().min(1).max(63) });

/** The kit file as written: sealed, so it may travel; the CLI writes it out unchanged. */
export const emergencyKitReply = z.object({ kit: z.string() });

export const emergencyReportBody = z.object({ journal: z.string().max(1_000_000) });

const finding = z.object({
  kitId: z.string(),
  zone: z.string(),
  externalId: z.string(),
  liveSessions: z.number(),
  connections: z.number().nullable(),
});

export const emergencyReportReply = z.object({
  imported: z.array(z.object({ kitId: z.string(), opener: z.string(), grantId: z.string() })),
  refused: z.array(z.object({ kitId: z.string(), reason: z.string() })),
  unreadable: z.number(),
  rotations: z.array(z.object({ zone: z.string(), kitId: z.string(), findings: z.array(finding) })),
});
export type EmergencyReportReply = z.infer<typeof emergencyReportReply>;

import { z } from "zod";

/** The serving processes on this database (issue 13.5): `GET /v1/replicas`, `firebreak replicas`. */
export const replicaView = z.object({
  id: z.string(),
  hostname: z.string(),
  pid: z.number(),
  version: z.string(),
  /** The digest of the configuration the replica runs (config.applied's `digest`). */
  configDigest: z.string(),
  address: z.string().nullable(),
  startedAt: z.string(),
  lastHeartbeatAt: z.string(),
  /** Heartbeat within the last three intervals. */
  live: z.boolean(),
  /** Whether it could confirm, at its last heartbeat, that it had applied every committed change. */
  current: z.boolean(),
  notCurrentReason: z.string().nullable(),
  /** The last audit seq its live views had applied. */
  seenSeq: z.number(),
  /** This is the replica that answered. */
  self: z.boolean(),
});
export type ReplicaView = z.infer<typeof replicaView>;

export const replicasReply = z.object({
  replicas: z.array(replicaView),
  /** True when the live replicas run more than one configuration. */
  configMismatch: z.boolean(),
});

export const replicaReloadReply = z.object({
  /** The live replicas that will reload. */
  replicas: z.number(),
});

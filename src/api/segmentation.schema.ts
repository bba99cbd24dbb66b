import { z } from "zod";

/** Segmentation: a zone's reachability, a grant's blast radius, lint of the running configuration. */

export const hopSchema = z.object({
  from: z.string(),
  to: z.string(),
  ports: z.array(z.string()),
  via: z.enum(["flow", "grant"]),
  grants: z.array(z.string()),
});
const reached = z.object({ zone: z.string(), path: z.array(hopSchema), resources: z.array(z.string()) });
const radius = z.object({
  zones: z.number(),
  resources: z.number(),
  directZones: z.number(),
  directResources: z.number(),
});

export const reachabilityQuery = z.object({ grants: z.enum(["true", "false"]).default("true") });

export const reachabilityReply = z.object({
  zone: z.string(),
  enforcement: z.string(),
  includesGrants: z.boolean(),
  direct: z.array(reached),
  transitive: z.array(reached),
  reachedBy: z.object({ direct: z.array(z.string()), transitive: z.array(z.string()) }),
  blastRadius: radius,
});
export type Reachability = z.infer<typeof reachabilityReply>;

export const blastRadiusBody = z
  .strictObject({
    zone: z.string().min(1).max(63).optional(),
    resource: z.string().min(1).max(63).optional(),
    role: z.string().min(1).max(63),
    sourceZone: z.string().min(1).max(63).optional(),
  })
  .refine(
    (b) => (b.zone === undefined) !== (b.resource === undefined),
    "exactly one of 'zone' or 'resource'",
  );

export const blastRadiusReply = z.object({
  changes: z.array(
    z.object({
      sourceZone: z.string(),
      before: radius,
      after: radius,
      addedZones: z.array(reached),
      addedResources: z.array(z.string()),
      paths: z.array(z.object({ resource: z.string(), to: z.string() })),
    }),
  ),
  note: z.string().nullable(),
});
export type BlastRadius = z.infer<typeof blastRadiusReply>;

export const lintReply = z.object({
  findings: z.array(
    z.object({
      code: z.string(),
      severity: z.enum(["high", "medium", "low"]),
      path: z.string(),
      message: z.string(),
      hops: z.array(hopSchema).optional(),
    }),
  ),
});

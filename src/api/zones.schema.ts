import { z } from "zod";

/** Zones: `/v1/zones`, one zone, and a zone's SSH CA. Reachability is in segmentation. */

export const zoneViewSchema = z.object({
  name: z.string(),
  description: z.string().nullable(),
  labels: z.record(z.string(), z.string()),
  cidrs: z.array(z.string()),
  enforcement: z.string(),
  resources: z.array(
    z.object({
      name: z.string(),
      type: z.string(),
      roles: z.array(z.string()),
      /** Where a grant's network path leads and what users connect to (`10.40.0.5:5432`). */
      address: z.string().nullable(),
    }),
  ),
  policies: z.array(z.object({ name: z.string(), roles: z.array(z.string()) })),
  flowsIn: z.array(z.object({ from: z.string(), ports: z.array(z.string()) })),
  flowsOut: z.array(z.object({ to: z.string(), ports: z.array(z.string()) })),
  openIncidents: z.array(
    z.object({ id: z.string(), severity: z.number(), title: z.string(), openedAt: z.string() }),
  ),
});
export type ZoneView = z.infer<typeof zoneViewSchema>;

export const zonesReply = z.object({ zones: z.array(zoneViewSchema) });

export const zoneIdParams = z.object({ id: z.string().min(1).max(63) });

export const sshZoneParams = z.object({ zone: z.string().min(1).max(63) });

export const sshCaReply = z.object({
  zone: z.string(),
  publicKey: z.string(),
  krlUrl: z.string(),
  sshdConfig: z.array(z.string()),
});

/** The key revocation list is binary: no JSON reply. */
export const sshKrlReply = z.unknown();

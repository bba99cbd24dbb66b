import { z } from "zod";
import { FirebreakError } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { Runtime } from "../server/runtime.js";
import type { SignalService } from "../signals/signal.service.js";

const zoneView = z.object({
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

export function createZoneRoutes(deps: {
  current: () => Runtime;
  signals: Pick<SignalService, "openIncidents">;
}): AnyRoute[] {
  async function views() {
    const { config } = deps.current();
    const incidents = await deps.signals.openIncidents();
    return Object.entries(config.zones).map(([name, zone]) => ({
      name,
      description: zone.description ?? null,
      labels: zone.labels ?? {},
      cidrs: zone.cidrs ?? [],
      enforcement: zone.enforcement,
      resources: Object.entries(config.resources ?? {})
        .filter(([, r]) => r.zone === name)
        .map(([resource, r]) => ({
          name: resource,
          type: r.type,
          roles: Object.keys(r.roles),
          address: r.address ?? null,
        })),
      policies: (config.breakGlass ?? [])
        .filter((p) => p.zone === name)
        .map((p) => ({ name: p.name, roles: p.roles })),
      flowsIn: (config.flows ?? [])
        .filter((f) => f.to === name)
        .map((f) => ({ from: f.from, ports: f.ports })),
      flowsOut: (config.flows ?? [])
        .filter((f) => f.from === name)
        .map((f) => ({ to: f.to, ports: f.ports })),
      openIncidents: incidents
        .filter((i) => i.zone === name)
        .map((i) => ({
          id: i.externalId,
          severity: i.severity,
          title: i.title,
          openedAt: new Date(i.openedAt).toISOString(),
        })),
    }));
  }
  return [
    defineRoute({
      method: "GET",
      url: "/v1/zones",
      summary: "Zones with their resources, policies, flows and open incidents",
      tag: "zones",
      auth: "user",
      reply: z.object({ zones: z.array(zoneView) }),
      handler: async () => ({ zones: await views() }),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/zones/:id",
      summary: "One zone",
      tag: "zones",
      auth: "user",
      params: z.object({ id: z.string().min(1).max(63) }),
      reply: zoneView,
      async handler({ params }) {
        const zone = (await views()).find((z) => z.name === params.id);
        if (!zone) throw new FirebreakError("NOT_FOUND", "no such zone");
        return zone;
      },
    }),
  ];
}

import { zoneIdParams, zonesReply, zoneViewSchema } from "../api/zones.schema.js";
import { FirebreakError } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { Runtime } from "../runtime/runtime.service.js";
import type { SignalService } from "../signals/signal.service.js";

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
      reply: zonesReply,
      handler: async () => ({ zones: await views() }),
    }),
    defineRoute({
      method: "GET",
      url: "/v1/zones/:id",
      summary: "One zone",
      tag: "zones",
      auth: "user",
      params: zoneIdParams,
      reply: zoneViewSchema,
      async handler({ params }) {
        const zone = (await views()).find((z) => z.name === params.id);
        if (!zone) throw new FirebreakError("NOT_FOUND", "no such zone");
        return zone;
      },
    }),
  ];
}

import { z } from "zod";
import type { FirebreakConfig } from "../config/schema.js";
import { assert, FirebreakError } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import { type CompiledPolicy, resourcesForGrant } from "../policy/engine.js";
import type { Clock } from "../shared/clock.js";
import { lintConfig } from "./lint.js";
import type { NetworkState } from "./network-state.js";
import { analyseZone, blastRadiusChange, buildReachabilityGraph } from "./reachability.js";
import { hypotheticalPaths } from "./what-if.js";

const hop = z.object({
  from: z.string(),
  to: z.string(),
  ports: z.array(z.string()),
  via: z.enum(["flow", "grant"]),
  grants: z.array(z.string()),
});
const reached = z.object({ zone: z.string(), path: z.array(hop), resources: z.array(z.string()) });
const radius = z.object({
  zones: z.number(),
  resources: z.number(),
  directZones: z.number(),
  directResources: z.number(),
});
export const reachabilityReply = z.object({
  zone: z.string(),
  enforcement: z.string(),
  includesGrants: z.boolean(),
  direct: z.array(reached),
  transitive: z.array(reached),
  reachedBy: z.object({ direct: z.array(z.string()), transitive: z.array(z.string()) }),
  blastRadius: radius,
});
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

/**
 * Reachability, blast radius and lint over the running configuration (and, for reachability,
 * the paths of active grants). The same pure functions answer `firebreak reach|lint|explain
 * --blast-radius --config FILE` offline.
 */
export function createSegmentationRoutes(deps: {
  clock: Clock;
  config: () => FirebreakConfig;
  policy: () => CompiledPolicy;
  desired: () => Promise<NetworkState>;
  sourceZoneOf: (address: string | null) => string | null;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/zones/:id/reachability",
      summary:
        "What a zone reaches directly and transitively (with hops), what reaches it, and its blast radius",
      tag: "zones",
      auth: "user",
      params: z.object({ id: z.string().min(1).max(63) }),
      query: z.object({ grants: z.enum(["true", "false"]).default("true") }),
      reply: reachabilityReply,
      async handler({ params, query }) {
        const config = deps.config();
        const includesGrants = query.grants === "true";
        const paths = includesGrants ? (await deps.desired()).paths : [];
        const result = analyseZone(buildReachabilityGraph(config, paths), params.id);
        if (!result) throw new FirebreakError("NOT_FOUND", "no such zone");
        return { ...result, includesGrants };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/zones/blast-radius",
      summary: "How a grant on a zone or resource would change what its source zone reaches",
      tag: "zones",
      auth: "user",
      body: z
        .strictObject({
          zone: z.string().min(1).max(63).optional(),
          resource: z.string().min(1).max(63).optional(),
          role: z.string().min(1).max(63),
          sourceZone: z.string().min(1).max(63).optional(),
        })
        .refine(
          (b) => (b.zone === undefined) !== (b.resource === undefined),
          "exactly one of 'zone' or 'resource'",
        ),
      reply: blastRadiusReply,
      async handler({ body, request }) {
        const config = deps.config();
        const zone = body.resource ? config.resources?.[body.resource]?.zone : body.zone;
        assert(zone && Object.hasOwn(config.zones, zone), "NOT_FOUND", "no such zone or resource");
        const sources = body.sourceZone
          ? [body.sourceZone]
          : [deps.sourceZoneOf(request.ip ?? null)].filter((z): z is string => z !== null);
        const candidates =
          sources.length > 0
            ? sources
            : [
                ...new Set(
                  (config.breakGlass ?? [])
                    .filter((p) => p.zone === zone)
                    .flatMap((p) => p.sourceZones ?? []),
                ),
              ];
        const resources = resourcesForGrant(deps.policy(), zone, body.resource ?? null, body.role);
        const active = (await deps.desired()).paths;
        const changes = candidates.flatMap((sourceZone) => {
          const added = hypotheticalPaths(config, sourceZone, resources, deps.clock.now());
          const change = blastRadiusChange(config, sourceZone, active, added);
          return change ? [change] : [];
        });
        const note =
          candidates.length === 0
            ? "the source zone is unknown: name one with sourceZone"
            : resources.every((r) => !config.resources?.[r]?.address)
              ? "no resource of this grant has an address, so it opens no network path"
              : null;
        return { changes, note };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/lint",
      summary: "Findings about the running configuration, most severe first",
      tag: "zones",
      auth: "user",
      reply: z.object({
        findings: z.array(
          z.object({
            code: z.string(),
            severity: z.string(),
            path: z.string(),
            message: z.string(),
            hops: z.array(hop).optional(),
          }),
        ),
      }),
      async handler({ principal }) {
        assert(
          principal.isAdmin || principal.isAuditor,
          "FORBIDDEN",
          "only administrators and auditors can lint the configuration",
        );
        return { findings: lintConfig(deps.config()) };
      },
    }),
  ];
}

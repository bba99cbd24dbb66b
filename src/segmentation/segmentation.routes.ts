import {
  blastRadiusBody,
  blastRadiusReply,
  lintReply,
  reachabilityQuery,
  reachabilityReply,
} from "../api/segmentation.schema.js";
import { zoneIdParams } from "../api/zones.schema.js";
import type { FirebreakConfig } from "../config/schema.js";
import { assert, FirebreakError } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import { type CompiledPolicy, resourcesForGrant } from "../policy/engine.js";
import type { Clock } from "../shared/clock.js";
import { lintConfig } from "./lint.js";
import type { NetworkState } from "./network-state.js";
import { analyseZone, blastRadiusChange, buildReachabilityGraph } from "./reachability.js";
import { hypotheticalPaths } from "./what-if.js";

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
      params: zoneIdParams,
      query: reachabilityQuery,
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
      body: blastRadiusBody,
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
      reply: lintReply,
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

import type { FirebreakConfig } from "../config/schema.js";
import { type PathState, pathsForGrant } from "./network-state.js";

/** A grant id no real grant can have, for paths that exist only in a what-if. */
export const HYPOTHETICAL_GRANT = "grt_000000000000000000000000";
const HYPOTHETICAL_WINDOW_MS = 3_600_000;

/**
 * The paths a grant on `resources` would open from `sourceZone`: what `explain --blast-radius`
 * adds to the current flows and grant paths to show the grant's effect on reachability.
 */
export function hypotheticalPaths(
  config: FirebreakConfig,
  sourceZone: string,
  resources: readonly string[],
  now: number,
): PathState[] {
  const firstResource = resources.find((name) => config.resources?.[name]);
  const zone = firstResource ? (config.resources?.[firstResource]?.zone ?? sourceZone) : sourceZone;
  const paths = pathsForGrant(
    config,
    {
      id: HYPOTHETICAL_GRANT,
      user: "what-if",
      zone,
      resource: null,
      sourceZone,
      clientAddress: null,
      endsAt: now + HYPOTHETICAL_WINDOW_MS,
    },
    resources,
  );
  // A source zone without CIDRs has no path by address, but the zone still reaches the resource.
  if (paths.length > 0 || (config.zones[sourceZone]?.cidrs ?? []).length > 0) return paths;
  return pathsForGrant(
    config,
    {
      id: HYPOTHETICAL_GRANT,
      user: "what-if",
      zone,
      resource: null,
      sourceZone,
      clientAddress: "0.0.0.0",
      endsAt: now + HYPOTHETICAL_WINDOW_MS,
    },
    resources,
  ).map((path) => ({ ...path, from: { zone: sourceZone, address: null, cidrs: [] } }));
}

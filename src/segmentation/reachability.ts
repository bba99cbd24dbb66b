import type { FirebreakConfig } from "../config/schema.js";
import {
  formatPortRange,
  mergePortRanges,
  type PortRange,
  parsePortSpec,
  zoneAddressOwnership,
} from "./flow-model.js";
import { parseAddress } from "./ip.js";
import type { PathState } from "./network-state.js";

/**
 * What a zone can reach: directly (a flow or an open grant path from it) and transitively (from a
 * zone it reaches, onward: the lateral-movement paths an attacker who holds one host would take).
 * The model is zone-level: inside a zone everything is reachable, so reaching a zone on any port
 * counts as reaching the zone and its resources. Pure: the configuration and paths are inputs.
 */

export interface Hop {
  readonly from: string;
  readonly to: string;
  readonly ports: string[];
  /** `flow`: a standing flow; `grant`: a path an active (or hypothetical) grant opens. */
  readonly via: "flow" | "grant";
  /** The grants whose paths make this hop, when `via` is `grant` (or both kinds exist). */
  readonly grants: string[];
}

export interface ReachedZone {
  readonly zone: string;
  /** Hops on a shortest path from the analysed zone; its length is the distance. */
  readonly path: Hop[];
  readonly resources: string[];
}

export interface BlastRadius {
  /** Zones reachable at all (directly or transitively), not counting the zone itself. */
  readonly zones: number;
  /** Resources in those zones. */
  readonly resources: number;
  readonly directZones: number;
  readonly directResources: number;
}

export interface ZoneReachability {
  readonly zone: string;
  readonly enforcement: "monitor" | "enforce";
  readonly direct: ReachedZone[];
  readonly transitive: ReachedZone[];
  /** Zones that reach this one, directly or through others. */
  readonly reachedBy: { readonly direct: string[]; readonly transitive: string[] };
  readonly blastRadius: BlastRadius;
}

interface Edge {
  from: string;
  to: string;
  ports: PortRange[];
  flow: boolean;
  grants: Set<string>;
}

export interface ReachabilityGraph {
  readonly zones: ReadonlyMap<string, { enforcement: "monitor" | "enforce"; resources: string[] }>;
  readonly out: ReadonlyMap<string, readonly Edge[]>;
  readonly in: ReadonlyMap<string, readonly Edge[]>;
}

/** Builds the zone graph from the standing flows and, optionally, grant paths. */
export function buildReachabilityGraph(
  config: FirebreakConfig,
  paths: readonly PathState[] = [],
): ReachabilityGraph {
  const zones = new Map<string, { enforcement: "monitor" | "enforce"; resources: string[] }>();
  for (const [name, zone] of Object.entries(config.zones))
    zones.set(name, { enforcement: zone.enforcement, resources: [] });
  for (const [name, resource] of Object.entries(config.resources ?? {}))
    zones.get(resource.zone)?.resources.push(name);

  const edges = new Map<string, Edge>();
  const edge = (from: string, to: string): Edge => {
    const key = `${from}\u0000${to}`;
    let found = edges.get(key);
    if (!found) {
      found = { from, to, ports: [], flow: false, grants: new Set() };
      edges.set(key, found);
    }
    return found;
  };
  for (const flow of config.flows ?? []) {
    if (!zones.has(flow.from) || !zones.has(flow.to) || flow.from === flow.to) continue;
    const target = edge(flow.from, flow.to);
    target.flow = true;
    for (const spec of flow.ports) {
      const range = parsePortSpec(spec);
      if (range) target.ports.push(range);
    }
  }
  const owners = paths.some((p) => p.from.address) ? zoneAddressOwnership(zoneList(config)) : null;
  for (const path of paths) {
    let from = path.from.zone;
    if (path.from.address && owners) {
      const parsed = parseAddress(path.from.address);
      if (parsed) {
        for (const owner of owners.values()) {
          if (
            owner.ranges.some(
              (r) => r.family === parsed.family && r.start <= parsed.value && parsed.value <= r.end,
            )
          )
            from = owner.zone;
        }
      }
    }
    if (!from || !zones.has(from) || !zones.has(path.zone) || from === path.zone) continue;
    const target = edge(from, path.zone);
    target.grants.add(path.grantId);
    target.ports.push({ protocol: path.to.protocol, low: path.to.port, high: path.to.port });
  }

  const out = new Map<string, Edge[]>();
  const into = new Map<string, Edge[]>();
  for (const e of [...edges.values()].sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0))) {
    e.ports = mergePortRanges(e.ports);
    (out.get(e.from) ?? out.set(e.from, []).get(e.from))?.push(e);
    (into.get(e.to) ?? into.set(e.to, []).get(e.to))?.push(e);
  }
  return { zones, out, in: into };
}

function zoneList(config: FirebreakConfig) {
  return Object.entries(config.zones).map(([name, zone]) => ({ name, cidrs: zone.cidrs ?? [] }));
}

function hopOf(edge: Edge): Hop {
  return {
    from: edge.from,
    to: edge.to,
    ports: edge.ports.map(formatPortRange),
    via: edge.flow ? "flow" : "grant",
    grants: [...edge.grants].sort(),
  };
}

/** Breadth-first: every reachable zone with one shortest path to it (ties broken by zone name). */
function explore(
  graph: ReachabilityGraph,
  start: string,
  direction: "out" | "in",
): Map<string, { parent: Edge | null; distance: number }> {
  const seen = new Map<string, { parent: Edge | null; distance: number }>([
    [start, { parent: null, distance: 0 }],
  ]);
  let frontier = [start];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const zone of frontier) {
      const distance = seen.get(zone)?.distance ?? 0;
      for (const e of graph[direction].get(zone) ?? []) {
        const other = direction === "out" ? e.to : e.from;
        if (seen.has(other)) continue;
        seen.set(other, { parent: e, distance: distance + 1 });
        next.push(other);
      }
    }
    frontier = next.sort();
  }
  return seen;
}

/** Reachability and blast radius of one zone; null when the zone does not exist. */
export function analyseZone(graph: ReachabilityGraph, zone: string): ZoneReachability | null {
  const info = graph.zones.get(zone);
  if (!info) return null;
  const forward = explore(graph, zone, "out");
  const reached: ReachedZone[] = [];
  for (const [name, { distance }] of forward) {
    if (name === zone) continue;
    const hops: Hop[] = [];
    let cursor = name;
    for (let step = 0; step < distance; step++) {
      const parent = forward.get(cursor)?.parent;
      if (!parent) break;
      hops.unshift(hopOf(parent));
      cursor = parent.from;
    }
    reached.push({ zone: name, path: hops, resources: [...(graph.zones.get(name)?.resources ?? [])] });
  }
  reached.sort((a, b) => a.path.length - b.path.length || (a.zone < b.zone ? -1 : 1));
  const direct = reached.filter((r) => r.path.length === 1);
  const transitive = reached.filter((r) => r.path.length > 1);
  const backward = explore(graph, zone, "in");
  const by = (predicate: (distance: number) => boolean) =>
    [...backward]
      .filter(([name, v]) => name !== zone && predicate(v.distance))
      .map(([name]) => name)
      .sort();
  const count = (list: ReachedZone[]) => list.reduce((sum, r) => sum + r.resources.length, 0);
  return {
    zone,
    enforcement: info.enforcement,
    direct,
    transitive,
    reachedBy: { direct: by((d) => d === 1), transitive: by((d) => d > 1) },
    blastRadius: {
      zones: reached.length,
      resources: count(reached),
      directZones: direct.length,
      directResources: count(direct),
    },
  };
}

export interface BlastRadiusChange {
  readonly sourceZone: string;
  readonly before: BlastRadius;
  readonly after: BlastRadius;
  /** Zones (with the path that now leads there) and resources the grant would newly make reachable. */
  readonly addedZones: ReachedZone[];
  readonly addedResources: string[];
  /** The paths the grant would open. */
  readonly paths: { resource: string; to: string }[];
}

/**
 * How a grant would change what its source zone reaches: the blast radius with the current flows
 * and active grant paths, and again with the grant's own paths added.
 */
export function blastRadiusChange(
  config: FirebreakConfig,
  sourceZone: string,
  active: readonly PathState[],
  added: readonly PathState[],
): BlastRadiusChange | null {
  const before = analyseZone(buildReachabilityGraph(config, active), sourceZone);
  const after = analyseZone(buildReachabilityGraph(config, [...active, ...added]), sourceZone);
  if (!before || !after) return null;
  const had = new Set([...before.direct, ...before.transitive].map((r) => r.zone));
  const addedZones = [...after.direct, ...after.transitive].filter((r) => !had.has(r.zone));
  return {
    sourceZone,
    before: before.blastRadius,
    after: after.blastRadius,
    addedZones,
    addedResources: addedZones.flatMap((r) => r.resources).sort(),
    paths: added.map((p) => ({ resource: p.resource, to: `${p.to.host}:${p.to.port}` })),
  };
}

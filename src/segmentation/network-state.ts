import { createHash } from "node:crypto";
import { z } from "zod";
import { PORT_SPEC_PATTERN } from "../config/patterns.js";
import { type FirebreakConfig, NAME_PATTERN, USER_PATTERN } from "../config/schema.js";
import { canonicalJson } from "../shared/canonical-json.js";
import { ID_PATTERN } from "../shared/ids.js";

/**
 * What the network should allow right now: every zone with its addresses and enforcement mode,
 * the standing flows, and one path per active grant. The server publishes it (the desired state
 * agents follow), exporters render it, the nftables enforcer turns it into rules. It is data only,
 * validated with zod wherever it crosses a process boundary; addresses inside it are validated
 * again, strictly, before they become a firewall element.
 */

const name = z.string().regex(NAME_PATTERN);

export const zoneStateSchema = z.object({
  name,
  cidrs: z.array(z.string().max(64)).max(4096),
  enforcement: z.enum(["monitor", "enforce"]),
  labels: z.record(z.string().max(63), z.string().max(63)),
});

export const flowStateSchema = z.object({
  from: name,
  to: name,
  ports: z.array(z.string().regex(PORT_SPEC_PATTERN)).min(1).max(256),
});

export const pathStateSchema = z.object({
  grantId: z.string().regex(ID_PATTERN),
  user: z.string().regex(USER_PATTERN),
  zone: name,
  resource: name,
  /** Where the path starts: the requester's address when known, else its source zone's CIDRs. */
  from: z.object({
    zone: name.nullable(),
    address: z.string().max(64).nullable(),
    cidrs: z.array(z.string().max(64)).max(4096),
  }),
  to: z.object({
    /** An IP address or a DNS name (resolved by the enforcer, then validated like any address). */
    host: z.string().max(253),
    port: z.number().int().min(1).max(65_535),
    protocol: z.enum(["tcp", "udp"]),
  }),
  endsAt: z.number().int(),
});

export const networkStateSchema = z.object({
  version: z.literal(1),
  /** sha256 of everything below except `serverTime`: equal digests mean equal intent. */
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  /** The server's clock when it produced this state; enforcers measure `endsAt` against it. */
  serverTime: z.number().int(),
  zones: z.array(zoneStateSchema).max(100_000),
  flows: z.array(flowStateSchema).max(1_000_000),
  paths: z.array(pathStateSchema).max(1_000_000),
});

export type ZoneState = z.infer<typeof zoneStateSchema>;
export type FlowState = z.infer<typeof flowStateSchema>;
export type PathState = z.infer<typeof pathStateSchema>;
export type NetworkState = z.infer<typeof networkStateSchema>;

/** What a grant's path needs to know about the grant. */
export interface GrantForPath {
  id: string;
  user: string;
  zone: string;
  resource: string | null;
  sourceZone: string | null;
  clientAddress: string | null;
  endsAt: number;
}

const ADDRESS = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]{1,253})):([0-9]{1,5})$/;

/** `10.30.0.5:5432` or `[fd00::5]:5432` as host and port; null when it is neither. */
export function splitAddress(address: string): { host: string; port: number } | null {
  const match = ADDRESS.exec(address);
  if (!match) return null;
  const port = Number(match[3]);
  if (port < 1 || port > 65_535) return null;
  return { host: match[1] ?? match[2] ?? "", port };
}

/** An IPv4-mapped IPv6 client address (`::ffff:10.0.0.1`) is the IPv4 address it maps. */
export function plainClientAddress(address: string | null): string | null {
  if (!address) return null;
  return address.toLowerCase().startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/**
 * The paths one grant opens: one per resource of the grant that has an address. The path starts
 * at the requester's address when the server saw one, else at the source zone's CIDRs; a grant
 * with neither has no path (there is nothing to open it from).
 */
export function pathsForGrant(config: FirebreakConfig, grant: GrantForPath, resources: readonly string[]) {
  const paths: PathState[] = [];
  const sourceCidrs = grant.sourceZone ? (config.zones[grant.sourceZone]?.cidrs ?? []) : [];
  const address = plainClientAddress(grant.clientAddress);
  if (!address && sourceCidrs.length === 0) return paths;
  for (const resourceName of resources) {
    const resource = config.resources?.[resourceName];
    const target = resource?.address ? splitAddress(resource.address) : null;
    if (!resource || !target) continue;
    paths.push({
      grantId: grant.id,
      user: grant.user,
      zone: resource.zone,
      resource: resourceName,
      from: { zone: grant.sourceZone, address, cidrs: address ? [] : [...sourceCidrs] },
      to: { host: target.host, port: target.port, protocol: "tcp" },
      endsAt: grant.endsAt,
    });
  }
  return paths;
}

/** Zones and flows of a configuration, the part of the network state that changes only with it. */
export function standingState(config: FirebreakConfig): Pick<NetworkState, "zones" | "flows"> {
  return {
    zones: Object.entries(config.zones).map(([zoneName, zone]) => ({
      name: zoneName,
      cidrs: zone.cidrs ?? [],
      enforcement: zone.enforcement,
      labels: zone.labels ?? {},
    })),
    flows: (config.flows ?? []).map((flow) => ({ from: flow.from, to: flow.to, ports: flow.ports })),
  };
}

const standingDigests = new WeakMap<object, string>();
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * Assembles a network state and its digest; paths are ordered so the digest does not depend on
 * query order. The zones-and-flows part is hashed once per object (ten thousand flows take a
 * while to serialise), so callers that keep the same standing object pay only for the paths.
 */
export function buildNetworkState(
  standing: Pick<NetworkState, "zones" | "flows">,
  paths: readonly PathState[],
  serverTime: number,
): NetworkState {
  const ordered = [...paths].sort((a, b) =>
    a.grantId === b.grantId ? a.resource.localeCompare(b.resource) : a.grantId < b.grantId ? -1 : 1,
  );
  let standingDigest = standingDigests.get(standing);
  if (standingDigest === undefined) {
    standingDigest = sha256(canonicalJson({ zones: standing.zones, flows: standing.flows }));
    standingDigests.set(standing, standingDigest);
  }
  const digest = sha256(canonicalJson({ version: 1, standing: standingDigest, paths: ordered }));
  return { version: 1, zones: standing.zones, flows: standing.flows, paths: ordered, digest, serverTime };
}

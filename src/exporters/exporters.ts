import { stringify } from "yaml";
import { buildRuleset, replaceCommands } from "../enforcers/nftables/ruleset.js";
import { mergePortRanges, type PortRange, parsePortSpec } from "../segmentation/flow-model.js";
import { parseAddress, parseCidr, rangeToCidrs } from "../segmentation/ip.js";
import type { NetworkState, PathState, ZoneState } from "../segmentation/network-state.js";
import { GRANT_LABEL, MANAGED_LABEL, objectName, ZONE_LABEL } from "./names.js";

/**
 * Renders the network state (standing flows and active grant paths) as policies for other
 * enforcement points. Conventions, documented in NOTES.md:
 * - a zone's members are the pods labelled `firebreak.io/zone: <zone>`, and hosts in its CIDRs;
 * - each zone in `enforce` mode gets one ingress policy allowing its standing flows and traffic
 *   inside the zone; everything else into it is denied;
 * - `monitor` zones get no deny: Calico logs, then allows; Cilium does not default-deny;
 *   plain NetworkPolicy cannot log, so a monitor zone gets no policy (listed in the header);
 * - each grant path is a separate object (labelled `firebreak.io/grant`, annotated with its end),
 *   so it can be deleted on its own when the grant closes.
 * Pure and deterministic: the same state gives byte-identical output (the golden files rely on it).
 */

export const EXPORT_FORMATS = ["k8s", "cilium", "calico", "nftables"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  /** Namespace of the namespaced kinds (NetworkPolicy, CiliumNetworkPolicy). */
  namespace?: string;
  /** For nftables: the table name. */
  table?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: rendered documents are plain JSON trees
export type Document = Record<string, any>;

export interface ExportResult {
  format: ExportFormat;
  documents: Document[];
  /** What could not be expressed in this format, and why. */
  notes: string[];
  /** The rendered text: multi-document YAML, or JSON for nftables. */
  text: string;
}

interface ZoneRules {
  zone: ZoneState;
  flowsIn: { from: ZoneState; ports: PortRange[] }[];
}

function zonesWithFlows(state: Pick<NetworkState, "zones" | "flows">): ZoneRules[] {
  const byName = new Map(state.zones.map((zone) => [zone.name, zone]));
  return state.zones.map((zone) => {
    const incoming = new Map<string, PortRange[]>();
    for (const flow of state.flows) {
      if (flow.to !== zone.name || flow.from === zone.name || !byName.has(flow.from)) continue;
      const ports = incoming.get(flow.from) ?? incoming.set(flow.from, []).get(flow.from) ?? [];
      for (const spec of flow.ports) {
        const range = parsePortSpec(spec);
        if (range) ports.push(range);
      }
    }
    return {
      zone,
      flowsIn: [...incoming.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([from, ports]) => ({ from: byName.get(from) as ZoneState, ports: mergePortRanges(ports) })),
    };
  });
}

/** Source networks of a grant path as CIDRs: the requester's address, or the source zone's CIDRs. */
function pathSources(path: PathState): string[] {
  if (path.from.address) {
    const address = parseAddress(path.from.address);
    return address ? [`${path.from.address}/${address.family === 4 ? 32 : 128}`] : [];
  }
  return path.from.cidrs.flatMap((cidr) => {
    const range = parseCidr(cidr);
    return range ? rangeToCidrs(range) : [];
  });
}

function zoneCidrs(zone: ZoneState): string[] {
  return zone.cidrs.flatMap((cidr) => {
    const range = parseCidr(cidr);
    return range ? rangeToCidrs(range) : [];
  });
}

function grantMetadata(path: PathState) {
  return {
    labels: { [MANAGED_LABEL]: "firebreak", [GRANT_LABEL]: path.grantId, [ZONE_LABEL]: path.zone },
    annotations: {
      "firebreak.io/user": path.user,
      "firebreak.io/resource": path.resource,
      "firebreak.io/expires-at": new Date(path.endsAt).toISOString(),
    },
  };
}

const protocolName = (range: PortRange) => (range.protocol === "tcp" ? "TCP" : "UDP");

function kubernetes(state: NetworkState, options: ExportOptions): { documents: Document[]; notes: string[] } {
  const namespace = options.namespace ?? "default";
  const documents: Document[] = [];
  const notes: string[] = [];
  const ports = (ranges: readonly PortRange[]) =>
    ranges.map((r) => ({
      protocol: protocolName(r),
      port: r.low,
      ...(r.high !== r.low ? { endPort: r.high } : {}),
    }));
  for (const { zone, flowsIn } of zonesWithFlows(state)) {
    if (zone.enforcement === "monitor") {
      notes.push(`zone ${zone.name} is in monitor mode; NetworkPolicy cannot log, so it gets no policy`);
      continue;
    }
    const ingress: Document[] = [{ from: [{ podSelector: { matchLabels: { [ZONE_LABEL]: zone.name } } }] }];
    for (const flow of flowsIn) {
      ingress.push({
        from: [
          { podSelector: { matchLabels: { [ZONE_LABEL]: flow.from.name } } },
          ...zoneCidrs(flow.from).map((cidr) => ({ ipBlock: { cidr } })),
        ],
        ports: ports(flow.ports),
      });
    }
    documents.push({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name: objectName("firebreak", "zone", zone.name),
        namespace,
        labels: { [MANAGED_LABEL]: "firebreak", [ZONE_LABEL]: zone.name },
      },
      spec: { podSelector: { matchLabels: { [ZONE_LABEL]: zone.name } }, policyTypes: ["Ingress"], ingress },
    });
  }
  for (const path of state.paths) {
    documents.push({
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name: objectName("firebreak", path.grantId, path.resource),
        namespace,
        ...grantMetadata(path),
      },
      spec: {
        podSelector: { matchLabels: { [ZONE_LABEL]: path.zone } },
        policyTypes: ["Ingress"],
        ingress: [
          {
            from: pathSources(path).map((cidr) => ({ ipBlock: { cidr } })),
            ports: [{ protocol: path.to.protocol === "tcp" ? "TCP" : "UDP", port: path.to.port }],
          },
        ],
      },
    });
  }
  return { documents, notes };
}

function cilium(state: NetworkState, options: ExportOptions): { documents: Document[]; notes: string[] } {
  const namespace = options.namespace ?? "default";
  const documents: Document[] = [];
  const toPorts = (ranges: readonly PortRange[]) => [
    {
      ports: ranges.map((r) => ({
        port: String(r.low),
        protocol: protocolName(r),
        ...(r.high !== r.low ? { endPort: r.high } : {}),
      })),
    },
  ];
  for (const { zone, flowsIn } of zonesWithFlows(state)) {
    const ingress: Document[] = [{ fromEndpoints: [{ matchLabels: { [ZONE_LABEL]: zone.name } }] }];
    for (const flow of flowsIn) {
      ingress.push({
        fromEndpoints: [{ matchLabels: { [ZONE_LABEL]: flow.from.name } }],
        toPorts: toPorts(flow.ports),
      });
      const cidrs = zoneCidrs(flow.from);
      if (cidrs.length) ingress.push({ fromCIDR: cidrs, toPorts: toPorts(flow.ports) });
    }
    documents.push({
      apiVersion: "cilium.io/v2",
      kind: "CiliumNetworkPolicy",
      metadata: {
        name: objectName("firebreak", "zone", zone.name),
        namespace,
        labels: { [MANAGED_LABEL]: "firebreak", [ZONE_LABEL]: zone.name },
      },
      spec: {
        description: `Firebreak zone ${zone.name} (${zone.enforcement})`,
        endpointSelector: { matchLabels: { [ZONE_LABEL]: zone.name } },
        // Monitor: the rules document what is allowed without denying the rest.
        ...(zone.enforcement === "monitor" ? { enableDefaultDeny: { ingress: false, egress: false } } : {}),
        ingress,
      },
    });
  }
  for (const path of state.paths) {
    documents.push({
      apiVersion: "cilium.io/v2",
      kind: "CiliumNetworkPolicy",
      metadata: {
        name: objectName("firebreak", path.grantId, path.resource),
        namespace,
        ...grantMetadata(path),
      },
      spec: {
        description: `Firebreak grant ${path.grantId} for ${path.user} to ${path.resource}`,
        endpointSelector: { matchLabels: { [ZONE_LABEL]: path.zone } },
        ingress: [
          {
            fromCIDR: pathSources(path),
            toPorts: [
              {
                ports: [{ port: String(path.to.port), protocol: path.to.protocol === "tcp" ? "TCP" : "UDP" }],
              },
            ],
          },
        ],
      },
    });
  }
  return { documents, notes: [] };
}

/** Calico selector for a zone; zone names are validated names, so quoting them cannot break out. */
const zoneSelector = (zone: string) => `${ZONE_LABEL} == '${zone}'`;

function calico(state: NetworkState): { documents: Document[]; notes: string[] } {
  const documents: Document[] = [];
  const calicoPorts = (ranges: readonly PortRange[]) =>
    ranges.map((r) => (r.low === r.high ? r.low : `${r.low}:${r.high}`));
  for (const { zone, flowsIn } of zonesWithFlows(state)) {
    const ingress: Document[] = [{ action: "Allow", source: { selector: zoneSelector(zone.name) } }];
    for (const flow of flowsIn) {
      for (const protocol of ["tcp", "udp"] as const) {
        const ranges = flow.ports.filter((r) => r.protocol === protocol);
        if (ranges.length === 0) continue;
        const destination = { ports: calicoPorts(ranges) };
        const name = protocol === "tcp" ? "TCP" : "UDP";
        ingress.push({
          action: "Allow",
          protocol: name,
          source: { selector: zoneSelector(flow.from.name) },
          destination,
        });
        const cidrs = zoneCidrs(flow.from);
        if (cidrs.length)
          ingress.push({ action: "Allow", protocol: name, source: { nets: cidrs }, destination });
      }
    }
    if (zone.enforcement === "monitor") ingress.push({ action: "Log" }, { action: "Allow" });
    else ingress.push({ action: "Deny" });
    documents.push({
      apiVersion: "projectcalico.org/v3",
      kind: "GlobalNetworkPolicy",
      metadata: {
        name: objectName("firebreak", "zone", zone.name),
        labels: { [MANAGED_LABEL]: "firebreak", [ZONE_LABEL]: zone.name },
      },
      spec: { order: 1000, selector: zoneSelector(zone.name), types: ["Ingress"], ingress },
    });
  }
  for (const path of state.paths) {
    documents.push({
      apiVersion: "projectcalico.org/v3",
      kind: "GlobalNetworkPolicy",
      metadata: { name: objectName("firebreak", path.grantId, path.resource), ...grantMetadata(path) },
      spec: {
        // Evaluated before the zone policies, whose final Deny would otherwise win.
        order: 100,
        selector: zoneSelector(path.zone),
        types: ["Ingress"],
        ingress: [
          {
            action: "Allow",
            protocol: path.to.protocol === "tcp" ? "TCP" : "UDP",
            source: { nets: pathSources(path) },
            destination: {
              ...(parseAddress(path.to.host)
                ? { nets: [`${path.to.host}/${parseAddress(path.to.host)?.family === 4 ? 32 : 128}`] }
                : {}),
              ports: [path.to.port],
            },
          },
        ],
      },
    });
  }
  return { documents, notes: [] };
}

/** Renders `state` in `format`. `now` (server time) is only used for nftables element timeouts. */
export function exportPolicies(
  state: NetworkState,
  format: ExportFormat,
  options: ExportOptions & { now: number },
): ExportResult {
  if (format === "nftables") {
    const ruleset = buildRuleset(state, { table: options.table, now: options.now });
    const notes = ruleset.skipped.map((s) => `${s.subject}: ${s.reason}`);
    const document = { nftables: replaceCommands(ruleset) };
    return { format, documents: [document], notes, text: `${JSON.stringify(document, null, 2)}\n` };
  }
  const { documents, notes } =
    format === "k8s"
      ? kubernetes(state, options)
      : format === "cilium"
        ? cilium(state, options)
        : calico(state);
  const header = [
    `# Generated by Firebreak from desired state ${state.digest.slice(0, 12)}: standing flows and active grants.`,
    `# Zone members are selected by the label ${ZONE_LABEL}; grant policies carry ${GRANT_LABEL}.`,
    ...notes.map((note) => `# note: ${note}`),
  ].join("\n");
  const body = documents.map((doc) => stringify(doc, { lineWidth: 0, sortMapEntries: false })).join("---\n");
  return { format, documents, notes, text: `${header}\n${documents.length ? `---\n${body}` : ""}` };
}

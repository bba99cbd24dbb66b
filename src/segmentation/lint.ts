import type { FirebreakConfig } from "../config/schema.js";
import { parsePortSpec, zoneAddressOwnership } from "./flow-model.js";
import { parseAddress } from "./ip.js";
import { splitAddress } from "./network-state.js";
import { analyseZone, buildReachabilityGraph, type Hop } from "./reachability.js";

/**
 * `firebreak lint`: findings about a configuration that is valid but risky. Pure; the same checks
 * run offline (`--config FILE`, for CI) and against a running server (`GET /v1/lint`).
 *
 * Label convention (documented in NOTES.md): a zone labelled `exposure: public` faces the outside
 * world; a zone labelled `tier: data` holds data. A public zone must not reach a data zone through
 * a standing flow of its own (high); a path through other zones is reported as medium.
 */

export type Severity = "high" | "medium" | "low";
export const SEVERITIES: readonly Severity[] = ["high", "medium", "low"];

export type FindingCode =
  | "STANDING_ADMIN_BINDING"
  | "PUBLIC_REACHES_DATA"
  | "POLICY_WITHOUT_APPROVALS"
  | "POLICY_WITHOUT_FACTORS"
  | "EMPTY_ELIGIBLE_GROUP"
  | "EMPTY_APPROVER_GROUP"
  | "ZONE_CIDR_INVALID"
  | "ZONE_CIDR_SHADOWED"
  | "FLOW_NOT_ENFORCEABLE"
  | "FLOW_WIDE_PORT_RANGE"
  | "RESOURCE_OUTSIDE_ZONE"
  | "DATA_ZONE_MONITOR_ONLY";

export interface Finding {
  readonly code: FindingCode;
  readonly severity: Severity;
  /** Where in the configuration, such as `standing[0]` or `breakGlass[1]`. */
  readonly path: string;
  readonly message: string;
  /** The lateral-movement path, for PUBLIC_REACHES_DATA. */
  readonly hops?: Hop[];
}

/**
 * Words that make a name administrative when they stand as a whole part of it, the parts split at
 * `-`, `_`, `.` and spaces: `payments_owner`, `rds_superuser`, `db-admin`, `root`. Matching parts
 * rather than substrings is what keeps `pg_read_all_data` (a read-only PostgreSQL role) or
 * `viewer` from counting.
 */
const ADMIN_WORDS = new Set(["admin", "administrator", "owner", "root", "superuser", "su", "dba", "sudo"]);
/** MariaDB privilege keywords (before ` ON `) that give administrative power on their target. */
const ADMIN_PRIVILEGES = new Set(["ALL", "ALL PRIVILEGES", "SUPER", "GRANT OPTION", "CREATE USER"]);
const PUBLIC_LABEL = { key: "exposure", value: "public" };
const DATA_LABEL = { key: "tier", value: "data" };
const WIDE_PORT_RANGE = 1024;

const hasAdminWord = (name: string) =>
  name
    .toLowerCase()
    .split(/[-_. ]+/)
    .some((part) => ADMIN_WORDS.has(part));

/** The privilege keywords of a MariaDB `privileges` entry such as `SELECT, INSERT ON shop.*`. */
function privilegeKeywords(entry: string): string[] {
  const list = entry.split(/\s+ON\s+/i)[0] ?? "";
  return list.split(",").map((keyword) => keyword.trim().replace(/\s+/g, " ").toUpperCase());
}

/** Why a role counts as administrative: its own name, or what it maps to on a resource. */
type AdminEvidence = { by: "name" } | { by: "mapping"; resource: string; setting: string; value: string };

function adminEvidence(
  config: FirebreakConfig,
  role: string,
  zone: string | null,
  resource: string | null,
): AdminEvidence | null {
  if (hasAdminWord(role)) return { by: "name" };
  for (const [name, settings] of Object.entries(config.resources ?? {})) {
    if (resource !== null ? name !== resource : settings.zone !== zone) continue;
    // Each connector's roles have their own keys; any of these that a role has is evidence.
    const definition: { grants?: string[]; principals?: string[]; privileges?: string[] } | undefined =
      settings.roles[role];
    if (!definition) continue;
    for (const setting of ["grants", "principals"] as const) {
      const value = (definition[setting] ?? []).find(hasAdminWord);
      if (value !== undefined) return { by: "mapping", resource: name, setting, value };
    }
    const privilege = (definition.privileges ?? []).find((entry) =>
      privilegeKeywords(entry).some((keyword) => ADMIN_PRIVILEGES.has(keyword)),
    );
    if (privilege !== undefined)
      return { by: "mapping", resource: name, setting: "privileges", value: privilege };
  }
  return null;
}

const labelled = (labels: Record<string, string> | undefined, label: { key: string; value: string }) =>
  labels?.[label.key] === label.value;

/** Every finding, most severe first, then in configuration order. */
export function lintConfig(config: FirebreakConfig): Finding[] {
  const findings: Finding[] = [];
  const add = (finding: Finding) => findings.push(finding);

  for (const [index, binding] of (config.standing ?? []).entries()) {
    const evidence = adminEvidence(config, binding.role, binding.zone ?? null, binding.resource ?? null);
    if (evidence === null) continue;
    const who = binding.group ? `group '${binding.group}'` : `user '${binding.user}'`;
    const where = binding.zone ? `zone '${binding.zone}'` : `resource '${binding.resource}'`;
    const held =
      evidence.by === "name"
        ? `${who} holds administrative role '${binding.role}' on ${where} permanently`
        : `${who} holds role '${binding.role}' on ${where} permanently, and on resource '${evidence.resource}' that role's ${evidence.setting} include '${evidence.value}', which is administrative`;
    add({
      code: "STANDING_ADMIN_BINDING",
      severity: "high",
      path: `standing[${index}]`,
      message: `${held}; give a read-only standing role and a break-glass policy for '${binding.role}'`,
    });
  }

  const graph = buildReachabilityGraph(config);
  for (const [name, zone] of Object.entries(config.zones)) {
    if (!labelled(zone.labels, PUBLIC_LABEL)) continue;
    const reach = analyseZone(graph, name);
    for (const reached of [...(reach?.direct ?? []), ...(reach?.transitive ?? [])]) {
      if (!labelled(config.zones[reached.zone]?.labels, DATA_LABEL)) continue;
      const route = [name, ...reached.path.map((hop) => hop.to)].join(" -> ");
      const direct = reached.path.length === 1;
      // A path through another zone is how every application tier reaches its database; it takes
      // a second compromise, so it is a lateral-movement path to know about, not a failing build.
      add({
        code: "PUBLIC_REACHES_DATA",
        severity: direct ? "high" : "medium",
        path: `zones.${name}`,
        message: direct
          ? `public-facing zone '${name}' reaches data zone '${reached.zone}' directly: ${route}`
          : `public-facing zone '${name}' reaches data zone '${reached.zone}' in ${reached.path.length} hops, through ${reached.path
              .slice(0, -1)
              .map((hop) => `'${hop.to}'`)
              .join(", ")}: ${route}`,
        hops: reached.path,
      });
    }
  }

  const members = new Set<string>();
  for (const user of Object.values(config.directory?.users ?? {}))
    for (const group of user.groups) members.add(group);
  for (const [index, policy] of (config.breakGlass ?? []).entries()) {
    const path = `breakGlass[${index}]`;
    if ((policy.approvals ?? []).length === 0) {
      add(
        policy.autoApprove
          ? {
              code: "POLICY_WITHOUT_APPROVALS",
              severity: "medium",
              path,
              message: `policy '${policy.name}' has no approval steps; it is approved only when its autoApprove condition holds`,
            }
          : {
              code: "POLICY_WITHOUT_APPROVALS",
              severity: "high",
              path,
              message: `policy '${policy.name}' has no approval steps: any eligible principal elevates to ${policy.roles.join(", ")} in '${policy.zone}' without a second person`,
            },
      );
    }
    if ((policy.factors ?? []).length === 0) {
      add({
        code: "POLICY_WITHOUT_FACTORS",
        severity: "medium",
        path,
        message: `policy '${policy.name}' asks for no authentication factor at activation; a stolen token is enough to use it`,
      });
    }
    for (const [refIndex, ref] of policy.eligible.entries()) {
      if (!ref.startsWith("group:") || members.has(ref.slice(6))) continue;
      add({
        code: "EMPTY_ELIGIBLE_GROUP",
        severity: "medium",
        path: `${path}.eligible[${refIndex}]`,
        message: `policy '${policy.name}' makes group '${ref.slice(6)}' eligible, and no directory user is in it (fine only if your identity provider supplies members)`,
      });
    }
    for (const [stepIndex, step] of (policy.approvals ?? []).entries()) {
      const refs = Array.isArray(step.from) ? step.from : [step.from];
      const groups = refs.filter((ref) => ref.startsWith("group:"));
      if (
        groups.length === 0 ||
        groups.length !== refs.length ||
        groups.some((ref) => members.has(ref.slice(6)))
      )
        continue;
      add({
        code: "EMPTY_APPROVER_GROUP",
        severity: "medium",
        path: `${path}.approvals[${stepIndex}]`,
        message: `policy '${policy.name}': no directory user can approve step ${stepIndex + 1} (${groups.map((g) => g.slice(6)).join(", ")} have no members)`,
      });
    }
  }

  const zones = Object.entries(config.zones).map(([name, zone]) => ({ name, cidrs: zone.cidrs ?? [] }));
  const owners = zoneAddressOwnership(zones);
  for (const owner of owners.values()) {
    for (const cidr of owner.invalid) {
      add({
        code: "ZONE_CIDR_INVALID",
        severity: "high",
        path: `zones.${owner.zone}.cidrs`,
        message: `'${cidr}' is not a valid CIDR; no rule is made from it`,
      });
    }
    for (const { cidr, by } of owner.shadowed) {
      add({
        code: "ZONE_CIDR_SHADOWED",
        severity: "medium",
        path: `zones.${owner.zone}.cidrs`,
        message: `${cidr} lies inside zone '${by}', which is listed first and owns those addresses; traffic from them counts as '${by}'`,
      });
    }
  }

  for (const [index, flow] of (config.flows ?? []).entries()) {
    const missing = [flow.from, flow.to].filter((zone) => (owners.get(zone)?.ranges.length ?? 0) === 0);
    if (missing.length > 0) {
      add({
        code: "FLOW_NOT_ENFORCEABLE",
        severity: "low",
        path: `flows[${index}]`,
        message: `flow ${flow.from} -> ${flow.to} cannot be enforced by address: ${[...new Set(missing)].map((z) => `'${z}'`).join(" and ")} ${missing.length > 1 ? "have" : "has"} no CIDRs`,
      });
    }
    for (const spec of flow.ports) {
      const range = parsePortSpec(spec);
      if (range && range.high - range.low + 1 >= WIDE_PORT_RANGE) {
        add({
          code: "FLOW_WIDE_PORT_RANGE",
          severity: "low",
          path: `flows[${index}]`,
          message: `flow ${flow.from} -> ${flow.to} opens ${range.high - range.low + 1} ports (${spec}); name the ports the service uses`,
        });
      }
    }
  }

  for (const [name, resource] of Object.entries(config.resources ?? {})) {
    const target = resource.address ? splitAddress(resource.address) : null;
    const address = target ? parseAddress(target.host) : null;
    const ranges = owners.get(resource.zone)?.ranges ?? [];
    if (!address || ranges.length === 0) continue;
    if (ranges.some((r) => r.family === address.family && r.start <= address.value && address.value <= r.end))
      continue;
    add({
      code: "RESOURCE_OUTSIDE_ZONE",
      severity: "medium",
      path: `resources.${name}.address`,
      message: `resource '${name}' is in zone '${resource.zone}', but its address ${target?.host} is not in that zone's CIDRs`,
    });
  }

  for (const [name, zone] of Object.entries(config.zones)) {
    if (labelled(zone.labels, DATA_LABEL) && zone.enforcement === "monitor") {
      add({
        code: "DATA_ZONE_MONITOR_ONLY",
        severity: "low",
        path: `zones.${name}.enforcement`,
        message: `data zone '${name}' is in monitor mode: traffic that is not allowed is logged, not dropped`,
      });
    }
  }

  const rank = (severity: Severity) => SEVERITIES.indexOf(severity);
  return findings
    .map((finding, order) => ({ finding, order }))
    .sort((a, b) => rank(a.finding.severity) - rank(b.finding.severity) || a.order - b.order)
    .map(({ finding }) => finding);
}

/** True when any finding is at least as severe as `threshold` (what makes `firebreak lint` exit 1). */
export function failsAt(findings: readonly Pick<Finding, "severity">[], threshold: Severity): boolean {
  return findings.some((f) => SEVERITIES.indexOf(f.severity) <= SEVERITIES.indexOf(threshold));
}

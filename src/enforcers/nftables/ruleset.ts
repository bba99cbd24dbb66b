import { createHash } from "node:crypto";
import {
  formatPortRange,
  mergePortRanges,
  type PortRange,
  parsePortSpec,
  zoneAddressOwnership,
} from "../../segmentation/flow-model.js";
import {
  type AddressRange,
  type Family,
  formatAddress,
  formatRange,
  mergeRanges,
  parseAddress,
  parseCidr,
  prefixLength,
} from "../../segmentation/ip.js";
import type { NetworkState, PathState } from "../../segmentation/network-state.js";
import { TABLE_PATTERN } from "./nftables.settings.js";

/**
 * Turns a network state into one nftables table, as libnftables JSON (`nft -j -f`). The table is
 * Firebreak's alone; see NOTES.md for its layout and why it is built this way. Pure: no I/O, no
 * clock (the server time `now` is an input), hostnames already resolved by the caller.
 */

export { TABLE_PATTERN };
export const DEFAULT_TABLE = "firebreak";
/** nftables element comments are at most 128 bytes. */
const MAX_COMMENT = 120;
export const MONITOR_LOG_PREFIX = "firebreak monitor: ";

// biome-ignore lint/suspicious/noExplicitAny: libnftables JSON is a loose, recursive document
export type NftCommand = Record<string, any>;

type AddressExpression = string | { prefix: { addr: string; len: number } } | { range: [string, string] };
type PortExpression = number | { range: [number, number] };

export interface GrantElement {
  readonly set: "grants4" | "grants6";
  /** The element's value as nftables prints it, which is also its identity in reports. */
  readonly key: string;
  readonly value: unknown;
  readonly timeoutSeconds: number;
  /** When the element ends, in server time: the longest of the grants it carries. */
  readonly endsAt: number;
  readonly grants: readonly string[];
  readonly comment: string;
}

export interface Ruleset {
  readonly table: string;
  /** Everything but the grant elements: tables, sets, chains, rules, zone and flow elements. */
  readonly standing: readonly NftCommand[];
  /** The digest of `standing`: when it is unchanged only the grant sets need rewriting. */
  readonly standingDigest: string;
  readonly grantElements: readonly GrantElement[];
  /** The grant ids that have at least one element (their path is open). */
  readonly openGrants: readonly string[];
  /** What could not become a rule, and why. */
  readonly skipped: readonly { subject: string; reason: string }[];
  readonly counts: { zones: number; flowElements: number; intraElements: number; grantElements: number };
}

function addressExpression(range: AddressRange): AddressExpression {
  if (range.start === range.end) return formatAddress(range.family, range.start);
  const length = prefixLength(range);
  if (length !== null) return { prefix: { addr: formatAddress(range.family, range.start), len: length } };
  return { range: [formatAddress(range.family, range.start), formatAddress(range.family, range.end)] };
}

function portExpression(range: PortRange): PortExpression {
  return range.low === range.high ? range.low : { range: [range.low, range.high] };
}

function comment(text: string): string {
  return text.length <= MAX_COMMENT ? text : `${text.slice(0, MAX_COMMENT - 3)}...`;
}

const saddr = (family: Family) => ({ payload: { protocol: family === 4 ? "ip" : "ip6", field: "saddr" } });
const daddr = (family: Family) => ({ payload: { protocol: family === 4 ? "ip" : "ip6", field: "daddr" } });
const l4proto = { meta: { key: "l4proto" } };
const port = (field: "sport" | "dport") => ({ payload: { protocol: "th", field } });
const match = (left: unknown, right: unknown, op = "==") => ({ match: { op, left, right } });
const ctState = (...states: string[]) =>
  match({ ct: { key: "state" } }, states.length === 1 ? states[0] : states, "in");
const ctDirection = (direction: "original" | "reply") => match({ ct: { key: "direction" } }, direction);
const ctOriginalDaddr = (family: Family) => ({
  ct: { key: family === 4 ? "ip daddr" : "ip6 daddr", dir: "original" },
});

/** The part of a ruleset that depends only on zones and flows (everything but grant elements). */
export interface StandingRuleset {
  readonly table: string;
  readonly commands: readonly NftCommand[];
  readonly digest: string;
  readonly skipped: readonly { subject: string; reason: string }[];
  readonly counts: { zones: number; flowElements: number; intraElements: number };
}

/** Builds the table for `state` at server time `now`. `resolved` maps DNS names to addresses. */
export function buildRuleset(
  state: Pick<NetworkState, "zones" | "flows" | "paths">,
  options: {
    table?: string;
    now: number;
    resolved?: ReadonlyMap<string, readonly string[]>;
    /** Drop every grant path (the agent lost the server for longer than its grace). */
    withoutGrants?: boolean;
    /** The standing part, when the caller already built it for these zones and flows. */
    standing?: StandingRuleset;
  },
): Ruleset {
  const standing = options.standing ?? buildStandingRuleset(state, options.table);
  const skipped = [...standing.skipped];
  const grantElements = options.withoutGrants
    ? []
    : buildGrantElements(state.paths, options.now, options.resolved ?? new Map(), skipped);
  return {
    table: standing.table,
    standing: standing.commands,
    standingDigest: standing.digest,
    grantElements,
    openGrants: [...new Set(grantElements.flatMap((e) => e.grants))].sort(),
    skipped,
    counts: { ...standing.counts, grantElements: grantElements.length },
  };
}

/** Tables, sets, chains, rules, zone and flow elements: what changes only with the configuration. */
export function buildStandingRuleset(
  state: Pick<NetworkState, "zones" | "flows">,
  tableName?: string,
): StandingRuleset {
  const table = tableName ?? DEFAULT_TABLE;
  if (!TABLE_PATTERN.test(table)) throw new Error(`invalid nftables table name '${table}'`);
  const skipped: { subject: string; reason: string }[] = [];
  const owners = zoneAddressOwnership(state.zones);
  for (const owner of owners.values()) {
    for (const cidr of owner.invalid)
      skipped.push({ subject: `zone ${owner.zone}`, reason: `invalid CIDR '${cidr}'` });
  }

  const base = { family: "inet", table };
  const set = (name: string, type: string | string[], flags: string[]): NftCommand => ({
    add: { set: { ...base, name, type, flags } },
  });
  const elements = (name: string, elem: unknown[]): NftCommand => ({
    add: { element: { ...base, name, elem } },
  });
  const rule = (chain: string, expr: unknown[]): NftCommand => ({ add: { rule: { ...base, chain, expr } } });

  const commands: NftCommand[] = [
    // Creating before deleting makes the delete succeed on a host without the table; the whole
    // batch is one kernel transaction, so the old table is replaced atomically.
    { add: { table: { family: "inet", name: table } } },
    { delete: { table: { family: "inet", name: table } } },
    { add: { table: { family: "inet", name: table } } },
  ];
  const tuple = ["inet_proto", "inet_service"];
  for (const family of [4, 6] as const) {
    const addr = family === 4 ? "ipv4_addr" : "ipv6_addr";
    commands.push(
      set(`enforce${family}`, addr, ["interval"]),
      set(`monitor${family}`, addr, ["interval"]),
      set(`intra${family}`, [addr, addr], ["interval"]),
      set(`flows${family}`, [addr, addr, ...tuple], ["interval"]),
      set(`grants${family}`, [addr, addr, ...tuple], ["interval", "timeout"]),
    );
  }

  // Destination zones by mode, and traffic inside each zone.
  let intraCount = 0;
  for (const family of [4, 6] as const) {
    const byMode: Record<"enforce" | "monitor", unknown[]> = { enforce: [], monitor: [] };
    const intra: unknown[] = [];
    for (const zone of state.zones) {
      const ranges = (owners.get(zone.name)?.ranges ?? []).filter((r) => r.family === family);
      for (const range of ranges)
        byMode[zone.enforcement].push({
          elem: { val: addressExpression(range), comment: comment(zone.name) },
        });
      for (const a of ranges)
        for (const b of ranges)
          intra.push({
            elem: {
              val: { concat: [addressExpression(a), addressExpression(b)] },
              comment: comment(zone.name),
            },
          });
    }
    if (byMode.enforce.length) commands.push(elements(`enforce${family}`, byMode.enforce));
    if (byMode.monitor.length) commands.push(elements(`monitor${family}`, byMode.monitor));
    if (intra.length) commands.push(elements(`intra${family}`, intra));
    intraCount += intra.length;
  }

  // Standing flows: zone pairs with their ports joined, so no two elements overlap.
  const pairs = new Map<string, { from: string; to: string; ports: PortRange[] }>();
  for (const flow of state.flows) {
    if (flow.from === flow.to) continue;
    const key = `${flow.from}>${flow.to}`;
    const entry = pairs.get(key) ?? pairs.set(key, { from: flow.from, to: flow.to, ports: [] }).get(key);
    for (const spec of flow.ports) {
      const range = parsePortSpec(spec);
      if (range) entry?.ports.push(range);
      else skipped.push({ subject: `flow ${key}`, reason: `invalid port '${spec}'` });
    }
  }
  const flowElements: Record<Family, unknown[]> = { 4: [], 6: [] };
  for (const pair of pairs.values()) {
    const sources = owners.get(pair.from)?.ranges ?? [];
    const targets = owners.get(pair.to)?.ranges ?? [];
    if (sources.length === 0 || targets.length === 0) {
      skipped.push({
        subject: `flow ${pair.from}>${pair.to}`,
        reason: "a zone of the flow has no addresses",
      });
      continue;
    }
    const ports = mergePortRanges(pair.ports);
    const note = comment(`flow ${pair.from}>${pair.to}`);
    for (const source of sources)
      for (const target of targets) {
        if (source.family !== target.family) continue;
        for (const range of ports)
          flowElements[source.family].push({
            elem: {
              val: {
                concat: [
                  addressExpression(source),
                  addressExpression(target),
                  range.protocol,
                  portExpression(range),
                ],
              },
              comment: note,
            },
          });
      }
  }
  for (const family of [4, 6] as const)
    if (flowElements[family].length) commands.push(elements(`flows${family}`, flowElements[family]));

  // Chains: one regular chain holds the decision, jumped to from the forward and input hooks.
  commands.push(
    { add: { chain: { ...base, name: "gate" } } },
    {
      add: {
        chain: { ...base, name: "forward", type: "filter", hook: "forward", prio: 0, policy: "accept" },
      },
    },
    { add: { chain: { ...base, name: "input", type: "filter", hook: "input", prio: 0, policy: "accept" } } },
  );
  for (const family of [4, 6] as const) {
    commands.push(
      rule("gate", [match({ concat: [saddr(family), daddr(family)] }, `@intra${family}`), { accept: null }]),
    );
  }
  for (const kind of ["flows", "grants"] as const) {
    for (const family of [4, 6] as const) {
      // A connection is matched on its original tuple in both directions, so removing an element
      // also stops the packets of connections it let in (they fall through to the reject below).
      commands.push(
        rule("gate", [
          ctDirection("original"),
          match({ concat: [saddr(family), daddr(family), l4proto, port("dport")] }, `@${kind}${family}`),
          { accept: null },
        ]),
        rule("gate", [
          ctDirection("reply"),
          match({ concat: [daddr(family), saddr(family), l4proto, port("sport")] }, `@${kind}${family}`),
          { accept: null },
        ]),
      );
    }
  }
  commands.push(
    rule("gate", [ctState("related"), match(l4proto, { set: ["icmp", "ipv6-icmp"] }), { accept: null }]),
    rule("gate", [
      match(l4proto, "ipv6-icmp"),
      match(
        { payload: { protocol: "icmpv6", field: "type" } },
        { set: ["nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert"] },
      ),
      { accept: null },
    ]),
  );
  for (const family of [4, 6] as const) {
    const monitored = match(ctOriginalDaddr(family), `@monitor${family}`);
    const enforced = match(ctOriginalDaddr(family), `@enforce${family}`);
    commands.push(
      // Monitor mode: log what enforce mode would drop (new connections), and let it pass.
      rule("gate", [monitored, ctState("new"), { log: { prefix: MONITOR_LOG_PREFIX } }, { accept: null }]),
      rule("gate", [monitored, { accept: null }]),
      // Enforce mode: cut what is no longer allowed with a reset, so both ends learn at once.
      rule("gate", [
        enforced,
        ctState("established"),
        match(l4proto, "tcp"),
        { counter: null },
        { reject: { type: "tcp reset" } },
      ]),
      rule("gate", [enforced, { counter: null }, { drop: null }]),
    );
  }
  commands.push(
    rule("forward", [{ jump: { target: "gate" } }]),
    rule("input", [match({ meta: { key: "iifname" } }, "lo"), { accept: null }]),
    rule("input", [{ jump: { target: "gate" } }]),
  );

  const digest = createHash("sha256").update(JSON.stringify(commands)).digest("hex");
  return {
    table,
    commands,
    digest,
    skipped,
    counts: {
      zones: state.zones.length,
      flowElements: flowElements[4].length + flowElements[6].length,
      intraElements: intraCount,
    },
  };
}

interface Cover {
  range: AddressRange;
  grantId: string;
  endsAt: number;
}

/**
 * Grant paths as set elements. Paths to the same address and port may come from overlapping
 * sources (two engineers in one bastion zone), and an interval set refuses overlapping elements,
 * so each destination's sources are cut into disjoint pieces, each lasting as long as the longest
 * grant that covers it and naming every grant that does.
 */
function buildGrantElements(
  paths: readonly PathState[],
  now: number,
  resolved: ReadonlyMap<string, readonly string[]>,
  skipped: { subject: string; reason: string }[],
): GrantElement[] {
  const groups = new Map<
    string,
    { family: Family; to: bigint; protocol: "tcp" | "udp"; port: number; covers: Cover[] }
  >();
  for (const path of paths) {
    const subject = `grant ${path.grantId}`;
    if (path.endsAt <= now) continue;
    const sources: AddressRange[] = [];
    if (path.from.address) {
      const single = parseAddress(path.from.address);
      if (single) sources.push({ family: single.family, start: single.value, end: single.value });
      else skipped.push({ subject, reason: `invalid source address '${path.from.address}'` });
    } else {
      for (const cidr of path.from.cidrs) {
        const range = parseCidr(cidr);
        if (range) sources.push(range);
        else skipped.push({ subject, reason: `invalid source CIDR '${cidr}'` });
      }
    }
    const literal = parseAddress(path.to.host);
    const targets = literal ? [path.to.host] : (resolved.get(path.to.host) ?? []);
    if (targets.length === 0)
      skipped.push({ subject, reason: `cannot resolve '${path.to.host}' to an address` });
    for (const target of targets) {
      const address = parseAddress(target);
      if (!address) {
        skipped.push({ subject, reason: `invalid destination address '${target}'` });
        continue;
      }
      const key = `${address.family}|${address.value}|${path.to.protocol}|${path.to.port}`;
      const group =
        groups.get(key) ??
        groups
          .set(key, {
            family: address.family,
            to: address.value,
            protocol: path.to.protocol,
            port: path.to.port,
            covers: [],
          })
          .get(key);
      for (const range of mergeRanges(sources))
        if (range.family === address.family)
          group?.covers.push({ range, grantId: path.grantId, endsAt: path.endsAt });
    }
  }

  const out: GrantElement[] = [];
  for (const group of groups.values()) {
    const points = [...new Set(group.covers.flatMap((c) => [c.range.start, c.range.end + 1n]))].sort(
      (a, b) => (a < b ? -1 : a > b ? 1 : 0),
    );
    let pending: { start: bigint; end: bigint; grants: string[]; endsAt: number } | null = null;
    const flush = () => {
      if (!pending) return;
      const range: AddressRange = { family: group.family, start: pending.start, end: pending.end };
      const to = formatAddress(group.family, group.to);
      const grants = pending.grants;
      out.push({
        set: group.family === 4 ? "grants4" : "grants6",
        key: `${formatRange(range)} . ${to} . ${group.protocol} . ${group.port}`,
        value: { concat: [addressExpression(range), to, group.protocol, group.port] },
        // JSON timeouts are whole seconds (a fraction is silently ignored and the element would
        // never expire), so round up: the agent removes the element on time, the kernel within 1 s.
        timeoutSeconds: Math.max(1, Math.ceil((pending.endsAt - now) / 1000)),
        endsAt: pending.endsAt,
        grants,
        comment: comment(`${grants.length === 1 ? "grant" : "grants"} ${grants.join(" ")}`),
      });
      pending = null;
    };
    for (let index = 0; index < points.length - 1; index++) {
      const start = points[index] as bigint;
      const end = (points[index + 1] as bigint) - 1n;
      const covering = group.covers.filter((c) => c.range.start <= start && end <= c.range.end);
      if (covering.length === 0) {
        flush();
        continue;
      }
      const grants = [...new Set(covering.map((c) => c.grantId))].sort();
      const endsAt = Math.max(...covering.map((c) => c.endsAt));
      const current = pending as { start: bigint; end: bigint; grants: string[]; endsAt: number } | null;
      if (
        current &&
        current.end + 1n === start &&
        current.endsAt === endsAt &&
        current.grants.join() === grants.join()
      ) {
        current.end = end;
      } else {
        flush();
        pending = { start, end, grants, endsAt };
      }
    }
    flush();
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The batch that rewrites only the grant sets, atomically (flush, then add what is open now). */
export function grantSetCommands(ruleset: Ruleset): NftCommand[] {
  const base = { family: "inet", table: ruleset.table };
  const commands: NftCommand[] = [
    { flush: { set: { ...base, name: "grants4" } } },
    { flush: { set: { ...base, name: "grants6" } } },
  ];
  for (const name of ["grants4", "grants6"] as const) {
    const elem = ruleset.grantElements
      .filter((e) => e.set === name)
      .map((e) => ({ elem: { val: e.value, timeout: e.timeoutSeconds, comment: e.comment } }));
    if (elem.length) commands.push({ add: { element: { ...base, name, elem } } });
  }
  return commands;
}

/** The full batch: the whole table replaced, grant elements included. */
export function replaceCommands(ruleset: Ruleset): NftCommand[] {
  return [...ruleset.standing, ...grantSetCommands(ruleset).slice(2)];
}

export { formatPortRange };

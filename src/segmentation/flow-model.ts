import type { PortRange } from "../config/patterns.js";
import {
  type AddressRange,
  formatRange,
  mergeRanges,
  parseCidr,
  rangesOverlap,
  subtractRanges,
} from "./ip.js";

/**
 * The flow model: zones own addresses, flows are standing allowed paths between zones on given
 * protocols and ports, and everything not listed is denied (or, in a `monitor` zone, logged).
 */

export { type PortRange, parsePortSpec } from "../config/patterns.js";

export function formatPortRange(range: PortRange): string {
  return range.low === range.high
    ? `${range.protocol}/${range.low}`
    : `${range.protocol}/${range.low}-${range.high}`;
}

/** Port ranges of one protocol joined where they overlap or touch, sorted. */
export function mergePortRanges(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) =>
    a.protocol === b.protocol ? a.low - b.low || a.high - b.high : a.protocol < b.protocol ? -1 : 1,
  );
  const out: PortRange[] = [];
  for (const range of sorted) {
    const last = out.at(-1);
    if (last && last.protocol === range.protocol && range.low <= last.high + 1) {
      if (range.high > last.high) out[out.length - 1] = { ...last, high: range.high };
    } else out.push(range);
  }
  return out;
}

export interface ZoneAddresses {
  readonly zone: string;
  /** The addresses this zone owns: its CIDRs minus those of zones listed before it. Disjoint across zones. */
  readonly ranges: readonly AddressRange[];
  /** CIDRs entirely owned by an earlier zone, so traffic from them is never recognised as this zone's. */
  readonly shadowed: readonly { cidr: string; by: string }[];
  /** CIDRs that are not valid addresses (never turned into rules). */
  readonly invalid: readonly string[];
}

/**
 * Which zone each address belongs to. As when Firebreak recognises a request's source zone, the
 * first zone in file order wins where CIDRs overlap, so every address has at most one zone and the
 * ranges of different zones never overlap (which the firewall's interval sets require).
 */
export function zoneAddressOwnership(
  zones: readonly { name: string; cidrs: readonly string[] }[],
): Map<string, ZoneAddresses> {
  const owners = new Map<string, ZoneAddresses>();
  // Claimed addresses per family: sorted, disjoint, each with its owner, searched by bisection so
  // a thousand zones cost n log n rather than n squared.
  const claimed: Record<4 | 6, { range: AddressRange; zone: string }[]> = { 4: [], 6: [] };
  const firstEndingAtOrAfter = (list: { range: AddressRange }[], value: bigint) => {
    let low = 0;
    let high = list.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((list[middle] as { range: AddressRange }).range.end < value) low = middle + 1;
      else high = middle;
    }
    return low;
  };
  for (const zone of zones) {
    const invalid: string[] = [];
    const shadowed: { cidr: string; by: string }[] = [];
    const own: AddressRange[] = [];
    for (const cidr of zone.cidrs) {
      const range = parseCidr(cidr);
      if (!range) {
        invalid.push(cidr);
        continue;
      }
      const list = claimed[range.family];
      const overlapping: { range: AddressRange; zone: string }[] = [];
      for (let index = firstEndingAtOrAfter(list, range.start); index < list.length; index++) {
        const entry = list[index] as { range: AddressRange; zone: string };
        if (entry.range.start > range.end) break;
        overlapping.push(entry);
      }
      const left =
        overlapping.length === 0
          ? [range]
          : subtractRanges(
              [range],
              overlapping.map((o) => o.range),
            );
      if (left.length === 0) {
        shadowed.push({
          cidr,
          by: overlapping.find((o) => rangesOverlap(o.range, range))?.zone ?? "another zone",
        });
        continue;
      }
      own.push(...left);
      for (const piece of left) {
        const at = firstEndingAtOrAfter(list, piece.start);
        list.splice(at, 0, { range: piece, zone: zone.name });
      }
    }
    owners.set(zone.name, { zone: zone.name, ranges: mergeRanges(own), shadowed, invalid });
  }
  return owners;
}

/** The zone that owns an address range entirely, or null. */
export function zoneOfRange(owners: ReadonlyMap<string, ZoneAddresses>, range: AddressRange): string | null {
  for (const owner of owners.values()) {
    for (const own of owner.ranges) {
      if (own.family === range.family && own.start <= range.start && range.end <= own.end) return owner.zone;
    }
  }
  return null;
}

export { formatRange };

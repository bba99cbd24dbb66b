import { isIP } from "node:net";

/**
 * IP addresses as numbers, so zone CIDRs can be compared, merged and made disjoint before they
 * become firewall elements. Everything here is strict: text that `node:net` does not accept as an
 * address never becomes a range, so nothing but a validated address reaches a rule.
 */

export type Family = 4 | 6;

/** An inclusive range of addresses of one family. */
export interface AddressRange {
  readonly family: Family;
  readonly start: bigint;
  readonly end: bigint;
}

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

function parseIpv4(text: string): bigint {
  let value = 0n;
  for (const part of text.split(".")) value = (value << 8n) | BigInt(Number(part));
  return value;
}

function parseIpv6(text: string): bigint {
  let head = text;
  let tailIpv4: bigint | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tailIpv4 = parseIpv4(text.slice(lastColon + 1));
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left = "", right] = head.split("::") as [string, string | undefined];
  const leftGroups = left === "" ? [] : left.split(":");
  const rightGroups = right === undefined || right === "" ? [] : right.split(":");
  const missing = 8 - leftGroups.length - rightGroups.length;
  const groups =
    right === undefined ? leftGroups : [...leftGroups, ...Array(missing).fill("0"), ...rightGroups];
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  if (tailIpv4 !== null) value = (value & ~0xffffffffn) | tailIpv4;
  return value;
}

/** An address as a number, or null when `text` is not an IPv4 or IPv6 address (zone ids refused). */
export function parseAddress(text: string): { family: Family; value: bigint } | null {
  const family = isIP(text);
  if (family === 4) return { family: 4, value: parseIpv4(text) };
  if (family === 6 && !text.includes("%")) return { family: 6, value: parseIpv6(text) };
  return null;
}

/** `10.20.0.0/24` as a range; host bits are cleared. Null for anything that is not a CIDR. */
export function parseCidr(text: string): AddressRange | null {
  const slash = text.indexOf("/");
  if (slash < 0) {
    const single = parseAddress(text);
    return single && { family: single.family, start: single.value, end: single.value };
  }
  const address = parseAddress(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (!address || !/^[0-9]{1,3}$/.test(lengthText)) return null;
  const length = Number(lengthText);
  const bits = BITS[address.family];
  if (length > bits) return null;
  const hostBits = BigInt(bits - length);
  const start = (address.value >> hostBits) << hostBits;
  return { family: address.family, start, end: start + (1n << hostBits) - 1n };
}

/** The canonical text of an address: dotted IPv4, RFC 5952 IPv6. */
export function formatAddress(family: Family, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  // The longest run of two or more zero groups becomes "::" (the first such run on a tie).
  let bestStart = -1;
  let bestLength = 0;
  for (let index = 0; index < 8; ) {
    if (groups[index] !== 0) {
      index++;
      continue;
    }
    let end = index;
    while (end < 8 && groups[end] === 0) end++;
    if (end - index > bestLength && end - index >= 2) {
      bestStart = index;
      bestLength = end - index;
    }
    index = end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** The prefix length when the range is exactly one CIDR block, else null. */
export function prefixLength(range: AddressRange): number | null {
  const size = range.end - range.start + 1n;
  if ((size & (size - 1n)) !== 0n) return null;
  const hostBits = size.toString(2).length - 1;
  if (range.start % size !== 0n) return null;
  return BITS[range.family] - hostBits;
}

/** The smallest list of CIDR blocks that covers exactly the range (for Kubernetes `ipBlock`). */
export function rangeToCidrs(range: AddressRange): string[] {
  const out: string[] = [];
  const bits = BITS[range.family];
  let start = range.start;
  while (start <= range.end) {
    let hostBits = 0;
    while (hostBits < bits) {
      const size = 1n << BigInt(hostBits + 1);
      if (start % size !== 0n || start + size - 1n > range.end) break;
      hostBits++;
    }
    out.push(`${formatAddress(range.family, start)}/${bits - hostBits}`);
    start += 1n << BigInt(hostBits);
  }
  return out;
}

/** `10.0.0.0/24`, `10.0.0.5` or `10.0.0.1-10.0.0.9`, for messages and comments. */
export function formatRange(range: AddressRange): string {
  if (range.start === range.end) return formatAddress(range.family, range.start);
  const length = prefixLength(range);
  if (length !== null) return `${formatAddress(range.family, range.start)}/${length}`;
  return `${formatAddress(range.family, range.start)}-${formatAddress(range.family, range.end)}`;
}

function compareRanges(a: AddressRange, b: AddressRange): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.start !== b.start) return a.start < b.start ? -1 : 1;
  if (a.end !== b.end) return a.end < b.end ? -1 : 1;
  return 0;
}

/** Sorted, with overlapping and adjacent ranges of the same family joined. */
export function mergeRanges(ranges: readonly AddressRange[]): AddressRange[] {
  const sorted = [...ranges].sort(compareRanges);
  const out: AddressRange[] = [];
  for (const range of sorted) {
    const last = out.at(-1);
    if (last && last.family === range.family && range.start <= last.end + 1n) {
      if (range.end > last.end) out[out.length - 1] = { ...last, end: range.end };
    } else out.push(range);
  }
  return out;
}

/** The parts of `ranges` not covered by `minus`. Both may be unsorted; the result is merged. */
export function subtractRanges(
  ranges: readonly AddressRange[],
  minus: readonly AddressRange[],
): AddressRange[] {
  const holes = mergeRanges(minus);
  const out: AddressRange[] = [];
  for (const range of mergeRanges(ranges)) {
    let pieces: AddressRange[] = [range];
    for (const hole of holes) {
      if (hole.family !== range.family || hole.end < range.start || hole.start > range.end) continue;
      const next: AddressRange[] = [];
      for (const piece of pieces) {
        if (hole.end < piece.start || hole.start > piece.end) {
          next.push(piece);
          continue;
        }
        if (hole.start > piece.start) next.push({ ...piece, end: hole.start - 1n });
        if (hole.end < piece.end) next.push({ ...piece, start: hole.end + 1n });
      }
      pieces = next;
    }
    out.push(...pieces);
  }
  return mergeRanges(out);
}

export function rangeContains(outer: AddressRange, inner: AddressRange): boolean {
  return outer.family === inner.family && outer.start <= inner.start && inner.end <= outer.end;
}

export function rangesOverlap(a: AddressRange, b: AddressRange): boolean {
  return a.family === b.family && a.start <= b.end && b.start <= a.end;
}

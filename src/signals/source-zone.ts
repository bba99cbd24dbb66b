import { BlockList, isIP } from "node:net";
import type { FirebreakConfig } from "../config/schema.js";

/**
 * Maps a client address to the zone whose CIDRs contain it. Built once per configuration; the
 * first zone in file order wins when CIDRs overlap. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`,
 * as Node reports IPv4 clients on a dual-stack socket) are matched as IPv4.
 */
export function createSourceZoneResolver(config: FirebreakConfig) {
  const zones: { zone: string; list: BlockList }[] = [];
  for (const [zone, settings] of Object.entries(config.zones)) {
    if (!settings.cidrs?.length) continue;
    const list = new BlockList();
    for (const cidr of settings.cidrs) {
      const [network, prefix] = cidr.split("/") as [string, string];
      list.addSubnet(network, Number(prefix), isIP(network) === 6 ? "ipv6" : "ipv4");
    }
    zones.push({ zone, list });
  }
  return (address: string | null | undefined): string | null => {
    if (!address) return null;
    const plain = address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
    const family = isIP(plain);
    if (family === 0) return null;
    const type = family === 6 ? "ipv6" : "ipv4";
    for (const { zone, list } of zones) if (list.check(plain, type)) return zone;
    return null;
  };
}

/** True when `address` is one of the proxies (IPs or CIDRs) whose forwarded-for header is believed. */
export function isTrustedProxy(proxies: readonly string[], address: string): boolean {
  if (proxies.length === 0) return false;
  const plain = address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(plain);
  if (family === 0) return false;
  const list = new BlockList();
  for (const proxy of proxies) {
    const [network, prefix] = proxy.split("/") as [string, string | undefined];
    const type = isIP(network) === 6 ? "ipv6" : "ipv4";
    if (isIP(network) === 0) continue;
    if (prefix === undefined) list.addAddress(network, type);
    else list.addSubnet(network, Number(prefix), type);
  }
  return list.check(plain, family === 6 ? "ipv6" : "ipv4");
}

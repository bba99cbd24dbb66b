import { describe, expect, it } from "vitest";
import {
  formatAddress,
  formatRange,
  mergeRanges,
  parseAddress,
  parseCidr,
  prefixLength,
  rangeToCidrs,
  subtractRanges,
} from "./ip.js";

const cidr = (text: string) => {
  const range = parseCidr(text);
  if (!range) throw new Error(`not a CIDR: ${text}`);
  return range;
};

describe("addresses", () => {
  it("parses IPv4 and IPv6 strictly, refusing anything that could be syntax", () => {
    expect(parseAddress("10.20.0.5")?.value).toBe(0x0a140005n);
    expect(parseAddress("::ffff:10.0.0.1")?.value).toBe(0xffff0a000001n);
    expect(parseAddress("fd00::1")?.family).toBe(6);
    for (const bad of [
      "10.0.0.256",
      "10.0.0",
      "10.0.0.1; drop",
      "fe80::1%eth0",
      "",
      "localhost",
      "1.2.3.4/8",
    ])
      expect(parseAddress(bad), bad).toBeNull();
  });

  it("formats IPv6 the RFC 5952 way", () => {
    for (const text of ["fd00::1", "::", "2001:db8::1:0:0:1", "2001:db8:0:1:1:1:1:1", "fd00:30::"]) {
      const parsed = parseAddress(text);
      expect(parsed && formatAddress(parsed.family, parsed.value)).toBe(text);
    }
  });

  it("clears host bits of a CIDR and refuses bad prefixes", () => {
    expect(formatRange(cidr("10.20.0.77/24"))).toBe("10.20.0.0/24");
    expect(formatRange(cidr("fd00:30::5/64"))).toBe("fd00:30::/64");
    for (const bad of ["10.0.0.0/33", "fd00::/129", "10.0.0.0/x", "10.0.0.0/24 accept"])
      expect(parseCidr(bad), bad).toBeNull();
  });

  it("merges, subtracts and splits ranges into CIDR blocks", () => {
    const merged = mergeRanges([cidr("10.0.1.0/24"), cidr("10.0.0.0/24"), cidr("10.0.0.128/25")]);
    expect(merged.map(formatRange)).toEqual(["10.0.0.0/23"]);
    const left = subtractRanges([cidr("10.0.0.0/24")], [cidr("10.0.0.7/32")]);
    expect(left.map(formatRange)).toEqual(["10.0.0.0-10.0.0.6", "10.0.0.8-10.0.0.255"]);
    expect(left.flatMap(rangeToCidrs)).toEqual([
      "10.0.0.0/30",
      "10.0.0.4/31",
      "10.0.0.6/32",
      "10.0.0.8/29",
      "10.0.0.16/28",
      "10.0.0.32/27",
      "10.0.0.64/26",
      "10.0.0.128/25",
    ]);
    expect(prefixLength(cidr("10.0.0.0/8"))).toBe(8);
    expect(subtractRanges([cidr("fd00::/64")], [cidr("10.0.0.0/8")]).map(formatRange)).toEqual(["fd00::/64"]);
  });
});

/** Text forms written in configuration and accepted at the API, each said once. */

/** Zones, resources, roles, policies, groups: lowercase DNS-label style, 1–63 characters. */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$/;

/** `90s`, `15m`, `1h`, `7d`: a number and a unit. */
export const DURATION_PATTERN = /^([1-9][0-9]{0,5})(s|m|h|d)$/;
export const DURATION_HINT = "a duration such as '90s', '15m', '1h' or '7d'";

/** `tcp/5432`, `udp/53`, `tcp/8000-8100`. */
export const PORT_SPEC_PATTERN = /^(tcp|udp)\/([1-9][0-9]{0,4})(?:-([1-9][0-9]{0,4}))?$/;

export interface PortRange {
  readonly protocol: "tcp" | "udp";
  readonly low: number;
  readonly high: number;
}

/** A port spec's protocol and range; null for anything else, or for ports out of 1-65535. */
export function parsePortSpec(spec: string): PortRange | null {
  const match = PORT_SPEC_PATTERN.exec(spec);
  if (!match) return null;
  const low = Number(match[2]);
  const high = match[3] === undefined ? low : Number(match[3]);
  if (high > 65_535 || low > high) return null;
  return { protocol: match[1] as "tcp" | "udp", low, high };
}

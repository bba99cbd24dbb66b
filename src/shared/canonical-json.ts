const MAX_DEPTH = 64;

/**
 * Canonical JSON: object keys sorted by UTF-16 code units (as RFC 8785), no whitespace, strings
 * escaped as JSON.stringify does, numbers in ECMAScript shortest form (integers as plain digits),
 * `undefined` object members omitted. Throws on values JSON cannot carry faithfully (NaN, Infinity,
 * bigint, functions, symbols, cycles) rather than hashing something other than what is stored.
 */
export function canonicalJson(value: unknown): string {
  return encode(value, 0);
}

function encode(value: unknown, depth: number): string {
  if (depth > MAX_DEPTH) throw new TypeError("canonical JSON: nested too deeply (or cyclic)");
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new TypeError(`canonical JSON: ${value} is not a finite number`);
      // JSON.stringify gives the shortest round-trip form and writes -0 as 0.
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) {
        // Holes and undefined become null, as JSON.stringify does, so parse(encode(x)) re-encodes equal.
        return `[${Array.from(value, (item) => (item === undefined ? "null" : encode(item, depth + 1))).join(",")}]`;
      }
      const withToJson = value as { toJSON?: () => unknown };
      if (typeof withToJson.toJSON === "function") return encode(withToJson.toJSON(), depth + 1);
      const record = value as Record<string, unknown>;
      const members: string[] = [];
      for (const key of Object.keys(record).sort()) {
        const member = record[key];
        if (member === undefined) continue;
        members.push(`${JSON.stringify(key)}:${encode(member, depth + 1)}`);
      }
      return `{${members.join(",")}}`;
    }
    default:
      throw new TypeError(`canonical JSON: cannot encode a ${typeof value}`);
  }
}

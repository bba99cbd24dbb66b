/**
 * A strict RFC 5424 parser and RFC 6587 octet-counting deframer, written for the tests: anything
 * the grammar does not allow is an error, never a guess. (rsyslog would accept far more.)
 */

export interface SyslogMessage {
  pri: number;
  facility: number;
  severity: number;
  version: number;
  timestamp: string | null;
  hostname: string | null;
  appName: string | null;
  procId: string | null;
  msgId: string | null;
  /** SD-ID → PARAM-NAME → values (a name may repeat). */
  structuredData: Map<string, Map<string, string[]>>;
  /** MSG, decoded; `bom` says whether it started with the UTF-8 BOM. */
  msg: string | null;
  bom: boolean;
}

export class SyslogSyntaxError extends Error {}

const PRINTUSASCII = /^[!-~]+$/;
const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;
/** SD-IDs without `@` must be registered with IANA (RFC 5424 section 7). */
const REGISTERED_SD_IDS = new Set(["timeQuality", "origin", "meta"]);

function fail(message: string): never {
  throw new SyslogSyntaxError(message);
}

/** Parses one SYSLOG-MSG given as bytes (it must be valid UTF-8 where the grammar says UTF-8). */
export function parseRfc5424(bytes: Buffer): SyslogMessage {
  let position = 0;
  const peek = () => bytes[position];
  const expect = (byte: number, what: string) => {
    if (bytes[position] !== byte) fail(`expected ${what} at byte ${position}`);
    position++;
  };
  const token = (what: string): string => {
    const start = position;
    while (position < bytes.length && bytes[position] !== 0x20) position++;
    const text = bytes.subarray(start, position).toString("latin1");
    if (text.length === 0) fail(`empty ${what}`);
    return text;
  };

  expect(0x3c, "'<'");
  const priStart = position;
  while (position < bytes.length && (peek() as number) >= 0x30 && (peek() as number) <= 0x39) position++;
  const priText = bytes.subarray(priStart, position).toString("latin1");
  if (!/^(0|[1-9]\d{0,2})$/.test(priText) || Number(priText) > 191) fail(`bad PRI '${priText}'`);
  expect(0x3e, "'>'");
  const versionStart = position;
  while (position < bytes.length && (peek() as number) >= 0x30 && (peek() as number) <= 0x39) position++;
  const versionText = bytes.subarray(versionStart, position).toString("latin1");
  if (!/^[1-9]\d{0,2}$/.test(versionText)) fail(`bad VERSION '${versionText}'`);
  if (versionText !== "1") fail(`VERSION is ${versionText}, not 1`);
  const header: (string | null)[] = [];
  const limits: [string, number][] = [
    ["TIMESTAMP", 64],
    ["HOSTNAME", 255],
    ["APP-NAME", 48],
    ["PROCID", 128],
    ["MSGID", 32],
  ];
  for (const [name, max] of limits) {
    expect(0x20, `SP before ${name}`);
    const value = token(name);
    if (!PRINTUSASCII.test(value)) fail(`${name} holds characters outside PRINTUSASCII`);
    if (value.length > max) fail(`${name} is longer than ${max}`);
    header.push(value === "-" ? null : value);
  }
  const timestamp = header[0] ?? null;
  if (timestamp !== null) {
    const match = TIMESTAMP.exec(timestamp);
    if (!match) fail(`TIMESTAMP '${timestamp}' is not RFC 3339 as RFC 5424 restricts it`);
    if (Number.isNaN(Date.parse(timestamp))) fail(`TIMESTAMP '${timestamp}' is not a real time`);
  }

  expect(0x20, "SP before STRUCTURED-DATA");
  const structuredData = new Map<string, Map<string, string[]>>();
  if (peek() === 0x2d) position++;
  else {
    if (peek() !== 0x5b) fail("STRUCTURED-DATA is neither '-' nor an SD-ELEMENT");
    while (peek() === 0x5b) {
      position++;
      const id = sdName("SD-ID");
      if (structuredData.has(id)) fail(`SD-ID '${id}' appears twice`);
      if (!id.includes("@") && !REGISTERED_SD_IDS.has(id))
        fail(`SD-ID '${id}' is neither registered nor name@number`);
      if (id.includes("@") && !/^[^@]+@\d+(\.\d+)*$/.test(id))
        fail(`SD-ID '${id}' is not name@enterprise-number`);
      const params = new Map<string, string[]>();
      while (peek() === 0x20) {
        position++;
        const name = sdName("PARAM-NAME");
        expect(0x3d, "'='");
        expect(0x22, "'\"'");
        const value: number[] = [];
        for (;;) {
          if (position >= bytes.length) fail("unterminated PARAM-VALUE");
          const byte = bytes[position] as number;
          if (byte === 0x22) break;
          if (byte === 0x5d) fail("unescaped ']' in PARAM-VALUE");
          if (byte === 0x5c) {
            const next = bytes[position + 1];
            if (next === 0x22 || next === 0x5c || next === 0x5d) {
              value.push(next);
              position += 2;
              continue;
            }
          }
          value.push(byte);
          position++;
        }
        position++;
        const decoded = decodeUtf8(Buffer.from(value), `PARAM-VALUE of ${name}`);
        params.set(name, [...(params.get(name) ?? []), decoded]);
      }
      expect(0x5d, "']' closing the SD-ELEMENT");
      structuredData.set(id, params);
    }
  }

  let msg: string | null = null;
  let bom = false;
  if (position < bytes.length) {
    expect(0x20, "SP before MSG");
    const rest = bytes.subarray(position);
    if (rest[0] === 0xef && rest[1] === 0xbb && rest[2] === 0xbf) {
      bom = true;
      msg = decodeUtf8(rest.subarray(3), "MSG");
    } else msg = rest.toString("latin1");
  }
  const pri = Number(priText);
  return {
    pri,
    facility: Math.floor(pri / 8),
    severity: pri % 8,
    version: 1,
    timestamp,
    hostname: header[1] ?? null,
    appName: header[2] ?? null,
    procId: header[3] ?? null,
    msgId: header[4] ?? null,
    structuredData,
    msg,
    bom,
  };

  function sdName(what: string): string {
    const start = position;
    while (position < bytes.length) {
      const byte = bytes[position] as number;
      if (byte === 0x3d || byte === 0x20 || byte === 0x5d || byte === 0x22 || byte < 0x21 || byte > 0x7e)
        break;
      position++;
    }
    const name = bytes.subarray(start, position).toString("latin1");
    if (name.length === 0 || name.length > 32) fail(`${what} '${name}' is not 1-32 characters`);
    return name;
  }
}

function decodeUtf8(bytes: Buffer, what: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return fail(`${what} is not valid UTF-8`);
  }
}

/**
 * RFC 6587 section 3.4.1 octet counting: `MSG-LEN SP SYSLOG-MSG`, MSG-LEN = NONZERO-DIGIT *DIGIT.
 * Feed bytes as they arrive; complete frames come out, a malformed prefix is an error.
 */
export function createOctetCountingDeframer() {
  let buffer = Buffer.alloc(0);
  return {
    push(chunk: Buffer): Buffer[] {
      buffer = Buffer.concat([buffer, chunk]);
      const frames: Buffer[] = [];
      for (;;) {
        const space = buffer.indexOf(0x20);
        if (space < 0) {
          if (buffer.length > 10 || !/^\d*$/.test(buffer.toString("latin1"))) fail("bad MSG-LEN");
          return frames;
        }
        const lengthText = buffer.subarray(0, space).toString("latin1");
        if (!/^[1-9]\d{0,9}$/.test(lengthText)) fail(`bad MSG-LEN '${lengthText.slice(0, 20)}'`);
        const length = Number(lengthText);
        if (buffer.length < space + 1 + length) return frames;
        frames.push(buffer.subarray(space + 1, space + 1 + length));
        buffer = buffer.subarray(space + 1 + length);
      }
    },
    /** Bytes of an incomplete frame left at the end of the stream. */
    get pending(): number {
      return buffer.length;
    },
  };
}

/**
 * PostgreSQL's wire protocol (version 3), the little the gateway needs: a bounded frame parser
 * that streams the bulky messages (DataRow, CopyData) through without assembling them, and the
 * messages the gateway writes itself. https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

export const PROTOCOL_3 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;
/** A startup packet is small: parameters and their values. PostgreSQL allows 10000 bytes. */
export const MAX_STARTUP_LENGTH = 10_000;

export class ProtocolViolation extends Error {}

export interface FrameHandler {
  /** A whole message: its type byte, its body, and the raw bytes (header included) to forward. */
  frame(type: number, body: Buffer, raw: Buffer): void;
  /** The header of a message streamed through; `data` follows until `streamEnd`. */
  streamStart?(type: number, length: number, header: Buffer): void;
  streamData?(chunk: Buffer): void;
  streamEnd?(): void;
}

/**
 * Splits a byte stream into typed messages. Messages of `streamTypes` are handed on in pieces as
 * they arrive; every other message is assembled, up to `maxLength` bytes. A length field below 4
 * or above the limit is a ProtocolViolation (thrown from `push`): the connection is closed.
 */
export function createFrameParser(options: {
  maxLength: number;
  streamTypes?: ReadonlySet<number>;
  handler: FrameHandler;
}) {
  const { handler, maxLength } = options;
  const streamTypes = options.streamTypes ?? new Set<number>();
  let pending: Buffer | null = null;
  let streamLeft = 0;

  return {
    /** Whether a message is half-read (a truncated frame at the end of the stream). */
    get partial(): boolean {
      return streamLeft > 0 || (pending !== null && pending.length > 0);
    },
    push(chunk: Buffer): void {
      let data = chunk;
      if (streamLeft > 0) {
        const piece = data.length <= streamLeft ? data : data.subarray(0, streamLeft);
        streamLeft -= piece.length;
        handler.streamData?.(piece);
        if (streamLeft === 0) handler.streamEnd?.();
        data = data.subarray(piece.length);
        if (data.length === 0) return;
      }
      if (pending) {
        data = Buffer.concat([pending, data]);
        pending = null;
      }
      let at = 0;
      while (data.length - at >= 5) {
        const type = data[at] as number;
        const length = data.readUInt32BE(at + 1);
        if (length < 4 || length > maxLength)
          throw new ProtocolViolation(
            `a message of type '${String.fromCharCode(type)}' claims ${length} bytes`,
          );
        const total = 1 + length;
        if (streamTypes.has(type)) {
          const header = data.subarray(at, at + 5);
          handler.streamStart?.(type, length - 4, header);
          const available = Math.min(total - 5, data.length - at - 5);
          if (available > 0) handler.streamData?.(data.subarray(at + 5, at + 5 + available));
          at += 5 + available;
          streamLeft = total - 5 - available;
          if (streamLeft === 0) handler.streamEnd?.();
          else return;
          continue;
        }
        if (data.length - at < total) break;
        const raw = data.subarray(at, at + total);
        handler.frame(type, raw.subarray(5), raw);
        at += total;
      }
      if (at < data.length) pending = Buffer.from(data.subarray(at));
    },
  };
}

/** Reads null-terminated strings and integers from a message body, refusing to read past its end. */
export function createBodyReader(body: Buffer) {
  let at = 0;
  return {
    get offset() {
      return at;
    },
    cstring(): string {
      const end = body.indexOf(0, at);
      if (end < 0) throw new ProtocolViolation("a string runs past the end of its message");
      const text = body.toString("utf8", at, end);
      at = end + 1;
      return text;
    },
    int16(): number {
      if (at + 2 > body.length) throw new ProtocolViolation("a message ends early");
      const value = body.readInt16BE(at);
      at += 2;
      return value;
    },
    int32(): number {
      if (at + 4 > body.length) throw new ProtocolViolation("a message ends early");
      const value = body.readInt32BE(at);
      at += 4;
      return value;
    },
    bytes(length: number): Buffer {
      if (length < 0 || at + length > body.length) throw new ProtocolViolation("a message ends early");
      const value = body.subarray(at, at + length);
      at += length;
      return value;
    },
    rest(): Buffer {
      const value = body.subarray(at);
      at = body.length;
      return value;
    },
  };
}

/** One message: type byte, length, body. */
export function message(type: string, ...parts: (Buffer | string)[]): Buffer {
  const body = Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : p)));
  const header = Buffer.alloc(5);
  header.write(type, 0, "latin1");
  header.writeUInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

export const cstring = (text: string) => Buffer.from(`${text}\0`, "utf8");
export function int32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(value);
  return b;
}

/** ErrorResponse (or NoticeResponse with type 'N'): severity, SQLSTATE and message. */
export function errorResponse(severity: "ERROR" | "FATAL", code: string, text: string, type = "E"): Buffer {
  return message(
    type,
    Buffer.from("S"),
    cstring(severity),
    Buffer.from("V"),
    cstring(severity),
    Buffer.from("C"),
    cstring(code),
    Buffer.from("M"),
    cstring(text),
    Buffer.from([0]),
  );
}

export const authentication = (code: number, data: Buffer = Buffer.alloc(0)) =>
  message("R", int32(code), data);
export const readyForQuery = (status: string) => message("Z", status);
export const backendKeyData = (pid: number, secret: number) => message("K", int32(pid), int32(secret));

/** The fields of an ErrorResponse or NoticeResponse, by their one-letter codes. */
export function errorFields(body: Buffer): Map<string, string> {
  const fields = new Map<string, string>();
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const code = String.fromCharCode(body[at] as number);
    const end = body.indexOf(0, at + 1);
    if (end < 0) break;
    fields.set(code, body.toString("utf8", at + 1, end));
    at = end + 1;
  }
  return fields;
}

/** The StartupMessage the gateway sends to the target. */
export function startupMessage(parameters: Record<string, string>): Buffer {
  const body = Buffer.concat([
    int32(PROTOCOL_3),
    ...Object.entries(parameters).flatMap(([k, v]) => [cstring(k), cstring(v)]),
    Buffer.from([0]),
  ]);
  return Buffer.concat([int32(body.length + 4), body]);
}

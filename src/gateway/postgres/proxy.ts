import { createHash } from "node:crypto";
import type { Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { SessionHandle } from "../session.service.js";
import {
  createBodyReader,
  createFrameParser,
  errorFields,
  errorResponse,
  ProtocolViolation,
  readyForQuery,
} from "./protocol.js";

/** What a statement rule said (G2's statement-rules.ts); null refusal lets it through. */
export interface Inspection {
  refusal: { message: string; rule: string } | null;
  classification?: Record<string, unknown>;
}
export type StatementInspector = (text: string) => Inspection;

/** The largest message a client may send (a Query or Parse text, a Bind); CopyData streams through. */
export const MAX_CLIENT_MESSAGE = 64 * 1024 * 1024;
/** The largest non-row message the target may send; DataRow and CopyData stream through. */
const MAX_SERVER_MESSAGE = 64 * 1024 * 1024;
/** Statements a client may have in flight (pipelined, not yet answered). */
const MAX_IN_FLIGHT = 10_000;

const T = (c: string) => c.charCodeAt(0);

type Pending =
  | {
      kind: "query" | "execute";
      protocol: "simple" | "extended";
      text: string;
      started: number;
      tags: string[];
      rows: number;
      sqlstate: string | null;
      params?: unknown[];
      classification?: Record<string, unknown>;
      copyBytes: number;
    }
  | { kind: "sync" }
  | {
      kind: "refused";
      protocol: "simple" | "extended";
      text: string;
      message: string;
      rule: string;
      silent?: boolean;
    };

function rowsOf(tag: string): number {
  const match = /(\d+)$/.exec(tag);
  return match ? Number(match[1]) : 0;
}

/**
 * Relays one authenticated session between the client and the target, frame by frame in both
 * directions, and records every statement (simple Query, extended Execute, COPY) when the target
 * answers it. Rows and COPY data stream through unassembled; writes follow each socket's
 * back-pressure. A refused statement is answered by the gateway with 42501, in its place in the
 * answer stream. See NOTES.md.
 */
export function relay(options: {
  client: Socket;
  upstream: Socket;
  session: SessionHandle;
  inspect?: StatementInspector;
  recordValues: boolean;
  /** Called once per refused statement, after it is recorded (alert.raised). */
  onRefused(refusal: { text: string; rule: string; message: string; seq: number }): void;
  /** Bytes already read from each side after the startup. */
  clientRest?: Buffer;
  upstreamRest?: Buffer;
  /** Called once when the relay ends, with why. */
  onEnd(reason: string): void;
}) {
  const { client, upstream, session } = options;
  const queue: Pending[] = [];
  type Prepared = { text: string; classification?: Record<string, unknown> };
  const statements = new Map<string, Prepared>();
  const portals = new Map<string, Prepared & { params: unknown[] }>();
  let skipping = false;
  let status = "I";
  let ended = false;
  let toClient: Buffer[] = [];
  let toUpstream: Buffer[] = [];
  let flushScheduled = false;

  function flush() {
    flushScheduled = false;
    if (ended) return;
    if (toClient.length > 0) {
      const data = toClient.length === 1 ? (toClient[0] as Buffer) : Buffer.concat(toClient);
      toClient = [];
      if (!client.write(data)) {
        upstream.pause();
        client.once("drain", () => upstream.resume());
      }
    }
    if (toUpstream.length > 0) {
      const data = toUpstream.length === 1 ? (toUpstream[0] as Buffer) : Buffer.concat(toUpstream);
      toUpstream = [];
      if (!upstream.write(data)) {
        client.pause();
        upstream.once("drain", () => client.resume());
      }
    }
  }
  const schedule = () => {
    if (!flushScheduled) {
      flushScheduled = true;
      queueMicrotask(flush);
    }
  };
  const sendClient = (data: Buffer) => {
    toClient.push(data);
    schedule();
  };
  const sendUpstream = (data: Buffer) => {
    toUpstream.push(data);
    schedule();
  };

  function finish(reason: string) {
    if (ended) return;
    flush();
    ended = true;
    options.onEnd(reason);
  }

  function recordStatement(item: Extract<Pending, { kind: "query" | "execute" }>) {
    const tag = item.tags[item.tags.length - 1] ?? null;
    session.record(
      "statement",
      {
        protocol: item.protocol,
        text: item.text,
        tag,
        ...(item.tags.length > 1 ? { tags: item.tags } : {}),
        rows: item.rows,
        sqlstate: item.sqlstate,
        durationMs: Math.round((performance.now() - item.started) * 1000) / 1000,
        ...(item.params && item.params.length > 0 ? { params: item.params } : {}),
        ...(item.copyBytes > 0 ? { copyBytes: item.copyBytes } : {}),
        ...(item.classification ? { classification: item.classification } : {}),
      },
      { audit: true },
    );
  }

  function recordRefusal(item: Extract<Pending, { kind: "refused" }>) {
    const seq = session.record(
      "statement",
      {
        protocol: item.protocol,
        text: item.text,
        tag: null,
        rows: 0,
        sqlstate: "42501",
        refused: { rule: item.rule, message: item.message },
      },
      { audit: true },
    );
    options.onRefused({ text: item.text, rule: item.rule, message: item.message, seq });
  }

  /** Answers refused statements that have reached the head of the queue, in their place. */
  function drain() {
    for (;;) {
      const head = queue[0];
      if (head?.kind !== "refused") return;
      queue.shift();
      if (head.silent) continue;
      sendClient(errorResponse("ERROR", "42501", head.message));
      if (head.protocol === "simple") sendClient(readyForQuery(status));
    }
  }

  function enqueue(item: Pending) {
    if (queue.length >= MAX_IN_FLIGHT) throw new ProtocolViolation("too many statements in flight");
    queue.push(item);
  }

  function inspect(text: string): Inspection {
    return options.inspect ? options.inspect(text) : { refusal: null };
  }

  function paramsOf(reader: ReturnType<typeof createBodyReader>): unknown[] {
    const formats: number[] = [];
    const formatCount = reader.int16();
    for (let i = 0; i < formatCount; i++) formats.push(reader.int16());
    const count = reader.int16();
    const params: unknown[] = [];
    for (let i = 0; i < count; i++) {
      const length = reader.int32();
      if (length === -1) {
        params.push(null);
        continue;
      }
      const value = reader.bytes(length);
      const binary = (formats.length === 1 ? formats[0] : formats[i]) === 1;
      params.push(
        options.recordValues
          ? binary
            ? { base64: value.toString("base64") }
            : value.toString("utf8")
          : { length, sha256: createHash("sha256").update(value).digest("hex") },
      );
    }
    return params;
  }

  const clientParser = createFrameParser({
    maxLength: MAX_CLIENT_MESSAGE,
    streamTypes: new Set([T("d")]),
    handler: {
      frame(type, body, raw) {
        if (skipping && type !== T("S") && type !== T("X")) return;
        switch (type) {
          case T("Q"): {
            const text = createBodyReader(body).cstring();
            const verdict = inspect(text);
            if (verdict.refusal) {
              const item: Pending = { kind: "refused", protocol: "simple", text, ...verdict.refusal };
              recordRefusal(item);
              enqueue(item);
              drain();
              return;
            }
            enqueue({
              kind: "query",
              protocol: "simple",
              text,
              started: performance.now(),
              tags: [],
              rows: 0,
              sqlstate: null,
              classification: verdict.classification,
              copyBytes: 0,
            });
            break;
          }
          case T("P"): {
            const reader = createBodyReader(body);
            const name = reader.cstring();
            const text = reader.cstring();
            const verdict = inspect(text);
            if (verdict.refusal) {
              // As PostgreSQL does after an error: everything up to the next Sync is skipped.
              const item: Pending = { kind: "refused", protocol: "extended", text, ...verdict.refusal };
              recordRefusal(item);
              enqueue(item);
              skipping = true;
              drain();
              return;
            }
            statements.set(name, { text, classification: verdict.classification });
            break;
          }
          case T("B"): {
            const reader = createBodyReader(body);
            const portal = reader.cstring();
            const statement = reader.cstring();
            const prepared = statements.get(statement);
            portals.set(portal, {
              text: prepared?.text ?? "",
              classification: prepared?.classification,
              params: paramsOf(reader),
            });
            break;
          }
          case T("E"): {
            const portal = portals.get(createBodyReader(body).cstring());
            enqueue({
              kind: "execute",
              protocol: "extended",
              text: portal?.text ?? "",
              started: performance.now(),
              tags: [],
              rows: 0,
              sqlstate: null,
              params: portal?.params,
              classification: portal?.classification,
              copyBytes: 0,
            });
            break;
          }
          case T("S"):
            skipping = false;
            enqueue({ kind: "sync" });
            break;
          case T("C"): {
            const reader = createBodyReader(body);
            const what = reader.int16() >> 8;
            const name = reader.cstring();
            if (what === T("S")) statements.delete(name);
            else portals.delete(name);
            break;
          }
          case T("F"):
            enqueue({
              kind: "query",
              protocol: "simple",
              text: `<function call, oid ${createBodyReader(body).int32()}>`,
              started: performance.now(),
              tags: [],
              rows: 0,
              sqlstate: null,
              copyBytes: 0,
            });
            break;
          case T("D"):
          case T("H"):
          case T("c"):
          case T("f"):
            break;
          case T("X"):
            sendUpstream(raw);
            finish("client disconnected");
            return;
          default:
            throw new ProtocolViolation(`a client message of unknown type '${String.fromCharCode(type)}'`);
        }
        sendUpstream(raw);
      },
      streamStart(_type, length, header) {
        const head = queue.find((p) => p.kind === "query" || p.kind === "execute");
        if (head && (head.kind === "query" || head.kind === "execute")) head.copyBytes += length;
        if (!skipping) sendUpstream(Buffer.from(header));
      },
      streamData(chunk) {
        if (!skipping) sendUpstream(Buffer.from(chunk));
      },
    },
  });

  function head() {
    return queue[0];
  }

  const upstreamParser = createFrameParser({
    maxLength: MAX_SERVER_MESSAGE,
    streamTypes: new Set([T("D"), T("d")]),
    handler: {
      frame(type, body, raw) {
        sendClient(raw);
        const first = head();
        switch (type) {
          case T("C"):
          case T("I"):
          case T("s"): {
            if (first?.kind !== "query" && first?.kind !== "execute") break;
            const tag =
              type === T("C") ? createBodyReader(body).cstring() : type === T("I") ? "" : "SUSPENDED";
            first.tags.push(tag);
            first.rows += rowsOf(tag);
            if (first.kind === "execute") {
              queue.shift();
              recordStatement(first);
              drain();
            }
            break;
          }
          case T("E"): {
            const fields = errorFields(body);
            const code = fields.get("C") ?? "XX000";
            if (first?.kind === "query") {
              first.sqlstate = code;
              break;
            }
            // Extended protocol: the target skips to the next Sync; so do our expectations.
            let failed = false;
            while (queue[0] && queue[0].kind !== "sync") {
              const item = queue.shift() as Pending;
              if (item.kind === "execute") {
                item.sqlstate = failed ? "skipped" : code;
                failed = true;
                recordStatement(item);
              }
            }
            break;
          }
          case T("Z"):
            status = String.fromCharCode(body[0] ?? T("I"));
            if (first?.kind === "query") {
              queue.shift();
              recordStatement(first);
            } else if (first?.kind === "sync") queue.shift();
            drain();
            break;
          default:
            break;
        }
      },
      streamStart(type, length, header) {
        if (type === T("d")) {
          const first = head();
          if (first?.kind === "query" || first?.kind === "execute") first.copyBytes += length;
        }
        sendClient(Buffer.from(header));
      },
      streamData(chunk) {
        sendClient(Buffer.from(chunk));
      },
    },
  });

  const onClientData = (chunk: Buffer) => {
    try {
      clientParser.push(chunk);
    } catch (error) {
      violation(error);
    }
  };
  const onUpstreamData = (chunk: Buffer) => {
    try {
      upstreamParser.push(chunk);
    } catch (error) {
      if (error instanceof ProtocolViolation) finish("the target sent a malformed message");
      else throw error;
    }
  };
  function violation(error: unknown) {
    if (!(error instanceof ProtocolViolation)) throw error;
    sendClient(errorResponse("FATAL", "08P01", `protocol violation: ${error.message}`));
    finish(`protocol violation: ${error.message}`);
  }

  client.on("data", onClientData);
  upstream.on("data", onUpstreamData);
  client.on("end", () =>
    finish(clientParser.partial ? "the client ended mid-message" : "client disconnected"),
  );
  client.on("close", () => finish("client disconnected"));
  client.on("error", () => finish("client connection failed"));
  upstream.on("end", () => finish("the target closed the connection"));
  upstream.on("close", () => finish("the target closed the connection"));
  upstream.on("error", () => finish("the target connection failed"));
  if (options.upstreamRest?.length) onUpstreamData(options.upstreamRest);
  if (options.clientRest?.length) onClientData(options.clientRest);

  return {
    /** Ends the session from the gateway's side: FATAL to the client, both sockets closed. */
    cut(code: string, text: string) {
      if (ended) return;
      sendClient(errorResponse("FATAL", code, text));
      finish(text);
    },
    /** Writes what is waiting (for the caller's last message before closing). */
    flush,
    /** Statements in flight (sent, not yet answered). */
    get inFlight() {
      return queue.length;
    },
  };
}

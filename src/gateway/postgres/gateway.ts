import { createHash, randomBytes, randomInt } from "node:crypto";
import net, { type Server, type Socket } from "node:net";
import tls from "node:tls";
import type { AuditEventInput } from "../../audit/audit.repo.js";
import type { FirebreakConfig } from "../../config/schema.js";
import type { GrantRecord } from "../../grants/grant.repo.js";
import type { Clock } from "../../shared/clock.js";
import type { GatewayCredentials } from "../credentials.js";
import type { PostgresGatewaySettings } from "../gateway.settings.js";
import type { GatewaySessions, SessionHolder } from "../session.service.js";
import {
  authentication,
  backendKeyData,
  CANCEL_REQUEST,
  createBodyReader,
  createFrameParser,
  cstring,
  errorFields,
  errorResponse,
  GSSENC_REQUEST,
  int32,
  MAX_STARTUP_LENGTH,
  message,
  PROTOCOL_3,
  ProtocolViolation,
  SSL_REQUEST,
  startupMessage,
} from "./protocol.js";
import { relay, type StatementInspector } from "./proxy.js";
import { createScramClient, createScramServer, deriveVerifier } from "./scram.js";

const DEFAULT_STARTUP_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_PER_ADDRESS = 100;
const DEFAULT_FAILURES_PER_MINUTE = 10;
const GRANT_ID = /^grt_[a-z0-9]{1,60}$/;
/** Startup parameters passed to the target; `options` and `replication` never are. */
const PASSED_PARAMETER =
  /^(application_name|client_encoding|DateStyle|TimeZone|extra_float_digits|search_path|IntervalStyle)$/;
/** A cut client gets this long to read its FATAL before the socket is destroyed. */
const CUT_GRACE_MS = 200;

export interface TargetEndpoint {
  host: string;
  port: number;
  database: string;
}

/** Unwraps IPv4-mapped IPv6 (`::ffff:10.0.0.1`), so addresses compare as the grant wrote them. */
function plainAddress(address: string | undefined): string {
  if (!address) return "unknown";
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** Refused before anything reached the target: the message the client sees and the audit reason. */
class Refusal extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly reason: string,
    readonly grant: GrantRecord | null = null,
  ) {
    super(message);
  }
}

/**
 * The PostgreSQL gateway: a listener that speaks the wire protocol, authenticates a grant's user
 * with SCRAM-SHA-256 against the grant's token verifier, connects to the target as the grant's
 * just-in-time login, and relays the session with every statement recorded (proxy.ts). See NOTES.md.
 */
export function createPostgresGateway(deps: {
  settings: PostgresGatewaySettings;
  config: () => FirebreakConfig;
  clock: Clock;
  findGrant(id: string): Promise<GrantRecord | null>;
  credentials: Pick<GatewayCredentials, "verifier" | "targetLogin">;
  target(resourceName: string): TargetEndpoint;
  sessions: Pick<GatewaySessions, "start">;
  holder: SessionHolder;
  audit(event: AuditEventInput): Promise<void>;
  sourceZoneOf(address: string): string | null;
  secret(ref: string): string;
  /** The statement rules' hook for one session (statement-rules.ts), looked up once it opens. */
  inspect?: (grant: GrantRecord, resource: string) => Promise<StatementInspector | undefined>;
  log: { error(message: string, fields?: Record<string, unknown>): void };
}) {
  const { settings } = deps;
  const startupTimeout = settings.startupTimeout ?? DEFAULT_STARTUP_TIMEOUT_MS;
  const maxPerAddress = settings.maxConnectionsPerAddress ?? DEFAULT_MAX_PER_ADDRESS;
  const failuresPerMinute = settings.authFailuresPerMinute ?? DEFAULT_FAILURES_PER_MINUTE;
  const secureContext = settings.tls
    ? tls.createSecureContext({ cert: deps.secret(settings.tls.cert), key: deps.secret(settings.tls.key) })
    : null;
  const open = new Map<string, number>();
  const failures = new Map<string, { windowStart: number; count: number; reported: boolean }>();
  /** The gateway's own cancel keys, mapped to the target backend's. */
  const cancelKeys = new Map<string, { target: TargetEndpoint; pid: number; secret: number }>();
  const sockets = new Set<Socket>();
  /** This gateway's live sessions' cut functions, for shutdown. */
  const live = new Set<(reason: string) => Promise<void>>();
  let server: Server | null = null;

  function rateLimited(address: string): boolean {
    const entry = failures.get(address);
    if (!entry || Date.now() - entry.windowStart > 60_000) return false;
    return entry.count >= failuresPerMinute;
  }
  function failed(address: string) {
    const now = Date.now();
    let entry = failures.get(address);
    if (!entry || now - entry.windowStart > 60_000) {
      entry = { windowStart: now, count: 0, reported: false };
      failures.set(address, entry);
    }
    entry.count++;
    // Bounded: old windows are forgotten once the map grows.
    if (failures.size > 10_000)
      for (const [key, value] of failures) if (now - value.windowStart > 60_000) failures.delete(key);
  }

  async function refuse(socket: Socket, address: string, user: string | null, refusal: Refusal) {
    if (refusal.code === "28P01") failed(address);
    try {
      socket.end(errorResponse("FATAL", refusal.code, refusal.message));
    } catch {}
    const entry = failures.get(address);
    // A flood from one address is audited once per window, not once per connection.
    if (refusal.reason === "rate-limited") {
      if (!entry || entry.reported) return;
      entry.reported = true;
    }
    await deps
      .audit({
        type: "gateway.refused",
        actor: refusal.grant?.user ?? "system:gateway",
        zone: refusal.grant?.zone ?? null,
        resource: refusal.grant?.resource ?? null,
        subject: refusal.grant?.id ?? null,
        context: {
          protocol: "postgres",
          clientAddress: address,
          user: user === null ? null : user.slice(0, 64),
          reason: refusal.reason,
          code: refusal.code,
        },
      })
      .catch((error) => deps.log.error("gateway refusal not audited", { error: String(error) }));
  }

  /** Reads exactly the startup packets (length-prefixed, no type byte) until a StartupMessage. */
  function handle(raw: Socket) {
    const address = plainAddress(raw.remoteAddress);
    sockets.add(raw);
    raw.on("close", () => {
      sockets.delete(raw);
      const left = (open.get(address) ?? 1) - 1;
      if (left <= 0) open.delete(address);
      else open.set(address, left);
    });
    raw.on("error", () => raw.destroy());
    open.set(address, (open.get(address) ?? 0) + 1);
    if ((open.get(address) ?? 0) > maxPerAddress || rateLimited(address)) {
      void refuse(
        raw,
        address,
        null,
        new Refusal("53300", "too many connections from this address; try again later", "rate-limited"),
      );
      raw.destroySoon();
      return;
    }
    raw.setNoDelay(true);
    const timer = setTimeout(() => {
      raw.end(errorResponse("FATAL", "08006", "the startup took too long"));
      raw.destroy();
    }, startupTimeout);
    timer.unref();
    let socket: Socket = raw;
    let buffer: Buffer = Buffer.alloc(0);
    let tlsDone = false;
    let done = false;

    const onData = (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      if (buffer.length < 8) return;
      const length = buffer.readUInt32BE(0);
      if (length < 8 || length > MAX_STARTUP_LENGTH) {
        clearTimeout(timer);
        socket.end(errorResponse("FATAL", "08P01", "invalid startup packet length"));
        socket.destroySoon();
        return;
      }
      if (buffer.length < length) return;
      const packet = buffer.subarray(0, length);
      const rest = buffer.subarray(length);
      buffer = Buffer.alloc(0);
      const code = packet.readUInt32BE(4);
      if (code === SSL_REQUEST && !tlsDone && rest.length === 0) {
        tlsDone = true;
        if (!secureContext) {
          socket.write("N");
          return;
        }
        socket.off("data", onData);
        socket.write("S");
        const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
        secure.on("error", () => raw.destroy());
        socket = secure;
        socket.on("data", onData);
        return;
      }
      if (code === GSSENC_REQUEST && rest.length === 0) {
        socket.write("N");
        return;
      }
      socket.off("data", onData);
      if (code === CANCEL_REQUEST && length === 16) {
        clearTimeout(timer);
        cancel(packet.readInt32BE(8), packet.readInt32BE(12));
        socket.destroySoon();
        return;
      }
      if (code !== PROTOCOL_3) {
        clearTimeout(timer);
        socket.end(
          errorResponse("FATAL", "0A000", "unsupported frontend protocol: the gateway speaks version 3.0"),
        );
        socket.destroySoon();
        return;
      }
      const parameters = new Map<string, string>();
      try {
        const reader = createBodyReader(packet.subarray(8));
        for (;;) {
          const key = reader.cstring();
          if (key === "") break;
          parameters.set(key, reader.cstring());
        }
      } catch {
        clearTimeout(timer);
        socket.end(errorResponse("FATAL", "08P01", "invalid startup packet"));
        socket.destroySoon();
        return;
      }
      done = true;
      authenticate(socket, address, parameters, rest, timer, tlsDone && secureContext !== null).catch(
        (error) => {
          clearTimeout(timer);
          if (error instanceof Refusal) void refuse(socket, address, parameters.get("user") ?? null, error);
          else {
            deps.log.error("gateway session failed", {
              error: error instanceof Error ? error.message : String(error),
            });
            socket.end(errorResponse("FATAL", "XX000", "the gateway could not open the session"));
          }
          socket.destroySoon();
        },
      );
    };
    socket.on("data", onData);
    socket.on("end", () => {
      if (!done) {
        clearTimeout(timer);
        socket.destroy();
      }
    });
  }

  function cancel(pid: number, secret: number) {
    const key = cancelKeys.get(`${pid}:${secret}`);
    if (!key) return;
    const connection = net.connect(key.target.port, key.target.host, () => {
      const body = Buffer.concat([int32(16), int32(CANCEL_REQUEST), int32(key.pid), int32(key.secret)]);
      connection.end(body);
    });
    connection.on("error", () => connection.destroy());
    connection.setTimeout(5_000, () => connection.destroy());
  }

  /** Reads one typed message from the client during authentication. */
  function nextMessage(socket: Socket, pending: { data: Buffer }): Promise<{ type: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const tryParse = () => {
        const data = pending.data;
        if (data.length >= 5) {
          const length = data.readUInt32BE(1);
          if (length < 4 || length > 8192)
            return reject(new ProtocolViolation("invalid authentication message"));
          if (data.length >= 1 + length) {
            pending.data = data.subarray(1 + length);
            cleanup();
            resolve({ type: data[0] as number, body: data.subarray(5, 1 + length) });
            return true;
          }
        }
        return false;
      };
      const onData = (chunk: Buffer) => {
        pending.data = Buffer.concat([pending.data, chunk]);
        tryParse();
      };
      const onEnd = () => {
        cleanup();
        reject(new ProtocolViolation("the client left during authentication"));
      };
      const cleanup = () => {
        socket.off("data", onData);
        socket.off("end", onEnd);
        socket.off("close", onEnd);
      };
      socket.on("data", onData);
      socket.on("end", onEnd);
      socket.on("close", onEnd);
      tryParse();
    });
  }

  async function authenticate(
    socket: Socket,
    address: string,
    parameters: Map<string, string>,
    rest: Buffer,
    timer: NodeJS.Timeout,
    usingTls: boolean,
  ) {
    const user = parameters.get("user") ?? "";
    const database = parameters.get("database") ?? user;
    if (parameters.has("replication"))
      throw new Refusal("28000", "the gateway does not carry replication connections", "replication");
    const grantId = GRANT_ID.test(user) ? user : null;
    const grant = grantId ? await deps.findGrant(grantId) : null;
    const verifier = grant ? await deps.credentials.verifier(grant.id, database) : null;
    // An unknown grant or resource runs the same exchange against a random verifier, so a
    // refusal says nothing about which grants exist.
    const scram = createScramServer(verifier ?? deriveVerifier(randomBytes(24).toString("hex")));
    const pending = { data: rest };
    socket.write(authentication(10, Buffer.concat([cstring("SCRAM-SHA-256"), Buffer.from([0])])));
    const initial = await nextMessage(socket, pending);
    if (initial.type !== 0x70) throw new Refusal("08P01", "expected a SASL initial response", "protocol");
    const reader = createBodyReader(initial.body);
    const mechanism = reader.cstring();
    const length = reader.int32();
    const first =
      mechanism === "SCRAM-SHA-256" && length >= 0
        ? scram.first(reader.bytes(length).toString("utf8"))
        : null;
    if (first === null)
      throw new Refusal("28000", "the gateway authenticates with SCRAM-SHA-256 only", "protocol");
    socket.write(authentication(11, Buffer.from(first)));
    const response = await nextMessage(socket, pending);
    if (response.type !== 0x70) throw new Refusal("08P01", "expected a SASL response", "protocol");
    const final = scram.final(response.body.toString("utf8"));
    if (final === null || !grant || !verifier)
      throw new Refusal(
        "28P01",
        `password authentication failed for user "${user.slice(0, 64)}"`,
        "bad-token",
        grant,
      );

    // The token is right: now the grant itself. Its holder may learn when it ended.
    const now = deps.clock.now();
    if (grant.state !== "active" || now >= grant.endsAt) {
      const endedAt = new Date(grant.closedAt ?? grant.endsAt).toISOString();
      throw new Refusal(
        "28000",
        `grant ${grant.id} ended at ${endedAt} (${grant.state === "active" ? "expired" : grant.state}); request access again`,
        "grant-ended",
        grant,
      );
    }
    if (now < grant.startsAt)
      throw new Refusal("28000", `grant ${grant.id} has not started yet`, "not-started", grant);
    if (grant.clientAddress && grant.clientAddress !== address)
      throw new Refusal(
        "28000",
        `grant ${grant.id} may be used only from ${grant.clientAddress}`,
        "wrong-address",
        grant,
      );
    if (!grant.clientAddress && grant.sourceZone && deps.sourceZoneOf(address) !== grant.sourceZone)
      throw new Refusal(
        "28000",
        `grant ${grant.id} may be used only from zone ${grant.sourceZone}`,
        "wrong-zone",
        grant,
      );

    const login = await deps.credentials.targetLogin(grant.id, database);
    if (!login)
      throw new Refusal("28000", `grant ${grant.id} holds no login on ${database}`, "no-login", grant);
    const target = deps.target(database);
    const passed: Record<string, string> = { user: login.login, database: target.database };
    for (const [key, value] of parameters) if (PASSED_PARAMETER.test(key)) passed[key] = value;
    const inspect = await deps.inspect?.(grant, database);
    const upstream = await connectTarget(target, passed, login.password);
    clearTimeout(timer);

    const session = await deps.sessions.start({
      grant,
      protocol: "postgres",
      resource: database,
      clientAddress: address,
      context: { application: parameters.get("application_name") ?? null, tls: usingTls, login: login.login },
    });
    session.record("startup", {
      application: parameters.get("application_name") ?? null,
      clientAddress: address,
      tls: usingTls,
      login: login.login,
      target: `${target.host}:${target.port}/${target.database}`,
    });
    const gatewayPid = randomInt(1, 2 ** 31 - 1);
    const gatewaySecret = randomInt(1, 2 ** 31 - 1);
    const cancelKey = `${gatewayPid}:${gatewaySecret}`;
    cancelKeys.set(cancelKey, { target, pid: upstream.backendPid, secret: upstream.backendSecret });

    socket.write(
      Buffer.concat([
        authentication(12, Buffer.from(final)),
        authentication(0),
        ...upstream.parameterStatus,
        backendKeyData(gatewayPid, gatewaySecret),
        message("Z", upstream.status),
      ]),
    );

    let markReleased: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      markReleased = resolve;
    });
    let release: () => void = markReleased;
    let endTimer: NodeJS.Timeout | null = null;
    let closing = false;
    const closeBoth = (reason: string) => {
      if (closing) return;
      closing = true;
      if (endTimer) clearTimeout(endTimer);
      cancelKeys.delete(cancelKey);
      socket.end();
      upstream.socket.end();
      setTimeout(() => {
        socket.destroy();
        upstream.socket.destroy();
      }, CUT_GRACE_MS).unref();
      void session
        .end(reason)
        .catch((error) => deps.log.error("session end not recorded", { error: String(error) }))
        .finally(() => release());
    };
    const relayed = relay({
      client: socket,
      upstream: upstream.socket,
      session,
      inspect,
      recordValues: (() => {
        const resource = deps.config().resources?.[database];
        return resource?.type === "postgres" && resource.recordParameters === "values";
      })(),
      clientRest: pending.data,
      upstreamRest: upstream.rest,
      onRefused: (refusal) => {
        void deps
          .audit({
            type: "alert.raised",
            actor: grant.user,
            zone: grant.zone,
            resource: database,
            subject: grant.id,
            context: {
              alert: "statement-refused",
              grant: grant.id,
              session: session.id,
              seq: refusal.seq,
              rule: refusal.rule,
              message: refusal.message,
              textSha256: createHash("sha256").update(refusal.text).digest("hex"),
            },
          })
          .catch((error) => deps.log.error("refusal alert not written", { error: String(error) }));
      },
      onEnd: closeBoth,
    });
    // Resolves once the session is closed and its end recorded, so the revocation can count it gone.
    const cut = (reason: string) => {
      relayed.cut("57P01", `terminating connection: ${reason}`);
      return released;
    };
    live.add(cut);
    const held = deps.holder.hold(grant.id, session.id, cut);
    release = () => {
      live.delete(cut);
      held();
      markReleased();
    };
    if (closing) release();
    // The gateway's own watch on the window, beside the scheduler's close.
    const watch = () => {
      const left = grant.endsAt - deps.clock.now();
      if (left <= 0) cut(`grant ${grant.id} expired at ${new Date(grant.endsAt).toISOString()}`);
      else endTimer = setTimeout(watch, Math.min(left, 2 ** 31 - 1));
      endTimer?.unref();
    };
    watch();
  }

  /** Logs in to the target as the grant's login; resolves once it is ready for queries. */
  function connectTarget(target: TargetEndpoint, parameters: Record<string, string>, password: string) {
    return new Promise<{
      socket: Socket;
      backendPid: number;
      backendSecret: number;
      status: string;
      parameterStatus: Buffer[];
      rest: Buffer;
    }>((resolve, reject) => {
      const socket = net.connect(target.port, target.host);
      socket.setNoDelay(true);
      const parameterStatus: Buffer[] = [];
      let backendPid = 0;
      let backendSecret = 0;
      let scram: ReturnType<typeof createScramClient> | null = null;
      let settled = false;
      const fail = (text: string) => {
        if (settled) return;
        settled = true;
        socket.destroy();
        reject(new Refusal("08006", `the gateway could not log in to the target: ${text}`, "target-refused"));
      };
      const timeout = setTimeout(() => fail("it did not answer in time"), 10_000);
      socket.on("error", () => fail("it cannot be reached"));
      socket.on("close", () => fail("it closed the connection"));
      const parser = createFrameParser({
        maxLength: 1024 * 1024,
        handler: {
          frame(type, body, raw) {
            if (settled) return;
            if (type === 0x52) {
              const reader = createBodyReader(body);
              const code = reader.int32();
              if (code === 0) return;
              if (code === 3) socket.write(message("p", cstring(password)));
              else if (code === 5) {
                const salt = reader.bytes(4);
                const inner = createHash("md5")
                  .update(password + parameters.user)
                  .digest("hex");
                const outer = createHash("md5")
                  .update(Buffer.concat([Buffer.from(inner), salt]))
                  .digest("hex");
                socket.write(message("p", cstring(`md5${outer}`)));
              } else if (code === 10) {
                scram = createScramClient(password);
                const first = Buffer.from(scram.first());
                socket.write(message("p", cstring("SCRAM-SHA-256"), int32(first.length), first));
              } else if (code === 11 && scram)
                socket.write(message("p", scram.final(reader.rest().toString("utf8"))));
              else if (code === 12 && scram) {
                if (!scram.check(reader.rest().toString("utf8"))) fail("it did not prove its identity");
              } else fail(`it asked for an authentication method the gateway does not speak (${code})`);
            } else if (type === 0x53) parameterStatus.push(Buffer.from(raw));
            else if (type === 0x4b) {
              const reader = createBodyReader(body);
              backendPid = reader.int32();
              backendSecret = reader.int32();
            } else if (type === 0x45)
              fail(
                errorFields(body).get("C") === "28P01"
                  ? "the login was refused"
                  : `SQLSTATE ${errorFields(body).get("C") ?? "unknown"}`,
              );
            else if (type === 0x5a) {
              settled = true;
              clearTimeout(timeout);
              socket.removeAllListeners("data");
              socket.removeAllListeners("close");
              socket.removeAllListeners("error");
              resolve({
                socket,
                backendPid,
                backendSecret,
                status: String.fromCharCode(body[0] ?? 0x49),
                parameterStatus,
                rest: Buffer.alloc(0),
              });
            }
          },
        },
      });
      socket.on("data", (chunk: Buffer) => {
        try {
          parser.push(chunk);
        } catch {
          fail("it sent a malformed message");
        }
      });
      socket.write(startupMessage(parameters));
    });
  }

  return {
    async start(): Promise<{ host: string; port: number }> {
      const match = /^(.*):(\d+)$/.exec(settings.listen) as RegExpExecArray;
      const host = (match[1] as string).replace(/^\[|\]$/g, "");
      server = net.createServer({ pauseOnConnect: false }, handle);
      server.maxConnections = 10_000;
      await new Promise<void>((resolve, reject) => {
        server?.once("error", reject);
        server?.listen(Number(match[2]), host, () => resolve());
      });
      const bound = server.address() as net.AddressInfo;
      return { host: bound.address, port: bound.port };
    },
    async stop(): Promise<void> {
      for (const cut of [...live]) cut("the gateway is shutting down");
      await new Promise((resolve) => setTimeout(resolve, live.size > 0 ? CUT_GRACE_MS : 0));
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = null;
    },
  };
}
export type PostgresGateway = ReturnType<typeof createPostgresGateway>;

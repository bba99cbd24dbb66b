import type { ChildProcessWithoutNullStreams } from "node:child_process";
import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { StringDecoder } from "node:string_decoder";
import ssh2 from "ssh2";
import type { Clock } from "../../shared/clock.js";
import type { SessionGrant, SessionHandle, SessionHolder } from "../session.service.js";
import { createSftpObserver } from "./sftp-observer.js";
import { openUpstream, type Upstream, type UpstreamCredential, type UpstreamTarget } from "./upstream.js";

const { Server, utils } = ssh2;
type Connection = ssh2.Connection;
type ServerChannel = ssh2.ServerChannel;

/** What the gateway needs to know about the grant a login names. */
export interface SshGatewayGrant {
  grant: SessionGrant;
  endsAt: number;
  resource: string;
  /** The SHA-256 fingerprint (`SHA256:…`) of the key the user gave at activation: the only key that logs in. */
  userKeyFingerprint: string;
  /** The role permits port forwarding (`allowForwarding`). */
  allowForwarding: boolean;
  /** Record what the user types in shells (the resource's `record.input`, default true). */
  recordInput: boolean;
  target: UpstreamTarget;
  /** The grant's key and certificate, held by Firebreak only. */
  credential: UpstreamCredential;
}

export type SshRefusalCode =
  | "LOGIN_INVALID"
  | "GRANT_NOT_FOUND"
  | "GRANT_NOT_ACTIVE"
  | "KEY_MISMATCH"
  | "RATE_LIMITED"
  | "UPSTREAM_FAILED";

export interface SshRefusal {
  code: SshRefusalCode;
  grantId: string | null;
  clientAddress: string | null;
  reason: string;
}

export interface SshGatewayLimits {
  /** Bytes of shell and exec traffic recorded per session; past it the session is cut. */
  maxRecordingBytes: number;
  /** Channels open at once on one connection; more are refused. */
  maxChannels: number;
  /** A connection that has not logged in by then is closed (slow or stuck key exchange). */
  loginGraceMs: number;
  /** Failed logins per client address per minute before every attempt from it is refused. */
  failuresPerMinute: number;
}

export const DEFAULT_SSH_LIMITS: SshGatewayLimits = {
  maxRecordingBytes: 64 * 1024 * 1024,
  maxChannels: 10,
  loginGraceMs: 20_000,
  failuresPerMinute: 10,
};

const GRANT_ID = /^grt_[A-Za-z0-9]{1,64}$/;
const HOST_NAME = /^[a-z0-9][a-z0-9.-]{0,62}$/;
const FORWARD_HOST = /^[A-Za-z0-9.:-]{1,253}$/;
const EXPIRY_TICK_MS = 200;

/** `grt_…` or `grt_…+host`: the grant, and which of the resource's hosts. */
export function parseLogin(username: string): { grantId: string; host: string | null } | null {
  const [grantId, host, ...rest] = username.split("+");
  if (rest.length > 0 || !grantId || !GRANT_ID.test(grantId)) return null;
  if (host !== undefined && !HOST_NAME.test(host)) return null;
  return { grantId, host: host ?? null };
}

/** The message a cut session's channels are sent before the connection closes. */
export function cutMessage(grantId: string, reason: string): string {
  return `\r\nfirebreak: grant ${grantId} ended (${reason}); this session is closed.\r\n`;
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` and unpadded base64. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

function sameKey(fingerprint: string, key: { data: Buffer }): boolean {
  const offered = Buffer.from(fingerprintOf(key.data));
  const wanted = Buffer.from(fingerprint);
  return offered.length === wanted.length && timingSafeEqual(offered, wanted);
}

function verifies(
  key: { algo: string; data: Buffer },
  blob: Buffer,
  signature: Buffer,
  hashAlgo?: string,
): boolean {
  const parsed = utils.parseKey(`${key.algo} ${key.data.toString("base64")}`);
  if (parsed instanceof Error) return false;
  const publicKey = Array.isArray(parsed) ? parsed[0] : parsed;
  return publicKey?.verify(blob, signature, hashAlgo as never) === true;
}

/**
 * The SSH gateway: an ssh2 server users reach with ordinary OpenSSH (`ssh grt_…@gateway`), that
 * logs in to the target as the grant through OpenSSH's client (upstream.ts) and records what
 * passes in the grant's gateway session (../session.service.ts). See NOTES.md.
 */
export function createSshGateway(deps: {
  hostKey: string;
  clock: Clock;
  sessions: {
    start: (
      input: Parameters<import("../session.service.js").GatewaySessions["start"]>[0],
    ) => Promise<SessionHandle>;
  };
  holder: SessionHolder;
  lookup(
    grantId: string,
    host: string | null,
  ): Promise<SshGatewayGrant | { refused: SshRefusalCode; reason: string }>;
  refused(refusal: SshRefusal): Promise<void> | void;
  limits?: Partial<SshGatewayLimits>;
}) {
  const limits = { ...DEFAULT_SSH_LIMITS, ...deps.limits };
  const failures = new Map<string, number[]>();
  const floodReported = new Set<string>();
  const connections = new Set<Connection>();

  function limited(address: string): boolean {
    const now = Date.now();
    const recent = (failures.get(address) ?? []).filter((t) => now - t < 60_000);
    failures.set(address, recent);
    if (recent.length === 0) floodReported.delete(address);
    return recent.length >= limits.failuresPerMinute;
  }
  function failed(address: string) {
    const list = failures.get(address) ?? [];
    list.push(Date.now());
    failures.set(address, list);
  }

  const server = new Server(
    {
      hostKeys: [deps.hostKey],
      ident: "Firebreak_gateway",
    },
    (client, info) => {
      const clientAddress = info.ip ?? null;
      connections.add(client);
      let granted: SshGatewayGrant | null = null;
      let prepared: Awaited<ReturnType<typeof prepare>> | null = null;
      let carried = false;
      let looked: { grantId: string; result: Awaited<ReturnType<typeof deps.lookup>> } | null = null;
      const grace = setTimeout(() => client.end(), limits.loginGraceMs);
      grace.unref();

      const refuse = async (code: SshRefusalCode, grantId: string | null, reason: string) => {
        if (clientAddress) failed(clientAddress);
        try {
          await deps.refused({ code, grantId, clientAddress, reason });
        } catch {
          // Auditing a refusal must not keep the refused connection alive.
        }
      };

      client.on("error", () => {});
      client.on("close", () => {
        clearTimeout(grace);
        connections.delete(client);
        // Logged in to the target but never ready: nothing else will end it.
        if (prepared && !carried) {
          void prepared.upstream.close().catch(() => {});
          void prepared.session.end("client disconnected").catch(() => {});
        }
      });

      client.on("authentication", (ctx) => {
        void (async () => {
          if (clientAddress && limited(clientAddress)) {
            // A flood is audited once per window, not once per attempt.
            if (!floodReported.has(clientAddress)) {
              floodReported.add(clientAddress);
              await deps.refused({
                code: "RATE_LIMITED",
                grantId: null,
                clientAddress,
                reason: "too many failed logins from this address",
              });
            }
            ctx.reject([]);
            client.end();
            return;
          }
          if (ctx.method !== "publickey") return ctx.reject(["publickey"]);
          const login = parseLogin(ctx.username);
          if (!login) {
            await refuse("LOGIN_INVALID", null, "the login does not name a grant (grt_…[+host])");
            return ctx.reject(["publickey"]);
          }
          if (!looked || looked.grantId !== login.grantId)
            looked = { grantId: login.grantId, result: await deps.lookup(login.grantId, login.host) };
          const result = looked.result;
          if ("refused" in result) {
            await refuse(result.refused, login.grantId, result.reason);
            return ctx.reject(["publickey"]);
          }
          if (result.endsAt <= deps.clock.now()) {
            await refuse("GRANT_NOT_ACTIVE", login.grantId, "the grant has ended");
            return ctx.reject(["publickey"]);
          }
          if (!sameKey(result.userKeyFingerprint, ctx.key)) {
            await refuse("KEY_MISMATCH", login.grantId, "the key is not the one given at activation");
            return ctx.reject(["publickey"]);
          }
          if (!ctx.signature || !ctx.blob) return ctx.accept(); // the client asks whether the key would do
          if (!verifies(ctx.key, ctx.blob, ctx.signature, ctx.hashAlgo)) {
            await refuse("KEY_MISMATCH", login.grantId, "the key's signature does not verify");
            return ctx.reject(["publickey"]);
          }
          clearTimeout(grace); // authenticated: the target's login takes what it takes (its own timeout)
          try {
            prepared = await prepare(result, clientAddress);
          } catch (error) {
            await refuse(
              "UPSTREAM_FAILED",
              login.grantId,
              error instanceof Error ? error.message : "the target failed",
            );
            ctx.reject([]);
            client.end();
            return;
          }
          granted = result;
          ctx.accept();
        })().catch(() => {
          ctx.reject([]);
          client.end();
        });
      });

      client.on("ready", () => {
        clearTimeout(grace);
        if (!granted || !prepared) return client.end();
        carried = true;
        carry(client, granted, prepared.session, prepared.upstream);
      });
    },
  );

  /**
   * Before the login is accepted: the session starts (session.started) and the gateway logs in to
   * the target, so a target that refuses it or whose host key is not trusted refuses the user's
   * login too, and no channel request can arrive before there is somewhere to carry it.
   */
  async function prepare(grant: SshGatewayGrant, clientAddress: string | null) {
    const session = await deps.sessions.start({
      grant: grant.grant,
      protocol: "ssh",
      resource: grant.resource,
      clientAddress,
      context: { target: `${grant.target.login}@${grant.target.host}:${grant.target.port}` },
    });
    try {
      return { session, upstream: await openUpstream(grant.target, grant.credential) };
    } catch (error) {
      const reason = error instanceof Error ? error.message : "the gateway could not reach the target";
      session.record("refused", { what: "upstream", reason }, { audit: true });
      await session.end("the gateway could not reach the target").catch(() => {});
      throw error;
    }
  }

  function carry(client: Connection, grant: SshGatewayGrant, session: SessionHandle, up: Upstream) {
    const started = deps.clock.now();
    const seconds = () => Math.round(((deps.clock.now() - started) / 1000) * 1e6) / 1e6;
    let recorded = 0;
    let nextChannel = 0;
    const open = new Map<
      number,
      { stream: ServerChannel | null; child: ChildProcessWithoutNullStreams | null }
    >();
    let ending: Promise<void> | null = null;

    const end = (reason: string): Promise<void> => {
      if (ending) return ending;
      ending = (async () => {
        clearInterval(tick);
        for (const { child } of open.values()) child?.kill("SIGKILL");
        client.end();
        await up.close().catch(() => {});
        await session.end(reason).catch(() => {});
        release();
      })();
      return ending;
    };
    const cut = async (reason: string) => {
      const message = cutMessage(grant.grant.id, reason);
      for (const { stream } of open.values()) {
        try {
          stream?.stderr.write(message);
          stream?.exit("TERM", false, message.trim());
          stream?.end();
        } catch {
          // The channel may be gone already.
        }
      }
      session.record("cut", { reason }, { audit: true });
      await end(reason);
    };
    const release = deps.holder.hold(grant.grant.id, session.id, cut);
    const tick = setInterval(() => {
      if (deps.clock.now() >= grant.endsAt) void cut("expired");
    }, EXPIRY_TICK_MS);
    tick.unref();
    client.on("close", () => void end("client disconnected"));

    const count = (bytes: number) => {
      recorded += bytes;
      if (recorded > limits.maxRecordingBytes) {
        void cut("the session's recording reached its size limit");
        return false;
      }
      return true;
    };

    const pipe = (
      channel: number,
      stream: ServerChannel,
      child: ChildProcessWithoutNullStreams,
      options: {
        recordOutput: boolean;
        recordInput: boolean;
        observe?: ReturnType<typeof createSftpObserver>;
      },
    ) => {
      const slot = open.get(channel);
      if (slot) slot.child = child;
      const out = new StringDecoder("utf8");
      const err = new StringDecoder("utf8");
      const inp = new StringDecoder("utf8");
      child.stdout.on("data", (chunk: Buffer) => {
        options.observe?.server(chunk);
        if (options.recordOutput && count(chunk.length))
          session.record("output", { channel, t: seconds(), data: out.write(chunk) });
      });
      child.stderr.on("data", (chunk: Buffer) => {
        if (options.recordOutput && count(chunk.length))
          session.record("output", { channel, t: seconds(), data: err.write(chunk), stream: "stderr" });
      });
      stream.on("data", (chunk: Buffer) => {
        options.observe?.client(chunk);
        if (options.recordInput && count(chunk.length))
          session.record("input", { channel, t: seconds(), data: inp.write(chunk) });
      });
      stream.pipe(child.stdin);
      child.stdout.pipe(stream, { end: false });
      child.stderr.pipe(stream.stderr, { end: false });
      child.stdin.on("error", () => {});
      stream.on("error", () => {});
      child.once("close", (code, signal) => {
        options.observe?.finish();
        session.record("exit", { channel, exitCode: code, signal }, { audit: true });
        try {
          if (signal) stream.exit(signal.replace(/^SIG/, ""), false, "");
          else stream.exit(code ?? 255);
          stream.end();
        } catch {
          // The client closed the channel first.
        }
        open.delete(channel);
      });
      stream.once("close", () => {
        child.kill("SIGTERM");
        open.delete(channel);
      });
    };

    const admit = (): number | null => {
      if (open.size >= limits.maxChannels) return null;
      const channel = nextChannel++;
      open.set(channel, { stream: null, child: null });
      return channel;
    };

    client.on("session", (acceptSession, rejectSession) => {
      const channel = admit();
      if (channel === null) {
        session.record("refused", { what: "channel", reason: "too many channels" });
        return rejectSession();
      }
      const stream = acceptSession();
      let pty: { term: string; cols: number; rows: number } | null = null;
      let started = false;
      const slot = open.get(channel);
      stream.once("close", () => {
        if (!started) open.delete(channel);
      });
      stream.on("pty", (accept, _reject, info) => {
        // ssh2 reads TERM from pty-req but its types omit it.
        const term = (info as { term?: unknown }).term;
        pty = { term: typeof term === "string" ? term : "xterm", cols: info.cols, rows: info.rows };
        accept?.();
      });
      stream.on("window-change", (accept, _reject, info) => {
        session.record("resize", { channel, t: seconds(), width: info.cols, height: info.rows });
        accept?.();
      });
      stream.on("env", (accept) => accept?.());
      stream.on("auth-agent", (_accept, reject) => {
        session.record(
          "refused",
          { channel, what: "agent-forwarding", reason: "agent forwarding is refused" },
          { audit: true },
        );
        reject?.();
      });
      stream.on("x11", (_accept, reject) => {
        session.record(
          "refused",
          { channel, what: "x11", reason: "X11 forwarding is refused" },
          { audit: true },
        );
        reject?.();
      });
      stream.on("signal", (accept) => accept?.());
      stream.on("shell", (accept) => {
        if (started || !slot) return;
        started = true;
        const size = pty ?? { term: "xterm", cols: 80, rows: 24 };
        session.record(
          "shell",
          { channel, term: size.term, width: size.cols, height: size.rows, pty: pty !== null },
          { audit: true },
        );
        const out = accept();
        slot.stream = out;
        pipe(channel, out, up.channel({ kind: "shell", ...size }), {
          recordOutput: true,
          recordInput: grant.recordInput,
        });
      });
      stream.on("exec", (accept, _reject, info) => {
        if (started || !slot) return;
        started = true;
        session.record("exec", { channel, command: info.command, pty: pty !== null }, { audit: true });
        if (pty)
          session.record("shell", {
            channel,
            term: pty.term,
            width: pty.cols,
            height: pty.rows,
            command: info.command,
            pty: true,
          });
        const out = accept();
        slot.stream = out;
        const child = pty
          ? up.channel({ kind: "pty-exec", command: info.command, ...pty })
          : up.channel({ kind: "exec", command: info.command });
        pipe(channel, out, child, { recordOutput: true, recordInput: pty !== null && grant.recordInput });
      });
      // No "sftp" listener: ssh2 would then serve SFTP itself; the raw channel is wanted here.
      stream.on("subsystem", (accept, reject, info) => {
        if (info.name !== "sftp") {
          session.record(
            "refused",
            { channel, what: "subsystem", name: info.name, reason: "only sftp is carried" },
            { audit: true },
          );
          return reject?.();
        }
        if (started || !slot) return;
        started = true;
        session.record("subsystem", { channel, name: "sftp" }, { audit: true });
        const out = accept();
        slot.stream = out;
        const observe = createSftpObserver((operation) =>
          session.record("sftp", { channel, ...operation }, { audit: true }),
        );
        pipe(channel, out, up.channel({ kind: "subsystem", name: "sftp" }), {
          recordOutput: false,
          recordInput: false,
          observe,
        });
      });
    });

    client.on("tcpip", (accept, reject, info) => {
      const forward = { host: info.destIP, port: info.destPort, originator: `${info.srcIP}:${info.srcPort}` };
      if (!grant.allowForwarding || !FORWARD_HOST.test(info.destIP)) {
        session.record(
          "forward",
          { ...forward, allowed: false, reason: "the role does not allow port forwarding" },
          { audit: true },
        );
        return reject();
      }
      const channel = admit();
      if (channel === null) {
        session.record("refused", { what: "channel", reason: "too many channels" });
        return reject();
      }
      session.record("forward", { channel, ...forward, allowed: true }, { audit: true });
      const stream = accept();
      const slot = open.get(channel);
      if (slot) slot.stream = stream;
      pipe(channel, stream, up.channel({ kind: "forward", host: info.destIP, port: info.destPort }), {
        recordOutput: false,
        recordInput: false,
      });
    });

    client.on("request", (_accept, reject, name, info) => {
      session.record(
        "forward",
        {
          kind: name,
          ...(info as unknown as Record<string, unknown>),
          allowed: false,
          reason: "remote forwarding is refused",
        },
        { audit: true },
      );
      reject?.();
    });
  }

  return {
    /** Listens; resolves with the port (0 picks one). */
    listen(host: string, port: number): Promise<number> {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    /** Stops listening and closes every connection. */
    async close(): Promise<void> {
      for (const client of connections) client.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
export type SshGateway = ReturnType<typeof createSshGateway>;

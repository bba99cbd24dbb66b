import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * The target host as the gateway reaches it, and how its identity is checked. There is no trust
 * on first use: the host must present a certificate signed by one of `hostCertificateAuthorities`
 * or one of the `pinnedHostKeys`; anything else ends the connection before authentication.
 */
export interface UpstreamTarget {
  host: string;
  port: number;
  /** The account to log in as (one of the certificate's principals). */
  login: string;
  /** Public key lines (`ssh-ed25519 AAAA…`) whose host certificates are trusted. */
  hostCertificateAuthorities: readonly string[];
  /** Public key lines the host may present as itself. */
  pinnedHostKeys: readonly string[];
}

/** The grant's key pair and certificate, held by the gateway only; written to a private directory per session. */
export interface UpstreamCredential {
  /** OpenSSH private key (PEM-like text). */
  privateKey: string;
  /** `ssh-ed25519-cert-v01@openssh.com AAAA…` */
  certificate: string;
}

const HOST_KEY_LINE =
  /^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|rsa-sha2-(256|512)|ssh-rsa) [A-Za-z0-9+/]+={0,3}$/;
const LOGIN = /^[a-z0-9_][a-z0-9_.-]{0,62}$/;
const HOST = /^[A-Za-z0-9.:-]{1,253}$/;

function keyLine(line: string): string {
  const [type, blob] = line.trim().split(/\s+/);
  const result = `${type} ${blob}`;
  if (!HOST_KEY_LINE.test(result)) throw new Error("a host key or host CA is not an SSH public key line");
  return result;
}

/** `known_hosts` for exactly this target: CA lines as `@cert-authority`, pinned keys as themselves. */
export function knownHostsFor(target: UpstreamTarget): string {
  const name = target.port === 22 ? target.host : `[${target.host}]:${target.port}`;
  const lines = [
    ...target.hostCertificateAuthorities.map((ca) => `@cert-authority ${name} ${keyLine(ca)}`),
    ...target.pinnedHostKeys.map((key) => `${name} ${keyLine(key)}`),
  ];
  if (lines.length === 0)
    throw new Error("the target has no host CA and no pinned host key: it cannot be trusted");
  return `${lines.join("\n")}\n`;
}

/**
 * One session's connection to the target through OpenSSH's own client (ssh2 cannot present user
 * certificates: its issue #551). A master connection (`ControlMaster`) logs in once, checking the
 * host; each channel is a further `ssh -S` on the master's control socket, so a shell, an exec, an
 * SFTP subsystem or a `-W` forward costs no new login. The key and certificate live in a 0700
 * temporary directory for the session's lifetime only.
 */
export interface Upstream {
  /** Starts a channel: `kind` decides the ssh arguments. The caller pipes the child's stdio. */
  channel(request: UpstreamChannelRequest): ChildProcessWithoutNullStreams;
  close(): Promise<void>;
}

export type UpstreamChannelRequest =
  | { kind: "shell"; term: string; cols: number; rows: number }
  | { kind: "pty-exec"; command: string; term: string; cols: number; rows: number }
  | { kind: "exec"; command: string }
  | { kind: "subsystem"; name: string }
  | { kind: "forward"; host: string; port: number };

function environment(term?: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
    LC_ALL: "C",
    ...(term ? { TERM: term } : {}),
  };
}

const TERM = /^[A-Za-z0-9._+-]{1,64}$/;

export async function openUpstream(
  target: UpstreamTarget,
  credential: UpstreamCredential,
  options: { connectTimeoutMs?: number } = {},
): Promise<Upstream> {
  if (!LOGIN.test(target.login)) throw new Error("the target login is not a valid account name");
  if (!HOST.test(target.host) || !Number.isInteger(target.port) || target.port < 1 || target.port > 65535)
    throw new Error("the target address is not valid");
  const knownHosts = knownHostsFor(target);
  const directory = await mkdtemp(join(tmpdir(), "firebreak-sshgw-"));
  await chmod(directory, 0o700);
  const keyPath = join(directory, "id");
  const control = join(directory, "ctl");
  const base = [
    "-F",
    "/dev/null",
    "-o",
    `UserKnownHostsFile=${join(directory, "known_hosts")}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    "UpdateHostKeys=no",
    "-o",
    "CheckHostIP=no",
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    `ControlPath=${control}`,
    "-l",
    target.login,
    "-p",
    String(target.port),
  ];
  try {
    await writeFile(
      keyPath,
      credential.privateKey.endsWith("\n") ? credential.privateKey : `${credential.privateKey}\n`,
      {
        mode: 0o600,
      },
    );
    await writeFile(`${keyPath}-cert.pub`, `${credential.certificate.trim()}\n`, { mode: 0o600 });
    await writeFile(join(directory, "known_hosts"), knownHosts, { mode: 0o600 });
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }

  const master = spawn(
    "ssh",
    [
      ...base,
      "-i",
      keyPath,
      "-o",
      `CertificateFile=${keyPath}-cert.pub`,
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "IdentityAgent=none",
      "-o",
      "PreferredAuthentications=publickey",
      "-o",
      `ConnectTimeout=${Math.ceil((options.connectTimeoutMs ?? 10_000) / 1000)}`,
      "-o",
      "ControlMaster=yes",
      "-o",
      "ServerAliveInterval=15",
      "-o",
      "ExitOnForwardFailure=yes",
      "-N",
      target.host,
    ],
    { env: environment(), stdio: ["ignore", "ignore", "pipe"] },
  );
  let masterError = "";
  master.stderr.on("data", (chunk: Buffer) => {
    if (masterError.length < 4096) masterError += chunk.toString("utf8");
  });
  const children = new Set<ChildProcessWithoutNullStreams>();
  let closed = false;

  async function close() {
    if (closed) return;
    closed = true;
    for (const child of children) child.kill("SIGKILL");
    if (master.exitCode === null && master.signalCode === null) {
      const gone = new Promise((resolve) => master.once("exit", resolve));
      master.kill("SIGTERM");
      await gone;
    }
    await rm(directory, { recursive: true, force: true });
  }

  // Ready when the control socket answers; a refused host key or login ends the master first.
  const deadline = Date.now() + (options.connectTimeoutMs ?? 10_000) + 2000;
  for (;;) {
    if (master.exitCode !== null || master.signalCode !== null) {
      await close();
      throw new UpstreamError(masterError.trim());
    }
    const ok = await new Promise<boolean>((resolve) => {
      const check = spawn("ssh", [...base, "-O", "check", target.host], {
        env: environment(),
        stdio: "ignore",
      });
      check.once("exit", (code) => resolve(code === 0));
      check.once("error", () => resolve(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      await close();
      throw new UpstreamError("the target did not complete the login in time");
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  return {
    channel(request) {
      if (closed) throw new Error("the upstream connection is closed");
      let args: string[];
      let term: string | undefined;
      switch (request.kind) {
        case "shell":
        case "pty-exec": {
          term = TERM.test(request.term) ? request.term : "xterm";
          const cols = Math.max(1, Math.min(1000, Math.trunc(request.cols) || 80));
          const rows = Math.max(1, Math.min(1000, Math.trunc(request.rows) || 24));
          // ssh without a local terminal asks for a 0×0 pty; the size is set before the shell starts.
          // biome-ignore lint/suspicious/noTemplateCurlyInString: expanded by the remote shell, not here
          const program = request.kind === "shell" ? 'exec "${SHELL:-/bin/sh}" -l' : request.command;
          args = ["-tt", "--", target.host, `stty rows ${rows} cols ${cols} 2>/dev/null; ${program}`];
          break;
        }
        case "exec":
          args = ["-T", "--", target.host, request.command];
          break;
        case "subsystem":
          args = ["-T", "-s", "--", target.host, request.name];
          break;
        case "forward":
          args = ["-W", `[${request.host}]:${request.port}`, "--", target.host];
          break;
      }
      const child = spawn("ssh", [...base, "-o", "ControlMaster=no", ...args], {
        env: environment(term),
        stdio: ["pipe", "pipe", "pipe"],
      });
      children.add(child);
      child.once("exit", () => children.delete(child));
      return child;
    },
    close,
  };
}

/** The target refused the gateway, or its host identity was not the one trusted. */
export class UpstreamError extends Error {
  constructor(readonly sshMessage: string) {
    super(
      /Host key verification failed|REMOTE HOST IDENTIFICATION|No .* host key is known/i.test(sshMessage)
        ? "the target's host key is not one the gateway trusts"
        : "the gateway could not log in to the target",
    );
    this.name = "UpstreamError";
  }
}

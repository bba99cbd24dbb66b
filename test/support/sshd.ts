/**
 * A real OpenSSH server for connector tests: `sshd -D` as a child process on a free loopback port,
 * with everything in its own temporary directory (host key, sshd_config, trusted user CA keys,
 * the KRL file `RevokedKeys` points to, one principals file per account, pid file, log).
 *
 * The server accepts certificates only: `AuthorizedKeysFile none`, no passwords, no keyboard
 * interactive, so a login that succeeds proves the certificate was accepted and nothing else let
 * it in. It logs in as the account running the tests (root here, with `PermitRootLogin
 * prohibit-password`), so no system account is created or changed.
 *
 * If sshd cannot start, `startSshd` throws with sshd's own log: a connector suite that silently
 * skipped its real target would claim coverage it does not have.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

const everySshd = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of everySshd) child.kill("SIGKILL");
});

export interface SshdOptions {
  /** Public key lines sshd trusts as user certificate authorities (`TrustedUserCAKeys`). */
  trustedUserCaKeys: readonly string[];
  /** Certificate principals accepted for the login account (its `AuthorizedPrincipalsFile`). */
  principals: readonly string[];
}

export interface CommandResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface LoginOptions {
  /** Path of the private key. */
  identity: string;
  /** Path of the certificate (`CertificateFile`). */
  certificate: string;
  /** Remote command; `true` when not given. */
  command?: string;
  /** Extra ssh arguments before the destination (e.g. `-W host:port`). */
  extraArgs?: readonly string[];
}

export interface Forward {
  localPort: number;
  /** ssh's stderr so far. */
  stderr(): string;
  stop(): Promise<void>;
}

export interface Sshd {
  readonly host: "127.0.0.1";
  readonly port: number;
  /** The account logins go to. */
  readonly user: string;
  readonly directory: string;
  /** The file sshd's `RevokedKeys` names. */
  readonly revokedKeysPath: string;
  /** Atomically replaces the KRL (sshd reads it at every login, so no restart is needed). */
  writeRevokedKeys(krl: Buffer): Promise<void>;
  /** Deletes the KRL file, to show what sshd does when it is missing. */
  removeRevokedKeys(): Promise<void>;
  /** The current length of sshd's log, to read only what a later step added. */
  logMark(): Promise<number>;
  /** sshd's log from `mark` on. */
  logSince(mark: number): Promise<string>;
  /** Runs `ssh … user@127.0.0.1 command` with only the given key and certificate. */
  login(options: LoginOptions): Promise<CommandResult>;
  /** Starts `ssh -N -L localPort:targetHost:targetPort` and waits until the local port accepts. */
  forward(options: Omit<LoginOptions, "command" | "extraArgs"> & { targetPort: number }): Promise<Forward>;
  stop(): Promise<void>;
}

/** Where sshd lives; `SSHD_PATH` overrides. Throws when it is not installed. */
export function sshdPath(): string {
  const candidates = [process.env.SSHD_PATH, "/usr/sbin/sshd", "/usr/local/sbin/sshd"];
  const found = candidates.find((path): path is string => Boolean(path && existsSync(path)));
  if (!found) {
    throw new Error("sshd is not installed (apt-get install openssh-server, or set SSHD_PATH)");
  }
  return found;
}

function run(file: string, args: readonly string[], timeoutMs = 20_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      [...args],
      { timeout: timeoutMs, env: clientEnvironment(), encoding: "utf8" },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end();
  });
}

/** No agent, no user config: the only credential ssh can use is the one a test names. */
function clientEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.SSH_AUTH_SOCK;
  delete env.SSH_AGENT_PID;
  return env;
}

/** A port nothing listens on right now (the kernel's choice); sshd may still race for it, so callers retry. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Generates an Ed25519 key pair at `path` and `path.pub` with ssh-keygen. */
export async function createUserKeyPair(
  path: string,
): Promise<{ privateKeyPath: string; publicKey: string }> {
  const result = await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "test-user", "-f", path]);
  if (result.code !== 0) throw new Error(`ssh-keygen failed: ${result.stderr}`);
  return { privateKeyPath: path, publicKey: (await readFile(`${path}.pub`, "utf8")).trim() };
}

/**
 * The options every test's OpenSSH client runs with: no user configuration, agent or known-hosts
 * file, only the given key (and certificate), public-key authentication, no prompts.
 */
export function sshClientOptions(identity: string, port: number, certificate?: string): string[] {
  return [
    "-F",
    "/dev/null",
    "-i",
    identity,
    ...(certificate ? ["-o", `CertificateFile=${certificate}`] : []),
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "PreferredAuthentications=publickey",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "LogLevel=ERROR",
    "-p",
    String(port),
  ];
}

function sshClientArgs(port: number, options: Omit<LoginOptions, "command" | "extraArgs">): string[] {
  return sshClientOptions(options.identity, port, options.certificate);
}

async function sleep(ms: number) {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.connect(port, "127.0.0.1");
  });
}

/**
 * Whether something listens on 127.0.0.1:port, read from /proc/net/tcp so that asking neither
 * opens a connection (which would open a forwarding channel) nor races ssh for the port.
 */
async function isListening(port: number): Promise<boolean> {
  const table = await readFile("/proc/net/tcp", "utf8");
  const wanted = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return table.split("\n").some((line) => {
    const fields = line.trim().split(/\s+/);
    return fields[1] === wanted && fields[3] === "0A";
  });
}

function configText(directory: string, port: number, extra: readonly string[]): string {
  return [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(directory, "host_ed25519")}`,
    `PidFile ${join(directory, "sshd.pid")}`,
    `TrustedUserCAKeys ${join(directory, "trusted_user_ca_keys")}`,
    `RevokedKeys ${join(directory, "revoked.krl")}`,
    `AuthorizedPrincipalsFile ${join(directory, "principals")}/%u`,
    "AuthorizedKeysFile none",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "HostbasedAuthentication no",
    "PermitRootLogin prohibit-password",
    "UsePAM no",
    "StrictModes no",
    "UseDNS no",
    // Forwarding is allowed by the server, so only the certificate's extensions can refuse it.
    "AllowTcpForwarding yes",
    "AllowAgentForwarding yes",
    "PermitTTY yes",
    "X11Forwarding no",
    // scp (SFTP since OpenSSH 9) and sftp, for the SSH gateway's transfer tests.
    "Subsystem sftp internal-sftp",
    "LoginGraceTime 20",
    "MaxStartups 100",
    "LogLevel VERBOSE",
    ...extra,
    "",
  ].join("\n");
}

/**
 * `sshd -t`, creating what sshd needs and an earlier run may not have left: run as root it wants
 * its privilege separation directory (Debian: /run/sshd), which only the service unit creates, so
 * a fresh machine or container lacks it until sshd has run once as a service. It is made as the
 * service would make it; any other complaint is thrown with sshd's own words.
 */
async function checkConfiguration(binary: string, configPath: string): Promise<void> {
  let result = await run(binary, ["-t", "-f", configPath]);
  const privsep = /Missing privilege separation directory: (\/\S+)/.exec(result.stderr)?.[1];
  if (result.code !== 0 && privsep) {
    if (process.getuid?.() !== 0) {
      throw new Error(`sshd needs ${privsep}, which only root can create:\n${result.stderr}`);
    }
    await mkdir(privsep, { recursive: true, mode: 0o755 });
    result = await run(binary, ["-t", "-f", configPath]);
  }
  if (result.code !== 0) throw new Error(`sshd rejected its configuration:\n${result.stderr}`);
}

interface Attempt {
  child: ChildProcess;
  port: number;
}

async function launch(
  binary: string,
  directory: string,
  configPath: string,
  logPath: string,
): Promise<Attempt | { failure: string }> {
  const port = await freePort();
  const config = await readFile(configPath, "utf8");
  await writeFile(configPath, config.replace(/^Port \d+$/m, `Port ${port}`));
  await writeFile(logPath, "");
  const child = spawn(binary, ["-D", "-f", configPath, "-E", logPath], {
    cwd: directory,
    stdio: ["ignore", "ignore", "pipe"],
  });
  everySshd.add(child);
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let exited = false;
  child.once("exit", () => {
    exited = true;
    everySshd.delete(child);
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const log = await readFile(logPath, "utf8").catch(() => "");
    if (exited) return { failure: `${log}${stderr}` };
    if (log.includes(`Server listening on 127.0.0.1 port ${port}`) && (await canConnect(port))) {
      return { child, port };
    }
    await sleep(25);
  }
  child.kill("SIGKILL");
  return { failure: `sshd did not listen within 10 s:\n${await readFile(logPath, "utf8").catch(() => "")}` };
}

/** Starts sshd; see the file comment. */
export async function startSshd(options: SshdOptions): Promise<Sshd> {
  const binary = sshdPath();
  const user = userInfo().username;
  const directory = await mkdtemp(join(tmpdir(), "firebreak-sshd-"));
  await chmod(directory, 0o700);
  const configPath = join(directory, "sshd_config");
  const logPath = join(directory, "sshd.log");
  const revokedKeysPath = join(directory, "revoked.krl");
  try {
    const hostKey = await run("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      "",
      "-C",
      "test-host",
      "-f",
      join(directory, "host_ed25519"),
    ]);
    if (hostKey.code !== 0) throw new Error(`ssh-keygen could not create a host key: ${hostKey.stderr}`);
    await writeFile(join(directory, "trusted_user_ca_keys"), `${options.trustedUserCaKeys.join("\n")}\n`);
    // An empty file revokes nothing; a missing one makes sshd refuse every key.
    await writeFile(revokedKeysPath, "");
    await mkdir(join(directory, "principals"));
    await writeFile(join(directory, "principals", user), `${options.principals.join("\n")}\n`);

    // OpenSSH 9.8+ penalises addresses with failed logins; our failures are deliberate. Older
    // servers do not know the option, so it is kept only when `sshd -t` accepts it.
    let extra = ["PerSourcePenalties no"];
    await writeFile(configPath, configText(directory, 2222, extra));
    const check = await run(binary, ["-t", "-f", configPath]);
    if (check.code !== 0 && /Bad configuration option|Unsupported option/i.test(check.stderr)) extra = [];
    await writeFile(configPath, configText(directory, 2222, extra));
    await checkConfiguration(binary, configPath);

    let failure = "";
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const started = await launch(binary, directory, configPath, logPath);
      if ("child" in started) return handle(started, directory, user, revokedKeysPath, logPath);
      failure = started.failure;
      if (!/Address already in use|Cannot bind/i.test(failure)) break;
    }
    throw new Error(`sshd did not start:\n${failure}`);
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
}

function handle(started: Attempt, directory: string, user: string, revokedKeysPath: string, logPath: string) {
  const { child, port } = started;
  const forwards = new Set<ChildProcess>();
  const sshd: Sshd = {
    host: "127.0.0.1",
    port,
    user,
    directory,
    revokedKeysPath,
    async writeRevokedKeys(krl) {
      const temporary = `${revokedKeysPath}.new`;
      await writeFile(temporary, krl);
      await rename(temporary, revokedKeysPath);
    },
    async removeRevokedKeys() {
      await rm(revokedKeysPath, { force: true });
    },
    async logMark() {
      return (await readFile(logPath)).length;
    },
    async logSince(mark) {
      return (await readFile(logPath)).subarray(mark).toString("utf8");
    },
    async login(options) {
      return run("ssh", [
        ...sshClientArgs(port, options),
        ...(options.extraArgs ?? []),
        `${user}@127.0.0.1`,
        options.command ?? "true",
      ]);
    },
    async forward(options) {
      const localPort = await freePort();
      const ssh = spawn(
        "ssh",
        [
          ...sshClientArgs(port, options),
          "-N",
          "-o",
          "ExitOnForwardFailure=yes",
          "-L",
          `127.0.0.1:${localPort}:127.0.0.1:${options.targetPort}`,
          `${user}@127.0.0.1`,
        ],
        { stdio: ["ignore", "ignore", "pipe"], env: clientEnvironment() },
      );
      forwards.add(ssh);
      everySshd.add(ssh);
      let stderr = "";
      ssh.stderr?.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      let exited = false;
      ssh.once("exit", () => {
        exited = true;
        forwards.delete(ssh);
        everySshd.delete(ssh);
      });
      // A test client has nothing to close gracefully; ssh -N sometimes sits on SIGTERM for
      // tens of seconds, so it is killed outright.
      const stop = async () => {
        if (exited) return;
        const gone = new Promise((resolve) => ssh.once("exit", resolve));
        ssh.kill("SIGKILL");
        await gone;
      };
      const deadline = Date.now() + 10_000;
      while (!(await isListening(localPort))) {
        if (exited) throw new Error(`ssh -L exited before listening: ${stderr}`);
        if (Date.now() > deadline) {
          await stop();
          throw new Error(`ssh -L did not listen within 10 s: ${stderr}`);
        }
        await sleep(25);
      }
      return { localPort, stderr: () => stderr, stop };
    },
    async stop() {
      for (const ssh of forwards) ssh.kill("SIGKILL");
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        await gone;
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
  return sshd;
}

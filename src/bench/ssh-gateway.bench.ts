import { type ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, Socket } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { migrateToLatest, openDatabase } from "../db/database.js";
import { createTransactionRunner } from "../db/transaction.js";
import { createGatewaySessions, createSessionHolder } from "../gateway/session.service.js";
import { createSshGateway, fingerprintOf } from "../gateway/ssh/ssh-gateway.js";
import { systemClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";

/**
 * (g) The SSH gateway beside direct SSH, same run, same sshd: copying 100 MiB with scp direct
 * (with the grant's certificate) and through the gateway (throughput ratio; goal ≥ 0.8×), and the
 * round trip of one keystroke echoed by the target's pty (`ssh -tt … cat`), direct and through the
 * gateway (added p50 / p99; goal < 2 ms at p99). Run alone: `npm run build && tsc -p
 * tsconfig.bench.json && node dist-bench/bench/ssh-gateway.bench.js`.
 */
const COPY_BYTES = 100 * 1024 * 1024;
const KEYSTROKES = 300;

function run(file: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { timeout: 300_000, env: { PATH: process.env.PATH } },
      (error, _stdout, stderr) =>
        resolve({
          code: error ? (typeof error.code === "number" ? error.code : null) : 0,
          stderr: String(stderr),
        }),
    );
    child.stdin?.end();
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function keyPair(path: string) {
  const made = await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", path]);
  if (made.code !== 0) throw new Error(made.stderr);
  return { path, publicKey: (await readFile(`${path}.pub`, "utf8")).trim() };
}

async function startSshd(directory: string, caPublicKey: string) {
  const port = await freePort();
  const user = userInfo().username;
  await keyPair(join(directory, "host"));
  await writeFile(join(directory, "ca.pub"), `${caPublicKey}\n`);
  await mkdir(join(directory, "principals"));
  await writeFile(join(directory, "principals", user), "ops\n");
  const config = [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(directory, "host")}`,
    `PidFile ${join(directory, "sshd.pid")}`,
    `TrustedUserCAKeys ${join(directory, "ca.pub")}`,
    `AuthorizedPrincipalsFile ${join(directory, "principals")}/%u`,
    "AuthorizedKeysFile none",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    "UsePAM no",
    "StrictModes no",
    "UseDNS no",
    "Subsystem sftp internal-sftp",
    "",
  ].join("\n");
  await writeFile(join(directory, "sshd_config"), config);
  if (!existsSync("/run/sshd")) await mkdir("/run/sshd", { recursive: true }).catch(() => {});
  const sshd = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(directory, "sshd_config")], {
    stdio: "ignore",
  });
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.connect(port, "127.0.0.1");
    });
    if (ok) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    port,
    user,
    hostKey: (await readFile(join(directory, "host.pub"), "utf8")).trim(),
    stop: () => sshd.kill(),
  };
}

const clientOptions = (identity: string, certificate?: string) => [
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
  "LogLevel=ERROR",
];

async function timedScp(args: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  const result = await run("scp", args);
  if (result.code !== 0) throw new Error(`scp failed: ${result.stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Round trips of one byte echoed by the remote pty, in nanoseconds. */
async function keystrokes(args: string[]): Promise<Float64Array> {
  const child: ChildProcessWithoutNullStreams = spawn("ssh", args, { env: { PATH: process.env.PATH } });
  let waiting: (() => void) | null = null;
  let seen = "";
  child.stdout.on("data", (chunk: Buffer) => {
    seen += chunk.toString("latin1");
    if (waiting && seen.includes("k")) {
      seen = "";
      const done = waiting;
      waiting = null;
      done();
    }
  });
  const once = () =>
    new Promise<void>((resolve) => {
      waiting = resolve;
      child.stdin.write("k");
    });
  // Warm up: the shell is up once the first keystroke comes back.
  await once();
  for (let i = 0; i < 20; i++) await once();
  const samples = new Float64Array(KEYSTROKES);
  for (let i = 0; i < KEYSTROKES; i++) {
    const start = process.hrtime.bigint();
    await once();
    samples[i] = Number(process.hrtime.bigint() - start);
  }
  child.kill("SIGKILL");
  return samples.sort();
}

const pct = (sorted: Float64Array, fraction: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] as number;
const ms = (ns: number) => `${(ns / 1e6).toFixed(3)} ms`;

export async function runSshGatewayBenchmarks(): Promise<void> {
  if (!existsSync("/usr/sbin/sshd")) {
    console.log("\n(g) SSH gateway: skipped, sshd is not installed");
    return;
  }
  const directory = await mkdtemp(join(tmpdir(), "firebreak-bench-sshgw-"));
  const handle = openDatabase(`sqlite:${join(directory, "bench.db")}`);
  let stop = () => {};
  let gatewayClose = async () => {};
  try {
    await migrateToLatest(handle.db);
    const ca = await keyPair(join(directory, "ca"));
    const sshd = await startSshd(await mkdtemp(join(directory, "sshd-")), ca.publicKey);
    stop = sshd.stop;
    const grantKey = await keyPair(join(directory, "grant"));
    const signed = await run("ssh-keygen", [
      "-q",
      "-s",
      ca.path,
      "-I",
      "grt_bench",
      "-n",
      "ops",
      "-V",
      "-5m:+2h",
      `${grantKey.path}.pub`,
    ]);
    if (signed.code !== 0) throw new Error(signed.stderr);
    const user = await keyPair(join(directory, "user"));
    const hostKey = await keyPair(join(directory, "gateway_host"));
    const sessions = createGatewaySessions({
      db: handle.db,
      clock: systemClock,
      inTransaction: createTransactionRunner({ db: handle.db, clock: systemClock, bus: createEventBus() }),
    });
    const grant = {
      grant: { id: "grt_bench", user: "bench", zone: "bench" },
      endsAt: Date.now() + 3_600_000,
      resource: "bench-hosts",
      userKeyFingerprint: fingerprintOf(Buffer.from(user.publicKey.split(" ")[1] as string, "base64")),
      allowForwarding: false,
      recordInput: true,
      target: {
        host: "127.0.0.1",
        port: sshd.port,
        login: sshd.user,
        hostCertificateAuthorities: [],
        pinnedHostKeys: [sshd.hostKey],
      },
      credential: {
        privateKey: await readFile(grantKey.path, "utf8"),
        certificate: await readFile(`${grantKey.path}-cert.pub`, "utf8"),
      },
    };
    const gateway = createSshGateway({
      hostKey: await readFile(hostKey.path, "utf8"),
      clock: systemClock,
      sessions,
      holder: createSessionHolder(),
      lookup: async () => grant,
      refused: () => {},
      limits: { maxRecordingBytes: 1024 * 1024 * 1024 },
    });
    gatewayClose = () => gateway.close();
    const gatewayPort = await gateway.listen("127.0.0.1", 0);

    const source = join(directory, "copy.bin");
    await writeFile(source, Buffer.alloc(COPY_BYTES, 0x5a));
    const direct = [...clientOptions(grantKey.path, `${grantKey.path}-cert.pub`), "-P", String(sshd.port)];
    const through = [...clientOptions(user.path), "-P", String(gatewayPort)];
    const directSeconds = await timedScp([
      ...direct,
      source,
      `${sshd.user}@127.0.0.1:${join(directory, "direct.bin")}`,
    ]);
    const gatewaySeconds = await timedScp([
      ...through,
      source,
      `grt_bench@127.0.0.1:${join(directory, "through.bin")}`,
    ]);
    const mib = COPY_BYTES / 1024 / 1024;

    const sshDirect = [
      ...clientOptions(grantKey.path, `${grantKey.path}-cert.pub`),
      "-p",
      String(sshd.port),
      "-tt",
      `${sshd.user}@127.0.0.1`,
      "cat",
    ];
    const sshThrough = [
      ...clientOptions(user.path),
      "-p",
      String(gatewayPort),
      "-tt",
      "grt_bench@127.0.0.1",
      "cat",
    ];
    const echoDirect = await keystrokes(sshDirect);
    const echoThrough = await keystrokes(sshThrough);

    console.log("\n(g) SSH gateway vs direct SSH (same sshd, same run; the machine is shared)");
    console.log(
      `scp ${mib} MiB upload   direct ${(mib / directSeconds).toFixed(1)} MiB/s   gateway ${(mib / gatewaySeconds).toFixed(1)} MiB/s   ratio ${(directSeconds / gatewaySeconds).toFixed(2)}× (goal ≥ 0.8×)`,
    );
    console.log(
      `keystroke echo (${KEYSTROKES})  direct p50 ${ms(pct(echoDirect, 0.5))} p99 ${ms(pct(echoDirect, 0.99))}   gateway p50 ${ms(pct(echoThrough, 0.5))} p99 ${ms(pct(echoThrough, 0.99))}   added p50 ${ms(pct(echoThrough, 0.5) - pct(echoDirect, 0.5))} p99 ${ms(pct(echoThrough, 0.99) - pct(echoDirect, 0.99))} (goal < 2 ms at p99)`,
    );
  } finally {
    await gatewayClose().catch(() => {});
    stop();
    await handle.close();
    await rm(directory, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith("ssh-gateway.bench.js")) await runSshGatewayBenchmarks();

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server as NetServer, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ssh2 from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/databases.js";
import { skipUnlessAvailable } from "../../../test/support/requirements.js";
import {
  createUserKeyPair,
  type Sshd,
  sshClientOptions,
  sshdPath,
  startSshd,
} from "../../../test/support/sshd.js";
import { createTransactionRunner } from "../../db/transaction.js";
import { createManualClock } from "../../shared/clock.js";
import { createEventBus } from "../../shared/events.js";
import { createGatewaySessions, createSessionHolder, type GatewaySessions } from "../session.service.js";
import type { TranscriptRecord } from "../transcript.js";
import { execTranscript, toAsciicast } from "./cast.js";
import { createSshGateway, type SshGateway, type SshGatewayGrant, type SshRefusal } from "./ssh-gateway.js";

function run(
  file: string,
  args: string[],
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { timeout: 30_000, encoding: "utf8", env: { PATH: process.env.PATH } },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr }),
    );
    child.stdin?.end(input ?? "");
  });
}

/** ssh-keygen's own fingerprint of a public key file, so the gateway's is checked against OpenSSH's. */
async function fingerprint(path: string): Promise<string> {
  const result = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", path]);
  return result.stdout.split(" ")[1] as string;
}

let available = true;
try {
  sshdPath();
} catch {
  available = false;
}
const skip = skipUnlessAvailable(available, "SSH gateway", "sshd is not installed");

describe.skipIf(skip)("SSH gateway against a real sshd", () => {
  let directory: string;
  let sshd: Sshd;
  let database: TestDatabase;
  let sessions: GatewaySessions;
  let gateway: SshGateway;
  let port: number;
  const clock = createManualClock(Date.now());
  const holder = createSessionHolder();
  const refusals: SshRefusal[] = [];
  const grants = new Map<string, SshGatewayGrant | { refused: "GRANT_NOT_ACTIVE"; reason: string }>();
  let userKey: string;
  let otherKey: string;
  let base: Omit<SshGatewayGrant, "grant" | "endsAt">;

  function grant(id: string, changes: Partial<SshGatewayGrant> = {}): SshGatewayGrant {
    const value = {
      ...base,
      grant: { id, user: "alice", zone: "payments-app" },
      endsAt: clock.now() + 3_600_000,
      ...changes,
    };
    grants.set(id, value);
    return value;
  }

  const sshArgs = (key: string, gatewayPort = port) => sshClientOptions(key, gatewayPort);
  const ssh = (login: string, command: string, key = userKey, extra: string[] = []) =>
    run("ssh", [...sshArgs(key), ...extra, `${login}@127.0.0.1`, command]);

  async function recordsOf(grantId: string): Promise<TranscriptRecord[]> {
    const list = await sessions.list(grantId);
    const all: TranscriptRecord[] = [];
    for (const session of list)
      for (const record of await sessions.records(session.id)) if ("kind" in record) all.push(record);
    return all;
  }
  async function until(check: () => boolean | Promise<boolean>, what: string) {
    for (let i = 0; i < 400; i++) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "firebreak-sshgw-test-"));
    const ca = await createUserKeyPair(join(directory, "ca"));
    sshd = await startSshd({ trustedUserCaKeys: [ca.publicKey], principals: ["ops"] });
    const grantKey = await createUserKeyPair(join(directory, "grant"));
    const signed = await run("ssh-keygen", [
      "-q",
      "-s",
      join(directory, "ca"),
      "-I",
      "grt_test",
      "-n",
      sshd.user === "root" ? "ops" : "ops",
      "-V",
      "-5m:+2h",
      `${grantKey.privateKeyPath}.pub`,
    ]);
    expect(signed.code, signed.stderr).toBe(0);
    userKey = (await createUserKeyPair(join(directory, "user"))).privateKeyPath;
    otherKey = (await createUserKeyPair(join(directory, "other"))).privateKeyPath;
    const hostKey = await createUserKeyPair(join(directory, "gateway_host"));
    base = {
      resource: "payments-hosts",
      userKeyFingerprint: await fingerprint(`${userKey}.pub`),
      allowForwarding: false,
      recordInput: true,
      target: {
        host: "127.0.0.1",
        port: sshd.port,
        login: sshd.user,
        hostCertificateAuthorities: [],
        pinnedHostKeys: [(await readFile(join(sshd.directory, "host_ed25519.pub"), "utf8")).trim()],
      },
      credential: {
        privateKey: await readFile(grantKey.privateKeyPath, "utf8"),
        certificate: await readFile(join(directory, "grant-cert.pub"), "utf8"),
      },
    };
    database = await createTestDatabase("sqlite");
    const db = database.handle.db;
    sessions = createGatewaySessions({
      db,
      clock,
      inTransaction: createTransactionRunner({ db, clock, bus: createEventBus() }),
    });
    gateway = createSshGateway({
      hostKey: await readFile(hostKey.privateKeyPath, "utf8"),
      clock,
      sessions,
      holder,
      lookup: async (id) => grants.get(id) ?? { refused: "GRANT_NOT_FOUND", reason: "no such grant" },
      refused: (refusal) => {
        refusals.push(refusal);
      },
      limits: { loginGraceMs: 1500, failuresPerMinute: 1000, maxChannels: 5, maxRecordingBytes: 1024 * 1024 },
    });
    port = await gateway.listen("127.0.0.1", 0);
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    await sshd?.stop();
    await database?.drop();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it("runs an exec on the host as the grant and records its command line and exit code", async () => {
    grant("grt_exec1");
    const result = await ssh("grt_exec1", "echo hello-$((40+2)); exit 7");
    expect(result.stdout, `${result.stderr} ${JSON.stringify(refusals)}`).toBe("hello-42\n");
    expect(result.code).toBe(7);
    await until(async () => (await sessions.list("grt_exec1"))[0]?.endedAt != null, "the session to end");
    const records = await recordsOf("grt_exec1");
    expect(records.find((r) => r.kind === "exec")?.payload.command).toBe("echo hello-$((40+2)); exit 7");
    expect(records.find((r) => r.kind === "exit")?.payload.exitCode).toBe(7);
    expect(
      records
        .filter((r) => r.kind === "output")
        .map((r) => r.payload.data)
        .join(""),
    ).toBe("hello-42\n");
    expect(execTranscript(records)).toMatch(/\$ echo hello-\$\(\(40\+2\)\); exit 7\n.*exit 7/);
    expect((await sessions.verify()).ok).toBe(true);
  });

  it("carries a shell through a pseudo-terminal and records what was typed and shown as asciicast", async () => {
    grant("grt_shell1");
    const child = spawn("ssh", [...sshArgs(userKey), "-tt", "grt_shell1@127.0.0.1"], {
      env: { PATH: process.env.PATH },
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stdin.write("echo marker-$((6*7))\n");
    await until(() => output.includes("marker-42"), "the shell to answer");
    child.stdin.write("exit\n");
    await new Promise((resolve) => child.once("exit", resolve));
    await until(async () => (await sessions.list("grt_shell1"))[0]?.endedAt != null, "the session to end");
    const records = await recordsOf("grt_shell1");
    const cast = toAsciicast(records);
    expect(cast).not.toBeNull();
    const [header, ...events] = (cast as string)
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(header).toMatchObject({ version: 2 });
    const typed = events
      .filter((e) => e[1] === "i")
      .map((e) => e[2])
      .join("");
    const shown = events
      .filter((e) => e[1] === "o")
      .map((e) => e[2])
      .join("");
    expect(typed).toContain("echo marker-$((6*7))");
    expect(shown).toContain("marker-42");
  });

  it("records scp uploads and downloads with their file names and sizes", async () => {
    grant("grt_scp1");
    const local = join(directory, "upload.bin");
    await writeFile(local, Buffer.alloc(300_000, 7));
    const remote = join(directory, "remote.bin");
    const scpArgs = sshArgs(userKey).map((a) => (a === "-p" ? "-P" : a));
    const up = await run("scp", [...scpArgs, local, `grt_scp1@127.0.0.1:${remote}`]);
    expect(
      up.code,
      up.stderr +
        JSON.stringify(refusals) +
        JSON.stringify((await recordsOf("grt_scp1")).map((r) => [r.kind, r.payload])),
    ).toBe(0);
    expect((await stat(remote)).size).toBe(300_000);
    const back = join(directory, "back.bin");
    const down = await run("scp", [...scpArgs, `grt_scp1@127.0.0.1:${remote}`, back]);
    expect(down.code, down.stderr).toBe(0);
    await until(
      async () => (await sessions.list("grt_scp1")).every((s) => s.endedAt != null),
      "the sessions to end",
    );
    const files = (await recordsOf("grt_scp1")).filter((r) => r.kind === "sftp" && r.payload.op === "file");
    expect(files.map((r) => r.payload)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: remote, bytesWritten: 300_000 }),
        expect.objectContaining({ path: remote, bytesRead: 300_000 }),
      ]),
    );
  });

  it("refuses a forward the role does not allow and carries one it does, recording both", async () => {
    const echo: NetServer = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    const echoPort = (echo.address() as { port: number }).port;
    try {
      grant("grt_fwdno");
      const refused = await ssh("grt_fwdno", "", userKey, ["-W", `127.0.0.1:${echoPort}`]);
      expect(refused.code).not.toBe(0);
      grant("grt_fwdyes", { allowForwarding: true });
      const allowed = await run(
        "ssh",
        [...sshArgs(userKey), "-W", `127.0.0.1:${echoPort}`, "grt_fwdyes@127.0.0.1"],
        "ping-through\n",
      );
      expect(
        allowed.stdout,
        allowed.stderr + JSON.stringify((await recordsOf("grt_fwdyes")).map((r) => [r.kind, r.payload])),
      ).toBe("ping-through\n");
      await until(async () => (await sessions.list("grt_fwdyes"))[0]?.endedAt != null, "the session to end");
      const no = (await recordsOf("grt_fwdno")).find((r) => r.kind === "forward");
      const yes = (await recordsOf("grt_fwdyes")).find((r) => r.kind === "forward");
      expect(no?.payload).toMatchObject({ allowed: false, port: echoPort });
      expect(yes?.payload).toMatchObject({ allowed: true, port: echoPort });
    } finally {
      echo.close();
    }
  });

  it("refuses agent forwarding and records it", async () => {
    grant("grt_agent1");
    const agent = spawn("ssh-agent", ["-D", "-a", join(directory, "agent.sock")], { stdio: "ignore" });
    try {
      await until(() => existsSync(join(directory, "agent.sock")), "ssh-agent");
      const result = await new Promise<{ stdout: string }>((resolve) =>
        execFile(
          "ssh",
          [
            ...sshArgs(userKey).map((a) => (a === "IdentityAgent=none" ? "ForwardAgent=yes" : a)),
            "-A",
            "grt_agent1@127.0.0.1",
            // biome-ignore lint/suspicious/noTemplateCurlyInString: expanded by the remote shell
            'echo "${SSH_AUTH_SOCK:-none}"',
          ],
          { env: { PATH: process.env.PATH, SSH_AUTH_SOCK: join(directory, "agent.sock") }, encoding: "utf8" },
          (_e, stdout) => resolve({ stdout }),
        ),
      );
      expect(
        result.stdout.trim(),
        JSON.stringify((await recordsOf("grt_agent1")).map((r) => [r.kind, r.payload])),
      ).toBe("none");
      const refused = (await recordsOf("grt_agent1")).find((r) => r.kind === "refused");
      expect(refused?.payload.what).toBe("agent-forwarding");
    } finally {
      agent.kill();
    }
  });

  it("cuts a shell at expiry (injected clock) with a message naming the grant, and holds nothing after", async () => {
    const expiring = grant("grt_cut1");
    const child = spawn("ssh", [...sshArgs(userKey), "-tt", "grt_cut1@127.0.0.1"], {
      env: { PATH: process.env.PATH },
    });
    let seen = "";
    child.stdout.on("data", (chunk: Buffer) => (seen += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (seen += chunk.toString()));
    child.stdin.write("echo ready-$((1+1))\n");
    await until(() => seen.includes("ready-2"), "the shell");
    expect(holder.count("grt_cut1")).toBe(1);
    const exited = new Promise((resolve) => child.once("exit", resolve));
    clock.set(expiring.endsAt);
    await exited;
    expect(seen).toContain("firebreak: grant grt_cut1 ended (expired)");
    await until(() => holder.count("grt_cut1") === 0, "the session to be released");
    const ended = (await sessions.list("grt_cut1"))[0];
    expect(ended?.endReason).toBe("expired");
    clock.set(Date.now());
  });

  it("cuts every session of a revoked grant through the holder, and a replay after the end is refused", async () => {
    grant("grt_rev1");
    const children: ChildProcess[] = [];
    for (let i = 0; i < 2; i++) {
      const child = spawn("ssh", [...sshArgs(userKey), "grt_rev1@127.0.0.1", "sleep 30"], {
        env: { PATH: process.env.PATH },
      });
      children.push(child);
    }
    await until(
      async () =>
        holder.count("grt_rev1") === 2 &&
        (await recordsOf("grt_rev1")).filter((r) => r.kind === "exec").length === 2,
      "two sessions",
    );
    const exits = children.map((child) => new Promise((resolve) => child.once("exit", resolve)));
    expect(await holder.cutGrant("grt_rev1", "revoked by erin")).toBe(0);
    await Promise.all(exits);
    grants.set("grt_rev1", { refused: "GRANT_NOT_ACTIVE", reason: "the grant was revoked" });
    const replay = await ssh("grt_rev1", "true");
    expect(replay.code).toBe(255);
    expect(refusals.some((r) => r.grantId === "grt_rev1" && r.code === "GRANT_NOT_ACTIVE")).toBe(true);
  });

  it("refuses a host presenting a key it is not trusted with, before any login", async () => {
    const other = (await readFile(`${otherKey}.pub`, "utf8")).trim();
    grant("grt_badhost", { target: { ...base.target, pinnedHostKeys: [other] } });
    const result = await ssh("grt_badhost", "true");
    expect(result.code).not.toBe(0);
    await until(() => refusals.some((r) => r.grantId === "grt_badhost"), "the refusal");
    expect(refusals.find((r) => r.grantId === "grt_badhost")).toMatchObject({
      code: "UPSTREAM_FAILED",
      reason: "the target's host key is not one the gateway trusts",
    });
  });

  it("refuses a wrong key and another user's grant, audited", async () => {
    grant("grt_mine1");
    const wrong = await ssh("grt_mine1", "true", otherKey);
    expect(wrong.code).toBe(255);
    grant("grt_theirs1", {
      grant: { id: "grt_theirs1", user: "bob", zone: "payments-app" },
      userKeyFingerprint: await fingerprint(`${otherKey}.pub`),
    });
    const theirs = await ssh("grt_theirs1", "true", userKey);
    expect(theirs.code).toBe(255);
    expect(refusals.filter((r) => r.code === "KEY_MISMATCH").map((r) => r.grantId)).toEqual(
      expect.arrayContaining(["grt_mine1", "grt_theirs1"]),
    );
    expect(await sessions.list("grt_theirs1")).toEqual([]);
  });

  it("cuts a session whose recording passes its bound, without harm to another session", async () => {
    grant("grt_big1");
    grant("grt_small1");
    const big = ssh("grt_big1", "head -c 3000000 /dev/zero | tr '\\0' x");
    const small = await ssh("grt_small1", "echo fine");
    expect(small.stdout).toBe("fine\n");
    const result = await big;
    expect(result.stdout.length).toBeLessThan(3_000_000);
    await until(async () => (await sessions.list("grt_big1"))[0]?.endedAt != null, "the session to end");
    expect((await sessions.list("grt_big1"))[0]?.endReason).toBe(
      "the session's recording reached its size limit",
    );
  });

  it("refuses channels past the limit on one connection and closes a client that never finishes key exchange", async () => {
    grant("grt_many1");
    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.once("ready", () => resolve()).once("error", reject);
      client.connect({
        host: "127.0.0.1",
        port,
        username: "grt_many1",
        privateKey: readFileSync(userKey, "utf8"),
      });
    });
    const outcomes = await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<boolean>((resolve) =>
            client.exec("sleep 5", (error, channel) => {
              if (error) return resolve(false);
              channel.on("data", () => {});
              resolve(true);
            }),
          ),
      ),
    );
    expect(outcomes.filter(Boolean).length).toBe(5);
    client.end();

    const stuck = new Socket();
    const closed = new Promise((resolve) => stuck.once("close", resolve));
    stuck.connect(port, "127.0.0.1", () => stuck.write("SSH-2.0-stuck\r\n"));
    stuck.on("data", () => {});
    stuck.on("error", () => {});
    grant("grt_during1");
    expect((await ssh("grt_during1", "echo alive")).stdout).toBe("alive\n");
    await closed;
  });

  it("rate-limits an address after repeated failures", async () => {
    const limited = createSshGateway({
      hostKey: await readFile(join(directory, "gateway_host"), "utf8"),
      clock,
      sessions,
      holder,
      lookup: async () => ({ refused: "GRANT_NOT_FOUND", reason: "no such grant" }),
      refused: (refusal) => {
        refusals.push(refusal);
      },
      limits: { failuresPerMinute: 3 },
    });
    const limitedPort = await limited.listen("127.0.0.1", 0);
    try {
      for (let i = 0; i < 4; i++)
        await run("ssh", [...sshArgs(userKey, limitedPort), "grt_nobody1@127.0.0.1", "true"]);
      expect(refusals.some((r) => r.code === "RATE_LIMITED")).toBe(true);
    } finally {
      await limited.close();
    }
  });
});

import { execFile as realExecFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { createUserKeyPair, type Sshd, sshdPath, startSshd } from "../../../test/support/sshd.js";
import type { ResourceConfig } from "../../config/schema.js";
import { FirebreakError } from "../../errors.js";
import type {
  ConnectorDeps,
  IssueContext,
  IssuedCredential,
  RevokeContext,
} from "../../plugins/contracts.js";
import { newId } from "../../shared/ids.js";
import { serialForGrant } from "./krl.js";
import {
  createSshConnector,
  type RevokedCertificate,
  type SshConnector,
  type SshConnectorDeps,
  sshdConfigLines,
} from "./ssh.connector.js";

/**
 * Every process any code in this file starts goes through this spy, so the tests can prove that
 * hostile input never reaches a process and that no call ever asks for a shell.
 */
const processCalls = vi.hoisted(() => [] as { file: string; args: unknown; options: unknown }[]);
vi.mock("node:child_process", async (importOriginal) => {
  const actual = await importOriginal<typeof import("node:child_process")>();
  const execFile = (...parameters: unknown[]) => {
    processCalls.push({ file: String(parameters[0]), args: parameters[1], options: parameters[2] });
    return (actual.execFile as (...rest: unknown[]) => unknown)(...parameters);
  };
  return { ...actual, execFile };
});

const ZONE = "payments-app";
const OTHER_ZONE = "payments-db";
const MINUTE = 60_000;

const resource: ResourceConfig = {
  zone: ZONE,
  type: "ssh",
  address: "127.0.0.1:22",
  roles: {
    operator: { principals: ["ops"] },
    dba: { principals: ["dba"] },
    forwarder: { principals: ["ops"], allowForwarding: true },
  },
};

/** A keys store typed against the contract: creates once per (kind, zone), returns the same key after. */
function createKeyStore() {
  const stored = new Map<string, Promise<{ privateKey: string; publicKey: string }>>();
  const requestedZones: string[] = [];
  const keys: ConnectorDeps["keys"] = {
    getOrCreate(kind, zone, create) {
      requestedZones.push(zone);
      const key = `${kind}:${zone}`;
      let entry = stored.get(key);
      if (!entry) {
        entry = create();
        stored.set(key, entry);
      }
      return entry;
    },
  };
  return { keys, requestedZones, stored };
}

function execute(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    realExecFile(file, args, { encoding: "utf8" }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function expectCode(promise: Promise<unknown>, code: string, input?: unknown) {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error, `expected ${code} for ${JSON.stringify(input)}`).toBeInstanceOf(FirebreakError);
  expect((error as FirebreakError).code).toBe(code);
}

/** Connects to a local port and returns everything received until the other side closes. */
function readAll(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no close within 10 s"));
    }, 10_000);
    socket.on("data", (chunk) => {
      data += chunk.toString();
    });
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.once("error", () => undefined);
    socket.connect(port, "127.0.0.1");
  });
}

function percentile(sorted: number[], fraction: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
  return sorted[index] ?? Number.NaN;
}

describe("SSH connector against a real sshd", () => {
  let sshd: Sshd;
  let work: string;
  let userKey: { privateKeyPath: string; publicKey: string };
  let store: ReturnType<typeof createKeyStore>;
  let connector: SshConnector;
  const published: { zone: string; krl: Buffer; revoked: readonly RevokedCertificate[] }[] = [];
  let echoServer: Server;
  let echoPort: number;

  const deps = (): SshConnectorDeps => ({
    secret: () => {
      throw new Error("the SSH connector needs no secret references");
    },
    keys: store.keys,
    now: () => Date.now(),
    async publishRevocations(zone, krl, revoked) {
      published.push({ zone, krl, revoked });
      if (zone === ZONE) await sshd.writeRevokedKeys(krl);
    },
  });

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "firebreak-ssh-test-"));
    userKey = await createUserKeyPair(join(work, "id_ed25519"));
    store = createKeyStore();
    connector = createSshConnector(deps());
    // The CA is created on first use; sshd trusts this zone's CA only.
    sshd = await startSshd({ trustedUserCaKeys: [await connector.caPublicKey(ZONE)], principals: ["ops"] });
    echoServer = createServer((socket) => socket.end("hello through the tunnel\n"));
    await new Promise<void>((resolve) => echoServer.listen(0, "127.0.0.1", resolve));
    const address = echoServer.address();
    echoPort = typeof address === "object" && address ? address.port : 0;
  });

  afterAll(async () => {
    await connector?.close();
    await sshd?.stop();
    if (echoServer) await new Promise((resolve) => echoServer.close(resolve));
    if (work) await rm(work, { recursive: true, force: true });
  });

  function issueContext(overrides: Partial<IssueContext> = {}): IssueContext {
    const now = Date.now();
    return {
      grantId: newId("grt"),
      user: "alice",
      zone: ZONE,
      resourceName: "payments-hosts",
      resource,
      role: "operator",
      startsAt: now,
      endsAt: now + 10 * MINUTE,
      sourceZone: null,
      sourceCidrs: [],
      clientAddress: null,
      publicKey: userKey.publicKey,
      ...overrides,
    };
  }

  function revokeContext(issued: IssuedCredential, context: IssueContext): RevokeContext {
    return {
      grantId: context.grantId,
      user: context.user,
      resourceName: context.resourceName,
      resource: context.resource,
      externalId: issued.externalId,
      detail: issued.detail,
    };
  }

  async function certificateFile(issued: IssuedCredential): Promise<string> {
    const path = join(work, `${issued.externalId}-cert.pub`);
    await writeFile(path, issued.secret ?? "", { mode: 0o600 });
    return path;
  }

  async function login(issued: IssuedCredential, extraArgs: string[] = []) {
    return sshd.login({
      identity: userKey.privateKeyPath,
      certificate: await certificateFile(issued),
      extraArgs,
    });
  }

  /** Logs in with the issued certificate and returns the exit code and what sshd logged meanwhile. */
  async function attempt(issued: IssuedCredential, extraArgs: string[] = []) {
    const mark = await sshd.logMark();
    const result = await login(issued, extraArgs);
    return { ...result, log: await sshd.logSince(mark) };
  }

  it("signs a certificate that logs in inside the grant window, with exactly the granted rights", async () => {
    const context = issueContext();
    const issued = await connector.issue(context);

    expect(issued.externalId).toBe(context.grantId);
    expect(connector.plannedExternalId(context.grantId, context.user)).toBe(issued.externalId);
    expect(issued.detail).toMatchObject({
      keyId: context.grantId,
      serial: serialForGrant(context.grantId).toString(),
      principals: ["ops"],
      validBefore: new Date(Math.floor(context.endsAt / 1000) * 1000).toISOString(),
      host: "127.0.0.1:22",
      forwarding: false,
      sourceAddresses: [],
    });
    expect(String(issued.detail.caFingerprint)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(JSON.stringify(issued.detail)).not.toContain("PRIVATE KEY");
    expect(issued.secret).toMatch(/^ssh-ed25519-cert-v01@openssh\.com [A-Za-z0-9+/=]+ /);

    const listing = await execute("ssh-keygen", ["-L", "-f", await certificateFile(issued)]);
    expect(listing.code).toBe(0);
    expect(listing.stdout).toContain(`Key ID: "${context.grantId}"`);
    expect(listing.stdout).toContain(`Serial: ${serialForGrant(context.grantId)}`);
    expect(listing.stdout).toMatch(/Principals: \n\s+ops\n/);
    expect(listing.stdout).toMatch(/Critical Options: \(none\)/);
    expect(listing.stdout).toMatch(/Extensions: \n\s+permit-pty\n\s*$/);
    expect(listing.stdout).toContain(`Signing CA: ED25519 ${issued.detail.caFingerprint}`);

    const result = await attempt(issued);
    expect(result.code, result.stderr).toBe(0);
    expect(result.log).toContain(`Accepted certificate ID "${context.grantId}"`);
  });

  it("refuses a certificate whose window has ended", async () => {
    const now = Date.now();
    const context = issueContext({ startsAt: now - 30 * MINUTE, endsAt: now - 5 * MINUTE });
    const issued = await connector.issue(context);
    const result = await attempt(issued);
    expect(result.code).not.toBe(0);
    expect(result.log).toContain("Certificate invalid: expired");
  });

  it("refuses a certificate whose window has not started", async () => {
    const now = Date.now();
    const context = issueContext({ startsAt: now + 10 * MINUTE, endsAt: now + 20 * MINUTE });
    const result = await attempt(await connector.issue(context));
    expect(result.code).not.toBe(0);
    expect(result.log).toContain("Certificate invalid: not yet valid");
  });

  it("refuses a certificate for a principal the host does not map to the account", async () => {
    const issued = await connector.issue(issueContext({ role: "dba" }));
    expect(issued.detail.principals).toEqual(["dba"]);
    const result = await attempt(issued);
    expect(result.code).not.toBe(0);
    expect(result.log).toContain("Certificate does not contain an authorized principal");
  });

  it("refuses a certificate signed by another zone's CA", async () => {
    const other: ResourceConfig = { ...resource, zone: OTHER_ZONE };
    const issued = await connector.issue(issueContext({ zone: OTHER_ZONE, resource: other }));
    expect(issued.detail.caFingerprint).not.toBe(
      (await connector.issue(issueContext())).detail.caFingerprint,
    );
    const result = await attempt(issued);
    expect(result.code).not.toBe(0);
    expect(result.log).toContain(`Failed publickey for ${sshd.user}`);
    expect(result.log).toContain(`CA ED25519 ${issued.detail.caFingerprint}`);
    expect(result.log).not.toContain("Accepted");
  });

  it("binds the certificate to the source zone's CIDRs, or to the client address", async () => {
    const outside = await connector.issue(issueContext({ sourceCidrs: ["10.99.0.0/24"] }));
    expect(outside.detail.sourceAddresses).toEqual(["10.99.0.0/24"]);
    const refused = await attempt(outside);
    expect(refused.code).not.toBe(0);
    expect(refused.log).toContain("not from a permitted source address (127.0.0.1)");

    // Host bits in a zone CIDR are cleared (ssh-keygen refuses them); the network is what is meant.
    const inside = await connector.issue(issueContext({ sourceCidrs: ["127.0.0.5/8"] }));
    expect(inside.detail.sourceAddresses).toEqual(["127.0.0.0/8"]);
    expect((await attempt(inside)).code).toBe(0);

    // Without zone CIDRs the client address binds it, IPv4-mapped as Node reports it.
    const client = await connector.issue(issueContext({ clientAddress: "::ffff:127.0.0.1" }));
    expect(client.detail.sourceAddresses).toEqual(["127.0.0.1/32"]);
    expect((await attempt(client)).code).toBe(0);
    const elsewhere = await connector.issue(issueContext({ clientAddress: "10.99.0.7" }));
    const elsewhereResult = await attempt(elsewhere);
    expect(elsewhereResult.code).not.toBe(0);
    expect(elsewhereResult.log).toContain("not from a permitted source address");
  });

  it("refuses port forwarding unless the role allows it", async () => {
    const plain = await connector.issue(issueContext());
    const forwarder = await connector.issue(issueContext({ role: "forwarder" }));
    expect(forwarder.detail.forwarding).toBe(true);
    const listing = await execute("ssh-keygen", ["-L", "-f", await certificateFile(forwarder)]);
    expect(listing.stdout).toMatch(/permit-agent-forwarding\n\s+permit-port-forwarding\n\s+permit-pty/);

    // ssh -N -L: the tunnel comes up (the login is fine) but sshd refuses every channel through it.
    const refusedMark = await sshd.logMark();
    const refused = await sshd.forward({
      identity: userKey.privateKeyPath,
      certificate: await certificateFile(plain),
      targetPort: echoPort,
    });
    try {
      expect(await readAll(refused.localPort)).toBe("");
    } finally {
      await refused.stop();
    }
    const refusedLog = await sshd.logSince(refusedMark);
    expect(refusedLog).toMatch(/refused local port forward/);

    // The same tunnel with a certificate whose role allows forwarding carries data: the refusal
    // above comes from the certificate, not from the server or the test.
    const allowed = await sshd.forward({
      identity: userKey.privateKeyPath,
      certificate: await certificateFile(forwarder),
      targetPort: echoPort,
    });
    try {
      expect(await readAll(allowed.localPort)).toBe("hello through the tunnel\n");
    } finally {
      await allowed.stop();
    }

    // ssh -W (stdio forwarding) is the same kind of channel.
    const stdioRefused = await login(plain, ["-W", `127.0.0.1:${echoPort}`]);
    expect(stdioRefused.code).not.toBe(0);
    expect(stdioRefused.stdout).toBe("");
    const stdioAllowed = await login(forwarder, ["-W", `127.0.0.1:${echoPort}`]);
    expect(stdioAllowed.stdout).toBe("hello through the tunnel\n");
  });

  it("revokes early through the zone's KRL: sshd refuses the certificate, others still work", async () => {
    const firstContext = issueContext();
    const first = await connector.issue(firstContext);
    const secondContext = issueContext();
    const second = await connector.issue(secondContext);
    const keptContext = issueContext();
    const kept = await connector.issue(keptContext);
    expect((await attempt(first)).code).toBe(0);
    expect(await connector.verifyRevoked(revokeContext(first, firstContext))).toBe(false);

    await connector.revoke(revokeContext(first, firstContext));
    expect(await connector.verifyRevoked(revokeContext(first, firstContext))).toBe(true);
    const afterFirst = await attempt(first);
    expect(afterFirst.code).not.toBe(0);
    expect(afterFirst.log).toMatch(/ED25519-CERT \S+ revoked by file/);

    // Each published KRL is complete: revoking the second keeps the first revoked.
    await connector.revoke(revokeContext(second, secondContext));
    expect((await attempt(first)).code).not.toBe(0);
    expect((await attempt(second)).code).not.toBe(0);
    expect(await connector.verifyRevoked(revokeContext(kept, keptContext))).toBe(false);
    expect((await attempt(kept)).code).toBe(0);

    // Revoke is idempotent.
    await connector.revoke(revokeContext(first, firstContext));
    expect((await attempt(first)).code).not.toBe(0);

    const last = published.at(-1);
    expect(last?.zone).toBe(ZONE);
    expect(last?.revoked.map((entry) => entry.keyId)).toEqual(
      expect.arrayContaining([firstContext.grantId, secondContext.grantId]),
    );
  });

  it("revokes by the serial derived from the grant id when the issued detail was lost", async () => {
    const context = issueContext();
    const issued = await connector.issue(context);
    await connector.revoke({ ...revokeContext(issued, context), detail: {} });
    expect(await connector.verifyRevoked(revokeContext(issued, context))).toBe(true);
    expect((await attempt(issued)).code).not.toBe(0);
  });

  it("treats revoking an expired certificate as done, without publishing", async () => {
    const now = Date.now();
    const context = issueContext({ startsAt: now - 30 * MINUTE, endsAt: now - MINUTE });
    const issued = await connector.issue(context);
    const before = published.length;
    await connector.revoke(revokeContext(issued, context));
    expect(published.length).toBe(before);
    expect(await connector.verifyRevoked(revokeContext(issued, context))).toBe(true);
    expect(await connector.listManaged("payments-hosts", resource)).toEqual([]);
  });

  it("rebuilds the KRL after a restart from the persisted set", async () => {
    const context = issueContext();
    const issued = await connector.issue(context);
    await connector.revoke(revokeContext(issued, context));
    const persisted = published.at(-1)?.revoked ?? [];

    const restarted = createSshConnector({ ...deps(), loadRevocations: async () => persisted });
    expect(await restarted.verifyRevoked(revokeContext(issued, context))).toBe(true);
    const rebuilt = await restarted.currentKrl(ZONE);
    await sshd.writeRevokedKeys(rebuilt);
    expect((await attempt(issued)).code).not.toBe(0);

    // A fresh process that forgot the set would not claim the revocation.
    const amnesiac = createSshConnector({ ...deps(), loadRevocations: async () => [] });
    expect(await amnesiac.verifyRevoked(revokeContext(issued, context))).toBe(false);
    await sshd.writeRevokedKeys(await connector.currentKrl(ZONE));
  });

  it("does not claim a revocation whose publication failed, and publishes it on retry", async () => {
    let failing = true;
    const flaky = createSshConnector({
      ...deps(),
      async publishRevocations(zone, krl, revoked) {
        if (failing) throw new Error("KRL endpoint down");
        published.push({ zone, krl, revoked });
        await sshd.writeRevokedKeys(krl);
      },
      loadRevocations: async () => published.at(-1)?.revoked ?? [],
    });
    const context = issueContext();
    const issued = await flaky.issue(context);
    await expect(flaky.revoke(revokeContext(issued, context))).rejects.toThrow("KRL endpoint down");
    expect(await flaky.verifyRevoked(revokeContext(issued, context))).toBe(false);
    expect((await attempt(issued)).code).toBe(0);

    failing = false;
    await flaky.revoke(revokeContext(issued, context));
    expect(await flaky.verifyRevoked(revokeContext(issued, context))).toBe(true);
    expect((await attempt(issued)).code).not.toBe(0);
  });

  it("shows that sshd fails closed when the KRL file is missing", async () => {
    const issued = await connector.issue(issueContext());
    expect((await attempt(issued)).code).toBe(0);
    const krl = await readFile(sshd.revokedKeysPath);
    await sshd.removeRevokedKeys();
    try {
      const refused = await attempt(issued);
      expect(refused.code).not.toBe(0);
      expect(refused.log).toMatch(/Error checking authentication key .* in revoked keys file/);
    } finally {
      await sshd.writeRevokedKeys(krl);
    }
    expect((await attempt(issued)).code).toBe(0);
  });

  it("prints the sshd_config lines a host needs", async () => {
    const caPublicKey = await connector.caPublicKey(ZONE);
    const lines = sshdConfigLines(ZONE, caPublicKey, "/etc/ssh/firebreak-payments-app.krl");
    expect(lines).toContain("TrustedUserCAKeys /etc/ssh/firebreak-payments-app-user-ca.pub");
    expect(lines).toContain("RevokedKeys /etc/ssh/firebreak-payments-app.krl");
    expect(lines).toContain("AuthorizedPrincipalsFile /etc/ssh/auth_principals/%u");
    expect(lines.join("\n")).toContain(caPublicKey.split(" ").slice(0, 2).join(" "));
    expect(caPublicKey).toMatch(/^ssh-ed25519 \S+ firebreak-payments-app-ca$/);
    // Every non-comment line is a directive sshd accepts.
    const config = join(work, "printed_sshd_config");
    const hostKey = join(sshd.directory, "host_ed25519");
    await writeFile(
      config,
      [`HostKey ${hostKey}`, "UsePAM no", ...lines.filter((line) => !line.startsWith("#"))].join("\n"),
    );
    const check = await execute(sshdPath(), ["-t", "-f", config]);
    expect(check.code, check.stderr).toBe(0);

    await expectCode(
      Promise.resolve().then(() => sshdConfigLines("zone; reboot", caPublicKey, "/etc/ssh/x.krl")),
      "VALIDATION_FAILED",
    );
    await expectCode(
      Promise.resolve().then(() => sshdConfigLines(ZONE, caPublicKey, "/etc/ssh/x.krl\nPermitRootLogin yes")),
      "VALIDATION_FAILED",
    );
  });

  it("measures issue and revoke latency", async () => {
    const issueTimes: number[] = [];
    const revokeTimes: number[] = [];
    const runs = 30;
    const issued: [IssuedCredential, IssueContext][] = [];
    for (let index = 0; index < runs; index += 1) {
      const context = issueContext();
      const started = performance.now();
      issued.push([await connector.issue(context), context]);
      issueTimes.push(performance.now() - started);
    }
    for (const [credential, context] of issued) {
      const started = performance.now();
      await connector.revoke(revokeContext(credential, context));
      revokeTimes.push(performance.now() - started);
    }
    const [lastCredential, lastContext] = issued.at(-1) ?? [];
    if (lastCredential && lastContext) {
      expect(await connector.verifyRevoked(revokeContext(lastCredential, lastContext))).toBe(true);
    }
    issueTimes.sort((a, b) => a - b);
    revokeTimes.sort((a, b) => a - b);
    const format = (times: number[]) =>
      `p50 ${percentile(times, 0.5).toFixed(1)} ms, p99 ${percentile(times, 0.99).toFixed(1)} ms`;
    console.log(
      `ssh connector over ${runs} runs: issue ${format(issueTimes)}; revoke (build + publish KRL of ${
        (await connector.revokedCertificates(ZONE)).length
      } entries) ${format(revokeTimes)}`,
    );
  });

  describe("hostile input", () => {
    const marker = join(tmpdir(), `firebreak-ssh-pwned-${process.pid}`);

    beforeEach(() => {
      processCalls.length = 0;
    });

    afterAll(() => {
      expect(existsSync(marker), "a hostile value was executed").toBe(false);
    });

    it("refuses public keys that are not exactly one plain key", async () => {
      const [type = "", blob = ""] = userKey.publicKey.split(" ");
      const certificate = (await connector.issue(issueContext())).secret ?? "";
      const ed25519Blob = Buffer.from(blob, "base64");
      const hostile: unknown[] = [
        null,
        "",
        `${type} ${blob}\n${type} ${blob} second`,
        `${type} ${blob}\r\nssh-rsa AAAA`,
        `command="touch ${marker}" ${type} ${blob}`,
        `no-pty,no-port-forwarding ${type} ${blob}`,
        `from="*" ${type} ${blob}`,
        `${type}  ${blob}`,
        `${type}\t${blob}`,
        `${type} ${blob}\u0000`,
        `${type} ${blob} comment\u2028`,
        `ssh-dss ${blob}`,
        `ssh-rsa ${blob}`,
        `${type} ${blob.slice(0, -4)}`,
        `${type} ${blob}!`,
        `${type} ${Buffer.concat([ed25519Blob, Buffer.from([0, 0, 0, 1, 65])]).toString("base64")}`,
        certificate.trim(),
        `${type} ${"A".repeat(10_000)}`,
        `$(touch ${marker})`,
        `${type} $(touch ${marker})`,
      ];
      processCalls.length = 0;
      for (const publicKey of hostile) {
        await expectCode(
          connector.issue(issueContext({ publicKey: publicKey as string | null })),
          "VALIDATION_FAILED",
          publicKey,
        );
      }
      expect(processCalls, "a refused key reached a process").toEqual([]);

      // A comment is data: it is checked, dropped, and never reaches a shell.
      const withComment = await connector.issue(
        issueContext({ publicKey: `${type} ${blob} $(touch ${marker}); \`touch ${marker}\`` }),
      );
      expect(withComment.secret).not.toContain("touch");
    });

    it("refuses principals that are not plain names, and roles without any", async () => {
      const hostilePrincipals = [
        ['ops"'],
        ["ops ops"],
        ["ops,root"],
        ["*"],
        ["ops\nroot"],
        [`$(touch ${marker})`],
        ["Ops"],
        ["-ops"],
        ["'ops'"],
        [],
      ];
      for (const principals of hostilePrincipals) {
        const hostileResource: ResourceConfig = { ...resource, roles: { operator: { principals } } };
        await expectCode(connector.issue(issueContext({ resource: hostileResource })), "CONFIG_INVALID");
      }
      await expectCode(
        connector.issue(issueContext({ resource: { ...resource, roles: { operator: {} } } })),
        "CONFIG_INVALID",
      );
      await expectCode(connector.issue(issueContext({ role: "missing" })), "CONFIG_INVALID");
      expect(processCalls).toEqual([]);
    });

    it("refuses zone names, grant ids and CIDRs that could become syntax", async () => {
      const before = [...store.stored.keys()];
      for (const zone of [
        `payments; touch ${marker}`,
        `$(touch ${marker})`,
        "`id`",
        "../etc",
        "payments\napp",
        "Payments",
        "",
      ]) {
        await expectCode(
          connector.issue(issueContext({ zone, resource: { ...resource, zone } })),
          "VALIDATION_FAILED",
        );
        await expectCode(connector.caPublicKey(zone), "VALIDATION_FAILED");
        await expectCode(
          connector.revoke({
            grantId: newId("grt"),
            user: "alice",
            resourceName: "payments-hosts",
            resource: { ...resource, zone },
            externalId: newId("grt"),
            detail: {},
          }),
          "VALIDATION_FAILED",
        );
      }
      for (const grantId of ["grt_1\nid: *", "grt 1", "-grt", `grt_$(touch ${marker})`, ""]) {
        await expectCode(connector.issue(issueContext({ grantId })), "VALIDATION_FAILED");
      }
      for (const cidr of [
        "10.0.0.0/8,0.0.0.0/0",
        "10.0.0.0/8 -O permit-X11-forwarding",
        "10.0.0.0/33",
        "10.0.0.0",
        "*",
        "fe80::1%eth0/64",
      ]) {
        await expectCode(connector.issue(issueContext({ sourceCidrs: [cidr] })), "VALIDATION_FAILED");
      }
      // Nothing was created for a hostile zone and no process ran.
      expect([...store.stored.keys()]).toEqual(before);
      expect(processCalls).toEqual([]);
    });

    it("never asks for a shell", async () => {
      const context = issueContext();
      const issued = await connector.issue(context);
      await connector.revoke(revokeContext(issued, context));
      await connector.verifyRevoked(revokeContext(issued, context));
      expect(processCalls.length).toBeGreaterThan(0);
      for (const call of processCalls) {
        expect(call.file).toBe("ssh-keygen");
        expect(Array.isArray(call.args)).toBe(true);
        expect((call.options as { shell?: unknown }).shell ?? false).toBe(false);
      }
    });
  });
});

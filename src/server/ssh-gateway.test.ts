import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/databases.js";
import { skipUnlessAvailable } from "../../test/support/requirements.js";
import {
  createUserKeyPair,
  type Sshd,
  sshClientOptions,
  sshdPath,
  startSshd,
} from "../../test/support/sshd.js";
import type { AuditEventInput } from "../audit/audit.repo.js";
import type { FirebreakConfig } from "../config/schema.js";
import { createSshConnector } from "../connectors/ssh/ssh.connector.js";
import { createTransactionRunner } from "../db/transaction.js";
import { createGatewaySessions, createSessionHolder } from "../gateway/session.service.js";
import { type GrantRecord, insertEffect, insertGrant } from "../grants/grant.repo.js";
import { createKeyStore } from "../secrets/key-store.js";
import { createSecretBox } from "../secrets/secret-box.js";
import { createManualClock } from "../shared/clock.js";
import { createEventBus } from "../shared/events.js";
import { createSshGatewayService, type SshGatewayService } from "./ssh-gateway.js";

function run(file: string, args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { timeout: 30_000, encoding: "utf8", env: { PATH: process.env.PATH } },
      (error, stdout) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout }),
    );
    child.stdin?.end();
  });
}

let available = true;
try {
  sshdPath();
} catch {
  available = false;
}
/** The role's principal is the account the gateway logs in as (the test sshd's own user). */
const account = userInfo().username;
const skip = skipUnlessAvailable(available, "SSH gateway wiring", "sshd is not installed");

/**
 * The serve-side wiring against a real sshd that trusts only the zone CA: a grant row and its
 * certificate effect are looked up, the gateway's own certificate is signed by the zone CA, the
 * host key made once and sealed, refusals audited as gateway.refused.
 */
describe.skipIf(skip)("SSH gateway wiring (serve)", () => {
  let directory: string;
  let sshd: Sshd;
  let database: TestDatabase;
  let service: SshGatewayService;
  let port: number;
  let userKey: string;
  const audited: AuditEventInput[] = [];
  const clock = createManualClock(Date.now());

  async function grant(id: string, fingerprint: string, state: GrantRecord["state"] = "active") {
    const db = database.handle.db;
    await insertGrant(db, {
      id,
      requestId: `req_${id.slice(4)}`,
      user: "alice",
      zone: "app",
      resource: "app-hosts",
      role: "operator",
      policy: null,
      sourceZone: null,
      clientAddress: null,
      state,
      startsAt: clock.now(),
      endsAt: clock.now() + 3_600_000,
      closedAt: null,
      closeReason: null,
      closedBy: null,
      factorKind: null,
      factorAt: null,
      revocationStatus: "not-needed",
      revocationAttempts: 0,
      revocationNextAt: null,
      reviewState: "none",
      reviewDueAt: null,
      reviewBlock: false,
      reviewer: null,
      reviewNotes: null,
      reviewedAt: null,
      reviewAlertedAt: null,
    });
    await insertEffect(db, {
      id: `eff_${id.slice(4)}`,
      grantId: id,
      resource: "app-hosts",
      connector: "ssh",
      state: "issued",
      detail: { publicKeyFingerprint: fingerprint },
      secretEnc: null,
      deliveredAt: null,
      createdAt: clock.now(),
      updatedAt: clock.now(),
    });
  }

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "firebreak-sshgw-serve-"));
    database = await createTestDatabase("sqlite");
    const db = database.handle.db;
    const keys = createKeyStore({ db, box: createSecretBox(randomBytes(32)), now: () => clock.now() });
    const connector = createSshConnector({ secret: () => "", keys, now: () => clock.now() });
    sshd = await startSshd({
      trustedUserCaKeys: [await connector.caPublicKey("app")],
      principals: [account],
    });
    userKey = (await createUserKeyPair(join(directory, "user"))).privateKeyPath;
    const config = {
      resources: {
        "app-hosts": {
          zone: "app",
          type: "ssh",
          address: `127.0.0.1:${sshd.port}`,
          roles: { operator: { principals: [account] } },
        },
      },
      gateway: {
        ssh: {
          listen: "127.0.0.1:0",
          resources: {
            "app-hosts": {
              hostKeys: [(await readFile(join(sshd.directory, "host_ed25519.pub"), "utf8")).trim()],
            },
          },
        },
      },
    } as unknown as FirebreakConfig;
    service = createSshGatewayService({
      db,
      clock,
      config: () => config,
      sessions: createGatewaySessions({
        db,
        clock,
        inTransaction: createTransactionRunner({ db, clock, bus: createEventBus() }),
      }),
      holder: createSessionHolder(),
      keys,
      connector,
      secret: () => "",
      audit: async (event) => {
        audited.push(event);
      },
      log: { error: () => {} },
    });
    port = (await service.start())?.port ?? 0;
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    await sshd?.stop();
    await database?.drop();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  const ssh = (login: string, command: string) =>
    run("ssh", [...sshClientOptions(userKey, port), `${login}@127.0.0.1`, command]);

  it("logs in to the host with a gateway certificate from the zone CA for an active grant", async () => {
    const fingerprint = (
      await run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${userKey}.pub`])
    ).stdout.split(" ")[1] as string;
    await grant("grt_wired1", fingerprint);
    const result = await ssh("grt_wired1", "echo through-$((20+3))");
    expect(result.stdout).toBe("through-23\n");
    expect(await service.hostPublicKey()).toMatch(/^ssh-ed25519 /);
  });

  it("refuses an ended grant and an unknown one, audited as gateway.refused", async () => {
    const fingerprint = (
      await run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${userKey}.pub`])
    ).stdout.split(" ")[1] as string;
    await grant("grt_ended1", fingerprint, "revoked");
    expect((await ssh("grt_ended1", "true")).code).toBe(255);
    expect((await ssh("grt_nosuch1", "true")).code).toBe(255);
    const refusals = audited
      .filter((e) => e.type === "gateway.refused")
      .map((e) => [e.subject, e.context?.code]);
    expect(refusals).toEqual(
      expect.arrayContaining([
        ["grt_ended1", "GRANT_NOT_ACTIVE"],
        ["grt_nosuch1", "GRANT_NOT_FOUND"],
      ]),
    );
  });
});

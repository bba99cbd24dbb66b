/**
 * Secrets at rest across `firebreak rotate-master-key`, with a real server process: an undelivered
 * PostgreSQL password, an undelivered SSH certificate and the zone's SSH CA private key are sealed
 * under the master key; the rotation re-seals all of them, and the server restarted with only the
 * new key delivers working credentials and keeps signing with the same CA.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { keyIdOf } from "../../src/secrets/secret-box.js";
import {
  activateGrant,
  configText,
  createPgFixture,
  dropPgAccounts,
  type JitServer,
  PG_ADMIN_URL,
  type PgFixture,
  pgLoginOutcome,
  policy,
  startJitServer,
  startJitSshd,
  trustZoneCa,
  uniqueTag,
} from "../support/jit.js";
import { describeResult, killAllProcesses, parseJson } from "../support/process.js";
import { createUserKeyPair, type Sshd } from "../support/sshd.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });
afterAll(killAllProcesses);

const tag = uniqueTag();
const PREFIX = `jk${tag}_`;

let pgFixture: PgFixture;
let server: JitServer;
let sshd: Sshd;
let keys: string;

beforeAll(async () => {
  pgFixture = await createPgFixture(tag);
  sshd = await startJitSshd();
  keys = await mkdtemp(join(tmpdir(), "firebreak-jit-keys-"));
  server = await startJitServer(
    configText({
      zones: { vault: {}, hosts: {} },
      resources: {
        "vault-pg": {
          zone: "vault",
          type: "postgres",
          address: "127.0.0.1:5432",
          connection: { url: PG_ADMIN_URL },
          namePrefix: PREFIX,
          roles: { admin: { grants: [pgFixture.reader] } },
        },
        hosts: { zone: "hosts", type: "ssh", roles: { operator: { principals: ["ops"] } } },
      },
      breakGlass: [
        policy("vault-admin", "vault", ["admin"], { duration: "10m" }),
        policy("hosts-operator", "hosts", ["operator"], { duration: "10m" }),
      ],
    }),
  );
});

afterAll(async () => {
  await server?.close();
  await sshd?.stop();
  if (keys) await rm(keys, { recursive: true, force: true });
  await dropPgAccounts(PREFIX);
  await pgFixture?.drop();
});

interface Sealed {
  effects: { id: string; connector: string; secret_enc: string | null }[];
  keys: { kind: string; scope: string; public_key: string; private_enc: string }[];
}

function sealed(): Sealed {
  const sqlite = new Database(server.dbPath, { readonly: true, fileMustExist: true });
  try {
    return {
      effects: sqlite
        .prepare(
          "select id, connector, secret_enc from grant_effects where secret_enc is not null order by id",
        )
        .all() as Sealed["effects"],
      keys: sqlite
        .prepare("select kind, scope, public_key, private_enc from key_material")
        .all() as Sealed["keys"],
    };
  } finally {
    sqlite.close();
  }
}

const keyIdIn = (ciphertext: string) => ciphertext.split(".")[1];

describe("rotate-master-key", () => {
  it("re-seals undelivered credentials and the SSH CA key; the server works after a restart with only the new key", async () => {
    const ca = await trustZoneCa(server, "hosts", sshd);
    const pgGrant = await activateGrant(server, { user: "alice", zone: "vault", role: "admin" });
    const bobKey = await createUserKeyPair(join(keys, "bob"));
    const sshGrant = await activateGrant(server, {
      user: "bob",
      zone: "hosts",
      role: "operator",
      publicKey: bobKey.publicKey,
    });

    const oldKeyId = keyIdOf(Buffer.from(server.masterKey, "hex"));
    const before = sealed();
    expect(before.effects.map((e) => e.connector).sort()).toEqual(["postgres", "ssh"]);
    expect(before.keys).toHaveLength(1);
    expect(before.keys[0]?.public_key).toBe(ca);
    for (const ciphertext of [
      ...before.effects.map((e) => e.secret_enc ?? ""),
      before.keys[0]?.private_enc ?? "",
    ])
      expect(keyIdIn(ciphertext)).toBe(oldKeyId);

    await server.stop();
    const rotated = await server.group.cli(["--json", "rotate-master-key", "--db", server.dbUrl], {
      env: { FIREBREAK_MASTER_KEY: server.masterKey },
    });
    expect(rotated.code, describeResult(rotated)).toBe(0);
    const result = parseJson<{ resealed: number; keyId: string; newKey: string }>(rotated);
    expect(result.resealed).toBe(3);
    expect(result.newKey).toMatch(/^[0-9a-f]{64}$/);
    expect(result.keyId).toBe(keyIdOf(Buffer.from(result.newKey, "hex")));
    expect(result.keyId).not.toBe(oldKeyId);

    const after = sealed();
    expect(after.effects.map((e) => e.id)).toEqual(before.effects.map((e) => e.id));
    for (const [index, effect] of after.effects.entries()) {
      expect(keyIdIn(effect.secret_enc ?? "")).toBe(result.keyId);
      expect(effect.secret_enc).not.toBe(before.effects[index]?.secret_enc);
    }
    expect(keyIdIn(after.keys[0]?.private_enc ?? "")).toBe(result.keyId);
    expect(after.keys[0]?.public_key).toBe(ca);

    // Only the new key from here on: no FIREBREAK_MASTER_KEY_PREVIOUS.
    await server.start({ masterKey: result.newKey });

    const alice = await server.as("alice");
    const pgCredential = (await alice.ok("POST", `/v1/grants/${pgGrant.id}/credential`)).credentials[0];
    expect(await pgLoginOutcome(pgCredential.detail.username, pgCredential.secret)).toBe("ok");

    const bob = await server.as("bob");
    const sshCredential = (await bob.ok("POST", `/v1/grants/${sshGrant.id}/credential`)).credentials[0];
    const bobCertificate = join(keys, "bob-cert.pub");
    await writeFile(bobCertificate, sshCredential.secret, { mode: 0o600 });
    const bobLogin = await sshd.login({ identity: bobKey.privateKeyPath, certificate: bobCertificate });
    expect(bobLogin.code, bobLogin.stderr).toBe(0);

    // New issuance still signs with the same CA (its private key opened under the new master key).
    expect((await server.admin.ok("GET", "/v1/zones/hosts/ssh-ca")).publicKey).toBe(ca);
    const aliceKey = await createUserKeyPair(join(keys, "alice"));
    const fresh = await activateGrant(server, {
      user: "alice",
      zone: "hosts",
      role: "operator",
      publicKey: aliceKey.publicKey,
    });
    const freshCredential = (await alice.ok("POST", `/v1/grants/${fresh.id}/credential`)).credentials[0];
    const aliceCertificate = join(keys, "alice-cert.pub");
    await writeFile(aliceCertificate, freshCredential.secret, { mode: 0o600 });
    const aliceLogin = await sshd.login({ identity: aliceKey.privateKeyPath, certificate: aliceCertificate });
    expect(aliceLogin.code, aliceLogin.stderr).toBe(0);

    // Nothing of it in clear: not the rotation's output (beyond the new key it must hand over), not the server's.
    for (const secret of [
      pgCredential.secret,
      sshCredential.secret.split(" ")[1],
      freshCredential.secret.split(" ")[1],
    ]) {
      expect(rotated.stdout + rotated.stderr).not.toContain(secret);
      expect(server.output()).not.toContain(secret);
    }
    expect(sealed().effects).toEqual([]);
    await alice.ok("POST", `/v1/grants/${pgGrant.id}/revoke`, { reason: "done" });
  });
});

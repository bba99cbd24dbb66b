/**
 * Issue 3 end to end, through a real server process: for PostgreSQL, MariaDB and OpenSSH, a
 * credential that exists only for the grant's window, delivered once, that works inside the window
 * and provably not after it; `firebreak connect`; and finally a sweep of everything the server said
 * (replies, audit, its own output, its database file) for the secrets it issued.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  activateGrant,
  auditEvents,
  configText,
  createMariaFixture,
  createPgFixture,
  createReplyLog,
  dropMariaAccounts,
  dropPgAccounts,
  installKrl,
  type JitServer,
  MARIADB_ADMIN_URL,
  type MariaFixture,
  mariaAccounts,
  mariaLogin,
  mariaLoginOutcome,
  PG_ADMIN_URL,
  PG_DATABASE,
  type PgFixture,
  pgAccounts,
  pgLogin,
  pgLoginOutcome,
  policy,
  startJitServer,
  startJitSshd,
  trustZoneCa,
  uniqueTag,
  waitForAudit,
  withMariaAdmin,
} from "../support/jit.js";
import { describeResult, killAllProcesses } from "../support/process.js";
import { createUserKeyPair, type Sshd } from "../support/sshd.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 90_000 });
afterAll(killAllProcesses);

const tag = uniqueTag();
const PREFIX = `jl${tag}_`;
/** Short enough to wait for, long enough for a loaded machine to do everything inside it. */
const WINDOW = "6s";

let pgFixture: PgFixture;
let mariaFixture: MariaFixture;
let sshd: Sshd;
let server: JitServer;
let keys: string;
const log = createReplyLog();
/** Every secret issued in this file: passwords and certificates. */
const secrets: string[] = [];
/** Output of CLI runs, swept for secrets with the rest. */
const cliOutput: string[] = [];

function config(sshPort: number) {
  return configText({
    zones: { "jit-pg": {}, "jit-maria": {}, "jit-hosts": {} },
    resources: {
      "ledger-pg": {
        zone: "jit-pg",
        type: "postgres",
        address: "127.0.0.1:5432",
        connection: { url: PG_ADMIN_URL },
        namePrefix: PREFIX,
        roles: { admin: { grants: [pgFixture.reader] } },
      },
      "shop-maria": {
        zone: "jit-maria",
        type: "mariadb",
        address: "127.0.0.1:3306",
        connection: {
          url: MARIADB_ADMIN_URL,
          controlDatabase: mariaFixture.control,
          database: mariaFixture.database,
        },
        namePrefix: PREFIX,
        roles: { admin: { grants: [mariaFixture.reader] } },
      },
      "ops-hosts": {
        zone: "jit-hosts",
        type: "ssh",
        address: `127.0.0.1:${sshPort}`,
        roles: { operator: { principals: ["ops"] } },
      },
    },
    breakGlass: [
      policy("pg-admin", "jit-pg", ["admin"], { duration: WINDOW }),
      policy("maria-admin", "jit-maria", ["admin"], { duration: WINDOW }),
      policy("hosts-operator", "jit-hosts", ["operator"], { duration: WINDOW }),
    ],
  });
}

beforeAll(async () => {
  pgFixture = await createPgFixture(tag);
  mariaFixture = await createMariaFixture(tag);
  sshd = await startJitSshd();
  keys = await mkdtemp(join(tmpdir(), "firebreak-jit-keys-"));
  server = await startJitServer(config(sshd.port), { log });
  await trustZoneCa(server, "jit-hosts", sshd);
  await installKrl(server, "jit-hosts", sshd);
});

afterAll(async () => {
  await server?.close();
  await sshd?.stop();
  if (keys) await rm(keys, { recursive: true, force: true });
  await dropPgAccounts(PREFIX);
  await dropMariaAccounts(PREFIX);
  await pgFixture?.drop();
  await mariaFixture?.drop();
});

/** Fetches the credential as its owner, then shows that nobody gets it again, each refusal audited. */
async function deliverOnce(user: string, grantId: string) {
  const owner = await server.as(user);
  const delivered = await owner.ok("POST", `/v1/grants/${grantId}/credential`);
  expect(delivered.grant).toMatchObject({ id: grantId, user, state: "active" });

  const again = await owner.call("POST", `/v1/grants/${grantId}/credential`);
  expect({ status: again.status, code: again.body?.error?.code }).toEqual({
    status: 409,
    code: "ALREADY_DELIVERED",
  });
  // Another engineer cannot even see the grant; the administrator can, but may not take its secret.
  const stranger = await server.as(user === "alice" ? "bob" : "alice");
  const hidden = await stranger.call("POST", `/v1/grants/${grantId}/credential`);
  expect({ status: hidden.status, code: hidden.body?.error?.code }).toEqual({
    status: 404,
    code: "NOT_FOUND",
  });
  const refused = await server.admin.call("POST", `/v1/grants/${grantId}/credential`);
  expect({ status: refused.status, code: refused.body?.error?.code }).toEqual({
    status: 403,
    code: "FORBIDDEN",
  });
  for (const reply of [again, hidden, refused]) expect(reply.body.credentials).toBeUndefined();

  const events = await auditEvents(server, grantId);
  expect(events.filter((e) => e.type === "credential.delivered")).toHaveLength(1);
  const refusals = events
    .filter((e) => e.type === "credential.delivery_refused")
    .map((e) => ({ actor: e.actor, reason: e.context.reason }));
  expect(refusals).toEqual(
    expect.arrayContaining([
      { actor: user, reason: "ALREADY_DELIVERED" },
      { actor: stranger.user, reason: "NOT_FOUND" },
      { actor: "admin", reason: "FORBIDDEN" },
    ]),
  );
  return delivered.credentials as {
    resource: string;
    connector: string;
    state: string;
    detail: Record<string, unknown>;
    secret: string | null;
  }[];
}

/** After the close: the grant says so, the list says so, and the audit shows the steps in order. */
async function expectVerifiedClose(grantId: string, state: "expired" | "revoked") {
  const view = await server.admin.ok("GET", `/v1/grants/${grantId}`);
  expect(view).toMatchObject({
    state,
    revocation: { status: "verified", nextAttemptAt: null },
  });
  expect(view.effects.every((e: { state: string }) => e.state === "closed")).toBe(true);
  const listed = await server.admin.ok("GET", `/v1/grants?state=${state}`);
  expect(listed.grants.find((g: { id: string }) => g.id === grantId)?.revocation.status).toBe("verified");
  const types = (await auditEvents(server, grantId)).map((e) => e.type);
  const order = ["credential.issued", "credential.delivered", `grant.${state}`, "credential.revoked"];
  const positions = order.map((type) => types.indexOf(type));
  expect(
    positions.every((p) => p >= 0),
    types.join(", "),
  ).toBe(true);
  expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  expect(types.lastIndexOf("revocation.verified")).toBeGreaterThan(types.indexOf("credential.revoked"));
  expect(types).not.toContain("alert.raised");
}

const execFileAsync = promisify(execFile);

describe("just-in-time credentials through the real server", () => {
  it.concurrent("PostgreSQL: a login role for the window, delivered once, cut and verified gone at expiry", async () => {
    const grant = await activateGrant(server, { user: "alice", zone: "jit-pg", role: "admin" });
    // What was issued is taken away at the end: its revocation is scheduled.
    expect(grant).toMatchObject({ state: "active", user: "alice", revocation: { status: "scheduled" } });
    expect(grant.effects).toContainEqual(
      expect.objectContaining({ resource: "ledger-pg", connector: "postgres", state: "issued" }),
    );

    const [credential] = (await deliverOnce("alice", grant.id)).filter((c) => c.connector === "postgres");
    if (!credential?.secret) throw new Error("no PostgreSQL credential was delivered");
    secrets.push(credential.secret);
    const username = String(credential.detail.username);
    expect(username.startsWith(PREFIX)).toBe(true);
    expect(credential.detail).toMatchObject({ host: "127.0.0.1", port: 5432, database: PG_DATABASE });
    expect(credential.detail.validUntil).toBe(grant.endsAt);
    expect(JSON.stringify(credential.detail)).not.toContain(credential.secret);

    expect(await pgLoginOutcome(username, `${credential.secret}x`)).toBe("28P01");
    const session = await pgLogin(username, credential.secret);
    // Its privileges arrive through membership in the mapped role, and only those.
    expect((await session.query(`select amount from ${pgFixture.table}`)).rows).toEqual([{ amount: 100 }]);
    await expect(session.query(`delete from ${pgFixture.table}`)).rejects.toMatchObject({ code: "42501" });

    await waitForAudit(server, grant.id, "revocation.verified", 30_000);
    // The session opened during the grant did not outlive it, and the password opens nothing now.
    await expect(session.query("select 1")).rejects.toBeTruthy();
    await session.end().catch(() => {});
    expect(await pgLoginOutcome(username, credential.secret)).not.toBe("ok");
    expect(await pgAccounts(PREFIX)).not.toContain(username);
    await expectVerifiedClose(grant.id, "expired");
  });

  it.concurrent("MariaDB: an account for the window, delivered once, cut and verified gone at expiry", async () => {
    const grant = await activateGrant(server, { user: "alice", zone: "jit-maria", role: "admin" });
    expect(grant.effects).toContainEqual(
      expect.objectContaining({ resource: "shop-maria", connector: "mariadb", state: "issued" }),
    );

    const [credential] = (await deliverOnce("alice", grant.id)).filter((c) => c.connector === "mariadb");
    if (!credential?.secret) throw new Error("no MariaDB credential was delivered");
    secrets.push(credential.secret);
    const username = String(credential.detail.username);
    expect(username.startsWith(PREFIX)).toBe(true);
    expect(credential.detail).toMatchObject({ host: "127.0.0.1", port: 3306 });

    expect(await mariaLoginOutcome(username, `${credential.secret}x`)).toBe("ER_ACCESS_DENIED_ERROR");
    const session = await mariaLogin(username, credential.secret, mariaFixture.database);
    const [rows] = await session.query("SELECT name FROM items");
    expect(rows).toEqual([{ name: "widget" }]);
    await expect(session.query("DELETE FROM items")).rejects.toMatchObject({
      code: "ER_TABLEACCESS_DENIED_ERROR",
    });

    await waitForAudit(server, grant.id, "revocation.verified", 30_000);
    await expect(session.query("SELECT 1")).rejects.toBeTruthy();
    session.destroy();
    expect(await mariaLoginOutcome(username, credential.secret)).not.toBe("ok");
    expect(await mariaAccounts(PREFIX)).not.toContain(username);
    // Its backstop event went with it.
    const events = await withMariaAdmin(async (connection) => {
      const [found] = await connection.query(
        "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? AND EVENT_COMMENT LIKE ?",
        [mariaFixture.control, `%${username}%`],
      );
      return found as unknown[];
    });
    expect(events).toEqual([]);
    await expectVerifiedClose(grant.id, "expired");
  });

  it.concurrent("OpenSSH: a certificate for the requester's key and the window; refused by sshd after expiry", async () => {
    const key = await createUserKeyPair(join(keys, "alice"));
    const grant = await activateGrant(server, {
      user: "alice",
      zone: "jit-hosts",
      role: "operator",
      publicKey: `${key.publicKey}`,
    });
    expect(grant.effects).toContainEqual(
      expect.objectContaining({ resource: "ops-hosts", connector: "ssh", state: "issued" }),
    );

    const [credential] = (await deliverOnce("alice", grant.id)).filter((c) => c.connector === "ssh");
    if (!credential?.secret) throw new Error("no SSH certificate was delivered");
    secrets.push(credential.secret);
    expect(credential.detail).toMatchObject({ keyId: grant.id, principals: ["ops"], forwarding: false });
    const certificate = join(keys, "alice-cert.pub");
    await writeFile(certificate, credential.secret, { mode: 0o600 });

    // What the certificate says, read by OpenSSH itself.
    const { stdout: described } = await execFileAsync("ssh-keygen", ["-L", "-f", certificate]);
    expect(described).toContain(`Key ID: "${grant.id}"`);
    expect(described).toMatch(/Principals:\s*\n\s*ops\s*\n\s*Critical Options:/);
    expect(described).toContain("source-address 127.0.0.0/8");
    expect(described).not.toContain("permit-port-forwarding");
    const validBefore = new Date(Math.floor(Date.parse(grant.endsAt) / 1000) * 1000)
      .toISOString()
      .slice(0, 19);
    expect(described).toContain(`to ${validBefore}`);

    const inside = await sshd.login({ identity: key.privateKeyPath, certificate, command: "echo inside" });
    expect(inside, inside.stderr).toMatchObject({ code: 0, stdout: "inside\n" });

    await waitForAudit(server, grant.id, "revocation.verified", 30_000);
    const mark = await sshd.logMark();
    const after = await sshd.login({ identity: key.privateKeyPath, certificate, command: "echo after" });
    expect(after.code).not.toBe(0);
    expect(after.stdout).not.toContain("after");
    expect(await sshd.logSince(mark)).toMatch(/expired/i);
    await expectVerifiedClose(grant.id, "expired");
  });

  it.concurrent("OpenSSH: an early revoke reaches sshd through the zone's KRL", async () => {
    const key = await createUserKeyPair(join(keys, "bob"));
    const grant = await activateGrant(server, {
      user: "bob",
      zone: "jit-hosts",
      role: "operator",
      duration: "10m",
      publicKey: key.publicKey,
    });
    const [credential] = (await deliverOnce("bob", grant.id)).filter((c) => c.connector === "ssh");
    if (!credential?.secret) throw new Error("no SSH certificate was delivered");
    secrets.push(credential.secret);
    const certificate = join(keys, "bob-cert.pub");
    await writeFile(certificate, credential.secret, { mode: 0o600 });
    expect((await sshd.login({ identity: key.privateKeyPath, certificate })).code).toBe(0);

    const bob = await server.as("bob");
    const revoked = await bob.ok("POST", `/v1/grants/${grant.id}/revoke`, { reason: "done early" });
    expect(revoked).toMatchObject({ state: "revoked", revocation: { status: "verified" } });
    await installKrl(server, "jit-hosts", sshd);
    const mark = await sshd.logMark();
    const after = await sshd.login({ identity: key.privateKeyPath, certificate });
    expect(after.code).not.toBe(0);
    expect(await sshd.logSince(mark)).toMatch(/revoked/i);
    await expectVerifiedClose(grant.id, "revoked");
  });

  it.concurrent("firebreak connect starts psql with a 0600 password file it removes, never the password in argv or env", async () => {
    const grant = await activateGrant(server, {
      user: "bob",
      zone: "jit-pg",
      role: "admin",
      duration: "10m",
    });
    const bin = await mkdtemp(join(tmpdir(), "firebreak-fake-psql-"));
    try {
      const report = join(bin, "report.json");
      const leaked = join(bin, "password");
      // Stands in for psql: reports what it was given, proves the password file logs in (with the
      // real psql, which reads PGPASSFILE), and keeps the password aside for the secrets sweep.
      const script = `#!/bin/bash
set -u
line=$(cat "$PGPASSFILE")
password=\${line##*:}
in_argv=no
for argument in "$@"; do [[ "$argument" == *"$password"* ]] && in_argv=yes; done
in_env=no
env | grep -qF -- "$password" && in_env=yes
login=$(/usr/bin/psql -X -A -t -w -c "select current_user" 2>&1 | head -1)
printf '{"passfile":"%s","mode":"%s","dirMode":"%s","argc":%d,"inArgv":"%s","inEnv":"%s","login":"%s","user":"%s"}\\n' \\
  "$PGPASSFILE" "$(stat -c %a "$PGPASSFILE")" "$(stat -c %a "$(dirname "$PGPASSFILE")")" "$#" \\
  "$in_argv" "$in_env" "$login" "$PGUSER" > "${report}"
printf '%s' "$password" > "${leaked}"
echo "fake psql ran"
exit 7
`;
      await writeFile(join(bin, "psql"), script);
      await chmod(join(bin, "psql"), 0o755);
      const bob = await server.as("bob");
      const result = await server.group.cli(["connect", grant.id], {
        url: server.url,
        token: bob.token,
        env: { PATH: `${bin}:${process.env.PATH ?? ""}` },
      });
      cliOutput.push(result.stdout, result.stderr);
      // psql's exit status is the command's.
      expect(result.code, describeResult(result)).toBe(7);
      expect(result.stdout).toContain("fake psql ran");
      const seen = JSON.parse(await readFile(report, "utf8"));
      const password = await readFile(leaked, "utf8");
      secrets.push(password);
      expect(password.length).toBeGreaterThanOrEqual(24);
      expect(seen).toMatchObject({ mode: "600", dirMode: "700", inArgv: "no", inEnv: "no", argc: 0 });
      expect(seen.user.startsWith(PREFIX)).toBe(true);
      // The password file really logs in: the real psql read it.
      expect(seen.login).toBe(seen.user);
      expect(existsSync(seen.passfile)).toBe(false);
      expect(existsSync(dirname(seen.passfile))).toBe(false);
      expect(result.stdout + result.stderr).not.toContain(password);
      // The credential went to the CLI: it is not shown again.
      const again = await bob.call("POST", `/v1/grants/${grant.id}/credential`);
      expect(again.body?.error?.code).toBe("ALREADY_DELIVERED");
    } finally {
      await rm(bin, { recursive: true, force: true });
      await (await server.as("bob")).call("POST", `/v1/grants/${grant.id}/revoke`, { reason: "test done" });
    }
  });

  it("leaves no issued secret in any reply, audit event, log line or database file, and wipes delivered ones", async () => {
    expect(secrets).toHaveLength(5);
    const exported = await fetch(`${server.url}/v1/audit/export`, {
      headers: { authorization: `Bearer ${server.admin.token}` },
    });
    expect(exported.status).toBe(200);
    const audit = await exported.text();
    expect(audit.split("\n").filter(Boolean).length).toBeGreaterThan(50);
    const verified = await server.admin.ok("GET", "/v1/audit/verify");
    expect(verified).toMatchObject({ ok: true, firstBadSeq: null });

    // A certificate is looked for by its signed blob, a password as itself.
    const needles = secrets.map((secret) =>
      secret.startsWith("ssh-") ? (secret.trim().split(/\s+/)[1] ?? secret) : secret,
    );
    // The sweep can find what it looks for: every secret but the one `connect` consumed is in a delivery.
    const deliveries = log.deliveries.join("\n");
    expect(needles.filter((needle) => deliveries.includes(needle))).toHaveLength(4);

    const database = await readFile(server.dbPath);
    const wal = existsSync(`${server.dbPath}-wal`) ? await readFile(`${server.dbPath}-wal`) : Buffer.alloc(0);
    const places: [string, string | Buffer][] = [
      ["API replies", log.replies.join("\n")],
      ["audit export", audit],
      ["server stdout/stderr", server.output()],
      ["CLI output", cliOutput.join("\n")],
      ["SQLite database", database],
      ["SQLite WAL", wal],
    ];
    expect(log.replies.length).toBeGreaterThan(40);
    expect(server.output()).toContain("listening");
    const found: string[] = [];
    for (const [place, haystack] of places)
      for (const [index, needle] of needles.entries())
        if (haystack.includes(needle)) found.push(`secret #${index} in ${place}`);
    expect(found).toEqual([]);

    const sqlite = new Database(server.dbPath, { readonly: true, fileMustExist: true });
    try {
      const rows = sqlite
        .prepare(
          "select connector, secret_enc, delivered_at from grant_effects where connector not like 'path:%'",
        )
        .all() as { connector: string; secret_enc: string | null; delivered_at: number | null }[];
      expect(rows.length).toBe(5);
      expect(rows.filter((r) => r.delivered_at === null || r.secret_enc !== null)).toEqual([]);
    } finally {
      sqlite.close();
    }
  });
});

import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateX25519Identity, identityToRecipient } from "age-encryption";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadSigningKey } from "../../src/audit/checkpoint.js";
import type { FirebreakConfig } from "../../src/config/schema.js";
import { resolveSecret } from "../../src/config/secrets.js";
import { createMariadbConnector } from "../../src/connectors/mariadb/mariadb.connector.js";
import { createPostgresConnector } from "../../src/connectors/postgres/postgres.connector.js";
import { createTransactionRunner } from "../../src/db/transaction.js";
import { createEmergencyService } from "../../src/emergency/emergency.service.js";
import {
  decryptShare,
  journalEntry,
  type KitFile,
  parseKit,
  type ShareFile,
  unseal,
  verifyKit,
} from "../../src/emergency/kit-file.js";
import type { ConnectorDeps } from "../../src/plugins/contracts.js";
import type { ConnectorRegistry } from "../../src/plugins/registry.js";
import { systemClock } from "../../src/shared/clock.js";
import { createEventBus } from "../../src/shared/events.js";
import { createTestDatabase, POSTGRES_ADMIN_URL, type TestDatabase } from "../support/databases.js";

// Real targets: the local PostgreSQL and MariaDB (README's test setup). Everything made here
// carries the tag. SSH kits are not made yet (src/emergency/NOTES.md).
const tag = randomBytes(3).toString("hex");
const MARIADB_URL = process.env.FIREBREAK_TEST_MARIADB_URL ?? "mysql://root@127.0.0.1:3306/";
const pgOwner = `emerg_${tag}_owner`;
const mariaReader = `emerg_${tag}_reader`;
const mariaControl = `emerg_${tag}_ctl`;
process.env[`EMERG_PG_${tag}`] = POSTGRES_ADMIN_URL;
process.env[`EMERG_MARIA_${tag}`] = MARIADB_URL;

const connectorDeps: ConnectorDeps = {
  secret: (ref) => resolveSecret(ref as never),
  keys: {
    getOrCreate: async () => {
      throw new Error("no keys");
    },
  },
  now: () => Date.now(),
};

let database: TestDatabase;
let directory: string;
let maria: mysql.Connection;
let identities: string[];
const audit = generateKeyPairSync("ed25519");
const auditPem = audit.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const pinnedPem = audit.publicKey.export({ type: "spki", format: "pem" }).toString();
const connectors = {
  postgres: createPostgresConnector(connectorDeps),
  mariadb: createMariadbConnector(connectorDeps),
} as unknown as ConnectorRegistry;

function config(): FirebreakConfig {
  return {
    version: 1,
    zones: { pgzone: {}, mzone: {} },
    resources: {
      pgres: {
        zone: "pgzone",
        type: "postgres",
        connection: { url: `env:EMERG_PG_${tag}` },
        roles: { admin: { grants: [pgOwner] } },
      },
      mres: {
        zone: "mzone",
        type: "mariadb",
        connection: { url: `env:EMERG_MARIA_${tag}`, controlDatabase: mariaControl },
        roles: { read: { grants: [mariaReader] } },
      },
    },
    emergency: {
      pgzone: {
        resource: "pgres",
        role: "admin",
        custodians: custodians(),
        threshold: 2,
        lifetime: 3_600_000,
        write: [`file:${directory}/`],
      },
      mzone: {
        resource: "mres",
        role: "read",
        custodians: custodians(),
        threshold: 2,
        lifetime: 3_600_000,
        write: [`file:${directory}/`],
      },
    },
  } as unknown as FirebreakConfig;
}
let recipients: string[] = [];
const custodians = () =>
  ["erin", "carol", "dave"].map((user, index) => ({ user, recipient: recipients[index] }));

function service() {
  const db = database.handle.db;
  return createEmergencyService({
    db,
    inTransaction: createTransactionRunner({ db, clock: systemClock, bus: createEventBus() }),
    clock: systemClock,
    config,
    connectors,
    signingKey: () => loadSigningKey(auditPem),
  });
}

async function readKit(zone: string): Promise<KitFile> {
  return parseKit(await readFile(join(directory, `${zone}.kit.json`), "utf8"));
}

async function shares(kit: KitFile, which: number[]): Promise<ShareFile[]> {
  return Promise.all(which.map((index) => decryptShare(kit, identities[index] as string)));
}

async function pgLogin(username: string, password: string): Promise<void> {
  const url = new URL(POSTGRES_ADMIN_URL);
  const client = new pg.Client({
    host: url.hostname,
    port: Number(url.port || 5432),
    user: username,
    password,
    database: "postgres",
  });
  await client.connect();
  try {
    await client.query("select 1");
  } finally {
    await client.end();
  }
}

async function mariaLogin(username: string, password: string): Promise<void> {
  const url = new URL(MARIADB_URL);
  const connection = await mysql.createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: username,
    password,
  });
  await connection.end();
}

beforeAll(async () => {
  database = await createTestDatabase("sqlite");
  directory = await mkdtemp(join(tmpdir(), "emergency-kits-"));
  identities = await Promise.all([0, 1, 2].map(() => generateX25519Identity()));
  recipients = await Promise.all(identities.map((identity) => identityToRecipient(identity)));
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE ROLE ${pgOwner} NOLOGIN`);
  await admin.end();
  const url = new URL(MARIADB_URL);
  maria = await mysql.createConnection({
    host: url.hostname,
    port: Number(url.port || 3306),
    user: decodeURIComponent(url.username),
  });
  await maria.query(`CREATE ROLE ${mariaReader}`);
  // Per-account login counters: what lets Firebreak find an unrecorded login (README).
  await maria.query("SET GLOBAL userstat = 1");
}, 60_000);

afterAll(async () => {
  await Promise.all(Object.values(connectors).map((c) => c.close()));
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  const left = await admin
    .query<{ rolname: string }>(
      "select rolname from pg_roles where rolname like 'fbkit\\_%' and pg_has_role(rolname, $1, 'member')",
      [pgOwner],
    )
    .catch(() => ({ rows: [] }));
  for (const row of left.rows)
    await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(row.rolname)}`).catch(() => {});
  await admin.query(`DROP ROLE IF EXISTS ${pgOwner}`).catch(() => {});
  await admin.end();
  await maria.query(`DROP ROLE IF EXISTS ${mariaReader}`).catch(() => {});
  await maria.query(`DROP DATABASE IF EXISTS ${mariaControl}`).catch(() => {});
  await maria.end();
  await database.drop();
  await rm(directory, { recursive: true, force: true });
});

describe("emergency kits on PostgreSQL", () => {
  it("opens with k of n shares offline, refuses k-1, a foreign share and a tampered kit; the report imports the opening and rotation removes the credential", async () => {
    const emergency = service();
    await emergency.makeKit("pgzone", "alice", "test");
    const kit = await readKit("pgzone");
    verifyKit(kit, pinnedPem);

    // Firebreak is "stopped" from here: only the kit file, the keys and the target are used.
    await expect(unseal(kit, await shares(kit, [0]))).rejects.toMatchObject({ code: "SHARES_TOO_FEW" });
    const tampered = { ...kit, endsAt: new Date(Date.parse(kit.endsAt) + 86_400_000).toISOString() };
    expect(() => verifyKit(tampered, pinnedPem)).toThrow(expect.objectContaining({ code: "KIT_TAMPERED" }));
    const otherKey = generateKeyPairSync("ed25519")
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    expect(() => verifyKit(kit, otherKey)).toThrow(expect.objectContaining({ code: "KIT_TAMPERED" }));

    const two = await shares(kit, [0, 2]);
    const payload = await unseal(kit, two);
    await pgLogin(payload.credential.username, payload.credential.secret);

    // A share of another kit of the same zone is refused.
    await emergency.makeKit("pgzone", "alice", "second");
    const second = await readKit("pgzone");
    const foreign = await shares(second, [1]);
    await expect(unseal(kit, [two[0] as ShareFile, foreign[0] as ShareFile])).rejects.toMatchObject({
      code: "SHARE_FOREIGN",
    });

    const entry = journalEntry(kit, payload, {
      opener: "erin",
      reason: "database down at 2am",
      custodians: two.map((s) => s.custodian),
      openedAt: new Date(),
      previousLine: null,
    });
    const report = await emergency.importJournal(`${JSON.stringify(entry)}\n`, "alice");
    expect(report.imported).toHaveLength(1);
    expect(report.rotations.map((r) => r.zone)).toEqual(["pgzone"]);
    await expect(pgLogin(payload.credential.username, payload.credential.secret)).rejects.toThrow();

    const db = database.handle.db;
    const grant = await db
      .selectFrom("grants")
      .selectAll()
      .where("id", "=", report.imported[0]?.grantId as string)
      .executeTakeFirstOrThrow();
    expect(grant.review_state).toBe("due");
    expect(grant.user_name).toBe("erin");
    const alerts = await db
      .selectFrom("audit_events")
      .select(["type", "context_json"])
      .where("type", "=", "alert.raised")
      .execute();
    expect(alerts.some((a) => a.context_json.includes("emergency-kit-opened"))).toBe(true);
    // Importing the same journal again imports nothing.
    expect((await emergency.importJournal(`${JSON.stringify(entry)}\n`, "alice")).imported).toHaveLength(0);

    // No kit secret in clear in the database file or the kit file.
    const files = [
      await readFile(database.url.slice("sqlite:".length)),
      await readFile(join(directory, `${kit.kitId}.kit.json`)),
    ];
    for (const bytes of files) expect(bytes.includes(Buffer.from(payload.credential.secret))).toBe(false);
  }, 60_000);
});

describe("emergency kits on MariaDB", () => {
  it("opens with k of n; after downtime the kit is rotated, the old account refused and an unrecorded login found", async () => {
    const emergency = service();
    await emergency.makeKit("mzone", "alice", "test");
    const kit = await readKit("mzone");
    verifyKit(kit, pinnedPem);
    const payload = await unseal(kit, await shares(kit, [1, 2]));
    // Used without a journal entry: only the target's counters can tell.
    await mariaLogin(payload.credential.username, payload.credential.secret);

    const results = await emergency.afterDowntime();
    const finding = results.find((r) => r.zone === "mzone")?.findings[0];
    expect(finding?.connections).toBeGreaterThanOrEqual(1);
    await expect(mariaLogin(payload.credential.username, payload.credential.secret)).rejects.toThrow();
    const alerts = await database.handle.db
      .selectFrom("audit_events")
      .select(["context_json"])
      .where("type", "=", "alert.raised")
      .execute();
    expect(alerts.some((a) => a.context_json.includes("emergency-kit-unrecorded-use"))).toBe(true);
    const current = await readKit("mzone");
    expect(current.kitId).not.toBe(kit.kitId);
    const files = [await readFile(database.url.slice("sqlite:".length))];
    for (const bytes of files) expect(bytes.includes(Buffer.from(payload.credential.secret))).toBe(false);
  }, 60_000);
});

import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import YAML from "yaml";
import { startTestApp, type TestApp } from "../support/app.js";
import {
  createMariaFixture,
  createPgFixture,
  DIRECTORY,
  dropMariaAccounts,
  dropPgAccounts,
  MARIADB_ADMIN_URL,
  type MariaFixture,
  mariaAccounts,
  PG_ADMIN_URL,
  type PgFixture,
  pgAccounts,
  uniqueTag,
} from "../support/jit.js";

/**
 * Drills against the real PostgreSQL and MariaDB on this machine (issue 16): the whole path runs
 * as system:drill and leaves no account behind; a broken admin credential fails at issuance and
 * raises the alert; a sink that is down fails the delivery step. The server runs in process with
 * its clock set to real time (the targets' account expiry is real time).
 */

const tag = uniqueTag();
const PREFIX = `dr${tag}_`;
let pgFixture: PgFixture;
let mariaFixture: MariaFixture;
let directory: string;

function config(options: { pgUrl?: string; sinks?: unknown[]; drills?: unknown[] } = {}) {
  return YAML.stringify({
    version: 1,
    auditors: ["group:security"],
    directory: DIRECTORY,
    zones: { bastion: { cidrs: ["127.0.0.0/8"] }, "drill-pg": {}, "drill-maria": {} },
    resources: {
      "drill-pg-db": {
        zone: "drill-pg",
        type: "postgres",
        address: "127.0.0.1:5432",
        connection: { url: options.pgUrl ?? PG_ADMIN_URL },
        namePrefix: PREFIX,
        roles: { admin: { grants: [pgFixture.reader] } },
      },
      "drill-maria-db": {
        zone: "drill-maria",
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
    },
    breakGlass: [
      {
        name: "pg-emergency",
        zone: "drill-pg",
        roles: ["admin"],
        eligible: ["group:sre"],
        duration: { default: "15m", max: "1h" },
        factors: ["totp"],
      },
      {
        name: "maria-emergency",
        zone: "drill-maria",
        roles: ["admin"],
        eligible: ["group:sre"],
        duration: { default: "15m", max: "1h" },
      },
    ],
    drills: options.drills ?? [
      {
        name: "pg-weekly",
        policy: "pg-emergency",
        resource: "drill-pg-db",
        role: "admin",
        every: "7d",
        notify: ["group:security"],
      },
      {
        name: "maria-daily",
        policy: "maria-emergency",
        resource: "drill-maria-db",
        role: "admin",
        cron: "0 3 * * *",
      },
    ],
    audit: {
      sinks: options.sinks ?? [
        { name: "lake", type: "file", path: join(directory, "audit.jsonl"), format: "json" },
      ],
    },
  });
}

async function start(text: string, env: NodeJS.ProcessEnv = {}): Promise<TestApp> {
  const app = await startTestApp("sqlite", { config: text, env });
  // Issued logins expire at the grant's end, and the targets read real time.
  app.clock.set(Date.now());
  return app;
}

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "firebreak-drills-"));
  pgFixture = await createPgFixture(tag);
  mariaFixture = await createMariaFixture(tag);
});

afterAll(async () => {
  await dropPgAccounts(PREFIX).catch(() => {});
  await dropMariaAccounts(PREFIX).catch(() => {});
  await pgFixture?.drop().catch(() => {});
  await mariaFixture?.drop().catch(() => {});
  await rm(directory, { recursive: true, force: true });
});

describe("drills against real targets", () => {
  it("a PostgreSQL drill passes every step as system:drill and leaves no login behind", async () => {
    const app = await start(config());
    try {
      const run = await app.call("POST", "/v1/drills/pg-weekly/run");
      expect(run.status, run.text).toBe(200);
      // Nobody enrolled a TOTP factor: the decision step says so and the drill stops there.
      expect(run.body.run.outcome).toBe("failed");
      expect(run.body.run.failedStep).toBe("decision");
      expect(run.body.run.steps[0].message).toContain("no totp factor enrolled");
      expect(await pgAccounts(PREFIX)).toEqual([]);
      // Readiness says the same without touching the target, per person.
      const readiness = await app.call("GET", "/v1/readiness");
      expect(readiness.status, readiness.text).toBe(200);
      const pgPolicy = readiness.body.policies.find((p: { policy: string }) => p.policy === "pg-emergency");
      expect(pgPolicy.ready).toBe(false);
      const alice = pgPolicy.eligible.find((p: { user: string }) => p.user === "alice");
      expect(alice.blockers.map((b: { code: string }) => b.code)).toEqual(["NO_FACTOR_ENROLLED"]);
      expect((await app.call("GET", "/v1/readiness", { as: "alice" })).status).toBe(403);

      // With the factor requirement gone, the whole path passes.
      await app.writeConfig(config().replace("    factors:\n      - totp\n", ""));
      expect((await app.call("POST", "/v1/config/reload")).status).toBe(200);
      app.clock.advance(1_000);
      const passed = await app.call("POST", "/v1/drills/pg-weekly/run");
      expect(passed.status, passed.text).toBe(200);
      const steps = passed.body.run.steps as {
        name: string;
        outcome: string;
        ms: number;
        detail: Record<string, unknown>;
      }[];
      expect(steps.map((s) => [s.name, s.outcome])).toEqual([
        ["decision", "passed"],
        ["issue", "passed"],
        ["login", "passed"],
        ["revoke", "passed"],
        ["refused", "passed"],
        ["delivery", "passed"],
      ]);
      expect(passed.body.run.outcome).toBe("passed");
      expect(steps[2]?.detail.action).toBe("select 1");
      expect(steps[5]?.detail.sinks).toEqual(["lake"]);
      expect(await pgAccounts(PREFIX)).toEqual([]);

      const events = await app.auditEvents();
      const grantId = passed.body.run.grantId as string;
      const activated = events.find((e) => e.type === "grant.activated" && e.subject === grantId);
      expect(activated?.actor).toBe("system:drill");
      expect(activated?.context.drill).toBe("pg-weekly");
      const verified = events.find((e) => e.type === "revocation.verified" && e.subject === grantId);
      expect(verified).toBeDefined();
      const completed = events.filter((e) => e.type === "drill.completed");
      expect(completed.map((e) => e.context.outcome)).toEqual(["failed", "passed"]);
      expect(completed[1]?.actor).toBe("system:drill");
      // The file sink has the drill's events, up to the verified revocation.
      const lake = await readFile(join(directory, "audit.jsonl"), "utf8");
      expect(lake).toContain(grantId);
      // No review is owed for the drill's use, and the grant is closed.
      const grants = await app.call("GET", "/v1/grants");
      const drillGrant = grants.body.grants.find((g: { id: string }) => g.id === grantId);
      expect(drillGrant).toMatchObject({ user: "system:drill", state: "revoked", review: { state: "none" } });
      expect(drillGrant.revocation.status).toBe("verified");

      const list = await app.call("GET", "/v1/drills", { as: "alice" });
      expect(list.status).toBe(200);
      const pg = list.body.drills.find((d: { name: string }) => d.name === "pg-weekly");
      expect(pg.last.outcome).toBe("passed");
      expect(pg.lastPassedAt).toBe(passed.body.run.startedAt);
      const metrics = await app.call("GET", "/metrics", { as: null });
      expect(metrics.text).toMatch(/firebreak_drill_last_success_timestamp_seconds\{drill="pg-weekly"\} \d+/);
      expect(metrics.text).toContain(
        'firebreak_drill_step_duration_seconds_count{drill="pg-weekly",step="login",outcome="passed"} 1',
      );
      // Only administrators run drills.
      expect((await app.call("POST", "/v1/drills/pg-weekly/run", { as: "alice" })).body.error.code).toBe(
        "FORBIDDEN",
      );
    } finally {
      await app.close();
    }
  });

  it("a MariaDB drill passes and leaves no account behind", async () => {
    const app = await start(config());
    try {
      const run = await app.call("POST", "/v1/drills/maria-daily/run");
      expect(run.status, run.text).toBe(200);
      expect(run.body.run.steps.map((s: { outcome: string }) => s.outcome)).toEqual(Array(6).fill("passed"));
      expect(await mariaAccounts(PREFIX)).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it("a target whose admin credential changed fails at issuance and raises the alert to the recipients", async () => {
    const app = await start(config({ pgUrl: "env:DRILL_PG_URL" }), {
      DRILL_PG_URL: "postgres://drill_nobody:wrong@127.0.0.1:5432/firebreak_pwtest",
    });
    try {
      await app.writeConfig(
        config({ pgUrl: "env:DRILL_PG_URL" }).replace("    factors:\n      - totp\n", ""),
      );
      expect((await app.call("POST", "/v1/config/reload")).status).toBe(200);
      const run = await app.call("POST", "/v1/drills/pg-weekly/run");
      expect(run.status, run.text).toBe(200);
      expect(run.body.run.outcome).toBe("failed");
      expect(run.body.run.failedStep).toBe("issue");
      expect(run.body.run.steps.map((s: { outcome: string }) => s.outcome)).toEqual([
        "passed",
        "failed",
        "skipped",
        // The admin login that would drop the account fails too: nothing proves the target clean,
        // so the revocation is retried and alerted like any grant's (grants/NOTES.md §8).
        "failed",
        "skipped",
        "skipped",
      ]);
      expect(run.body.run.steps[3].detail.revocation).toBe("failed");
      expect(run.text).not.toContain("wrong");
      const alerts = (await app.auditEvents()).filter(
        (e) => e.type === "alert.raised" && e.context.alert === "drill-failed",
      );
      expect(alerts).toHaveLength(1);
      expect(alerts[0]?.context.step).toBe("issue");
      expect(alerts[0]?.context.recipients).toEqual(["group:security"]);
      // The grant the drill opened is closed like any other whose issuance failed.
      const grants = await app.call("GET", "/v1/grants");
      const grant = grants.body.grants.find((g: { id: string }) => g.id === run.body.run.grantId);
      expect(grant.state).toBe("revoked");
    } finally {
      await app.close();
    }
  });

  it("a drill whose audit sink is down fails at the delivery step and names the sink", async () => {
    const text = config({
      sinks: [
        { name: "lake", type: "file", path: join(directory, "audit2.jsonl"), format: "json" },
        {
          name: "soar",
          type: "webhook",
          url: "http://127.0.0.1:9/firebreak",
          secret: "env:SOAR_SECRET",
          format: "json",
        },
      ],
      drills: [
        {
          name: "maria-daily",
          policy: "maria-emergency",
          resource: "drill-maria-db",
          role: "admin",
          every: "1d",
          deliveryTimeout: "2s",
        },
      ],
    });
    const app = await start(text, { SOAR_SECRET: `whsec_${Buffer.alloc(32, 7).toString("base64")}` });
    try {
      const run = await app.call("POST", "/v1/drills/maria-daily/run");
      expect(run.status, run.text).toBe(200);
      expect(run.body.run.failedStep).toBe("delivery");
      const delivery = run.body.run.steps[5];
      expect(delivery.detail.behind).toEqual(["soar"]);
      expect(delivery.message).toContain("'soar'");
      // Everything before it passed: the path works, it is the sink that would not have seen it.
      expect(run.body.run.steps.slice(0, 5).map((s: { outcome: string }) => s.outcome)).toEqual(
        Array(5).fill("passed"),
      );
      expect(await mariaAccounts(PREFIX)).toEqual([]);
    } finally {
      await app.close();
    }
  });
});

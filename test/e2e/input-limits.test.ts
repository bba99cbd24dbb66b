import { createHmac } from "node:crypto";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createProblems, type Reply, startTestApp, type TestApp } from "../support/app.js";
import { createTestDatabase, DIALECTS } from "../support/databases.js";

/**
 * Every stored input at the longest length the edge accepts is stored, on both databases; one
 * character more is refused with 400 VALIDATION_FAILED and changes nothing. The schemas at the
 * edge are the only limits: a column narrower than its schema (PostgreSQL's `varchar(500)` under a
 * 5,000 character alert summary) turned a valid delivery into a 500.
 *
 * Lengths are counted in characters, and the filler is two bytes in UTF-8 ("é"), so a limit
 * that counted bytes would show too.
 */
const long = (length: number, first = "a") => first + "é".repeat(length - 1);
/** Names are ASCII by their patterns: the longest a name may be, in letters and digits. */
const name = (length: number, first: string) => `${first}${"0123456789".repeat(13)}`.slice(0, length);

const ZONE = name(63, "z");
const RESOURCE = name(63, "r");
const ROLE = name(63, "o");
const POLICY = name(63, "p");
const GROUP = name(63, "g");
const USER = `u${"x".repeat(127)}`;
const DATABASE_ROLE = name(63, "d");
const AM_TOKEN = "alertmanager-test-token";
const PD_SECRET = "pagerduty-test-secret";

const CONFIG = `version: 1
directory:
  users:
    ${USER}: { groups: [${GROUP}] }
    lee: { groups: [leads] }
    erin: { groups: [security] }
zones:
  ${ZONE}: {}
resources:
  ${RESOURCE}:
    zone: ${ZONE}
    type: log
    roles:
      ${ROLE}: { grants: [${DATABASE_ROLE}] }
breakGlass:
  - name: ${POLICY}
    zone: ${ZONE}
    roles: [${ROLE}]
    eligible: [group:${GROUP}]
    duration: { default: 15m, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
    review: { within: 24h, by: [group:security] }
signals:
  alertmanager: { token: env:AM_TOKEN, zoneLabel: zone }
  pagerduty: { secret: env:PD_SECRET, services: { PSERVICE: ${ZONE} } }
`;

describe.each(DIALECTS)("input limits on %s", (dialect) => {
  let t: TestApp;
  let started: TestApp | null = null;

  beforeEach(async () => {
    started = null;
    t = await startTestApp(dialect, { config: CONFIG, env: { AM_TOKEN, PD_SECRET } });
    started = t;
  });

  afterEach(async () => {
    if (!started) return;
    const errors = started.serverErrors;
    await started.close();
    expect(errors, "the server answered 500 INTERNAL").toEqual([]);
  });

  async function stored() {
    return {
      requests: await t.count("requests"),
      grants: await t.count("grants"),
      approvals: await t.count("approvals"),
      users: await t.count("users"),
      audit: await t.count("audit_events"),
    };
  }

  it("stores every request, decision, grant and user input at its maximum and refuses one more", async () => {
    const problems = createProblems();
    const accepted = (reply: Reply, status: number, label: string) =>
      problems.check(reply.status === status, `${label}: ${reply.status} ${reply.text.slice(0, 200)}`);
    /** Refused with 400 and nothing stored. */
    const refused = async (label: string, send: () => Promise<Reply>) => {
      const before = await stored();
      problems.refused(await send(), label, ["VALIDATION_FAILED"]);
      problems.check(
        JSON.stringify(await stored()) === JSON.stringify(before),
        `${label}: something changed`,
      );
    };
    // Tokens are minted (and audited) on first use; mint them before counting what a refusal changes.
    for (const user of [USER, "lee", "erin"]) await t.token(user);
    const ask = (reason: string, ticket: string) =>
      t.call("POST", "/v1/requests", {
        as: USER,
        body: { resource: RESOURCE, role: ROLE, duration: "15m", reason, ticket },
      });

    await refused("reason 2001", () => ask(long(2001), "INC-1"));
    await refused("ticket 201", () => ask("fine", long(201, "T")));
    const created = await ask(long(2000), long(200, "T"));
    accepted(created, 201, "request at its maximum");
    const id = created.body?.id as string;
    expect(created.body).toMatchObject({ reason: long(2000), ticket: long(200, "T"), requester: USER });

    const approve = (comment: string) =>
      t.call("POST", `/v1/requests/${id}/approve`, { as: "lee", body: { comment } });
    await refused("approval comment 2001", () => approve(long(2001)));
    const approved = await approve(long(2000));
    accepted(approved, 200, "approval comment 2000");
    expect(approved.body?.approvals?.[0]?.comment).toBe(long(2000));

    const activated = await t.call("POST", `/v1/requests/${id}/activate`, { as: USER });
    accepted(activated, 201, "activation by a 128-character user on 63-character names");
    const grantId = activated.body?.id as string;
    expect(activated.body).toMatchObject({ user: USER, zone: ZONE, resource: RESOURCE, role: ROLE });

    const revoke = (reason: string) =>
      t.call("POST", `/v1/grants/${grantId}/revoke`, { as: "admin", body: { reason } });
    await refused("revoke reason 4001", () => revoke(long(4001)));
    const revoked = await revoke(long(4000));
    accepted(revoked, 200, "revoke reason 4000");
    expect(revoked.body?.closeReason).toBe(long(4000));

    const review = (notes: string) =>
      t.call("POST", `/v1/grants/${grantId}/review`, { as: "erin", body: { verdict: "accept", notes } });
    await refused("review notes 4001", () => review(long(4001)));
    const reviewed = await review(long(4000));
    accepted(reviewed, 200, "review notes 4000");
    expect(reviewed.body?.review?.notes).toBe(long(4000));

    const second = await ask("again", "INC-2");
    accepted(second, 201, "a second request");
    const deny = (reason: string) =>
      t.call("POST", `/v1/requests/${second.body?.id}/deny`, { as: "lee", body: { reason } });
    await refused("deny reason 2001", () => deny(long(2001)));
    const denied = await deny(long(2000));
    accepted(denied, 200, "deny reason 2000");
    expect(denied.body?.state).toBe("denied");

    const groups = Array.from({ length: 100 }, (_, index) => name(63, `g${String(index).padStart(2, "0")}`));
    const addUser = (userName: string, userGroups: string[]) =>
      t.call("POST", "/v1/users", { body: { name: userName, groups: userGroups } });
    await refused("user name 129", () => addUser(`n${"x".repeat(128)}`, []));
    await refused("group name 64", () => addUser("nora", [name(64, "g")]));
    await refused("101 groups", () => addUser("nora", [...groups, "one-more"]));
    const added = await addUser(`n${"x".repeat(127)}`, groups);
    accepted(added, 201, "a 128-character user in 100 groups of 63 characters");
    const listed = await t.call("GET", "/v1/users");
    const found = listed.body?.users?.find((u: { name: string }) => u.name === `n${"x".repeat(127)}`);
    expect(found?.groups).toEqual([...groups].sort());

    expect(problems.list).toEqual([]);
  });

  it("stores incidents and alert signals at their maximum and refuses one more", async () => {
    const problems = createProblems();
    const incidents = async () => (await t.app.db.selectFrom("incidents").select("id").execute()).length;
    const refused = async (label: string, send: () => Promise<Reply>) => {
      const before = [await incidents(), await t.count("audit_events")];
      problems.refused(await send(), label, ["VALIDATION_FAILED"]);
      const after = [await incidents(), await t.count("audit_events")];
      problems.check(JSON.stringify(after) === JSON.stringify(before), `${label}: something changed`);
    };
    const declare = (id: string, title: string) =>
      t.call("POST", "/v1/incidents", { body: { id, zone: ZONE, severity: 2, title } });
    await refused("incident title 501", () => declare("INC-1", long(501)));
    await refused("incident id 101", () => declare(`I${"1".repeat(100)}`, "fine"));
    const declared = await declare(`I${"1".repeat(99)}`, long(500));
    problems.check(declared.status === 201, `incident at its maximum: ${declared.status} ${declared.text}`);

    const now = new Date(t.clock.now()).toISOString();
    const alertmanager = (alert: Record<string, unknown>) =>
      t.call("POST", "/v1/signals/alertmanager", {
        as: null,
        headers: { authorization: `Bearer ${AM_TOKEN}` },
        body: { status: "firing", alerts: [{ status: "firing", startsAt: now, ...alert }] },
      });
    // Without a fingerprint the incident is known by `alertname:zone`: 1,000 + 1 + 63 characters.
    const summary = {
      labels: { zone: ZONE, alertname: long(1000, "A") },
      annotations: { summary: long(5000) },
    };
    await refused("alert summary 5001", () =>
      alertmanager({ ...summary, annotations: { summary: long(5001) } }),
    );
    await refused("alert label 1001", () =>
      alertmanager({ ...summary, labels: { zone: ZONE, alertname: long(1001, "A") } }),
    );
    await refused("alert fingerprint 201", () => alertmanager({ ...summary, fingerprint: long(201, "f") }));
    const alerted = await alertmanager(summary);
    problems.check(
      alerted.status === 202 && alerted.body?.applied === 1,
      `alert at its maximum: ${alerted.status} ${alerted.text.slice(0, 200)}`,
    );
    const fingerprinted = await alertmanager({ ...summary, fingerprint: long(200, "f") });
    problems.check(
      fingerprinted.status === 202 && fingerprinted.body?.applied === 1,
      `alert with a 200-character fingerprint: ${fingerprinted.status} ${fingerprinted.text.slice(0, 200)}`,
    );

    const pagerduty = (data: Record<string, unknown>, eventId: string) => {
      const body = JSON.stringify({
        event: {
          id: eventId,
          occurred_at: now,
          event_type: "incident.triggered",
          data: { urgency: "high", service: { id: "PSERVICE" }, ...data },
        },
      });
      const signature = createHmac("sha256", PD_SECRET).update(body).digest("hex");
      return t.call("POST", "/v1/signals/pagerduty", {
        as: null,
        rawBody: body,
        headers: { "content-type": "application/json", "x-pagerduty-signature": `v1=${signature}` },
      });
    };
    await refused("pagerduty title 1001", () => pagerduty({ id: long(200, "P"), title: long(1001) }, "E1"));
    const paged = await pagerduty({ id: long(200, "P"), title: long(1000) }, long(200, "E"));
    problems.check(
      paged.status === 202 && paged.body?.applied === 1,
      `pagerduty at its maximum: ${paged.status} ${paged.text.slice(0, 200)}`,
    );

    const zones = await t.call("GET", "/v1/zones");
    const titles = zones.body?.zones
      ?.find((z: { name: string }) => z.name === ZONE)
      ?.openIncidents?.map((i: { title: string }) => i.title.length)
      .sort((a: number, b: number) => a - b);
    expect(titles).toEqual([500, 1000, 5000, 5000]);
    expect(problems.list).toEqual([]);
  });
});

describe("column widths", () => {
  it("leaves no varchar column on PostgreSQL: the schemas at the edge are the only limits", async () => {
    const database = await createTestDatabase("postgres");
    try {
      const { rows } = await sql<{ column: string }>`
        select table_name || '.' || column_name as column from information_schema.columns
        where table_schema = current_schema() and character_maximum_length is not null
          and table_name not like 'kysely\\_%'
        order by 1`.execute(database.handle.db);
      expect(rows.map((row) => row.column)).toEqual([]);
    } finally {
      await database.drop();
    }
  });
});

import { describe, expect, it } from "vitest";
import { USER_PATTERN } from "../../src/config/schema.js";
import {
  createProblems,
  expectError,
  expectNoInternals,
  expectStatus,
  REASON,
  type Reply,
} from "../support/app.js";
import { freshAppPerTest } from "../support/app-per-test.js";
import { DIALECTS } from "../support/databases.js";

/** Names an attacker (or a careless script) might send where a zone, resource, role or user goes. */
const HOSTILE_NAMES = [
  `x"; DROP ROLE postgres; --`,
  "vault'; DROP TABLE requests; --",
  "vault' OR '1'='1",
  "vault\u0000admin",
  "vault\nadmin",
  " vault",
  "VAULT",
  "vault/../sandbox",
  "../../etc/passwd",
  "$(reboot)",
  "`id`",
  "zöne-ünïcødé",
  "データベース",
  "vault\u200b",
  "ｖａｕｌｔ",
  "🔥🔥🔥",
  "\ud800",
  "a".repeat(10_000),
  "é".repeat(10_000),
];

/** For a URL: a lone surrogate has no UTF-8 form, so it is sent as the bytes a careless encoder would produce. */
function encodeForUrl(text: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    return text
      .split("")
      .map((unit) => (/[\uD800-\uDFFF]/.test(unit) ? "%ED%A0%80" : encodeURIComponent(unit)))
      .join("");
  }
}

/** Every code a refused hostile name may carry; all are 4xx. */
const REFUSAL_CODES = ["VALIDATION_FAILED", "NOT_FOUND", "POLICY_DENIED", "BAD_REQUEST"];

describe.each(DIALECTS)("hostile input over HTTP on %s", (dialect) => {
  const t = freshAppPerTest(dialect);

  async function stored() {
    return {
      requests: await t.count("requests"),
      grants: await t.count("grants"),
      approvals: await t.count("approvals"),
      users: await t.count("users"),
      audit: await t.count("audit_events"),
    };
  }

  it("refuses a body over 64 KiB with 413 PAYLOAD_TOO_LARGE before parsing it", async () => {
    await t.token("alice");
    const before = await stored();
    const reply = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "sandbox", role: "debug", reason: "x".repeat(70 * 1024) },
    });
    expectError(reply, 413, "PAYLOAD_TOO_LARGE");
    expectNoInternals(reply);
    // Not even valid JSON matters at that size.
    const garbage = await t.call("POST", "/v1/requests", {
      as: "alice",
      rawBody: "{".repeat(65 * 1024 + 1),
      headers: { "content-type": "application/json" },
    });
    expectError(garbage, 413, "PAYLOAD_TOO_LARGE");
    expect(await stored()).toEqual(before);
  });

  it("refuses malformed JSON with 400 and a body of the wrong type with 415", async () => {
    await t.token("alice");
    const before = await stored();
    for (const raw of ['{"zone": "sandbox",', "{zone: sandbox}", "'single'", "\u0000", "{}}", "NaN"]) {
      const reply = await t.call("POST", "/v1/requests", {
        as: "alice",
        rawBody: raw,
        headers: { "content-type": "application/json" },
      });
      expectError(reply, 400, "BAD_REQUEST");
      expectNoInternals(reply);
    }
    // Well-formed JSON of the wrong shape is a validation failure.
    for (const body of [[], "sandbox", 42, null, { zone: "sandbox" }, { zone: 7, role: [], reason: {} }]) {
      const reply = await t.call("POST", "/v1/requests", {
        as: "alice",
        rawBody: JSON.stringify(body),
        headers: { "content-type": "application/json" },
      });
      expectError(reply, 400, "VALIDATION_FAILED");
      expectNoInternals(reply);
    }
    const json = JSON.stringify({ zone: "sandbox", role: "debug", reason: "reproduce bug 1234" });
    for (const type of [
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/xml",
    ]) {
      const reply = await t.call("POST", "/v1/requests", {
        as: "alice",
        rawBody: json,
        headers: { "content-type": type },
      });
      expectError(reply, 415, "UNSUPPORTED_MEDIA_TYPE");
      expectNoInternals(reply);
    }
    expect(await stored()).toEqual(before);
    // JSON with a charset parameter is still JSON.
    const withCharset = await t.call("POST", "/v1/requests", {
      as: "alice",
      rawBody: json,
      headers: { "content-type": "application/json; charset=utf-8" },
    });
    expectStatus(withCharset, 201);
  });

  it("refuses unknown JSON fields instead of ignoring them", async () => {
    await t.token("alice");
    await t.token("carol");
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "app", role: "operator", reason: "restart the stuck workers" },
    });
    expectStatus(created, 201);
    const before = await stored();
    const attempts: [string, unknown, string][] = [
      [
        "/v1/requests",
        { zone: "sandbox", role: "debug", reason: "reproduce bug 1234", state: "active" },
        "alice",
      ],
      [
        "/v1/requests",
        { zone: "sandbox", role: "debug", reason: "reproduce bug 1234", requester: "bob" },
        "alice",
      ],
      [
        "/v1/requests",
        JSON.parse(
          '{"zone":"sandbox","role":"debug","reason":"reproduce bug 1234","__proto__":{"isAdmin":true}}',
        ),
        "alice",
      ],
      [`/v1/requests/${created.body.id}/approve`, { comment: "ok", approver: "dave" }, "carol"],
      [`/v1/requests/${created.body.id}/deny`, { reason: "no", final: false }, "carol"],
      ["/v1/users", { name: "mallory", groups: [], isAdmin: true }, "admin"],
      ["/v1/incidents", { id: "INC-1", zone: "vault", severity: 1, autoApprove: true }, "admin"],
    ];
    for (const [url, body, as] of attempts) {
      const reply = await t.call("POST", url, { as, body });
      expectError(reply, 400, "VALIDATION_FAILED");
      expectNoInternals(reply);
    }
    expect(await stored()).toEqual(before);
    const whoami = await t.call("GET", "/v1/whoami", { as: "alice" });
    expect(whoami.body.isAdmin).toBe(false);
    // The server runs in this process: a polluted prototype would show here.
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it("refuses hostile zone, resource and role names with a stable 4xx and stores nothing", async () => {
    await t.token("alice");
    expectStatus(
      await t.call("POST", "/v1/incidents", { body: { id: "INC-1", zone: "vault", severity: 2 } }),
      201,
    );
    const problems = createProblems();
    for (const name of HOSTILE_NAMES) {
      const label = JSON.stringify(name.slice(0, 40));
      const base = { reason: REASON, ticket: "INC-1" };
      for (const body of [
        { ...base, zone: name, role: "admin" },
        { ...base, zone: "vault", role: name },
        { ...base, resource: name, role: "admin" },
        { ...base, resource: "vault-pg", role: name },
      ]) {
        const where = `${label} as ${Object.keys(body).filter((k) => (body as Record<string, unknown>)[k] === name)}`;
        const before = await stored();
        problems.refused(await t.call("POST", "/v1/requests", { as: "alice", body }), where, REFUSAL_CODES);
        const after = await stored();
        problems.check(
          JSON.stringify(after) === JSON.stringify(before),
          `${where}: stored ${JSON.stringify(after)}`,
        );
      }
    }
    expect(problems.list).toEqual([]);
  });

  it("refuses hostile user, group and incident names and stores nothing", async () => {
    const before = await stored();
    const problems = createProblems();
    for (const name of HOSTILE_NAMES) {
      const label = JSON.stringify(name.slice(0, 40));
      // Some of these are fine user names or incident ids (`VAULT`); those are not hostile there.
      if (!USER_PATTERN.test(name)) {
        const user = await t.call("POST", "/v1/users", { body: { name, groups: [] } });
        problems.refused(user, `user ${label}`, REFUSAL_CODES);
        const token = await t.call("POST", `/v1/users/${encodeForUrl(name)}/tokens`);
        problems.refused(token, `token for ${label}`, REFUSAL_CODES);
      }
      const group = await t.call("POST", "/v1/users", { body: { name: "mallory", groups: [name] } });
      problems.refused(group, `group ${label}`, REFUSAL_CODES);
      const zone = await t.call("POST", "/v1/incidents", { body: { id: "INC-1", zone: name, severity: 1 } });
      problems.refused(zone, `incident zone ${label}`, REFUSAL_CODES);
      if (!/^[A-Za-z0-9._:-]{1,100}$/.test(name)) {
        const id = await t.call("POST", "/v1/incidents", { body: { id: name, zone: "vault", severity: 1 } });
        problems.refused(id, `incident id ${label}`, REFUSAL_CODES);
      }
    }
    expect(problems.list).toEqual([]);
    expect(await stored()).toEqual(before);
  });

  it("answers queries carrying hostile names without harm", async () => {
    const before = await stored();
    const problems = createProblems();
    for (const name of HOSTILE_NAMES) {
      const value = encodeForUrl(name);
      for (const url of [
        `/v1/access?user=${value}&zone=vault&role=admin`,
        `/v1/access?user=alice&zone=${value}&role=admin`,
        `/v1/access?user=alice&resource=${value}&role=admin`,
        `/v1/access?user=alice&zone=vault&role=${value}`,
        `/v1/audit?zone=${value}`,
        `/v1/audit?actor=${value}`,
        `/v1/audit?type=${value}`,
        `/v1/audit?subject=${value}`,
        `/v1/requests?state=${value}`,
        `/v1/zones/${value}`,
      ]) {
        const reply = await t.call("GET", url);
        const label = `GET ${url.slice(0, 70)}`;
        if (reply.status === 200) {
          // Answered: nobody holds anything under a name that cannot exist, and no event matches it.
          if (url.startsWith("/v1/access")) problems.check(reply.body.allowed === false, `${label}: allowed`);
          else
            problems.check(
              JSON.stringify(reply.body.events) === "[]",
              `${label}: ${reply.text.slice(0, 100)}`,
            );
        } else problems.refused(reply, label, REFUSAL_CODES);
      }
    }
    expect(problems.list).toEqual([]);
    expect(await stored()).toEqual(before);
  });

  it("stores free text with quotes, semicolons and unicode exactly as sent", async () => {
    const reason = `Tables "x"; DROP TABLE requests; -- it's ünïcødé 🔥 \\ \n\t %s %n {{7*7}} <script>`;
    const ticket = `'; DELETE FROM grants; -- ✓`;
    const created = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "sandbox", role: "debug", reason, ticket },
    });
    expectStatus(created, 201);
    const read = await t.call("GET", `/v1/requests/${created.body.id}`);
    expect(read.body).toMatchObject({ reason, ticket });
    const [event] = (await t.auditEvents()).filter(
      (e) => e.type === "request.created" && e.subject === created.body.id,
    );
    expect(event?.context).toMatchObject({ purpose: reason, ticket });
    const verified = await t.call("GET", "/v1/audit/verify");
    expect(verified.body.ok).toBe(true);
    expect(await t.count("grants")).toBe(0);
  });

  it("stores free text with control characters exactly as sent, or refuses it with VALIDATION_FAILED", async () => {
    // Tokens first: minting one stores the user, which would count as "stored" below.
    for (const user of ["alice", "bob", "carol", "erin"]) await t.token(user);
    const problems = createProblems();
    /** Either the text comes back exactly as sent, or the write was refused and stored nothing. */
    async function roundTrip(
      label: string,
      write: () => Promise<Reply>,
      readBack: (reply: Reply) => Promise<unknown>,
      text: string,
    ) {
      const before = await stored();
      const reply = await write();
      if (reply.status >= 200 && reply.status < 300) {
        const read = await readBack(reply);
        problems.check(read === text, `${label}: stored ${JSON.stringify(read)} for ${JSON.stringify(text)}`);
      } else {
        problems.refused(reply, label, ["VALIDATION_FAILED"]);
        const after = await stored();
        problems.check(JSON.stringify(after) === JSON.stringify(before), `${label}: refused but stored`);
      }
    }
    const ask = (as: string, zone: "cache" | "sandbox", extra: Record<string, unknown> = {}) =>
      t.call("POST", "/v1/requests", {
        as,
        body: { zone, role: zone === "cache" ? "flush" : "debug", reason: "reproduce bug 1234", ...extra },
      });
    const requestField = (field: string) => async (reply: Reply) =>
      (await t.call("GET", `/v1/requests/${reply.body.id}`)).body[field];

    for (const [kind, text] of [
      ["NUL", "reproduce bug\u0000 1234 please"],
      ["lone surrogate", "reproduce bug \ud800 1234 please"],
      ["terminal escapes", "reproduce bug \u001b[31m 1234 \u0007 please"],
    ] as const) {
      await roundTrip(
        `${kind} in a reason`,
        () => ask("alice", "cache", { reason: text }),
        requestField("reason"),
        text,
      );
      await roundTrip(
        `${kind} in a ticket`,
        () => ask("bob", "cache", { ticket: text }),
        requestField("ticket"),
        text,
      );

      const toApprove = await ask("alice", "cache");
      await roundTrip(
        `${kind} in an approval comment`,
        () =>
          t.call("POST", `/v1/requests/${toApprove.body.id}/approve`, {
            as: "carol",
            body: { comment: text },
          }),
        async (reply) => reply.body.approvals[0]?.comment,
        text,
      );
      const toDeny = await ask("bob", "cache");
      await roundTrip(
        `${kind} in a denial reason`,
        () => t.call("POST", `/v1/requests/${toDeny.body.id}/deny`, { as: "carol", body: { reason: text } }),
        requestField("closedReason"),
        text,
      );
      await roundTrip(
        `${kind} in an incident title`,
        () =>
          t.call("POST", "/v1/incidents", {
            body: { id: `INC-${kind.length}`, zone: "app", severity: 3, title: text },
          }),
        async () => {
          const zone = await t.call("GET", "/v1/zones/app");
          return zone.body.openIncidents[0]?.title;
        },
        text,
      );
      await t.call("POST", "/v1/incidents", {
        body: { id: `INC-${kind.length}`, zone: "app", status: "resolved" },
      });

      const sandbox = await ask("alice", "sandbox");
      const grant = await t.call("POST", `/v1/requests/${sandbox.body.id}/activate`, { as: "alice" });
      expectStatus(grant, 201);
      await roundTrip(
        `${kind} in a revocation reason`,
        () => t.call("POST", `/v1/grants/${grant.body.id}/revoke`, { as: "alice", body: { reason: text } }),
        async () => (await t.call("GET", `/v1/grants/${grant.body.id}`)).body.closeReason,
        text,
      );
      // Make sure the grant is closed whatever happened above, so the next round may activate again.
      await t.call("POST", `/v1/grants/${grant.body.id}/revoke`, { as: "alice", body: { reason: "done" } });
      await roundTrip(
        `${kind} in review notes`,
        () =>
          t.call("POST", `/v1/grants/${grant.body.id}/review`, {
            as: "erin",
            body: { verdict: "flag", notes: text },
          }),
        async () => (await t.call("GET", `/v1/grants/${grant.body.id}`)).body.review.notes,
        text,
      );
    }
    expect(problems.list).toEqual([]);
    expect((await t.call("GET", "/v1/audit/verify")).body.ok).toBe(true);
  });

  it("answers malformed ids in paths with 400 VALIDATION_FAILED or 404, never 500", async () => {
    const ids = [
      "not-an-id",
      "req_",
      "REQ_mm9yn2805a8cd8fdbdcf3ce9",
      "req_mm9yn2805a8cd8fdbdcf3ce9%27%3B%20DROP%20TABLE%20requests%3B--",
      "req_%00",
      "%00",
      "..%2F..%2Fetc%2Fpasswd",
      "%E2%9C%93",
      "%F0%9F%94%A5",
      "%ZZ",
      "%E0%A4%A",
      `req_${"a".repeat(10_000)}`,
      "grt_mm9yn2809b41263bbac9428b", // a grant id where a request id goes
      "req_mm9yn2805a8cd8fdbdcf3ce9x",
      "apv_mm9yn2805a8cd8fdbdcf3ce9", // an approval id
    ];
    const paths: ["GET" | "POST", (id: string) => string, unknown][] = [
      ["GET", (id) => `/v1/requests/${id}`, undefined],
      ["POST", (id) => `/v1/requests/${id}/approve`, undefined],
      ["POST", (id) => `/v1/requests/${id}/deny`, { reason: "no" }],
      ["POST", (id) => `/v1/requests/${id}/cancel`, undefined],
      ["POST", (id) => `/v1/requests/${id}/activate`, undefined],
      ["GET", (id) => `/v1/grants/${id}`, undefined],
      ["POST", (id) => `/v1/grants/${id}/revoke`, { reason: "no" }],
      ["POST", (id) => `/v1/grants/${id}/review`, { verdict: "accept", notes: "ok" }],
    ];
    const before = await stored();
    const problems = createProblems();
    for (const id of ids) {
      for (const [method, path, body] of paths) {
        const url = path(id);
        const reply = await t.call(method, url, { body });
        const codes = reply.status === 404 ? ["NOT_FOUND"] : ["VALIDATION_FAILED", "BAD_REQUEST"];
        problems.refused(reply, `${method} ${url.slice(0, 80)}`, codes);
        problems.check([400, 404].includes(reply.status), `${method} ${url.slice(0, 80)}: ${reply.status}`);
      }
    }
    expect(problems.list).toEqual([]);
    expect(await stored()).toEqual(before);
  });

  it("keeps every error reply in the documented shape, uncached and free of internals", async () => {
    const replies = [
      await t.call("GET", "/v1/nowhere"),
      await t.call("DELETE", "/v1/requests"),
      await t.call("GET", "/v1/requests", { as: null }),
      await t.call("POST", "/v1/requests", { body: { zone: "nowhere", role: "admin", reason: REASON } }),
      await t.call("GET", "/v1/requests?limit=100000"),
      await t.call("GET", "/v1/audit?afterSeq=-1"),
      await t.call("GET", "/v1/audit?limit=abc"),
    ];
    for (const reply of replies) {
      expect(reply.status).toBeGreaterThanOrEqual(400);
      expect(reply.status).toBeLessThan(500);
      expect(Object.keys(reply.body)).toEqual(["error"]);
      expect(reply.body.error.code).toMatch(/^[A-Z][A-Z_]+$/);
      expect(typeof reply.body.error.message).toBe("string");
      expect(reply.headers["x-content-type-options"]).toBe("nosniff");
      expectNoInternals(reply);
    }
  });
});

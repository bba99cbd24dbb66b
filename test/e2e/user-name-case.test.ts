import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { insertUser } from "../../src/users/user.repo.js";
import { expectError, expectStatus, startTestApp, TEST_CONFIG, type TestApp } from "../support/app.js";
import { DIALECTS } from "../support/databases.js";

/**
 * `alice` and `Alice` were two principals that people read as one: an `Alice` in the approving
 * group could approve `alice`'s request, and the audit trail showed alice approved by Alice. A user
 * name is now taken whatever its case, in the directory, through the API and in the database.
 */
describe.each(DIALECTS)("user names that differ only in case on %s", (dialect) => {
  let t: TestApp;
  let started: TestApp | null = null;

  beforeEach(async () => {
    started = null;
    t = await startTestApp(dialect);
    started = t;
  });

  afterEach(async () => {
    if (!started) return;
    const errors = started.serverErrors;
    await started.close();
    expect(errors, "the server answered 500 INTERNAL").toEqual([]);
  });

  it("no Alice can be made to approve alice's request", async () => {
    const asked = await t.call("POST", "/v1/requests", {
      as: "alice",
      body: { zone: "cache", role: "flush", reason: "cache poisoned, flushing" },
    });
    expectStatus(asked, 201);
    const before = { users: await t.count("users"), audit: await t.count("audit_events") };

    // The attack: a second account spelled like the requester, in the approving group.
    for (const spelling of ["Alice", "ALICE", "aLiCe"]) {
      const created = await t.call("POST", "/v1/users", { body: { name: spelling, groups: ["leads"] } });
      expectError(created, 409, "CONFLICT");
      expect(created.body.error.message).toContain("differs only in case from the existing user 'alice'");
      // Nor is a token issued to a spelling nobody has.
      expectError(await t.call("POST", `/v1/users/${spelling}/tokens`), 404, "NOT_FOUND");
    }
    expect({ users: await t.count("users"), audit: await t.count("audit_events") }).toEqual(before);

    // alice's request still waits for a real lead, and gets one.
    const approved = await t.call("POST", `/v1/requests/${asked.body.id}/approve`, { as: "carol" });
    expectStatus(approved, 200);
    expect(approved.body.approvals.map((a: { approver: string }) => a.approver)).toEqual(["carol"]);
  });

  it("keeps one spelling of an API-created user, in the service and in the database", async () => {
    expectStatus(await t.call("POST", "/v1/users", { body: { name: "Mallory", groups: ["leads"] } }), 201);
    const again = await t.call("POST", "/v1/users", { body: { name: "mallory", groups: ["sre"] } });
    expectError(again, 409, "CONFLICT");
    expect(again.body.error.message).toContain("'Mallory'");
    // The database refuses a second spelling too, so concurrent creations cannot both win.
    await expect(
      insertUser(t.app.db, { name: "MALLORY", groups: [], source: "local", isAdmin: false, createdAt: 0 }),
    ).rejects.toThrow();
    const listed = await t.call("GET", "/v1/users");
    expect(
      listed.body.users
        .filter((u: { name: string }) => u.name.toLowerCase() === "mallory")
        .map((u: { name: string }) => u.name),
    ).toEqual(["Mallory"]);
  });

  it("refuses a configuration whose directory spells a stored user another way, and keeps the running one", async () => {
    expectStatus(await t.call("POST", "/v1/users", { body: { name: "mallory", groups: [] } }), 201);
    const running = await t.call("GET", "/v1/users");
    await t.writeConfig(
      TEST_CONFIG.replace(
        "    sam: { groups: [sre, leads] }\n",
        "    sam: { groups: [sre, leads] }\n    Mallory: { groups: [leads] }\n",
      ),
    );
    const reloaded = await t.call("POST", "/v1/config/reload");
    expectError(reloaded, 422, "CONFIG_INVALID");
    expect(reloaded.body.error.message).toContain(
      "directory user 'Mallory' differs only in case from the existing local user 'mallory'",
    );
    expect((await t.call("GET", "/v1/users")).body).toEqual(running.body);
  });
});

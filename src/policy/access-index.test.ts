import { describe, expect, it } from "vitest";
import { configSchema } from "../config/schema.js";
import { createAccessIndex } from "./access-index.js";
import { compilePolicy } from "./engine.js";

const NOW = Date.UTC(2026, 10, 29, 2, 0, 0);
const HOUR = 3_600_000;

const policy = compilePolicy(
  configSchema.parse({
    version: 1,
    directory: { users: { alice: { groups: ["sre"] }, bob: { groups: [] } } },
    zones: { "payments-app": {}, "payments-db": {}, bastion: {} },
    resources: {
      "payments-pg": { zone: "payments-db", type: "postgres", roles: { read: {}, admin: {} } },
      "payments-replica": { zone: "payments-db", type: "postgres", roles: { read: {} } },
      "payments-hosts": { zone: "payments-app", type: "ssh", roles: { operator: {} } },
    },
    standing: [
      { group: "sre", zone: "payments-app", role: "operator" },
      { group: "dba", resource: "payments-replica", role: "read" },
      { user: "bob", zone: "bastion", role: "read" },
    ],
  }),
);

describe("createAccessIndex", () => {
  it("answers standing group and user bindings", () => {
    const index = createAccessIndex(policy, []);
    expect(index.check("alice", "payments-app", "operator", NOW)).toBe(true);
    expect(index.check("bob", "bastion", "read", NOW)).toBe(true);
    expect(index.check("bob", "payments-app", "operator", NOW)).toBe(false);
    expect(index.check("alice", "payments-app", "admin", NOW)).toBe(false);
    expect(index.check("nobody", "payments-app", "operator", NOW)).toBe(false);
  });

  it("adds groups reported by the identity source to the directory's", () => {
    const index = createAccessIndex(policy, [{ name: "frank", groups: ["sre"] }]);
    expect(index.check("frank", "payments-app", "operator", NOW)).toBe(true);
    index.setUser("frank", []);
    expect(index.check("frank", "payments-app", "operator", NOW)).toBe(false);
    index.setUser("frank", ["sre"]);
    expect(index.check("frank", "payments-app", "operator", NOW)).toBe(true);
    // The directory's groups stay whatever the identity source says.
    index.setUser("alice", []);
    expect(index.check("alice", "payments-app", "operator", NOW)).toBe(true);
  });

  it("gives a grant for starts <= now < endsAt, and no access at endsAt exactly", () => {
    const index = createAccessIndex(policy, []);
    index.addGrant("g1", "bob", "payments-db", "admin", NOW + HOUR);
    expect(index.check("bob", "payments-db", "admin", NOW)).toBe(true);
    expect(index.check("bob", "payments-db", "admin", NOW + HOUR - 1)).toBe(true);
    expect(index.check("bob", "payments-db", "admin", NOW + HOUR)).toBe(false);
    expect(index.check("bob", "payments-db", "read", NOW)).toBe(false);
    index.removeGrant("g1");
    expect(index.check("bob", "payments-db", "admin", NOW)).toBe(false);
    expect(index.grantCount()).toBe(0);
  });

  it("keeps access while any of several grants for the same role is live", () => {
    const index = createAccessIndex(policy, []);
    index.addGrant("short", "bob", "payments-db", "admin", NOW + HOUR);
    index.addGrant("long", "bob", "payments-db", "admin", NOW + 2 * HOUR);
    index.removeGrant("long");
    expect(index.check("bob", "payments-db", "admin", NOW + HOUR + 1)).toBe(false);
    expect(index.check("bob", "payments-db", "admin", NOW)).toBe(true);
  });

  it("replaces a grant re-added under the same id", () => {
    const index = createAccessIndex(policy, []);
    index.addGrant("g1", "bob", "payments-db", "admin", NOW + 2 * HOUR);
    index.addGrant("g1", "bob", "payments-db", "admin", NOW + HOUR);
    expect(index.check("bob", "payments-db", "admin", NOW + HOUR)).toBe(false);
    expect(index.grantCount()).toBe(1);
  });

  it("moves a grant re-added under the same id for another user", () => {
    const index = createAccessIndex(policy, []);
    index.addGrant("g1", "bob", "payments-db", "admin", NOW + HOUR);
    index.addGrant("g1", "frank", "payments-db", "admin", NOW + HOUR);
    expect(index.check("bob", "payments-db", "admin", NOW)).toBe(false);
    expect(index.check("frank", "payments-db", "admin", NOW)).toBe(true);
  });

  it("does not let a grant removal take away standing access", () => {
    const index = createAccessIndex(policy, []);
    index.addGrant("g1", "alice", "payments-app", "operator", NOW + HOUR);
    index.removeGrant("g1");
    expect(index.check("alice", "payments-app", "operator", NOW + 2 * HOUR)).toBe(true);
  });

  it("keeps grants across setUser", () => {
    const index = createAccessIndex(policy, []);
    index.addGrant("g1", "frank", "payments-db", "admin", NOW + HOUR);
    index.setUser("frank", ["sre"]);
    expect(index.check("frank", "payments-db", "admin", NOW)).toBe(true);
    index.removeGrant("g1");
    expect(index.check("frank", "payments-db", "admin", NOW)).toBe(false);
  });

  it("separates resource-level access from zone-level access", () => {
    const index = createAccessIndex(policy, [{ name: "dora", groups: ["dba"] }]);
    expect(index.checkResource("dora", "payments-replica", "read", NOW)).toBe(true);
    expect(index.checkResource("dora", "payments-pg", "read", NOW)).toBe(false);
    expect(index.check("dora", "payments-db", "read", NOW)).toBe(false);

    index.addGrant("g1", "bob", "payments-db", "admin", NOW + HOUR, "payments-pg");
    expect(index.checkResource("bob", "payments-pg", "admin", NOW)).toBe(true);
    expect(index.check("bob", "payments-db", "admin", NOW)).toBe(false);
    expect(index.checkResource("bob", "payments-pg", "admin", NOW + HOUR)).toBe(false);
  });

  it("lets a zone-level holding reach only the zone's resources that define the role", () => {
    const index = createAccessIndex(policy, []);
    index.addGrant("g1", "bob", "payments-db", "read", NOW + HOUR);
    expect(index.checkResource("bob", "payments-pg", "read", NOW)).toBe(true);
    expect(index.checkResource("bob", "payments-replica", "read", NOW)).toBe(true);
    expect(index.checkResource("bob", "payments-pg", "admin", NOW)).toBe(false);
    expect(index.checkResource("bob", "payments-hosts", "read", NOW)).toBe(false);
    expect(index.checkResource("bob", "nothing", "read", NOW)).toBe(false);
    expect(index.checkResource("alice", "payments-hosts", "operator", NOW)).toBe(true);
  });
});

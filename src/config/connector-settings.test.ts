import { describe, expect, it } from "vitest";
import { loadConfigText } from "./load.js";

const base = (resources: string) => `version: 1
zones:
  db: {}
resources:
${resources}
`;

describe("connector settings checked at load", () => {
  it("refuses MariaDB privileges and SSH principals the connectors would refuse, with their positions", () => {
    const result = loadConfigText(
      base(`  maria:
    zone: db
    type: mariadb
    connection: { url: env:MARIA_URL }
    roles:
      admin: { privileges: ["SELECT ON shop.*", "SELECT ON shop.*; DROP USER root"] }
  hosts:
    zone: db
    type: ssh
    roles:
      operator: { principals: [ops, "root; rm -rf /"] }`),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const paths = result.errors.map((e) => `${e.line}:${e.path}`);
    expect(paths).toContain("10:resources.maria.roles.admin.privileges[1]");
    expect(paths).toContain("15:resources.hosts.roles.operator.principals[1]");
    expect(result.errors).toHaveLength(2);
  });

  it("refuses MariaDB connection names the connector would write into statements, with their positions", () => {
    const result = loadConfigText(
      base(`  maria:
    zone: db
    type: mariadb
    connection: { url: env:MARIA_URL, controlDatabase: "fb\`; DROP DATABASE mysql; --", userHost: "%'; --", database: shop }
    roles: { read: { privileges: ["SELECT ON shop.*"] } }`),
    );
    expect(result.ok ? [] : result.errors.map((e) => `${e.line}:${e.path}: ${e.message}`)).toEqual([
      "8:resources.maria.connection.controlDatabase: expected a plain database name of letters, digits and '_'",
      "8:resources.maria.connection.userHost: expected a host, an address, a netmask or a '%' pattern",
    ]);
  });

  it("refuses two resources managing accounts with one prefix on one target", () => {
    const result = loadConfigText(
      base(`  a: { zone: db, type: postgres, connection: { url: env:PG }, roles: { admin: { grants: [x] } } }
  b: { zone: db, type: postgres, connection: { url: env:PG }, roles: { admin: { grants: [y] } } }
  c: { zone: db, type: postgres, connection: { url: env:PG }, namePrefix: c_, roles: { admin: { grants: [y] } } }`),
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((e) => e.path)).toEqual(["resources.b.namePrefix"]);
    expect(result.errors[0]?.message).toContain("resource 'a'");
  });
});

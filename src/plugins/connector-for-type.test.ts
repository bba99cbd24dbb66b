import { describe, expect, it } from "vitest";
import type { ResourceConfig, ResourceConfigOf } from "../config/schema.js";
import { connectorForType } from "./connector-for-type.js";
import type { CredentialConnector, IssueContext } from "./contracts.js";

/** A PostgreSQL connector that remembers what it was asked to issue for. */
function recordingPostgres() {
  const seen: ResourceConfigOf<"postgres">[] = [];
  const connector: CredentialConnector<"postgres"> = {
    kind: "postgres",
    available: true,
    plannedExternalId: (grantId, _user, resource) => `${resource?.namePrefix ?? "fb_"}${grantId}`,
    async issue(context) {
      seen.push(context.resource);
      return { externalId: "x", detail: {}, secret: null };
    },
    async revoke() {},
    async verifyRevoked() {
      return true;
    },
    async listManaged() {
      return [];
    },
    async close() {},
  };
  return { connector: connectorForType(connector), seen };
}

const context = (resource: ResourceConfig): IssueContext => ({
  grantId: "grt_1",
  user: "alice",
  zone: "db",
  resourceName: "pg",
  resource,
  role: "admin",
  startsAt: 0,
  endsAt: 1,
  sourceZone: null,
  sourceCidrs: [],
  clientAddress: null,
  publicKey: null,
});

describe("connectorForType", () => {
  it("hands a connector resources of its own type, and refuses any other before the connector sees it", async () => {
    const { connector, seen } = recordingPostgres();
    const postgres: ResourceConfig = {
      zone: "db",
      type: "postgres",
      namePrefix: "pg_",
      roles: { admin: {} },
    };
    await connector.issue(context(postgres));
    expect(seen).toEqual([postgres]);
    expect(connector.plannedExternalId("grt_1", "alice", postgres)).toBe("pg_grt_1");

    const ssh: ResourceConfig = { zone: "db", type: "ssh", roles: { admin: { principals: ["ops"] } } };
    await expect(connector.issue(context(ssh))).rejects.toThrow(
      "a 'ssh' resource given to the 'postgres' connector",
    );
    expect(() => connector.plannedExternalId("grt_1", "alice", ssh)).toThrow(TypeError);
    await expect(connector.listManaged("hosts", ssh)).rejects.toThrow(TypeError);
    expect(seen).toHaveLength(1);
  });
});

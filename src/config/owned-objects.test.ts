import { describe, expect, it } from "vitest";
import { loadConfigText } from "./load.js";

const config = (settings: string) => `version: 1
zones:
  payments: {}
resources:
  payments-pg:
    zone: payments
    type: postgres
    connection: { url: env:PG_URL }
${settings}    roles: { admin: { grants: [payments_owner] } }
`;

describe("ownedObjects", () => {
  it("refuses 'reassign' without a reassignTo role, which would drop what a grant's login created", () => {
    const result = loadConfigText(config("    ownedObjects: reassign\n"));
    expect(result.ok ? [] : result.errors.map((e) => [e.line, e.path, e.message])).toEqual([
      [
        9,
        "resources.payments-pg.ownedObjects",
        "ownedObjects 'reassign' needs reassignTo: the PostgreSQL role that receives what a grant's login role owns",
      ],
    ]);
  });

  it("accepts 'reassign' with reassignTo, and 'drop' alone", () => {
    for (const settings of [
      "    ownedObjects: reassign\n    reassignTo: payments_owner\n",
      "    ownedObjects: drop\n",
    ]) {
      const result = loadConfigText(config(settings));
      expect(result.ok ? [] : result.errors).toEqual([]);
    }
  });
});

import { describe, expect, it } from "vitest";
import { loadConfigText } from "../config/load.js";

const RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

function config(emergency: string, signingKey = "  signingKey: env:AUDIT_KEY\n"): string {
  return `version: 1
directory:
  users:
    erin: {}
    carol: {}
zones:
  payments-db: {}
  other: {}
resources:
  payments-pg:
    zone: payments-db
    type: postgres
    connection: { url: env:PG_URL }
    roles:
      admin: { grants: [payments_owner] }
audit:
${signingKey}emergency:
${emergency}`;
}

const kit = (overrides: string) => `  payments-db:
    resource: payments-pg
    role: admin
    custodians:
      - { user: erin, recipient: ${RECIPIENT} }
      - { user: carol, recipient: ${RECIPIENT} }
    lifetime: 24h
    write: [file:/mnt/kits/]
${overrides}`;

const messages = (text: string) => {
  const result = loadConfigText(text);
  return result.ok ? [] : result.errors.map((e) => `${e.path}: ${e.message}`);
};

describe("emergency settings", () => {
  it("accepts a well-formed kit", () => {
    expect(messages(config(kit("    threshold: 2\n")))).toEqual([]);
  });

  it("refuses a threshold above the custodians, unknown custodians, a role the resource lacks, a bad recipient, and a missing signing key", () => {
    expect(messages(config(kit("    threshold: 3\n"))).join("\n")).toContain("could never be opened");
    expect(
      messages(config(kit("    threshold: 2\n").replace("user: carol", "user: mallory"))).join("\n"),
    ).toContain("not a user of the directory");
    expect(
      messages(config(kit("    threshold: 2\n").replace("role: admin", "role: read"))).join("\n"),
    ).toContain("has no role 'read'");
    expect(
      messages(config(kit("    threshold: 2\n").replace(RECIPIENT, "ssh-ed25519 AAAA"))).join("\n"),
    ).toContain("age X25519 recipient");
    expect(messages(config(kit("    threshold: 2\n"), "  sinks: []\n")).join("\n")).toContain(
      "audit.signingKey",
    );
    expect(
      messages(
        config(kit("    threshold: 2\n").replace("payments-db:\n    resource", "other:\n    resource")),
      ).join("\n"),
    ).toContain("not in zone 'other'");
  });
});

/**
 * Configurations for the process tests: demo-sized windows (seconds, not minutes) so expiry and
 * pending expiry happen while a test waits, and approvers from a group the tests create users in.
 */

/** Extra zones to append under `zones:` (for reload tests), as YAML lines. */
export function processTestConfig(options: { extraZones?: string[] } = {}): string {
  return `# Firebreak process-test configuration: short windows so expiry happens during a test.
version: 1
auditors: [group:security]
directory:
  users:
    dana: { groups: [sre] }
    lena: { groups: [leads] }
zones:
  vault:
    labels: { tier: data }
    enforcement: enforce
  ops:
    labels: { tier: app }
    enforcement: enforce
${(options.extraZones ?? []).map((zone) => `  ${zone}: { labels: { tier: extra } }`).join("\n")}
resources:
  vault-db:
    zone: vault
    type: log
    roles:
      admin: { grants: [vault_owner] }
      operator: { grants: [vault_rw] }
breakGlass:
  - name: vault-emergency
    zone: vault
    roles: [admin, operator]
    eligible: [group:sre]
    duration: { default: 3s, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
    justification: { minLength: 20, ticket: "^INC-[0-9]+$" }
    review: { within: 72h, by: [group:security] }
    pendingExpiry: 1m
  - name: ops-quick
    zone: ops
    roles: [operator]
    eligible: [group:sre]
    duration: { default: 2s, max: 1h }
    approvals:
      - { from: group:leads, count: 1 }
    pendingExpiry: 3s
`;
}

/** A reason and ticket that satisfy vault-emergency's justification rules. */
export const GOOD_JUSTIFICATION = {
  reason: "replication slot stuck, clearing it by hand",
  ticket: "INC-4711",
} as const;

/** The same file with several distinct mistakes, on known lines (see the test for positions). */
export const BROKEN_CONFIG = `version: 1
zones:
  vault: { enforcement: sometimes }
  ops: { labels: { tier: 7 } }
flows:
  - { from: ops, to: nowhere, ports: [tcp/5432] }
breakGlass:
  - name: vault-emergency
    zone: vault
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 5 minutes, max: 1h }
    when: "signals.incident.open &&"
`;

/** Where each mistake in BROKEN_CONFIG is: line, and the path the loader names. */
export const BROKEN_CONFIG_MISTAKES = [
  { line: 3, path: "zones.vault.enforcement" },
  { line: 4, path: "zones.ops.labels.tier" },
  { line: 6, path: "flows[0].to" },
  { line: 12, path: "breakGlass[0].duration.default" },
  { line: 13, path: "breakGlass[0].when" },
] as const;

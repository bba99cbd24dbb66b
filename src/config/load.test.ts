import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { isFirebreakError } from "../errors.js";
import { configJsonSchema } from "./json-schema.js";
import {
  type ConfigIssue,
  formatIssue,
  type LoadResult,
  loadConfigFile,
  loadConfigText,
  MAX_CONFIG_BYTES,
} from "./load.js";
import { resolveSecret } from "./secrets.js";

/** The example of SPEC section 2, verbatim. */
const SPEC_EXAMPLE = `version: 1
directory:
  users:
    alice: { groups: [sre] }
    bob:   { groups: [sre] }
    carol: { groups: [payments-leads] }
    erin:  { groups: [security] }
zones:
  bastion:      { cidrs: [10.20.0.0/24], labels: { tier: access } }
  payments-app: { labels: { app: payments, tier: app }, enforcement: enforce }
  payments-db:  { labels: { app: payments, tier: data }, enforcement: enforce }
flows:
  - { from: payments-app, to: payments-db, ports: [tcp/5432] }
resources:
  payments-pg:
    zone: payments-db
    type: postgres
    connection: { url: env:PAYMENTS_PG_ADMIN_URL }
    roles:
      read:  { grants: [pg_read_all_data] }
      admin: { grants: [payments_owner] }
  payments-hosts:
    zone: payments-app
    type: ssh
    roles:
      operator: { principals: [ops] }
standing:
  - { group: sre, zone: payments-app, role: read }
breakGlass:
  - name: payments-db-emergency
    zone: payments-db
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    factors: [webauthn, totp]        # any one of these, fresh within 5 minutes
    approvals:
      - { from: group:payments-leads, count: 1 }
    justification: { minLength: 20, ticket: '^INC-[0-9]+$' }
    sourceZones: [bastion]           # the request must come from one of these zones
    when: 'signals.incident.open && signals.incident.severity <= 2'   # CEL
    autoApprove: { when: 'signals.incident.severity == 1' }
    review: { within: 72h, blockWhenOverdue: true }
    pendingExpiry: 15m
identity:
  oidc: { issuer: https://sso.example.com, clientId: firebreak, clientSecret: env:OIDC_SECRET, groupsClaim: groups }
signals:
  alertmanager: { token: env:ALERTMANAGER_TOKEN, zoneLabel: zone }
  pagerduty: { secret: env:PAGERDUTY_WEBHOOK_SECRET, services: { PX1Y2Z3: payments-db } }
notify:
  - { type: slack, url: env:SLACK_WEBHOOK_URL }
  - { type: webhook, url: https://chatops.internal/firebreak, secret: env:NOTIFY_SECRET }
audit:
  signingKey: file:/etc/firebreak/audit-ed25519.pem
  sinks:
    - { name: siem, type: syslog, url: tcp+tls://siem.internal:6514, format: rfc5424 }
    - { name: lake, type: file, path: /var/log/firebreak/audit.ocsf.jsonl, format: ocsf }
    - { name: splunk, type: splunk-hec, url: https://splunk.internal:8088, token: env:HEC_TOKEN }
    - { name: soar, type: webhook, url: https://soar.internal/firebreak, secret: env:SOAR_SECRET }
`;

function errorsOf(result: LoadResult): string[] {
  if (result.ok) throw new Error("expected the configuration to be refused");
  return result.errors.map(formatIssue);
}

function loaded(result: LoadResult) {
  if (!result.ok)
    throw new Error(`expected the configuration to load:\n${result.errors.map(formatIssue).join("\n")}`);
  return result;
}

/** A small valid configuration with one policy, for tests that change one thing. */
const MINIMAL = `version: 1
directory:
  users:
    alice: { groups: [sre] }
zones:
  db: {}
resources:
  pg:
    zone: db
    type: postgres
    roles:
      read: {}
      admin: {}
breakGlass:
  - name: db-emergency
    zone: db
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
`;

describe("loadConfigText", () => {
  it("loads the SPEC example, leaving secret references unresolved", () => {
    const result = loaded(loadConfigText(SPEC_EXAMPLE, "firebreak.yaml"));
    // payments-app's only resource (ssh) has no 'read' role: worth saying, not worth refusing.
    expect(result.warnings.map(formatIssue)).toEqual([
      "firebreak.yaml:28:45: standing[0].role: no resource in zone 'payments-app' defines role 'read'; roles defined there: operator; the binding grants nothing on them",
      // The example names no public URL, so only terminals could sign in through its provider.
      "firebreak.yaml:45:9: identity.oidc: browser sign-in needs server.publicUrl (or identity.oidc.redirectUrl) to know where the provider sends people back; until then only 'firebreak login' (device flow) works",
    ]);
    expect(result.digest).toMatch(/^[0-9a-f]{64}$/);
    const policy = result.config.breakGlass?.[0];
    expect(policy?.duration).toEqual({ default: 30 * 60_000, max: 60 * 60_000 });
    expect(policy?.approvals).toEqual([{ from: "group:payments-leads", count: 1 }]);
    expect(result.config.zones.bastion?.enforcement).toBe("monitor");
    expect(result.config.identity?.oidc?.clientSecret).toBe("env:OIDC_SECRET");
    expect(result.config.resources?.["payments-pg"]?.connection).toEqual({
      url: "env:PAYMENTS_PG_ADMIN_URL",
    });
  });

  it("gives the same digest to the same configuration however it is written, and another to a change", () => {
    const reference = loaded(loadConfigText(MINIMAL, "a.yaml")).digest;
    const rewritten = `# reordered, reformatted, commented
breakGlass:
  - { name: db-emergency, zone: db, roles: [admin], eligible: ["group:sre"],
      duration: { max: 1h, default: 30m } }
resources: { pg: { type: postgres, zone: db, roles: { admin: {}, read: {} } } }
zones: { db: { enforcement: monitor } }   # the default, written out
directory: { users: { alice: { groups: [sre] } } }
version: 1
`;
    expect(loaded(loadConfigText(rewritten, "b.yaml")).digest).toBe(reference);
    const changed = MINIMAL.replace("max: 1h", "max: 2h");
    expect(loaded(loadConfigText(changed, "a.yaml")).digest).not.toBe(reference);
  });

  it("reports every mistake in a file at once, each with its line and column", () => {
    const text = `version: 1
zones:
  app: { enforcement: enforced }
  db:
    labels: { tier: data }
    enforcment: enforce
flows:
  - { from: app, to: dbb, ports: [tcp/5432, tcp/70000] }
resources:
  pg:
    zone: db
    type: postgress
    roles:
      read: { grants: [pg_read_all_data] }
standing:
  - { group: sre, zone: db, role: write }
breakGlass:
  - name: db
    zone: db
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 2h, max: 1h }
    justification: { ticket: '([' }
    when: 'signals.incidnet.open'
    autoApprove: { when: 'signals.incident.severity' }
  - name: db
    zone: db
    roles: [read]
    eligible: [sre]
    duration:
      default: 30m
`;
    expect(errorsOf(loadConfigText(text, "firebreak.yaml"))).toEqual([
      "firebreak.yaml:3:23: zones.app.enforcement: expected one of 'monitor', 'enforce'",
      "firebreak.yaml:6:5: zones.db.enforcment: unknown key (did you mean 'enforcement'?); expected one of: description, labels, cidrs, enforcement",
      "firebreak.yaml:8:22: flows[0].to: unknown zone 'dbb' (did you mean 'db'?); zones are: app, db",
      "firebreak.yaml:8:45: flows[0].ports[1]: expected ports from 1 to 65535, a range written low-high",
      "firebreak.yaml:12:11: resources.pg.type: expected one of 'log', 'postgres', 'mariadb', 'ssh', 'http'",
      "firebreak.yaml:20:13: breakGlass[0].roles[0]: no resource in zone 'db' defines role 'admin'; roles defined there: read",
      "firebreak.yaml:22:26: breakGlass[0].duration.default: expected a default no longer than max (1h)",
      "firebreak.yaml:23:30: breakGlass[0].justification.ticket: expected a regular expression: Invalid regular expression: /([/: Unterminated character class",
      "firebreak.yaml:24:11: breakGlass[0].when: expected a CEL condition over principal, request, signals and now: unknown field 'incidnet' in signals at column 9 (did you mean 'incident'?); signals has incident, sourceZone",
      "firebreak.yaml:25:26: breakGlass[0].autoApprove.when: expected a CEL condition over principal, request, signals and now: a condition must be true or false, but this one produces a number (int)",
      "firebreak.yaml:26:11: breakGlass[1].name: policy name 'db' is already used by breakGlass[0] (line 18)",
      "firebreak.yaml:29:16: breakGlass[1].eligible[0]: expected a principal reference such as 'group:sre' or 'user:alice'",
      "firebreak.yaml:31:7: breakGlass[1].duration.max: missing required key 'max': expected a duration such as '90s', '15m', '1h' or '7d'",
    ]);
  });

  it("formats an issue as file:line:column: path: message", () => {
    const issue: ConfigIssue = {
      file: "firebreak.yaml",
      line: 12,
      column: 7,
      path: "breakGlass[0].duration.max",
      message: "expected a duration such as '90s', '15m', '1h' or '7d'",
    };
    expect(formatIssue(issue)).toBe(
      "firebreak.yaml:12:7: breakGlass[0].duration.max: expected a duration such as '90s', '15m', '1h' or '7d'",
    );
    expect(formatIssue({ ...issue, line: 0, column: 0, path: "", message: "file not found" })).toBe(
      "firebreak.yaml: file not found",
    );
    const wrongDuration = MINIMAL.replace("max: 1h", "max: 1 hour");
    expect(errorsOf(loadConfigText(wrongDuration, "firebreak.yaml"))).toEqual([
      "firebreak.yaml:19:36: breakGlass[0].duration.max: expected a duration such as '90s', '15m', '1h' or '7d'",
    ]);
  });

  it("refuses hostile names with their position, quoting them inertly", () => {
    const text = `version: 1
directory:
  users:
    "bob; rm -rf /": { groups: [sre] }
zones:
  'x"; DROP ROLE postgres; --': {}
  zöne: {}
  ${"a".repeat(1000)}: {}
  db: {}
resources:
  pg:
    zone: db
    type: postgres
    roles:
      "admin' OR '1'='1": {}
flows:
  - { from: db, to: "db\\u0000", ports: [tcp/5432] }
  - { from: ${"b".repeat(10_000)}, to: db, ports: [tcp/5432] }
`;
    const result = loadConfigText(text, "firebreak.yaml");
    const errors = errorsOf(result);
    const name =
      "expected a name of 1-63 lowercase letters, digits, '-' or '_', starting and ending with a letter or digit";
    expect(errors).toEqual([
      `firebreak.yaml:4:5: directory.users["bob; rm -rf /"]: expected a user name of 1-128 letters, digits, '.', '_', '@' or '-'`,
      `firebreak.yaml:6:3: zones["x\\"; DROP ROLE postgres; --"]: ${name}`,
      `firebreak.yaml:7:3: zones["zöne"]: ${name}`,
      `firebreak.yaml:8:3: zones["${"a".repeat(77)}..."]: ${name}`,
      `firebreak.yaml:15:7: resources.pg.roles["admin' OR '1'='1"]: ${name}`,
      `firebreak.yaml:17:21: flows[0].to: ${name}`,
      `firebreak.yaml:18:13: flows[1].from: ${name}`,
    ]);
    // zod drops this key from records without a word; the loader must not let a zone vanish.
    expect(errorsOf(loadConfigText("version: 1\nzones: { db: {}, __proto__: {} }\n", "f.yaml"))).toEqual([
      "f.yaml:2:18: zones.__proto__: expected a name; '__proto__' is reserved",
    ]);
    expect(
      errorsOf(loadConfigText("version: 1\nzones: { db: {}, constructor: {} }\n__proto__: 1\n", "f.yaml")),
    ).toEqual([
      "f.yaml:3:1: __proto__: unknown key; expected one of: version, administrators, auditors, agents, directory, zones, flows, resources, standing, breakGlass, identity, server, signals, gateway, emergency, drills, notify, audit",
    ]);
    // Keys longer than YAML allows for an implicit key stop at the parser, with a position too.
    expect(
      errorsOf(loadConfigText(`version: 1\nzones:\n  ${"a".repeat(10_000)}: {}\n`, "f.yaml"))[0],
    ).toMatch(/^f\.yaml:3:3: zones\["a{77}\.\.\."\]: YAML syntax: /);
  });

  it("reports YAML syntax errors and duplicate keys with positions", () => {
    expect(errorsOf(loadConfigText("version: 1\nzones:\n  db: {}\n  db: {}\n", "f.yaml"))).toEqual([
      "f.yaml:4:3: zones.db: duplicate key: each key may appear only once in a mapping",
    ]);
    // Schema problems are still reported beside a duplicate key.
    expect(errorsOf(loadConfigText("version: 2\nzones:\n  db: {}\n  db: {}\n", "f.yaml"))).toEqual([
      "f.yaml:1:10: version: expected 1",
      "f.yaml:4:3: zones.db: duplicate key: each key may appear only once in a mapping",
    ]);
    const broken = errorsOf(loadConfigText("version: 1\nzones:\n  db: { labels: [a\n", "f.yaml"));
    expect(broken.length).toBeGreaterThan(0);
    for (const line of broken) expect(line).toMatch(/^f\.yaml:\d+:\d+: (\S+: )?YAML syntax: /);
    expect(errorsOf(loadConfigText("version: 1\n\tzones: {}\n", "f.yaml"))[0]).toMatch(/^f\.yaml:2:1: /);
  });

  it("refuses empty and non-mapping documents", () => {
    expect(errorsOf(loadConfigText("", "f.yaml"))).toEqual([
      "f.yaml:1:1: expected a mapping, got an empty value",
    ]);
    expect(errorsOf(loadConfigText("- a\n", "f.yaml"))).toEqual([
      "f.yaml:1:1: expected a mapping, got a list",
    ]);
    expect(errorsOf(loadConfigText("version: 1\nzones: {}\n", "f.yaml"))).toEqual([
      "f.yaml:2:8: zones: expected at least one zone",
    ]);
  });

  it("refuses files over 1 MiB and alias bombs", () => {
    const huge = `version: 1\nzones: { db: {} }\n#${"x".repeat(MAX_CONFIG_BYTES)}\n`;
    expect(errorsOf(loadConfigText(huge, "big.yaml"))).toEqual([
      `big.yaml: the file is ${MAX_CONFIG_BYTES + 31} bytes; a configuration may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`,
    ]);
    const laughs = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let level = 1; level < 8; level++) {
      const previous = String.fromCharCode(96 + level);
      laughs.push(
        `${String.fromCharCode(97 + level)}: &${String.fromCharCode(97 + level)} [${Array(10).fill(`*${previous}`).join(", ")}]`,
      );
    }
    const bomb = errorsOf(loadConfigText(`${laughs.join("\n")}\n`, "bomb.yaml"));
    expect(bomb).toEqual(["bomb.yaml:1:1: the document expands to too much data (more than 100 aliases)"]);
  });

  it("checks references between sections", () => {
    const text = `version: 1
directory:
  users:
    alice: { groups: [sre] }
zones:
  db: {}
  app: {}
resources:
  pg: { zone: db, type: postgres, roles: { read: {}, admin: {} } }
  hosts: { zone: app, type: ssh, roles: { operator: {} } }
standing:
  - { user: alice, resource: pgg, role: read }
  - { user: alice, resource: hosts, role: read }
breakGlass:
  - name: db-emergency
    zone: db
    resources: [pg, hosts]
    roles: [admin]
    eligible: [group:sre]
    duration: { default: 30m, max: 1h }
    sourceZones: [bastion]
signals:
  pagerduty: { secret: env:PD, services: { P1: nowhere } }
`;
    expect(errorsOf(loadConfigText(text, "f.yaml"))).toEqual([
      "f.yaml:12:30: standing[0].resource: unknown resource 'pgg' (did you mean 'pg'?); resources are: pg, hosts",
      "f.yaml:13:43: standing[1].role: none of the resources 'hosts' defines role 'read'; roles defined there: operator",
      "f.yaml:17:21: breakGlass[0].resources[1]: resource 'hosts' is in zone 'app', not in this policy's zone 'db'",
      "f.yaml:21:19: breakGlass[0].sourceZones[0]: unknown zone 'bastion'; zones are: db, app",
      "f.yaml:23:48: signals.pagerduty.services.P1: unknown zone 'nowhere'; zones are: db, app",
    ]);
  });

  it("allows any role in a zone without resources", () => {
    const text = MINIMAL.replace(
      "resources:\n  pg:\n    zone: db",
      "resources:\n  pg:\n    zone: elsewhere",
    ).replace("zones:\n  db: {}", "zones:\n  db: {}\n  elsewhere: {}");
    expect(loaded(loadConfigText(text.replace("roles: [admin]", "roles: [anything]"), "f.yaml")).ok).toBe(
      true,
    );
  });

  it("warns, without refusing, about groups and users no directory entry has", () => {
    const text = `${MINIMAL}    approvals:
      - { from: [group:payments-leads, user:carol] }
`;
    const result = loaded(loadConfigText(text, "f.yaml"));
    expect(result.warnings.map(formatIssue)).toEqual([
      "f.yaml:21:18: breakGlass[0].approvals[0].from[0]: no directory user is in group 'payments-leads'; fine only if your identity provider supplies it",
      "f.yaml:21:40: breakGlass[0].approvals[0].from[1]: user 'carol' is not in the directory; fine only if your identity provider supplies it",
    ]);
  });

  it("never repeats a value that may be a secret", () => {
    const text = `version: 1
zones: { db: {} }
resources:
  pg:
    zone: db
    type: postgres
    connection: { url: "postgres://admin:hunter2@db:5432/app" }
    roles: { read: {} }
signals:
  alertmanager: { token: hunter2-token }
audit:
  sinks:
    - { name: siem, type: syslog, url: "tcp://user:hunter2@siem:514" }
`;
    const result = loadConfigText(text, "f.yaml");
    const errors = errorsOf(result);
    expect(errors).toEqual([
      "f.yaml:7:24: resources.pg.connection.url: this URL contains a password; write a secret reference such as 'env:NAME' or 'file:/path' instead",
      "f.yaml:10:26: signals.alertmanager.token: expected a secret reference 'env:NAME' or 'file:/absolute/path'",
      "f.yaml:13:40: audit.sinks[0].url: this URL contains a password; write a secret reference such as 'env:NAME' or 'file:/path' instead",
    ]);
    for (const line of errors) expect(line).not.toContain("hunter2");
  });
});

describe("loadConfigFile", () => {
  const directory = mkdtempSync(join(tmpdir(), "firebreak-config-"));

  it("loads a file and names it in issues", async () => {
    const good = join(directory, "firebreak.yaml");
    writeFileSync(good, SPEC_EXAMPLE);
    expect((await loadConfigFile(good)).ok).toBe(true);

    const bad = join(directory, "bad.yaml");
    writeFileSync(bad, "version: 1\nzones: { db: { enforcement: loud } }\n");
    expect(errorsOf(await loadConfigFile(bad))).toEqual([
      `${bad}:2:29: zones.db.enforcement: expected one of 'monitor', 'enforce'`,
    ]);
  });

  it("reports a missing file, a directory and an oversized file without reading them", async () => {
    expect(errorsOf(await loadConfigFile(join(directory, "absent.yaml")))).toEqual([
      `${join(directory, "absent.yaml")}: file not found`,
    ]);
    expect(errorsOf(await loadConfigFile(directory))).toEqual([`${directory}: not a regular file`]);
    const big = join(directory, "big.yaml");
    writeFileSync(big, Buffer.alloc(MAX_CONFIG_BYTES + 1, 0x20));
    expect(errorsOf(await loadConfigFile(big))[0]).toContain("a configuration may be at most 1048576 bytes");
  });
});

describe("configJsonSchema", () => {
  const schema = configJsonSchema();

  it("describes the file for editors", () => {
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(schema.$id).toBe("urn:firebreak:config:1");
    expect(schema.title).toContain("firebreak.yaml");
    expect(schema.type).toBe("object");
    expect(schema.additionalProperties).toBe(false);
    const properties = schema.properties as Record<string, { description?: string; items?: unknown }>;
    expect(Object.keys(properties)).toEqual(
      expect.arrayContaining(["version", "zones", "flows", "resources", "standing", "breakGlass", "audit"]),
    );
    expect(properties.breakGlass?.description).toMatch(/elevate/);
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });

  it("accepts the SPEC example and rejects what the loader rejects, as a JSON Schema validator sees it", () => {
    const validate = new Ajv2020({ strict: false, validateFormats: false }).compile(schema);
    expect(validate(parseYaml(SPEC_EXAMPLE)), JSON.stringify(validate.errors)).toBe(true);
    const wrong = parseYaml(SPEC_EXAMPLE);
    wrong.breakGlass[0].duration.max = "an hour";
    expect(validate(wrong)).toBe(false);
    expect(validate({ ...parseYaml(SPEC_EXAMPLE), zonez: {} })).toBe(false);
  });
});

describe("resolveSecret", () => {
  const directory = mkdtempSync(join(tmpdir(), "firebreak-secret-"));

  function refusal(run: () => unknown): string {
    try {
      run();
    } catch (error) {
      expect(isFirebreakError(error) && error.code).toBe("CONFIG_INVALID");
      return (error as Error).message;
    }
    throw new Error("expected the secret reference to be refused");
  }

  it("reads environment variables", () => {
    expect(resolveSecret("env:HEC_TOKEN", { HEC_TOKEN: "s3cr3t-value" })).toBe("s3cr3t-value");
    expect(refusal(() => resolveSecret("env:HEC_TOKEN", {}))).toBe(
      "secret reference 'env:HEC_TOKEN' needs the environment variable HEC_TOKEN, which is not set",
    );
    expect(refusal(() => resolveSecret("env:HEC_TOKEN", { HEC_TOKEN: "" }))).toContain("which is empty");
  });

  it("reads files, dropping the trailing newline an editor adds", () => {
    const path = join(directory, "token");
    writeFileSync(path, "s3cr3t-value\n");
    expect(resolveSecret(`file:${path}`)).toBe("s3cr3t-value");
    writeFileSync(path, "line one\nline two\r\n");
    expect(resolveSecret(`file:${path}`)).toBe("line one\nline two");
    writeFileSync(path, "  spaced  ");
    expect(resolveSecret(`file:${path}`)).toBe("  spaced  ");
  });

  it("refuses missing, empty and unreadable files, naming the reference only", () => {
    const missing = join(directory, "absent");
    expect(refusal(() => resolveSecret(`file:${missing}`))).toBe(
      `secret reference 'file:${missing}' names a file that does not exist`,
    );
    const empty = join(directory, "empty");
    writeFileSync(empty, "\n");
    expect(refusal(() => resolveSecret(`file:${empty}`))).toBe(
      `secret reference 'file:${empty}' names an empty file`,
    );
    expect(refusal(() => resolveSecret(`file:${directory}`))).toContain("does not name a regular file");
  });

  it("does not repeat a malformed reference, which may be a pasted secret", () => {
    const message = refusal(() => resolveSecret("hunter2-pasted-token" as never));
    expect(message).not.toContain("hunter2");
    expect(message).toContain("'env:NAME' or 'file:/absolute/path'");
  });
});

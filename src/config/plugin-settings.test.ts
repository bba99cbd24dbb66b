import { Ajv2020 } from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { resourceSettings, sinkSettings } from "../plugins/settings.js";
import { configJsonSchema } from "./json-schema.js";
import { type LoadResult, loadConfigText } from "./load.js";
import { RESOURCE_TYPES, SINK_TYPES } from "./schema.js";

const config = (body: string) => `version: 1
zones:
  db: {}
${body}`;

function issues(result: LoadResult): string[] {
  return result.ok
    ? []
    : result.errors.map((issue) => `${issue.line}:${issue.column}: ${issue.path}: ${issue.message}`);
}

describe("each plug-in owns its settings", () => {
  it("takes the kinds from the settings registries, in the order validate lists them", () => {
    expect(RESOURCE_TYPES).toEqual(Object.keys(resourceSettings));
    expect(RESOURCE_TYPES).toEqual(["log", "postgres", "mariadb", "ssh"]);
    expect(SINK_TYPES).toEqual(Object.keys(sinkSettings));
  });

  it("refuses a resource type no connector implements, at its type, naming the types there are", () => {
    const result = loadConfigText(
      config(`resources:
  web:
    zone: db
    type: http
    address: 10.60.0.9:8080
    roles: { viewer: {} }
`),
    );
    expect(issues(result)).toEqual([
      "7:11: resources.web.type: expected a resource type this build implements (log, postgres, mariadb, ssh); 'http' (an HTTP service) has no connector yet",
    ]);
  });

  it("names the kinds for an unknown or missing type", () => {
    expect(
      issues(loadConfigText(config("resources:\n  pg: { zone: db, type: pg, roles: { a: {} } }\n"))),
    ).toEqual(["5:25: resources.pg.type: expected one of 'log', 'postgres', 'mariadb', 'ssh', 'http'"]);
    expect(issues(loadConfigText(config("audit:\n  sinks:\n    - { name: x, path: /tmp/x }\n")))).toEqual([
      "6:7: audit.sinks[0].type: missing required key 'type': expected one of 'syslog', 'file', 'splunk-hec', 'webhook'",
    ]);
  });

  it("refuses one connector's role and resource keys on another's resources, saying whose they are", () => {
    const result = loadConfigText(
      config(`resources:
  pg:
    zone: db
    type: postgres
    roles: { admin: { grants: [owner], principals: [ops] } }
  maria:
    zone: db
    type: mariadb
    ownedObjects: drop
    roles: { read: { privileges: ["SELECT ON shop.*"], allowForwarding: true } }
  hosts:
    zone: db
    type: ssh
    namePrefix: fb_
    roles: { operator: { principals: [ops], grants: [wheel], typo: 1 } }
`),
    );
    expect(issues(result)).toEqual([
      "8:40: resources.pg.roles.admin.principals: expected 'principals' only on a resource of type 'log' or 'ssh'",
      "12:5: resources.maria.ownedObjects: expected 'ownedObjects' only on a resource of type 'log' or 'postgres'",
      "13:56: resources.maria.roles.read.allowForwarding: expected 'allowForwarding' only on a resource of type 'log' or 'ssh'",
      "17:5: resources.hosts.namePrefix: expected 'namePrefix' only on a resource of type 'log', 'postgres' or 'mariadb'",
      "18:45: resources.hosts.roles.operator.grants: expected 'grants' only on a resource of type 'log', 'postgres' or 'mariadb'",
      "18:62: resources.hosts.roles.operator.typo: unknown key; expected one of: principals, allowForwarding, description",
    ]);
  });

  it("lets a log resource say what any connector's role says, validated as that connector validates it", () => {
    const accepted = loadConfigText(
      config(`resources:
  demo:
    zone: db
    type: log
    namePrefix: demo_
    roles:
      admin: { grants: [owner], privileges: ["SELECT ON shop.*"], principals: [ops], allowForwarding: true }
`),
    );
    expect(issues(accepted)).toEqual([]);
    const refused = loadConfigText(
      config(`resources:
  demo: { zone: db, type: log, roles: { admin: { principals: ["root; rm -rf /"] } } }
`),
    );
    expect(issues(refused)).toEqual([
      "5:63: resources.demo.roles.admin.principals[0]: expected an SSH principal of lowercase letters, digits, '_', '.' or '-'",
    ]);
  });

  it("refuses one sink's keys on another sink, and a sink's required keys in its own words", () => {
    const result = loadConfigText(
      config(`audit:
  sinks:
    - { name: lake, type: file, path: /tmp/x, tls: { ca: file:/etc/ca.pem }, facility: audit }
    - { name: soar, type: webhook, url: https://soar.internal/x, secret: env:S, index: security }
    - { name: hec, type: splunk-hec, token: env:T }
`),
    );
    expect(issues(result)).toEqual([
      "6:47: audit.sinks[0].tls: expected 'tls' only on a syslog, splunk-hec or webhook sink",
      "6:78: audit.sinks[0].facility: expected 'facility' only on a syslog sink",
      "7:81: audit.sinks[1].index: expected 'index' only on a splunk-hec sink",
      "8:7: audit.sinks[2].url: expected a 'url' such as 'https://splunk.internal:8088' for a Splunk HEC sink",
    ]);
  });

  it("runs each signal source's own checks", () => {
    const result = loadConfigText(
      config(`signals:
  pagerduty: { secret: env:PD, services: { P1: db, P2: nowhere } }
`),
    );
    expect(issues(result)).toEqual([
      "5:56: signals.pagerduty.services.P2: unknown zone 'nowhere'; zones are: db",
    ]);
  });
});

describe("the published JSON Schema, built from the same registries", () => {
  const validate = new Ajv2020({ strict: false, validateFormats: false }).compile(configJsonSchema());
  const document = (body: string) => parseYaml(config(body));

  it("holds each kind to its own keys, and refuses a planned type as validate does", () => {
    expect(
      validate(document("resources:\n  pg: { zone: db, type: postgres, roles: { a: { grants: [x] } } }\n")),
    ).toBe(true);
    expect(
      validate(document("resources:\n  h: { zone: db, type: ssh, roles: { a: { grants: [x] } } }\n")),
    ).toBe(false);
    expect(validate(document("resources:\n  w: { zone: db, type: http, roles: { a: {} } }\n"))).toBe(false);
    expect(validate(document("audit:\n  sinks:\n    - { name: lake, type: file, path: /tmp/x }\n"))).toBe(
      true,
    );
    expect(validate(document("audit:\n  sinks:\n    - { name: lake, type: file }\n"))).toBe(false);
    expect(
      validate(document("audit:\n  sinks:\n    - { name: lake, type: file, path: /x, url: /y }\n")),
    ).toBe(false);
  });
});

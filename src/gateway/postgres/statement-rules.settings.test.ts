import { describe, expect, it } from "vitest";
import { loadConfigText } from "../../config/load.js";

const config = (access: string, statements: string) => `version: 1
zones:
  payments: {}
resources:
  payments-pg:
    zone: payments
    type: postgres
    connection: { url: env:PG_URL }
${access}    roles:
      diagnose:
        statements:
${statements}`;

describe("statement rules in the configuration", () => {
  it("accepts rules whose conditions compile", () => {
    const result = loadConfigText(
      config(
        "    access: gateway\n",
        `          - allow: "statement.category == 'read' && statement.functions.all(f, f != 'pg_terminate_backend')"
          - name: terminate
            allow: "'pg_terminate_backend' in statement.functions && request.reason.contains('stuck')"
          - deny: "statement.command.startsWith('DROP') && !(request.ticket != null && request.ticket.startsWith('CHG-'))"
            message: DROP needs a CHG- ticket
`,
      ),
    );
    expect(result.ok ? [] : result.errors).toEqual([]);
    if (result.ok) expect(result.warnings).toEqual([]);
  });

  it("reports a CEL mistake at its rule's position and line", () => {
    const result = loadConfigText(
      config(
        "    access: gateway\n",
        `          - allow: "statement.category == 'read'"
          - deny: "statement.comand == 'DROP TABLE'"
`,
      ),
    );
    expect(result.ok ? [] : result.errors.map((e) => [e.line, e.path, e.message])).toEqual([
      [
        14,
        "resources.payments-pg.roles.diagnose.statements[1].deny",
        "expected a CEL condition over statement, request and principal: unknown field 'comand' in statement at column 11 (did you mean 'command'?); statement has text, command, category, relations, functions, qualifiedFunctions, opaque",
      ],
    ]);
  });

  it("refuses a rule with neither allow nor deny, and unknown keys", () => {
    const result = loadConfigText(
      config("    access: gateway\n", "          - message: nothing to decide\n"),
    );
    expect(result.ok).toBe(false);
    const both = loadConfigText(
      config("    access: gateway\n", '          - { allow: "true", when: "x" }\n'),
    );
    expect(both.ok).toBe(false);
  });

  it("warns that rules bind nothing on a resource reached directly", () => {
    const result = loadConfigText(config("", '          - allow: "true"\n'));
    expect(result.ok).toBe(true);
    if (result.ok)
      expect(result.warnings.map((w) => w.path)).toEqual(["resources.payments-pg.roles.diagnose.statements"]);
  });
});

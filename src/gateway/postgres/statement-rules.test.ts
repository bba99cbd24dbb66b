import { beforeAll, describe, expect, test } from "vitest";
import { parseStatements, ready } from "./classify.js";
import {
  checkStatement,
  compileStatementRules,
  createStatementInspector,
  StatementRuleError,
  statementConditionProblems,
} from "./statement-rules.js";
import type { StatementRuleSettings } from "./statement-rules.settings.js";

beforeAll(() => ready());

const grant = {
  id: "grt_1",
  user: "alice",
  zone: "prod",
  role: "diagnose",
  policy: "oncall",
  resource: "payments-pg",
};

const diagnose: StatementRuleSettings[] = [
  { allow: 'statement.category == "read" && statement.functions.all(f, f != "pg_terminate_backend")' },
  {
    name: "terminate",
    allow:
      'statement.category == "read" && statement.functions.exists(f, f == "pg_terminate_backend") && request.reason.contains("stuck")',
  },
];
const admin: StatementRuleSettings[] = [
  {
    name: "no-drop",
    deny: 'statement.command.startsWith("DROP") || statement.command == "TRUNCATE"',
    message: "DROP and TRUNCATE need a change ticket",
  },
  { allow: "true" },
];
const adminWithTicket: StatementRuleSettings[] = [
  {
    allow: 'request.ticket != null && request.ticket.startsWith("CHG-") && statement.category != "privilege"',
  },
  ...admin,
];

function inspector(rules: Record<string, StatementRuleSettings[] | undefined>) {
  return createStatementInspector({ rulesFor: (_resource, role) => rules[role] });
}

describe("statement rules", () => {
  test("allow as written, refuse by default", () => {
    const gateway = inspector({ diagnose });
    const ask = (text: string, reason = "checking") =>
      gateway.inspect({ text, grant, request: { reason, ticket: null } }).refusal;
    expect(ask("select * from payments")).toBeNull();
    expect(ask("update payments set amount = 0")).toEqual({
      rule: "default",
      message: "UPDATE refused: no statement rule of role diagnose allows it",
    });
    expect(ask("select pg_terminate_backend(42)")?.rule).toBe("default");
    expect(ask("select pg_terminate_backend(42)", "a stuck query")).toBeNull();
  });

  test("every statement of a query is checked: tricks do not evade the rules", () => {
    const gateway = inspector({ diagnose });
    const ask = (text: string) =>
      gateway.inspect({ text, grant, request: { reason: "x", ticket: null } }).refusal;
    for (const text of [
      "SELECT 1; DROP TABLE t",
      "select 1 /* harmless */; delete from t -- trailing",
      "select $$ ; $$; truncate t",
      "with x as (select pg_terminate_backend(pid) from pg_stat_activity) select * from x",
      "with d as (delete from payments returning *) select * from d",
      "select 1; do $$ begin drop table t; end $$",
      "/* */ DrOp /* x */ TABLE t",
    ])
      expect(ask(text), text).not.toBeNull();
    expect(ask("select 1; select '; drop table t'; select $q$ drop table t $q$")).toBeNull();
  });

  test("deny with its message unless the ticket matches", () => {
    const gateway = inspector({ admin: adminWithTicket });
    const adminGrant = { ...grant, role: "admin" };
    const ask = (text: string, ticket: string | null) =>
      gateway.inspect({ text, grant: adminGrant, request: { reason: "fix", ticket } }).refusal;
    expect(ask("drop table t", null)).toEqual({
      rule: "no-drop",
      message: "DROP and TRUNCATE need a change ticket",
    });
    expect(ask("truncate t", "INC-1")?.rule).toBe("no-drop");
    expect(ask("drop table t", "CHG-7")).toBeNull();
    expect(ask("update t set a = 1", null)).toBeNull();
    // The ticket opens DROP, not privilege changes: those fall to the later rules (allowed here by `true`).
    expect(ask("grant all on t to public", "CHG-7")).toBeNull();
  });

  test("an unparseable statement is refused where rules apply, and passes where none do", () => {
    const gateway = inspector({ diagnose, admin: undefined });
    const refused = gateway.inspect({ text: "selec 1", grant, request: null });
    expect(refused.refusal?.rule).toBe("unparseable");
    expect(refused.classification.parseError).toMatch(/syntax error/);
    const free = gateway.inspect({ text: "selec 1", grant: { ...grant, role: "admin" }, request: null });
    expect(free.refusal).toBeNull();
  });

  test("the classification is returned for the transcript", () => {
    const gateway = inspector({});
    const { classification, refusal } = gateway.inspect({
      text: "select a from t; drop table u",
      grant,
      request: null,
    });
    expect(refusal).toBeNull();
    expect(classification.statements).toEqual([
      { command: "SELECT", category: "read", relations: ["t"], functions: [] },
      { command: "DROP TABLE", category: "ddl", relations: ["u"], functions: [] },
    ]);
  });

  test("a deny rule that cannot be evaluated refuses; an allow rule that cannot does not allow", () => {
    // request.ticket is null: startsWith on null fails at run time.
    const compiled = compileStatementRules([{ deny: 'request.ticket.startsWith("X")' }, { allow: "true" }]);
    const parsed = parseStatements("select 1");
    if (!parsed.ok || parsed.statements[0] === undefined) throw new Error("select 1 must parse");
    const statement = parsed.statements[0];
    const context = {
      request: { reason: "", ticket: null, role: "r", resource: "p", zone: "z", policy: "p" },
      principal: { name: "alice" },
    };
    expect(checkStatement(compiled, statement, context).allowed).toBe(false);
    const allowOnly = compileStatementRules([{ allow: 'request.ticket.startsWith("X")' }]);
    expect(checkStatement(allowOnly, statement, context)).toMatchObject({
      allowed: false,
      rule: "default",
    });
  });

  test("conditions are checked when compiled, at their position", () => {
    expect(statementConditionProblems('statement.comand == "SELECT"')).toEqual([
      expect.stringMatching(/unknown field 'comand' in statement at column 11 \(did you mean 'command'\?\)/),
    ]);
    expect(statementConditionProblems("signals.incident.open")[0]).toMatch(/unknown variable 'signals'/);
    expect(statementConditionProblems('statement.category == "read"')).toEqual([]);
    expect(() => compileStatementRules([{ allow: "true" }, { deny: "statement.text +" }])).toThrow(
      StatementRuleError,
    );
    // A rules array that does not compile refuses everything, rather than letting statements through.
    const gateway = inspector({ diagnose: [{ allow: "nonsense(" }] });
    expect(gateway.inspect({ text: "select 1", grant, request: null }).refusal?.rule).toBe("invalid");
  });
});

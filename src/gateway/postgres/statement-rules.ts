import type { CelInput } from "@bufbuild/cel";
import { CelCompileError, compilePredicate } from "../../policy/cel.js";
import { type ParsedStatement, parseStatements } from "./classify.js";
import type { StatementRuleSettings } from "./statement-rules.settings.js";

/**
 * Purpose binding for the PostgreSQL gateway: a role's `statements` rules, CEL over each parsed
 * statement and the grant's request, decide whether it runs. Pure: no I/O, no clock.
 * Semantics (docs/SPEC.md, "Statement rules"): rules are tried in order, the first whose
 * condition is true decides; with rules and none true, the statement is refused (deny by
 * default). A deny rule that fails to evaluate refuses; an allow rule that fails does not allow.
 * A query the parser cannot read is refused wherever rules apply.
 */

/** What a statement rule can see. */
export interface StatementRuleVars {
  statement: ParsedStatement;
  request: {
    reason: string;
    ticket: string | null;
    role: string;
    resource: string;
    zone: string;
    policy: string;
  };
  principal: { name: string };
}

/** The variables a statement rule may name, with their CEL types (checked when the file loads). */
export const STATEMENT_RULE_VARIABLES = {
  statement: {
    text: "string",
    command: "string",
    category: "string",
    relations: "list of strings",
    functions: "list of strings",
    qualifiedFunctions: "list of strings",
    opaque: "bool",
  },
  request: {
    reason: "string",
    ticket: "string or null",
    role: "string",
    resource: "string",
    zone: "string",
    policy: "string",
  },
  principal: { name: "string" },
} as const;

type Root = keyof typeof STATEMENT_RULE_VARIABLES;

const BUILDERS: Record<Root, (vars: StatementRuleVars) => CelInput> = {
  statement: ({ statement }) =>
    new Map<string, CelInput>([
      ["text", statement.text],
      ["command", statement.command],
      ["category", statement.category],
      ["relations", [...statement.relations]],
      ["functions", [...statement.functions]],
      ["qualifiedFunctions", [...statement.qualifiedFunctions]],
      ["opaque", statement.opaque],
    ]),
  request: ({ request }) =>
    new Map<string, CelInput>([
      ["reason", request.reason],
      ["ticket", request.ticket],
      ["role", request.role],
      ["resource", request.resource],
      ["zone", request.zone],
      ["policy", request.policy],
    ]),
  principal: ({ principal }) => new Map<string, CelInput>([["name", principal.name]]),
};

interface CompiledRule {
  effect: "allow" | "deny";
  name: string;
  message: string | undefined;
  evaluate: ReturnType<typeof compilePredicate<StatementRuleVars, Root>>["evaluate"];
}

export interface CompiledStatementRules {
  readonly rules: readonly CompiledRule[];
}

/** A rule that does not compile, with its index among the role's `statements`. */
export class StatementRuleError extends CelCompileError {
  readonly index: number;
  readonly key: "allow" | "deny";
  constructor(index: number, key: "allow" | "deny", cause: CelCompileError) {
    super(cause.source, cause.problems);
    this.name = "StatementRuleError";
    this.index = index;
    this.key = key;
  }
}

/** Compiles a role's statement rules once. Throws StatementRuleError for the first rule that does not compile. */
export function compileStatementRules(rules: readonly StatementRuleSettings[]): CompiledStatementRules {
  return {
    rules: rules.map((rule, index) => {
      const effect = "allow" in rule ? "allow" : "deny";
      const source = "allow" in rule ? rule.allow : rule.deny;
      let compiled: ReturnType<typeof compilePredicate<StatementRuleVars, Root>>;
      try {
        compiled = compilePredicate(source, STATEMENT_RULE_VARIABLES, BUILDERS);
      } catch (error) {
        if (error instanceof CelCompileError) throw new StatementRuleError(index, effect, error);
        throw error;
      }
      return {
        effect,
        name: rule.name ?? `statements[${index}]`,
        message: rule.message,
        evaluate: compiled.evaluate,
      };
    }),
  };
}

export type StatementDecision =
  | { allowed: true; rule: string | null }
  | { allowed: false; rule: string; message: string };

/** Decides one parsed statement. The refusal message is the rule's own, or says which rule refused. */
export function checkStatement(
  compiled: CompiledStatementRules,
  statement: ParsedStatement,
  context: Omit<StatementRuleVars, "statement">,
): StatementDecision {
  const vars: StatementRuleVars = { ...context, statement };
  for (const rule of compiled.rules) {
    const result = rule.evaluate(vars);
    if (!result.ok) {
      // Fail closed: a deny that cannot be evaluated refuses; an allow that cannot does not allow.
      if (rule.effect === "deny")
        return {
          allowed: false,
          rule: rule.name,
          message: rule.message ?? `${statement.command} refused: rule ${rule.name} could not be evaluated`,
        };
      continue;
    }
    if (!result.value) continue;
    if (rule.effect === "allow") return { allowed: true, rule: rule.name };
    return {
      allowed: false,
      rule: rule.name,
      message:
        rule.message ?? `${statement.command} refused by rule ${rule.name} of role ${context.request.role}`,
    };
  }
  return {
    allowed: false,
    rule: "default",
    message: `${statement.command} refused: no statement rule of role ${context.request.role} allows it`,
  };
}

/** The grant a gateway connection acts for, as the proxy knows it. */
export interface InspectedGrant {
  id: string;
  user: string;
  zone: string;
  role: string;
  policy: string;
  resource: string;
}

export interface InspectInput {
  /** One Query message's text (possibly several statements) or one Parse message's. */
  text: string;
  grant: InspectedGrant;
  request: { reason: string; ticket: string | null } | null;
}

export interface InspectOutcome {
  refusal: { message: string; rule: string } | null;
  /** Recorded with the statement in the transcript. */
  classification: {
    statements: { command: string; category: string; relations: string[]; functions: string[] }[];
    parseError?: string;
  };
}

export interface StatementInspectorDeps {
  /** The role's statement rules in the running configuration; undefined when it has none. */
  rulesFor(resource: string, role: string): readonly StatementRuleSettings[] | undefined;
}

/**
 * The PostgreSQL proxy's hook, called synchronously before it forwards each Query and each
 * Parse (after `ready()` from classify.ts resolved). Every statement of the text is checked; the
 * first refused one refuses the message. Compiled rules are kept per rules array, so a reloaded
 * configuration (new arrays) is compiled again.
 */
export function createStatementInspector(deps: StatementInspectorDeps) {
  const compiledByRules = new WeakMap<readonly StatementRuleSettings[], CompiledStatementRules | Error>();

  function compiledFor(rules: readonly StatementRuleSettings[]): CompiledStatementRules | Error {
    let compiled = compiledByRules.get(rules);
    if (compiled === undefined) {
      try {
        compiled = compileStatementRules(rules);
      } catch (error) {
        compiled = error instanceof Error ? error : new Error(String(error));
      }
      compiledByRules.set(rules, compiled);
    }
    return compiled;
  }

  return {
    inspect(input: InspectInput): InspectOutcome {
      const parsed = parseStatements(input.text);
      const rules = deps.rulesFor(input.grant.resource, input.grant.role);
      if (!parsed.ok) {
        const classification = { statements: [], parseError: parsed.error.message };
        if (rules === undefined) return { refusal: null, classification };
        return {
          refusal: {
            rule: "unparseable",
            message: `statement refused: the gateway's PostgreSQL parser cannot read it (${parsed.error.message}), and role ${input.grant.role} has statement rules`,
          },
          classification,
        };
      }
      const classification = {
        statements: parsed.statements.map((statement) => ({
          command: statement.command,
          category: statement.category,
          relations: [...statement.relations],
          functions: [...statement.functions],
        })),
      };
      if (rules === undefined) return { refusal: null, classification };
      const compiled = compiledFor(rules);
      if (compiled instanceof Error) {
        // validate refuses such a file; this is the guard for one that bypassed it.
        return {
          refusal: {
            rule: "invalid",
            message: `statement refused: the statement rules of role ${input.grant.role} do not compile`,
          },
          classification,
        };
      }
      const context = {
        request: {
          reason: input.request?.reason ?? "",
          ticket: input.request?.ticket ?? null,
          role: input.grant.role,
          resource: input.grant.resource,
          zone: input.grant.zone,
          policy: input.grant.policy,
        },
        principal: { name: input.grant.user },
      };
      for (const statement of parsed.statements) {
        const decision = checkStatement(compiled, statement, context);
        if (!decision.allowed)
          return { refusal: { rule: decision.rule, message: decision.message }, classification };
      }
      return { refusal: null, classification };
    },
  };
}

export type StatementInspector = ReturnType<typeof createStatementInspector>;

/** The problems of one rule's condition (empty when it compiles), for `firebreak validate`. */
export function statementConditionProblems(source: string): string[] {
  try {
    compilePredicate(source, STATEMENT_RULE_VARIABLES, BUILDERS);
    return [];
  } catch (error) {
    if (error instanceof CelCompileError) return error.problems;
    throw error;
  }
}

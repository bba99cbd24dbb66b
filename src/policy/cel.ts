import { type CelInput, celEnv, isCelError, parse, plan } from "@bufbuild/cel";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { FirebreakError } from "../errors.js";

/** What a condition can see. Numbers are plain JS numbers here; the compiler hands them to CEL as ints. */
export interface ConditionVars {
  principal: { name: string; groups: string[] };
  request: {
    zone: string;
    resource: string | null;
    role: string;
    durationSeconds: number;
    reason: string;
    ticket: string | null;
    sourceZone: string | null;
  };
  signals: {
    incident: { open: boolean; severity: number; id: string; title: string; ageSeconds: number };
    sourceZone: string | null;
  };
  /** Epoch milliseconds; a CEL `timestamp` inside the condition. */
  now: number;
}

export type ConditionResult = { ok: true; value: boolean } | { ok: false; error: string };

export interface CompiledCondition {
  source: string;
  evaluate(vars: ConditionVars): ConditionResult;
}

/** A condition that cannot be compiled; its message says what is wrong and what exists instead. */
export class CelCompileError extends FirebreakError {
  readonly source: string;
  readonly problems: string[];

  constructor(source: string, problems: string[]) {
    super("CONFIG_INVALID", problems.join("; "));
    this.name = "CelCompileError";
    this.source = source;
    this.problems = problems;
  }
}

export type FieldType = "string" | "string or null" | "int" | "bool" | "list of strings" | "timestamp";
/** The variables an expression may name, with their CEL types: nested fields, or a leaf's type. */
export interface Shape {
  readonly [field: string]: Shape | FieldType;
}

/**
 * The variables a condition may name, with their CEL types. Kept in step with `ConditionVars`
 * and `BUILDERS` below: a name missing here is rejected at load, so a typo can never evaluate
 * to an error at 2 a.m. instead of at review time.
 */
export const CONDITION_VARIABLES = {
  principal: { name: "string", groups: "list of strings" },
  request: {
    zone: "string",
    resource: "string or null",
    role: "string",
    durationSeconds: "int",
    reason: "string",
    ticket: "string or null",
    sourceZone: "string or null",
  },
  signals: {
    incident: { open: "bool", severity: "int", id: "string", title: "string", ageSeconds: "int" },
    sourceZone: "string or null",
  },
  now: "timestamp",
} as const satisfies Shape;

type RootName = keyof typeof CONDITION_VARIABLES;

// CEL ints are bigints in @bufbuild/cel; JS numbers would be doubles, and `severity + 1` has no
// (double, int) overload. Maps (not plain objects) skip the library's per-access Object.entries.
const toInt = (value: number): bigint => BigInt(Math.trunc(value));
const BUILDERS: Record<RootName, (vars: ConditionVars) => CelInput> = {
  principal: ({ principal }) =>
    new Map<string, CelInput>([
      ["name", principal.name],
      ["groups", principal.groups],
    ]),
  request: ({ request }) =>
    new Map<string, CelInput>([
      ["zone", request.zone],
      ["resource", request.resource],
      ["role", request.role],
      ["durationSeconds", toInt(request.durationSeconds)],
      ["reason", request.reason],
      ["ticket", request.ticket],
      ["sourceZone", request.sourceZone],
    ]),
  signals: ({ signals }) =>
    new Map<string, CelInput>([
      [
        "incident",
        new Map<string, CelInput>([
          ["open", signals.incident.open],
          ["severity", toInt(signals.incident.severity)],
          ["id", signals.incident.id],
          ["title", signals.incident.title],
          ["ageSeconds", toInt(signals.incident.ageSeconds)],
        ]),
      ],
      ["sourceZone", signals.sourceZone],
    ]),
  now: ({ now }) => timestampFromMs(now),
};

const MAX_SOURCE_LENGTH = 4096;
const env = celEnv();

/**
 * Parses, checks and plans a CEL condition once. Throws CelCompileError for a syntax error, an
 * unknown variable, field or function, or an expression that can never be true or false.
 * `evaluate` never throws: a runtime failure or a non-boolean result is `{ ok: false }`.
 */
export function compileCondition(source: string): CompiledCondition {
  return compilePredicate(source, CONDITION_VARIABLES, BUILDERS);
}

/**
 * Compiles a CEL predicate over another set of variables (statement rules of the PostgreSQL
 * gateway use it): `variables` says what may be named, `builders` turns the caller's values into
 * each root's CEL input. Same checks and errors as `compileCondition`.
 */
export function compilePredicate<Vars, Root extends string>(
  source: string,
  variables: Readonly<Record<Root, Shape | FieldType>>,
  builders: Readonly<Record<Root, (vars: Vars) => CelInput>>,
): { source: string; evaluate(vars: Vars): ConditionResult } {
  if (source.trim() === "") throw new CelCompileError(source, ["the condition is empty"]);
  if (source.length > MAX_SOURCE_LENGTH) {
    throw new CelCompileError(source, [`the condition is longer than ${MAX_SOURCE_LENGTH} characters`]);
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (error) {
    if (error instanceof RangeError)
      throw new CelCompileError(source, ["the condition is nested too deeply"]);
    throw new CelCompileError(source, [describeSyntaxError(error)]);
  }

  const checker = new Checker(source, parsed.sourceInfo?.positions ?? {}, variables);
  let result: Info;
  try {
    result = checker.visit(parsed.expr, new Set());
  } catch (error) {
    // Only pathological input (nesting deep enough to exhaust the stack) gets here.
    if (error instanceof RangeError)
      throw new CelCompileError(source, ["the condition is nested too deeply"]);
    throw error;
  }
  if (result.type !== undefined && result.type !== "bool") {
    checker.problems.push(
      `a condition must be true or false, but this one produces ${describeType(result.type)}`,
    );
  }
  if (checker.problems.length > 0) throw new CelCompileError(source, checker.problems);

  let program: ReturnType<typeof plan>;
  try {
    program = plan(env, parsed);
  } catch (error) {
    throw new CelCompileError(source, [`cannot be planned: ${(error as Error).message}`]);
  }
  const roots = (Object.keys(variables) as Root[]).filter((name) => checker.roots.has(name));
  return {
    source,
    evaluate(vars) {
      let value: unknown;
      try {
        const bindings: Record<string, CelInput> = {};
        for (const root of roots) bindings[root] = builders[root](vars);
        value = program(bindings);
      } catch (error) {
        return { ok: false, error: `could not evaluate: ${(error as Error).message}` };
      }
      if (isCelError(value)) return { ok: false, error: value.message };
      if (typeof value !== "boolean") {
        return { ok: false, error: `the condition produced ${describeValue(value)}, not true or false` };
      }
      return { ok: true, value };
    },
  };
}

type Expr = ReturnType<typeof parse>["expr"];
type CallExpr = Extract<Expr["exprKind"], { case: "callExpr" }>["value"];
type ValueType =
  | FieldType
  | "uint"
  | "double"
  | "bytes"
  | "null"
  | "list"
  | "map"
  | "duration"
  | "type"
  | "arithmetic";

/** What the checker knows about a subexpression: its type when evident, and its place in the variable shapes. */
interface Info {
  type: ValueType | undefined;
  known?: { path: string; shape: Shape | FieldType };
}

// Handled by the planner itself rather than looked up among the functions.
const PLANNER_OPERATORS = new Set([
  "_[_]",
  "_[?_]",
  "_?._",
  "_?_:_",
  "_&&_",
  "_||_",
  "@not_strictly_false",
  "__not_strictly_false__",
]);
const BOOL_FUNCTIONS = new Set([
  "_&&_",
  "_||_",
  "!_",
  "_==_",
  "_!=_",
  "_<_",
  "_<=_",
  "_>_",
  "_>=_",
  "@in",
  "_in_",
  "startsWith",
  "endsWith",
  "contains",
  "matches",
  "bool",
  "@not_strictly_false",
  "__not_strictly_false__",
]);
const INT_FUNCTIONS = new Set([
  "size",
  "int",
  "getFullYear",
  "getMonth",
  "getDayOfYear",
  "getDayOfMonth",
  "getDate",
  "getDayOfWeek",
  "getHours",
  "getMinutes",
  "getSeconds",
  "getMilliseconds",
]);
const ARITHMETIC_FUNCTIONS = new Set(["_+_", "_-_", "_*_", "_/_", "_%_", "-_"]);
const OTHER_FUNCTION_TYPES: Record<string, ValueType> = {
  string: "string",
  double: "double",
  uint: "uint",
  bytes: "bytes",
  timestamp: "timestamp",
  duration: "duration",
  type: "type",
};

/**
 * Walks the parsed expression. The library's own checker cannot be used (it throws on calls), and
 * its evaluator only notices an unknown name when that branch runs, so this is where typos die.
 */
class Checker {
  readonly problems: string[] = [];
  readonly roots = new Set<string>();
  private unknownVariableReported = false;

  constructor(
    private readonly source: string,
    private readonly positions: { [id: string]: number },
    private readonly variables: Readonly<Record<string, Shape | FieldType>>,
  ) {}

  /** ` at column 7` (or line and column) for the node, so a long condition's mistake is easy to find. */
  private at(expr: Expr, shift = 0): string {
    const offset = this.positions[String(expr.id)];
    if (offset === undefined) return "";
    const before = this.source.slice(0, offset + shift);
    const line = before.split("\n").length;
    const column = offset + shift - before.lastIndexOf("\n");
    return line === 1 ? ` at column ${column}` : ` at line ${line}, column ${column}`;
  }

  visit(expr: Expr, bound: ReadonlySet<string>): Info {
    const kind = expr.exprKind;
    switch (kind.case) {
      case "constExpr":
        return { type: constantType(kind.value.constantKind.case) };
      case "identExpr":
        return this.identifier(expr, kind.value.name, bound);
      case "selectExpr": {
        const { operand, field, testOnly } = kind.value;
        if (operand === undefined) return { type: undefined };
        // The parser places a selection at its dot (the field starts one character later), and a
        // has() test at the macro itself.
        const info = this.field(this.visit(operand, bound), field, this.at(expr, testOnly ? 0 : 1));
        return testOnly ? { type: "bool" } : info;
      }
      case "callExpr":
        return this.call(expr, kind.value, bound);
      case "listExpr":
        for (const element of kind.value.elements) this.visit(element, bound);
        return { type: "list" };
      case "structExpr":
        if (kind.value.messageName !== "") {
          this.problems.push(
            `creating messages ('${kind.value.messageName}{…}') is not supported in conditions${this.at(expr)}`,
          );
        }
        for (const entry of kind.value.entries) {
          if (entry.keyKind.case === "mapKey") this.visit(entry.keyKind.value, bound);
          if (entry.value !== undefined) this.visit(entry.value, bound);
        }
        return { type: kind.value.messageName === "" ? "map" : undefined };
      case "comprehensionExpr": {
        const loop = kind.value;
        if (loop.iterRange !== undefined) this.visit(loop.iterRange, bound);
        const initial = loop.accuInit === undefined ? undefined : this.visit(loop.accuInit, bound);
        const inner = new Set(bound);
        for (const name of [loop.iterVar, loop.iterVar2, loop.accuVar]) if (name !== "") inner.add(name);
        if (loop.loopCondition !== undefined) this.visit(loop.loopCondition, inner);
        if (loop.loopStep !== undefined) this.visit(loop.loopStep, inner);
        if (loop.result === undefined) return { type: undefined };
        const result = this.visit(loop.result, inner);
        const returnsAccumulator =
          loop.result.exprKind.case === "identExpr" && loop.result.exprKind.value.name === loop.accuVar;
        return { type: returnsAccumulator ? initial?.type : result.type };
      }
      default:
        return { type: undefined };
    }
  }

  private identifier(expr: Expr, name: string, bound: ReadonlySet<string>): Info {
    if (bound.has(name)) return { type: undefined };
    const shape = Object.hasOwn(this.variables, name) ? this.variables[name] : undefined;
    if (shape !== undefined) {
      this.roots.add(name);
      return { type: shapeType(shape), known: { path: name, shape } };
    }
    // The list of what exists is said once, however many unknown names there are.
    const rootNames = Object.keys(this.variables);
    const known = this.unknownVariableReported ? "" : `; conditions may use ${rootNames.join(", ")}`;
    this.unknownVariableReported = true;
    this.problems.push(`unknown variable '${name}'${this.at(expr)}${didYouMean(name, rootNames)}${known}`);
    return { type: undefined };
  }

  private field(operand: Info, field: string, where: string): Info {
    if (operand.known === undefined) return { type: undefined };
    const { path, shape } = operand.known;
    if (typeof shape === "string") {
      this.problems.push(`${path} is a ${shape} and has no field '${field}'${where}`);
      return { type: undefined };
    }
    const child = Object.hasOwn(shape, field) ? shape[field] : undefined;
    if (child === undefined) {
      const fields = Object.keys(shape);
      this.problems.push(
        `unknown field '${field}' in ${path}${where}${didYouMean(field, fields)}; ${path} has ${fields.join(", ")}`,
      );
      return { type: undefined };
    }
    return { type: shapeType(child), known: { path: `${path}.${field}`, shape: child } };
  }

  private call(expr: Expr, call: CallExpr, bound: ReadonlySet<string>): Info {
    const name = call.function;
    if (call.target !== undefined && isQualifiedFunction(call.target, name, bound, this.variables)) {
      for (const argument of call.args) this.visit(argument, bound);
      return { type: undefined };
    }
    if (!PLANNER_OPERATORS.has(name) && env.funcs.find(name) === undefined) {
      const kind = call.target === undefined ? "function" : "method";
      // A method call is placed at its dot, like a selection.
      this.problems.push(`unknown ${kind} '${name}'${this.at(expr, call.target === undefined ? 0 : 1)}`);
    }
    if (call.target !== undefined) this.visit(call.target, bound);
    const args = call.args.map((argument) => this.visit(argument, bound));

    if (name === "_[_]") {
      const key = call.args[1]?.exprKind;
      const container = args[0];
      if (container?.known !== undefined && key?.case === "constExpr") {
        const constant = key.value.constantKind;
        if (constant.case === "stringValue") {
          return this.field(container, constant.value, this.at(call.args[1] as Expr));
        }
      }
      return { type: undefined };
    }
    if (name === "_?_:_") {
      const whenTrue = args[1]?.type;
      return { type: whenTrue !== undefined && whenTrue === args[2]?.type ? whenTrue : undefined };
    }
    if (BOOL_FUNCTIONS.has(name)) return { type: "bool" };
    if (INT_FUNCTIONS.has(name)) return { type: "int" };
    if (ARITHMETIC_FUNCTIONS.has(name)) return { type: "arithmetic" };
    return { type: Object.hasOwn(OTHER_FUNCTION_TYPES, name) ? OTHER_FUNCTION_TYPES[name] : undefined };
  }
}

/** `a.b.fn(x)` may name a namespaced function `a.b.fn` rather than a method on `a.b`, as the planner allows. */
function isQualifiedFunction(
  target: Expr,
  name: string,
  bound: ReadonlySet<string>,
  variables: Readonly<Record<string, unknown>>,
): boolean {
  const parts: string[] = [];
  let node: Expr | undefined = target;
  while (node?.exprKind.case === "selectExpr") {
    parts.unshift(node.exprKind.value.field);
    node = node.exprKind.value.operand;
  }
  if (node?.exprKind.case !== "identExpr") return false;
  const head = node.exprKind.value.name;
  if (bound.has(head) || Object.hasOwn(variables, head)) return false;
  return env.funcs.find([head, ...parts, name].join(".")) !== undefined;
}

function shapeType(shape: Shape | FieldType): ValueType {
  return typeof shape === "string" ? shape : "map";
}

function constantType(kind: string | undefined): ValueType | undefined {
  switch (kind) {
    case "boolValue":
      return "bool";
    case "int64Value":
      return "int";
    case "uint64Value":
      return "uint";
    case "doubleValue":
      return "double";
    case "stringValue":
      return "string";
    case "bytesValue":
      return "bytes";
    case "nullValue":
      return "null";
    default:
      return undefined;
  }
}

function describeType(type: ValueType): string {
  switch (type) {
    case "arithmetic":
      return "the result of arithmetic";
    case "map":
      return "a map (an object, not one of its fields)";
    case "int":
    case "uint":
    case "double":
      return `a number (${type})`;
    case "null":
      return "null";
    default:
      return `a ${type}`;
  }
}

function describeValue(value: unknown): string {
  switch (typeof value) {
    case "bigint":
      return `the int ${value}`;
    case "number":
      return `the double ${value}`;
    case "string":
      return "a string";
    default:
      return value === null ? "null" : "a list, map or other value";
  }
}

function describeSyntaxError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const match = /^<input>:(\d+):(\d+): ?([\s\S]*)$/.exec(message);
  if (match === null) return `syntax error: ${message}`;
  const [, line, column, detail] = match;
  const where = line === "1" ? `column ${column}` : `line ${line}, column ${column}`;
  return `syntax error at ${where}: ${detail}`;
}

/** ` (did you mean 'x'?)` for the closest candidate within a few edits, or an empty string. */
export function didYouMean(name: string, candidates: readonly string[]): string {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === undefined ? "" : ` (did you mean '${best}'?)`;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return Number.POSITIVE_INFINITY;
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { isAlias, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type YAMLError } from "yaml";
import type { z } from "zod";
import { drillReferenceProblems } from "../drills/drill.settings.js";
import { statementConditionProblems } from "../gateway/postgres/statement-rules.js";
import { resourceSettings, signalSettings } from "../plugins/settings.js";
import type {
  ConfigPath,
  RawSettings,
  ResourceSettings,
  SettingsReport,
  SignalSettings,
} from "../plugins/settings-contract.js";
import { CelCompileError, compileCondition, didYouMean } from "../policy/cel.js";
import { canonicalJson } from "../shared/canonical-json.js";
import { parseDuration } from "./duration.js";
import { kindsLabel, whenMissing } from "./primitives.js";
import { configSchema, type FirebreakConfig, NAME_PATTERN } from "./schema.js";

/**
 * One problem in a configuration file. `line` and `column` are 1-based; both are 0 when the
 * problem concerns the whole file (unreadable, too large). `path` is empty at the top level.
 */
export interface ConfigIssue {
  file: string;
  line: number;
  column: number;
  /** Where in the document, such as `breakGlass[0].duration.max`. */
  path: string;
  /** What was expected, or what is wrong. Never contains a value from the file that may be a secret. */
  message: string;
}

export type LoadResult =
  | { ok: true; config: FirebreakConfig; digest: string; warnings: ConfigIssue[] }
  | { ok: false; errors: ConfigIssue[]; warnings: ConfigIssue[] };

/** A configuration is a few kilobytes; anything near this is a mistake or an attack on the parser. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Aliases are expanded when the document becomes data; a cap defuses "billion laughs" files. */
const MAX_ALIAS_COUNT = 100;
const MAX_TICKET_PATTERN_LENGTH = 500;
const MAX_PATH_SEGMENTS = 12;

/** `firebreak.yaml:12:7: breakGlass[0].duration.max: expected a duration such as '90s'…` */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  return issue.path === "" ? `${where}: ${issue.message}` : `${where}: ${issue.path}: ${issue.message}`;
}

/** Reads and validates a configuration file; never throws for a bad or missing file. */
export async function loadConfigFile(path: string): Promise<LoadResult> {
  const whole = (message: string): LoadResult => ({
    ok: false,
    errors: [{ file: path, line: 0, column: 0, path: "", message }],
    warnings: [],
  });
  try {
    const info = await stat(path);
    if (!info.isFile()) return whole("not a regular file");
    if (info.size > MAX_CONFIG_BYTES) return whole(tooLargeMessage(info.size));
    return loadConfigText(await readFile(path, "utf8"), path);
  } catch (error) {
    return whole(describeFileError(error));
  }
}

/**
 * Parses and validates configuration text. Every problem is reported at once, each with the line
 * and column of the node it concerns: YAML syntax, the schema, then references between sections
 * (zones, resources, roles, conditions). Secret references are checked for form, not resolved.
 */
export function loadConfigText(text: string, fileName = "firebreak.yaml"): LoadResult {
  const size = Buffer.byteLength(text, "utf8");
  if (size > MAX_CONFIG_BYTES) {
    return {
      ok: false,
      errors: [{ file: fileName, line: 0, column: 0, path: "", message: tooLargeMessage(size) }],
      warnings: [],
    };
  }

  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const report = new Reporter(fileName, document, lineCounter);

  for (const error of document.errors) report.yaml(error, report.errors);
  for (const warning of document.warnings) report.yaml(warning, report.warnings);
  // A duplicated key leaves a usable document, so the rest is still worth checking; any other
  // syntax error may have swallowed part of the file, and guessing past it misleads.
  if (document.errors.some((error) => error.code !== "DUPLICATE_KEY")) return report.failure();

  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    const message =
      error instanceof ReferenceError
        ? `the document expands to too much data (more than ${MAX_ALIAS_COUNT} aliases)`
        : "the document cannot be read as data";
    report.add(report.errors, [], "at", message);
    return report.failure();
  }

  const parsed = configSchema.safeParse(raw, { error: expectation });
  if (!parsed.success) for (const issue of parsed.error.issues) report.schemaIssue(issue, raw);
  checkReferences(raw, report);

  if (!parsed.success || report.errors.length > 0) return report.failure();
  const digest = createHash("sha256").update(canonicalJson(parsed.data)).digest("hex");
  return { ok: true, config: parsed.data, digest, warnings: report.sorted(report.warnings) };
}

/**
 * The ticket pattern as the policy engine must compile it, so load-time validation and request-time
 * matching can never disagree.
 */
export function compileTicketPattern(pattern: string): RegExp {
  if (pattern.length > MAX_TICKET_PATTERN_LENGTH) {
    throw new SyntaxError(`a pattern of at most ${MAX_TICKET_PATTERN_LENGTH} characters`);
  }
  return new RegExp(pattern);
}

type Segment = string | number;
type Target = "at" | "key";

/** Turns paths into positions, using the YAML node tree and its line counter. */
class Reporter {
  readonly errors: ConfigIssue[] = [];
  readonly warnings: ConfigIssue[] = [];

  constructor(
    private readonly file: string,
    private readonly document: ReturnType<typeof parseDocument>,
    private readonly lineCounter: LineCounter,
  ) {}

  /**
   * Records an issue at `path`. `key` points at a mapping key (an unknown or badly named key);
   * otherwise the value, or for a missing value the nearest mapping that exists.
   */
  add(into: ConfigIssue[], path: readonly Segment[], target: Target, message: string): void {
    const offset = this.offsetOf(path, target);
    const { line, col } = offset === undefined ? { line: 1, col: 1 } : this.lineCounter.linePos(offset);
    into.push({ file: this.file, line, column: col, path: formatPath(path), message });
  }

  yaml(error: YAMLError, into: ConfigIssue[]): void {
    const offset = error.pos[0];
    const { line, col } = this.lineCounter.linePos(offset);
    // The library's first line is the useful part; the rest repeats the source.
    const detail = (error.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
    const message =
      error.code === "DUPLICATE_KEY"
        ? "duplicate key: each key may appear only once in a mapping"
        : `YAML syntax: ${detail}`;
    into.push({ file: this.file, line, column: col, path: formatPath(this.pathAt(offset)), message });
  }

  schemaIssue(issue: z.core.$ZodIssue, raw: unknown): void {
    const path = issue.path.filter((segment): segment is Segment => typeof segment !== "symbol");
    if (issue.code === "unrecognized_keys") {
      const allowed = allowedKeys(path, raw);
      for (const key of issue.keys) {
        // A key of another kind's settings (`rotate` on a syslog sink) is misplaced, not misspelt.
        const elsewhere = kindsAccepting(path, key, raw);
        if (elsewhere !== undefined) {
          this.add(this.errors, [...path, key], "key", `expected '${key}' only on ${elsewhere}`);
          continue;
        }
        const hint = allowed.length > 0 ? `; expected one of: ${allowed.join(", ")}` : "";
        this.add(this.errors, [...path, key], "key", `unknown key${didYouMean(key, allowed)}${hint}`);
      }
      return;
    }
    if (issue.code === "invalid_key") {
      this.add(this.errors, path, "key", `expected ${issue.issues[0]?.message ?? "a valid name"}`);
      return;
    }
    const value = valueAt(raw, path);
    const ownWords = value === undefined ? missingPhraseAt(path, raw) : undefined;
    if (ownWords !== undefined) {
      this.add(this.errors, path, "at", `expected ${ownWords}`);
    } else if (value === undefined && path.length > 0 && issue.code !== "custom") {
      const expected = expectedAt(path, issue.message, raw);
      this.add(this.errors, path, "at", `missing required key '${path.at(-1)}': expected ${expected}`);
    } else if (issue.code === "invalid_type") {
      this.add(this.errors, path, "at", `expected ${issue.message}, got ${describeKind(value)}`);
    } else {
      this.add(this.errors, path, "at", `expected ${issue.message}`);
    }
  }

  sorted(issues: ConfigIssue[]): ConfigIssue[] {
    return [...issues].sort((a, b) => a.line - b.line || a.column - b.column || a.path.localeCompare(b.path));
  }

  failure(): LoadResult {
    return { ok: false, errors: this.sorted(this.errors), warnings: this.sorted(this.warnings) };
  }

  /** Line number of the node at `path`, for messages that point at another place ("first used on line 3"). */
  lineOf(path: readonly Segment[]): number {
    const offset = this.offsetOf(path, "at");
    return offset === undefined ? 0 : this.lineCounter.linePos(offset).line;
  }

  private offsetOf(path: readonly Segment[], target: Target): number | undefined {
    let node: unknown = this.document.contents;
    let parentOffset = startOf(node);
    let keyOffset: number | undefined;
    for (const segment of path) {
      if (isAlias(node)) node = node.resolve(this.document);
      let next: unknown;
      keyOffset = undefined;
      if (isMap(node)) {
        const pair = node.items.find(
          (item) => isScalar(item.key) && String(item.key.value) === String(segment),
        );
        if (pair === undefined) return parentOffset;
        keyOffset = startOf(pair.key);
        next = pair.value;
      } else if (isSeq(node) && typeof segment === "number") {
        next = node.items[segment];
        if (next === undefined) return parentOffset;
      } else {
        return parentOffset;
      }
      node = next;
      // An empty value (`duration:`) has no range of its own; its key stands in for it.
      parentOffset = startOf(node) ?? keyOffset ?? parentOffset;
    }
    return target === "key" ? (keyOffset ?? parentOffset) : parentOffset;
  }

  /** The path of the innermost node containing `offset`, so syntax errors also say where they are. */
  private pathAt(offset: number): Segment[] {
    const path: Segment[] = [];
    let node: unknown = this.document.contents;
    for (;;) {
      if (isMap(node)) {
        const pair = node.items.find((item) => {
          const start = startOf(item.key);
          const end = endOf(item.value) ?? endOf(item.key);
          return start !== undefined && end !== undefined && start <= offset && offset <= end;
        });
        if (pair === undefined || !isScalar(pair.key)) return path;
        path.push(String(pair.key.value));
        node = pair.value;
      } else if (isSeq(node)) {
        const index = node.items.findIndex((item) => {
          const start = startOf(item);
          const end = endOf(item);
          return start !== undefined && end !== undefined && start <= offset && offset <= end;
        });
        if (index < 0) return path;
        path.push(index);
        node = node.items[index];
      } else {
        return path;
      }
    }
  }
}

function startOf(node: unknown): number | undefined {
  return (node as Node | null | undefined)?.range?.[0] ?? undefined;
}

function endOf(node: unknown): number | undefined {
  return (node as Node | null | undefined)?.range?.[2] ?? undefined;
}

/** `breakGlass[0].duration.max`; keys that are not plain words are quoted so a hostile key stays inert. */
export function formatPath(path: readonly Segment[]): string {
  let text = "";
  // Only a hostile file nests this deep; its path would otherwise fill the screen.
  const shown = path.length > MAX_PATH_SEGMENTS ? path.slice(0, MAX_PATH_SEGMENTS) : path;
  for (const segment of shown) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment) && segment.length <= 80)
      text += text === "" ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment.length > 80 ? `${segment.slice(0, 77)}...` : segment)}]`;
  }
  return shown === path ? text : `${text}...`;
}

function valueAt(root: unknown, path: readonly Segment[]): unknown {
  let value = root;
  for (const segment of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

function describeKind(value: unknown): string {
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return "a list";
  switch (typeof value) {
    case "object":
      return "a mapping";
    case "string":
      return "a string";
    case "number":
      return Number.isInteger(value) ? "a whole number" : "a number";
    case "boolean":
      return "true or false";
    default:
      return typeof value;
  }
}

type SchemaDef = Record<string, unknown> & { type: string };
const defOf = (schema: unknown): SchemaDef | undefined =>
  (schema as { _zod?: { def?: SchemaDef } } | undefined)?._zod?.def;

/** `schema` past wrappers that do not change its shape. */
function unwrap(schema: unknown): unknown {
  for (let def = defOf(schema); def !== undefined; def = defOf(schema)) {
    if (["optional", "default", "nullable", "prefault"].includes(def.type)) schema = def.innerType;
    else if (def.type === "pipe") schema = def.in;
    else break;
  }
  return schema;
}

/** The option of a discriminated union that `value` selects by its discriminator, if any. */
function optionFor(def: SchemaDef, value: unknown): unknown {
  const discriminator = def.discriminator as string;
  const tag = isRaw(value) ? value[discriminator] : undefined;
  return (def.options as unknown[]).find((option) =>
    (option as { _zod: { propValues?: Record<string, Set<unknown>> } })._zod.propValues?.[discriminator]?.has(
      tag,
    ),
  );
}

/** One step into an object, list or record along `segment` (unions are resolved by the caller). */
function childOf(schema: unknown, segment: Segment): unknown {
  const def = defOf(schema);
  if (def?.type === "object") return (def.shape as Record<string, unknown>)[segment];
  if (def?.type === "array") return def.element;
  if (def?.type === "record") return def.valueType;
  return undefined;
}

/**
 * The schema that validates the value at `path`, past wrappers that do not change its shape. A
 * discriminated union (`resources.NAME`, `audit.sinks[N]`) resolves to the option the document's
 * `type` selects, so each kind's own keys are the ones named.
 */
function schemaAt(path: readonly Segment[], raw: unknown): z.ZodType | undefined {
  let schema: unknown = configSchema;
  for (let index = 0; ; index++) {
    schema = unwrap(schema);
    const union = defOf(schema);
    if (union?.type === "union" && union.discriminator !== undefined)
      schema = unwrap(optionFor(union, valueAt(raw, path.slice(0, index))));
    if (defOf(schema) === undefined) return undefined;
    if (index === path.length) return schema as z.ZodType;
    schema = childOf(schema, path[index] as Segment);
  }
}

/** The keys an object accepts at `path`, for "unknown key" messages. */
function allowedKeys(path: readonly Segment[], raw: unknown): string[] {
  const def = defOf(schemaAt(path, raw));
  return def?.type === "object" ? Object.keys(def.shape as object) : [];
}

/**
 * For a key the object at `path` does not accept: the other kinds whose settings have it at the
 * same place, as the enclosing union names them ("a file sink"); undefined when none has.
 */
function kindsAccepting(path: readonly Segment[], key: string, raw: unknown): string | undefined {
  let schema: unknown = configSchema;
  let found: { union: unknown; at: number } | undefined;
  for (let index = 0; index <= path.length; index++) {
    schema = unwrap(schema);
    const union = defOf(schema);
    if (union?.type === "union" && union.discriminator !== undefined) {
      found = { union: schema, at: index };
      schema = unwrap(optionFor(union, valueAt(raw, path.slice(0, index))));
    }
    if (index < path.length) schema = childOf(schema, path[index] as Segment);
  }
  if (found === undefined) return undefined;
  const label = kindsLabel.get(found.union as z.ZodType);
  const def = defOf(found.union) as SchemaDef;
  const discriminator = def.discriminator as string;
  const chosen = optionFor(def, valueAt(raw, path.slice(0, found.at)));
  const kinds: string[] = [];
  for (const option of def.options as unknown[]) {
    if (option === chosen) continue;
    let inner: unknown = option;
    for (const segment of path.slice(found.at)) inner = childOf(unwrap(inner), segment);
    const innerDef = defOf(unwrap(inner));
    if (innerDef?.type !== "object" || !Object.hasOwn(innerDef.shape as object, key)) continue;
    const tags = (option as { _zod: { propValues?: Record<string, Set<unknown>> } })._zod.propValues?.[
      discriminator
    ];
    for (const tag of tags ?? []) kinds.push(String(tag));
  }
  if (kinds.length === 0 || label === undefined) return undefined;
  return label.describe(kinds);
}

/** The plug-in's own phrase for a required setting left out, when it gave one. */
function missingPhraseAt(path: readonly Segment[], raw: unknown): string | undefined {
  if (path.length === 0) return undefined;
  const parent = defOf(schemaAt(path.slice(0, -1), raw));
  if (parent?.type !== "object") return undefined;
  const schema = (parent.shape as Record<string, unknown>)[path.at(-1) as Segment];
  return schema === undefined ? undefined : whenMissing.get(schema as z.ZodType)?.expected;
}

/**
 * What a missing value should have been. Validating an empty placeholder against the schema at
 * `path` yields the schema's own phrasing ("a duration such as '90s'…") rather than "a string".
 */
function expectedAt(path: readonly Segment[], fallback: string, raw: unknown): string {
  const schema = schemaAt(path, raw);
  const type = defOf(schema)?.type;
  const placeholder = type === "string" ? "" : undefined;
  if (schema === undefined || placeholder === undefined) return fallback;
  const probe = schema.safeParse(placeholder, { error: expectation });
  return probe.success ? fallback : (probe.error.issues[0]?.message ?? fallback);
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

/**
 * Phrases zod's built-in issues as "what was expected" (the loader prefixes "expected"). Issues
 * with a message in the schema itself keep that message, which is written the same way.
 */
const expectation: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      return TYPE_NAMES[issue.expected] ?? `a ${issue.expected}`;
    case "too_small": {
      const minimum = Number(issue.minimum);
      if (issue.origin === "string")
        return minimum === 1 ? "a non-empty string" : `at least ${minimum} characters`;
      if (issue.origin === "array") return `at least ${minimum} item${minimum === 1 ? "" : "s"}`;
      return issue.inclusive ? `a number of at least ${minimum}` : `a number greater than ${minimum}`;
    }
    case "too_big": {
      const maximum = Number(issue.maximum);
      if (issue.origin === "string") return `at most ${maximum} characters`;
      if (issue.origin === "array") return `at most ${maximum} items`;
      return issue.inclusive ? `a number of at most ${maximum}` : `a number less than ${maximum}`;
    }
    case "invalid_value":
      return issue.values.length === 1
        ? `${JSON.stringify(issue.values[0])}`
        : `one of ${issue.values.map((value) => `'${String(value)}'`).join(", ")}`;
    case "invalid_format":
      return issue.format === "url" ? "a URL such as 'https://sso.example.com'" : `a valid ${issue.format}`;
    case "invalid_union": {
      // A discriminated union whose `type` (or other tag) matches none of its kinds.
      const kinds = (issue as { options?: readonly unknown[] }).options;
      if (issue.errors.length === 0 && kinds !== undefined)
        return `one of ${kinds.map((kind) => `'${String(kind)}'`).join(", ")}`;
      const alternatives = new Set(issue.errors.map((branch) => branch[0]?.message ?? "another value"));
      return [...alternatives].join(" or ");
    }
    case "not_multiple_of":
      return `a multiple of ${String(issue.divisor)}`;
    default:
      return undefined;
  }
};

function tooLargeMessage(size: number): string {
  return `the file is ${size} bytes; a configuration may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`;
}

function describeFileError(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case "ENOENT":
      return "file not found";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EISDIR":
      return "not a regular file";
    default:
      return "cannot read the file";
  }
}

// ---------------------------------------------------------------------------------------------
// References between sections. These run on the raw document, not the schema's output, so that
// they are reported together with schema errors; every access is therefore defensive.

type Raw = Record<string, unknown>;
const isRaw = (value: unknown): value is Raw =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const entriesOf = (value: unknown): [string, unknown][] => (isRaw(value) ? Object.entries(value) : []);
const itemsOf = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const stringOf = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const each = (value: unknown, visit: (item: unknown, index: number) => void): void => {
  for (const [index, item] of itemsOf(value).entries()) visit(item, index);
};

const SECRET_REF = /^(env:|file:\/)/;
// `scheme://user:password@host`: a literal credential where a secret reference belongs.
const URL_WITH_PASSWORD = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@\s]*:[^/@\s]*@/;

function checkReferences(raw: unknown, report: Reporter): void {
  if (!isRaw(raw)) return;
  checkPrototypeKeys(raw, [], report, raw);
  const error = (path: Segment[], message: string) => report.add(report.errors, path, "at", message);
  const warn = (path: Segment[], message: string) => report.add(report.warnings, path, "at", message);

  const zones = new Set(entriesOf(raw.zones).map(([name]) => name));
  const resources = new Map<string, { zone: string | undefined; roles: Set<string> }>();
  for (const [name, resource] of entriesOf(raw.resources)) {
    const body = isRaw(resource) ? resource : {};
    resources.set(name, {
      zone: stringOf(body.zone),
      roles: new Set(entriesOf(body.roles).map(([role]) => role)),
    });
  }
  const users = new Set<string>();
  const groups = new Set<string>();
  const directory = isRaw(raw.directory) ? raw.directory : {};
  // One spelling per user name: `alice` and `Alice` would be two principals people read as one.
  const spellings = new Map<string, { name: string; path: Segment[] }>();
  for (const [name, user] of entriesOf(directory.users)) {
    users.add(name);
    const path: Segment[] = ["directory", "users", name];
    const first = spellings.get(name.toLowerCase());
    if (first === undefined) spellings.set(name.toLowerCase(), { name, path });
    else
      report.add(
        report.errors,
        path,
        "key",
        `user '${name}' differs only in case from user '${first.name}' (line ${report.lineOf(first.path)}); user names are the same whatever their case`,
      );
    for (const group of itemsOf(isRaw(user) ? user.groups : undefined)) {
      if (typeof group === "string") groups.add(group);
    }
  }

  // A name the schema rejects is reported there, and is neither looked up nor listed here.
  const validZones = [...zones].filter((name) => NAME_PATTERN.test(name));
  const validResources = [...resources.keys()].filter((name) => NAME_PATTERN.test(name));
  const zone = (path: Segment[], value: unknown) => {
    const name = stringOf(value);
    if (name === undefined || zones.has(name) || !NAME_PATTERN.test(name)) return;
    error(path, `unknown zone '${name}'${didYouMean(name, validZones)}; zones are: ${listOf(validZones)}`);
  };
  const resource = (path: Segment[], value: unknown) => {
    const name = stringOf(value);
    if (name === undefined || resources.has(name) || !NAME_PATTERN.test(name)) return false;
    const known = `resources are: ${listOf(validResources)}`;
    error(path, `unknown resource '${name}'${didYouMean(name, validResources)}; ${known}`);
    return true;
  };
  const principal = (path: Segment[], value: unknown) => {
    const ref = stringOf(value);
    if (ref?.startsWith("group:")) {
      const group = ref.slice("group:".length);
      if (!groups.has(group)) {
        warn(
          path,
          `no directory user is in group '${group}'; fine only if your identity provider supplies it`,
        );
      }
    } else if (ref?.startsWith("user:")) {
      const user = ref.slice("user:".length);
      const first = spellings.get(user.toLowerCase());
      if (first === undefined) spellings.set(user.toLowerCase(), { name: user, path });
      else if (first.name !== user) {
        error(
          path,
          `user '${user}' differs only in case from '${first.name}' (line ${report.lineOf(first.path)}); write it the same way everywhere`,
        );
        return;
      }
      if (!users.has(user)) {
        warn(path, `user '${user}' is not in the directory; fine only if your identity provider supplies it`);
      }
    }
  };
  /** Where a role must be defined: the named resources, or all resources of the zone. */
  const role = (
    path: Segment[],
    value: unknown,
    zoneName: string | undefined,
    only: string[] | undefined,
    into: ConfigIssue[] = report.errors,
  ) => {
    const name = stringOf(value);
    if (name === undefined || !NAME_PATTERN.test(name) || zoneName === undefined || !zones.has(zoneName))
      return;
    const candidates = (only ?? [...resources.keys()]).filter((resourceName) => {
      const found = resources.get(resourceName);
      return found !== undefined && found.zone === zoneName;
    });
    if (candidates.length === 0) return;
    const defined = new Set(
      candidates.flatMap((resourceName) => [...(resources.get(resourceName)?.roles ?? [])]),
    );
    if (defined.has(name)) return;
    const where =
      only === undefined
        ? `no resource in zone '${zoneName}'`
        : `none of the resources ${candidates.map((c) => `'${c}'`).join(", ")}`;
    const message = `${where} defines role '${name}'${didYouMean(name, [...defined])}; roles defined there: ${listOf(defined)}`;
    report.add(
      into,
      path,
      "at",
      into === report.errors ? message : `${message}; the binding grants nothing on them`,
    );
  };
  const secretFree = (path: Segment[], value: unknown) => {
    const text = stringOf(value);
    if (text !== undefined && !SECRET_REF.test(text) && URL_WITH_PASSWORD.test(text)) {
      error(
        path,
        "this URL contains a password; write a secret reference such as 'env:NAME' or 'file:/path' instead",
      );
    }
  };

  const settingsReport: SettingsReport = {
    error: (path, message) => error([...path], message),
    warn: (path, message) => warn([...path], message),
    zone: (path, value) => zone([...path], value),
  };
  checkPluginSettings(raw, settingsReport);

  for (const name of ["administrators", "auditors", "agents"] as const) {
    each(raw[name], (ref, index) => principal([name, index], ref));
  }

  each(raw.flows, (flow, index) => {
    if (!isRaw(flow)) return;
    zone(["flows", index, "from"], flow.from);
    zone(["flows", index, "to"], flow.to);
  });

  for (const [name, body] of entriesOf(raw.resources)) {
    if (!isRaw(body)) continue;
    zone(["resources", name, "zone"], body.zone);
    for (const [key, value] of entriesOf(body.connection))
      secretFree(["resources", name, "connection", key], value);
  }

  each(raw.standing, (binding, index) => {
    if (!isRaw(binding)) return;
    const path: Segment[] = ["standing", index];
    zone([...path, "zone"], binding.zone);
    const unknownResource = resource([...path, "resource"], binding.resource);
    const resourceName = stringOf(binding.resource);
    if (resourceName !== undefined && !unknownResource) {
      role([...path, "role"], binding.role, resources.get(resourceName)?.zone, [resourceName]);
    } else if (resourceName === undefined) {
      // A zone-wide standing role is also answered by zone access checks on its own, so a role
      // no resource defines is suspicious but not wrong (the SPEC's own example has one).
      role([...path, "role"], binding.role, stringOf(binding.zone), undefined, report.warnings);
    }
    if (binding.group !== undefined) principal([...path, "group"], `group:${String(binding.group)}`);
    if (binding.user !== undefined) principal([...path, "user"], `user:${String(binding.user)}`);
  });

  const policyNames = new Map<string, number>();
  each(raw.breakGlass, (policy, index) => {
    if (!isRaw(policy)) return;
    const path: Segment[] = ["breakGlass", index];
    const name = stringOf(policy.name);
    if (name !== undefined) {
      const first = policyNames.get(name);
      if (first === undefined) policyNames.set(name, index);
      else {
        const line = report.lineOf(["breakGlass", first, "name"]);
        error(
          [...path, "name"],
          `policy name '${name}' is already used by breakGlass[${first}] (line ${line})`,
        );
      }
    }

    const zoneName = stringOf(policy.zone);
    zone([...path, "zone"], policy.zone);
    const restrictedTo: string[] = [];
    each(policy.resources, (value, resourceIndex) => {
      const resourcePath = [...path, "resources", resourceIndex];
      if (resource(resourcePath, value)) return;
      const resourceName = stringOf(value);
      if (resourceName === undefined) return;
      const actualZone = resources.get(resourceName)?.zone;
      if (zoneName !== undefined && actualZone !== undefined && actualZone !== zoneName) {
        error(
          resourcePath,
          `resource '${resourceName}' is in zone '${actualZone}', not in this policy's zone '${zoneName}'`,
        );
        return;
      }
      restrictedTo.push(resourceName);
    });
    const only = Array.isArray(policy.resources) ? restrictedTo : undefined;
    each(policy.roles, (value, roleIndex) => role([...path, "roles", roleIndex], value, zoneName, only));

    each(policy.eligible, (ref, refIndex) => principal([...path, "eligible", refIndex], ref));
    each(policy.approvals, (step, stepIndex) => {
      if (!isRaw(step)) return;
      const fromPath = [...path, "approvals", stepIndex, "from"];
      if (Array.isArray(step.from))
        each(step.from, (ref, refIndex) => principal([...fromPath, refIndex], ref));
      else principal(fromPath, step.from);
    });
    if (isRaw(policy.review)) {
      each(policy.review.by, (ref, refIndex) => principal([...path, "review", "by", refIndex], ref));
    }
    each(policy.sourceZones, (value, zoneIndex) => zone([...path, "sourceZones", zoneIndex], value));

    if (isRaw(policy.duration)) {
      const defaultMs = durationOrUndefined(policy.duration.default);
      const maxMs = durationOrUndefined(policy.duration.max);
      if (defaultMs !== undefined && maxMs !== undefined && defaultMs > maxMs) {
        error(
          [...path, "duration", "default"],
          `expected a default no longer than max (${String(policy.duration.max)})`,
        );
      }
    }

    if (isRaw(policy.justification)) {
      const ticket = stringOf(policy.justification.ticket);
      if (ticket !== undefined && ticket.length <= MAX_TICKET_PATTERN_LENGTH) {
        try {
          compileTicketPattern(ticket);
        } catch (problem) {
          error(
            [...path, "justification", "ticket"],
            `expected a regular expression: ${(problem as Error).message}`,
          );
        }
      }
    }

    condition([...path, "when"], policy.when);
    if (isRaw(policy.autoApprove)) condition([...path, "autoApprove", "when"], policy.autoApprove.when);
  });

  function condition(path: Segment[], value: unknown): void {
    const source = stringOf(value);
    // Empty and oversized conditions are the schema's to report.
    if (source === undefined || source.length === 0 || source.length > 4096) return;
    try {
      compileCondition(source);
    } catch (problem) {
      if (!(problem instanceof CelCompileError)) throw problem;
      error(path, `expected a CEL condition over principal, request, signals and now: ${problem.message}`);
    }
  }

  const audit = isRaw(raw.audit) ? raw.audit : {};
  const sinkNames = new Set<string>();
  each(audit.sinks, (sink, index) => {
    if (!isRaw(sink)) return;
    const name = stringOf(sink.name);
    if (name !== undefined) {
      if (sinkNames.has(name)) error(["audit", "sinks", index, "name"], `sink name '${name}' is used twice`);
      sinkNames.add(name);
    }
    secretFree(["audit", "sinks", index, "url"], sink.url);
  });
  if (isRaw(audit.anchor) && audit.signingKey === undefined)
    error(
      ["audit", "anchor"],
      "audit.anchor needs audit.signingKey: the anchor is the newest signed checkpoint, and without a key none is written",
    );

  // Emergency kits (src/emergency/NOTES.md): a kit names a resource of its zone and one of its
  // roles, k of n custodians who are users of the directory, and is signed with the audit key.
  for (const [zoneName, kit] of entriesOf(raw.emergency)) {
    if (!isRaw(kit)) continue;
    const path: Segment[] = ["emergency", zoneName];
    if (NAME_PATTERN.test(zoneName) && !zones.has(zoneName))
      error(path, `emergency kit for unknown zone '${zoneName}'`);
    const resourceName = stringOf(kit.resource);
    const resource = resourceName === undefined ? undefined : resources.get(resourceName);
    if (resourceName !== undefined && NAME_PATTERN.test(resourceName)) {
      if (resource === undefined) error([...path, "resource"], `unknown resource '${resourceName}'`);
      else if (resource.zone !== zoneName)
        error([...path, "resource"], `resource '${resourceName}' is not in zone '${zoneName}'`);
      else {
        const role = stringOf(kit.role);
        if (role !== undefined && !resource.roles.has(role))
          error([...path, "role"], `resource '${resourceName}' has no role '${role}'`);
      }
    }
    const custodians = itemsOf(kit.custodians);
    const seen = new Set<string>();
    custodians.forEach((custodian, index) => {
      const user = isRaw(custodian) ? stringOf(custodian.user) : undefined;
      if (user === undefined) return;
      if (seen.has(user))
        error([...path, "custodians", index, "user"], `custodian '${user}' is listed twice`);
      seen.add(user);
      if (isRaw(raw.directory) && !users.has(user))
        error([...path, "custodians", index, "user"], `custodian '${user}' is not a user of the directory`);
    });
    if (typeof kit.threshold === "number" && kit.threshold > custodians.length)
      error(
        [...path, "threshold"],
        `threshold ${kit.threshold} is more than the ${custodians.length} custodians: the kit could never be opened`,
      );
    const lifetime = durationOrUndefined(kit.lifetime);
    const rotateBefore = durationOrUndefined(kit.rotateBefore);
    if (lifetime !== undefined && rotateBefore !== undefined && rotateBefore >= lifetime)
      error([...path, "rotateBefore"], "rotateBefore must be shorter than the lifetime");
    if (audit.signingKey === undefined)
      error(
        path,
        "emergency kits need audit.signingKey: a kit is signed with it and checked offline against it",
      );
  }

  // Drills (src/drills/NOTES.md): an existing policy, a resource it covers, a role of both.
  for (const problem of drillReferenceProblems(raw)) error(problem.path, problem.message);

  // The redirect URL registered with the provider is derived from the public URL when not given;
  // without either, terminals can still sign in (device flow) but browsers cannot.
  const identity = isRaw(raw.identity) ? raw.identity : {};
  const server = isRaw(raw.server) ? raw.server : {};
  if (isRaw(identity.oidc) && identity.oidc.redirectUrl === undefined && server.publicUrl === undefined) {
    warn(
      ["identity", "oidc"],
      "browser sign-in needs server.publicUrl (or identity.oidc.redirectUrl) to know where the provider sends people back; until then only 'firebreak login' (device flow) works",
    );
  }
}

/**
 * zod drops a `__proto__` key from a record without a word, so a zone or user of that name would
 * vanish silently; name it as an error instead. Strict objects already report it as unknown.
 */
function checkPrototypeKeys(value: unknown, path: Segment[], report: Reporter, root: unknown): void {
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) checkPrototypeKeys(item, [...path, index], report, root);
    return;
  }
  if (!isRaw(value)) return;
  for (const [key, child] of Object.entries(value)) {
    if (key === "__proto__" && defOf(schemaAt(path, root))?.type === "record") {
      report.add(report.errors, [...path, key], "key", "expected a name; '__proto__' is reserved");
    }
    if (path.length < MAX_PATH_SEGMENTS) checkPrototypeKeys(child, [...path, key], report, root);
  }
}

function durationOrUndefined(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  try {
    return parseDuration(value);
  } catch {
    return undefined;
  }
}

function listOf(names: Iterable<string>): string {
  const all = [...names];
  if (all.length === 0) return "(none)";
  const shown = all.slice(0, 20).join(", ");
  return all.length > 20 ? `${shown} and ${all.length - 20} more` : shown;
}

/**
 * A PostgreSQL role's statement rules (the gateway's purpose binding): each CEL condition must
 * compile, reported at its position; rules on a resource users reach directly bind nothing.
 */
function checkStatementRules(resource: RawSettings, path: ConfigPath, report: SettingsReport): void {
  for (const [roleName, role] of entriesOf(resource.roles)) {
    if (!isRaw(role) || !Array.isArray(role.statements)) continue;
    const rulesPath = [...path, "roles", roleName, "statements"];
    if (resource.access !== "gateway")
      report.warn(
        rulesPath,
        "statement rules apply only to connections through the gateway; set access: gateway on the resource, or grants may bypass them",
      );
    role.statements.forEach((rule: unknown, index: number) => {
      if (!isRaw(rule)) return;
      for (const key of ["allow", "deny"] as const) {
        const source = stringOf(rule[key]);
        if (source === undefined || source.length === 0 || source.length > 4096) continue;
        const problems = statementConditionProblems(source);
        if (problems.length > 0)
          report.error(
            [...rulesPath, index, key],
            `expected a CEL condition over statement, request and principal: ${problems.join("; ")}`,
          );
      }
    });
  }
}

/**
 * Each plug-in's own load-time checks (what its connector, sink or source would refuse later is
 * refused here, when the file is checked), and the one check across plug-ins: two resources whose
 * connectors claim accounts by prefix must not share a target and a prefix, or their reconcilers
 * would revoke each other's accounts.
 */
function checkPluginSettings(raw: Record<string, unknown>, report: SettingsReport): void {
  const owners = new Map<string, string>();
  for (const [name, resource] of entriesOf(raw.resources)) {
    if (!isRaw(resource)) continue;
    const type = stringOf(resource.type);
    if (type === undefined || !Object.hasOwn(resourceSettings, type)) continue;
    const settings: ResourceSettings = resourceSettings[type as keyof typeof resourceSettings];
    const path: ConfigPath = ["resources", name];
    settings.check?.(resource, path, report);
    if (type === "postgres") checkStatementRules(resource, path, report);
    const connection = isRaw(resource.connection) ? resource.connection : {};
    const url = stringOf(connection.url);
    if (url && settings.prefixedAccounts === true) {
      const key = `${type} ${url} ${stringOf(resource.namePrefix) ?? "fb_"}`;
      const other = owners.get(key);
      if (other)
        report.error(
          [...path, "namePrefix"],
          `resource '${other}' already manages accounts with this prefix on the same target; give one of them its own namePrefix`,
        );
      else owners.set(key, name);
    }
  }
  const signals = isRaw(raw.signals) ? raw.signals : {};
  for (const [kind, settings] of Object.entries(signalSettings) as [string, SignalSettings][]) {
    const section = signals[kind];
    if (isRaw(section)) settings.check?.(section, ["signals", kind], report);
  }
}

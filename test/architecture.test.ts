import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, posix, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import {
  knownExceptions,
  type Layer,
  layerRules,
  mayImport,
  mayImportDynamically,
} from "../src/architecture.layers.js";

const sourceRoot = resolve(import.meta.dirname, "../src");

type ImportKind = "static" | "type" | "dynamic";
interface Edge {
  from: string;
  to: string;
  kind: ImportKind;
}

function sourceFiles(directory: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.endsWith(".d.ts"))
      files.push(relative(sourceRoot, path).split("\\").join("/"));
  }
  return files.sort();
}

/** Every module specifier of a file, with how it is imported, read by TypeScript's own parser. */
function importsOf(text: string, fileName: string): { specifier: string; kind: ImportKind }[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: { specifier: string; kind: ImportKind }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((element) => element.isTypeOnly)));
      found.push({ specifier: node.moduleSpecifier.text, kind: typeOnly ? "type" : "static" });
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push({ specifier: node.moduleSpecifier.text, kind: node.isTypeOnly ? "type" : "static" });
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] !== undefined &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      found.push({ specifier: node.arguments[0].text, kind: "dynamic" });
    } else if (
      ts.isImportTypeNode(node) &&
      ts.isLiteralTypeNode(node.argument) &&
      ts.isStringLiteral(node.argument.literal)
    ) {
      found.push({ specifier: node.argument.literal.text, kind: "type" });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const expression = node.moduleReference.expression;
      if (ts.isStringLiteral(expression)) found.push({ specifier: expression.text, kind: "static" });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The graph of `src/` on its own files; imports of packages and of `node:` are not edges. */
function buildGraph(
  files: readonly string[],
  read: (file: string) => string,
): { edges: Edge[]; unresolved: string[] } {
  const known = new Set(files);
  const edges: Edge[] = [];
  const unresolved: string[] = [];
  for (const file of files) {
    for (const { specifier, kind } of importsOf(read(file), file)) {
      if (!specifier.startsWith(".")) continue;
      const target = posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, ".ts");
      const candidates = [target, `${target}.ts`, `${target}/index.ts`];
      const to = candidates.find((candidate) => known.has(candidate));
      if (to === undefined) {
        // A path outside src/ (test support, a JSON file) is not a module of the layers.
        if (!target.startsWith("..") && !existsSync(join(sourceRoot, target)))
          unresolved.push(`${file} → ${specifier}`);
        continue;
      }
      edges.push({ from: file, to, kind });
    }
  }
  return { edges, unresolved };
}

function patternToRegExp(pattern: string): RegExp {
  let expression = "";
  for (let index = 0; index < pattern.length; index++) {
    const character = pattern.charAt(index);
    if (pattern.startsWith("**/", index)) {
      expression += "(?:.*/)?";
      index += 2;
    } else if (pattern.startsWith("**", index)) {
      expression += ".*";
      index += 1;
    } else if (character === "*") expression += "[^/]*";
    else expression += character.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${expression}$`);
}

const compiledRules = layerRules.map((rule) => ({ ...rule, regExp: patternToRegExp(rule.pattern) }));

function layerOf(file: string): Layer {
  const rule = compiledRules.find((candidate) => candidate.regExp.test(file));
  if (rule === undefined) throw new Error(`no layer rule matches ${file}`);
  return rule.layer;
}

function allowed(edge: Edge): boolean {
  const from = layerOf(edge.from);
  const to = layerOf(edge.to);
  if (from === to || mayImport[from].includes(to)) return true;
  return edge.kind === "dynamic" && (mayImportDynamically[from] ?? []).includes(to);
}

function violationsOf(edges: readonly Edge[]): string[] {
  return edges
    .filter((edge) => !allowed(edge))
    .map((edge) => `${edge.from} (${layerOf(edge.from)}) → ${edge.to} (${layerOf(edge.to)}) [${edge.kind}]`);
}

/** Strongly connected components of more than one file (or a file importing itself), by Tarjan. */
function cyclesOf(files: readonly string[], edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>(files.map((file) => [file, []]));
  for (const edge of edges) next.get(edge.from)?.push(edge.to);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let counter = 0;
  const connect = (file: string): void => {
    index.set(file, counter);
    low.set(file, counter);
    counter++;
    stack.push(file);
    onStack.add(file);
    for (const target of next.get(file) ?? []) {
      if (!index.has(target)) {
        connect(target);
        low.set(file, Math.min(low.get(file) ?? 0, low.get(target) ?? 0));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file) ?? 0, index.get(target) ?? 0));
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop();
        if (member === undefined) break;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || (next.get(file) ?? []).includes(file)) cycles.push(component.sort());
    }
  };
  for (const file of files) if (!index.has(file)) connect(file);
  return cycles;
}

const files = sourceFiles(sourceRoot);
const graph = buildGraph(files, (file) => readFileSync(join(sourceRoot, file), "utf8"));
const exceptionKeys = new Set(knownExceptions.map((exception) => `${exception.from} → ${exception.to}`));

describe("architecture: the import graph of src/", () => {
  it("reads imports of every kind and resolves every relative one", () => {
    expect(files.length).toBeGreaterThan(100);
    expect(graph.unresolved).toEqual([]);
    expect(
      importsOf(
        'import a from "./a.js"; import type { B } from "./b.js"; import { type C } from "./c.js"; export * from "./d.js"; const e = () => import("./e.js"); type F = import("./f.js").F;',
        "x.ts",
      ),
    ).toEqual([
      { specifier: "./a.js", kind: "static" },
      { specifier: "./b.js", kind: "type" },
      { specifier: "./c.js", kind: "type" },
      { specifier: "./d.js", kind: "static" },
      { specifier: "./e.js", kind: "dynamic" },
      { specifier: "./f.js", kind: "type" },
    ]);
  });

  it("gives every file a layer by its role before its folder", () => {
    expect(layerOf("grants/grant.repo.ts")).toBe("repository");
    expect(layerOf("grants/grant.routes.ts")).toBe("routes");
    expect(layerOf("connectors/postgres/postgres.settings.ts")).toBe("config");
    expect(layerOf("shared/canonical-json.ts")).toBe("shared");
    expect(layerOf("grants/grant.service.ts")).toBe("domain");
  });

  it("has no cycle, type-only imports included", () => {
    expect(cyclesOf(files, graph.edges)).toEqual([]);
  });

  it("has no import against the layers of architecture.layers.ts", () => {
    const violations = violationsOf(graph.edges).filter(
      (violation) => !exceptionKeys.has(violation.replace(/ \([a-z]+\)/g, "").replace(/ \[[a-z]+\]$/, "")),
    );
    expect(violations).toEqual([]);
  });

  it("lists only exceptions that are still needed", () => {
    const present = new Set(
      graph.edges.filter((edge) => !allowed(edge)).map((edge) => `${edge.from} → ${edge.to}`),
    );
    expect([...exceptionKeys].filter((key) => !present.has(key))).toEqual([]);
  });

  it("ARCHITECTURE.md states the same layers as architecture.layers.ts", () => {
    const text = readFileSync(resolve(sourceRoot, "../ARCHITECTURE.md"), "utf8");
    const table = text.slice(text.indexOf("<!-- layers:begin"), text.indexOf("<!-- layers:end"));
    const documented: Record<string, string[]> = {};
    for (const line of table.split("\n")) {
      const cells = line.split("|").map((cell) => cell.trim());
      if (cells.length < 5 || cells[1] === "Layer" || cells[1]?.startsWith("---")) continue;
      documented[cells[1] ?? ""] = cells[3] === "—" ? [] : (cells[3] ?? "").split(", ").sort();
    }
    const declared = Object.fromEntries(
      Object.entries(mayImport).map(([layer, allowedLayers]) => [layer, [...allowedLayers].sort()]),
    );
    expect(documented).toEqual(declared);
  });

  it("finds an upward import and a cycle in a graph built to have them", () => {
    const sample: Record<string, string> = {
      "shared/a.ts": 'import { b } from "../grants/grant.service.js";',
      "grants/grant.service.ts": 'import type { a } from "../shared/a.js";',
      "grants/grant.routes.ts": 'import { c } from "./grant.repo.js";',
      "grants/grant.repo.ts": "",
    };
    const sampleGraph = buildGraph(Object.keys(sample), (file) => sample[file] ?? "");
    expect(violationsOf(sampleGraph.edges)).toEqual([
      "shared/a.ts (shared) → grants/grant.service.ts (domain) [static]",
      "grants/grant.routes.ts (routes) → grants/grant.repo.ts (repository) [static]",
    ]);
    expect(cyclesOf(Object.keys(sample), sampleGraph.edges)).toEqual([
      ["grants/grant.service.ts", "shared/a.ts"],
    ]);
  });
});

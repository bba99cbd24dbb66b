import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * The console type-checks the API contract without Node's types and the CLI loads it at start,
 * so the area schemas may import only zod and pure helpers. Two areas need server modules (the
 * sink types of the plug-in registry, the network state's schema) and are kept apart.
 */
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const NEEDS_SERVER = new Set(["sinks.schema.ts", "enforcement.schema.ts"]);
const PURE = new Set([
  "config/primitives.ts",
  "config/duration.ts",
  "config/patterns.ts",
  "db/types.ts",
  "shared/id-pattern.ts",
  "shared/request-states.ts",
]);

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/^(?:import|export)[^;]*?from "([^"]+)";/gms)].map((match) => match[1] as string);
}

/** Every module `file` reaches, as paths under src/ (and bare package names). */
function reach(file: string, seen = new Set<string>()): Set<string> {
  for (const specifier of importsOf(file)) {
    if (!specifier.startsWith(".")) {
      seen.add(specifier);
      continue;
    }
    const target = resolve(dirname(file), specifier.replace(/\.js$/, ".ts"));
    const name = relative(root, target);
    if (seen.has(name)) continue;
    seen.add(name);
    reach(target, seen);
  }
  return seen;
}

describe("the API contract (src/api)", () => {
  const areas = readdirSync(here).filter((name) => name.endsWith(".schema.ts"));

  it("has the areas the console and the CLI read", () => {
    expect(areas).toEqual(
      expect.arrayContaining([
        "requests.schema.ts",
        "grants.schema.ts",
        "decisions.schema.ts",
        "zones.schema.ts",
        "audit.schema.ts",
        "users.schema.ts",
        "factors.schema.ts",
      ]),
    );
  });

  for (const area of areas.filter((name) => !NEEDS_SERVER.has(name))) {
    it(`${area} imports only zod and pure helpers`, () => {
      const reached = [...reach(join(here, area))];
      const outside = reached.filter(
        (module) =>
          module !== "zod" && !module.startsWith("api/") && !PURE.has(module) && module !== "kysely",
      );
      expect(outside).toEqual([]);
    });
  }
});

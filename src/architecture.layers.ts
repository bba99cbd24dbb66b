/**
 * The layers of `src/`, read by `test/architecture.test.ts` and described in `ARCHITECTURE.md`.
 * A file's layer is the first rule whose pattern matches its path (relative to `src/`); a file
 * may import only the layers its own layer lists, and the import graph (type-only imports and
 * dynamic `import()` included) has no cycle. This file imports nothing, so the test can read it
 * without loading the code it judges.
 */

export type Layer =
  | "shared"
  | "config"
  | "loader"
  | "api"
  | "policy"
  | "repository"
  | "plugin"
  | "domain"
  | "http"
  | "routes"
  | "server"
  | "agent"
  | "cli"
  | "bench";

/**
 * Pattern syntax: `**` any number of folders, `*` any characters but `/`. Role suffixes come
 * before folders, so `grants/grant.repo.ts` is a repository even though `grants/` is a domain.
 */
export const layerRules: readonly { readonly pattern: string; readonly layer: Layer }[] = [
  { pattern: "architecture.layers.ts", layer: "shared" },
  { pattern: "shared/**", layer: "shared" },
  { pattern: "errors.ts", layer: "shared" },
  { pattern: "version.ts", layer: "shared" },
  { pattern: "bench/**", layer: "bench" },
  // The serve runner: the composition root's entry, loaded by the CLI only through import().
  { pattern: "cli/serve.ts", layer: "server" },
  { pattern: "cli/**", layer: "cli" },
  { pattern: "**/*.cli.ts", layer: "cli" },
  { pattern: "api/**", layer: "api" },
  // Reading a configuration file: parses YAML, checks CEL and plug-in settings, hashes the result.
  { pattern: "config/load.ts", layer: "loader" },
  { pattern: "config/diff.ts", layer: "loader" },
  // Settings are read by the configuration schema, so they sit with it: zod and value types only.
  { pattern: "config/**", layer: "config" },
  { pattern: "**/*.settings.ts", layer: "config" },
  { pattern: "plugins/settings.ts", layer: "config" },
  { pattern: "plugins/settings-contract.ts", layer: "config" },
  // Pure parsers a connector's settings check with at load time (no driver, no I/O).
  { pattern: "connectors/mariadb/mariadb.privileges.ts", layer: "config" },
  { pattern: "connectors/ssh/ssh-input.ts", layer: "config" },
  { pattern: "db/migrations/**", layer: "repository" },
  { pattern: "db/**", layer: "repository" },
  { pattern: "**/*.repo.ts", layer: "repository" },
  { pattern: "**/*.routes.ts", layer: "routes" },
  { pattern: "http/**", layer: "http" },
  { pattern: "**/*.service.ts", layer: "domain" },
  { pattern: "server/**", layer: "server" },
  // The agent loop: pulls the published state and applies it with a local enforcer. The remote
  // agent process runs it (`firebreak agent`), and so does `serve --enforcer nftables` in process.
  { pattern: "agent/**", layer: "agent" },
  // Pure evaluation: no I/O, no clock reads.
  { pattern: "policy/**", layer: "policy" },
  { pattern: "segmentation/**", layer: "policy" },
  { pattern: "audit/chain.ts", layer: "policy" },
  { pattern: "audit/severity.ts", layer: "policy" },
  { pattern: "audit/analyst-view.ts", layer: "policy" },
  { pattern: "audit/formats/**", layer: "policy" },
  // A gateway session's transcript chain: hashing and checking records, like audit/chain.ts.
  { pattern: "gateway/transcript.ts", layer: "policy" },
  // Statements parsed (PostgreSQL's parser in WebAssembly) and judged by a role's CEL rules: pure.
  { pattern: "gateway/postgres/classify.ts", layer: "policy" },
  { pattern: "gateway/postgres/statement-rules.ts", layer: "policy" },
  // An SSH session's records as asciicast v2 and as an exec transcript: pure, for the CLI and console.
  { pattern: "gateway/ssh/cast.ts", layer: "policy" },
  // Network state rendered as rules: pure functions of the state (the server time passed in).
  { pattern: "enforcers/nftables/ruleset.ts", layer: "policy" },
  { pattern: "exporters/**", layer: "policy" },
  { pattern: "audit/sinks/**", layer: "plugin" },
  { pattern: "connectors/**", layer: "plugin" },
  { pattern: "enforcers/**", layer: "plugin" },
  { pattern: "plugins/**", layer: "plugin" },
  { pattern: "enforcement/agent.enforcer.ts", layer: "plugin" },
  // Everything else belongs to a domain folder: services and the modules they are built from.
  { pattern: "**", layer: "domain" },
];

/** The composition root may import every layer but the CLI client (and the benchmarks). */
const SERVER_MAY_IMPORT: readonly Layer[] = [
  "shared",
  "config",
  "loader",
  "api",
  "policy",
  "repository",
  "plugin",
  "domain",
  "http",
  "routes",
  "agent",
];

/** What each layer may import, besides itself. Anything not listed is refused. */
export const mayImport: Readonly<Record<Layer, readonly Layer[]>> = {
  shared: [],
  config: ["shared"],
  policy: ["shared", "config"],
  loader: ["shared", "config", "policy"],
  // Request and reply schemas: zod, value types and the pure network-state schema.
  api: ["shared", "config", "policy"],
  repository: ["shared", "config", "policy"],
  plugin: ["shared", "config", "policy", "repository"],
  domain: ["shared", "config", "loader", "api", "policy", "repository", "plugin"],
  // The HTTP server and route definitions: know the caller (shared/principal.ts), not a domain.
  http: ["shared", "config", "api"],
  // Routes validate, call one service and shape the reply: never a repository or a plug-in.
  routes: ["shared", "config", "api", "policy", "http", "domain"],
  // The agent loop, run by the remote agent and by `serve --enforcer nftables`.
  agent: ["shared", "config", "api", "policy", "plugin"],
  // The composition root wires everything except the CLI client.
  server: SERVER_MAY_IMPORT,
  // The CLI client: pure pieces statically (offline explain and verify evaluate, never store).
  cli: ["shared", "config", "api", "policy"],
  // Benchmarks drive the server as the composition root does, and the server itself.
  bench: [...SERVER_MAY_IMPORT, "server"],
};

/**
 * Layers a layer may reach only through a dynamic `import()`, so that loading the CLI client does
 * not load the server: `serve`, `agent` and the offline commands import their code when they run.
 */
export const mayImportDynamically: Readonly<Partial<Record<Layer, readonly Layer[]>>> = {
  cli: ["loader", "repository", "plugin", "domain", "routes", "server", "agent"],
};

/**
 * Imports against the layers that are known and not yet fixed, each with the reason. The test
 * fails when one of these is no longer needed, so the list only shrinks.
 */
export const knownExceptions: readonly {
  readonly from: string;
  readonly to: string;
  readonly why: string;
}[] = [
  ...["audit/anchor.ts", "audit/offline-verify.ts"].map((to) => ({
    from: "cli/audit-stream.ts",
    to,
    why: "offline `audit verify` runs the anchor and checkpoint checks in the client: the modules are import()ed by the command, their result types are imported (type-only) by name",
  })),
];

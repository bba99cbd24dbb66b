import { type Client, createClient } from "./client.js";
import { safeText } from "./format.js";

/** A refusal or failure: exit code 1 with a clear message (and the error shape under --json). */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly code = "FAILED",
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The options every command shares (`--json`, `--server`). */
export interface Globals {
  json?: boolean;
  server?: string;
}

/** What a command file is given to register its commands with. */
export interface CommandContext {
  globals(): Globals;
  /** Prints `json` under --json, otherwise the human text. */
  emit(json: unknown, human: () => string): void;
  /** The client for the server named by --server, $FIREBREAK_URL or the login file. */
  client(): Promise<Client>;
  fail(message: string, code: string): Error;
}

export function out(value: unknown) {
  process.stdout.write(`${typeof value === "string" ? value : JSON.stringify(value, null, 2)}\n`);
}

/** Resolves `<zone|resource>` into the field the API expects, using the server's zone list. */
export async function targetBody(c: Pick<Client, "get">, target: string) {
  const { zonesReply } = await import("../api/zones.schema.js");
  const { zones } = await c.get("/v1/zones", zonesReply);
  if (zones.some((z) => z.name === target)) return { zone: target };
  if (zones.some((z) => z.resources.some((r) => r.name === target))) return { resource: target };
  throw new CliFailure(
    `'${safeText(target.slice(0, 100))}' is neither a zone nor a resource (see 'firebreak zones')`,
    "NOT_FOUND",
  );
}

export function createCommandContext(globals: () => Globals): CommandContext {
  return {
    globals,
    emit: (json, human) => out(globals().json ? json : human()),
    client: () => createClient({ url: globals().server }),
    fail: (message, code) => new CliFailure(message, code),
  };
}

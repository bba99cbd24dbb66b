import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { z } from "zod";

/** Where `firebreak login` keeps the server address and token (mode 0600). */
export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "firebreak", "credentials.json");
}

export interface Credentials {
  url: string;
  token: string;
}

export async function readCredentials(env: NodeJS.ProcessEnv = process.env): Promise<Partial<Credentials>> {
  try {
    return JSON.parse(await readFile(credentialsPath(env), "utf8")) as Partial<Credentials>;
  } catch {
    return {};
  }
}

export async function writeCredentials(
  credentials: Credentials,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  const path = credentialsPath(env);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  return path;
}

/** Forgets the saved login; true when there was one. */
export async function deleteCredentials(env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const path = credentialsPath(env);
  try {
    await readFile(path);
  } catch {
    return false;
  }
  await rm(path, { force: true });
  return true;
}

/** A failure the server answered with its error shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
    readonly requestId: string | null,
  ) {
    super(message);
  }
}

/**
 * `value` as `schema` says, or a BAD_REPLY refusal naming `what` and where it differs (never the
 * values: a reply may hold a secret).
 */
export function checkReply<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  status = 0,
): z.output<S> {
  const checked = schema.safeParse(value);
  if (checked.success) return checked.data;
  throw new ApiError(
    status,
    "BAD_REPLY",
    `${what} is not what this firebreak expects (a server of another version?)`,
    {
      issues: checked.error.issues
        .slice(0, 5)
        .map((issue) => ({ path: issue.path.join("."), message: issue.message })),
    },
    null,
  );
}

/** The HTTP client behind every command that talks to a server. */
export async function createClient(options: { url?: string; token?: string; env?: NodeJS.ProcessEnv }) {
  const env = options.env ?? process.env;
  const saved = await readCredentials(env);
  const url = (options.url ?? env.FIREBREAK_URL ?? saved.url ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
  const token = options.token ?? env.FIREBREAK_TOKEN ?? saved.token;

  async function call<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<z.output<S>> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(`${url}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(
        0,
        "UNREACHABLE",
        `cannot reach the Firebreak server at ${url} (set FIREBREAK_URL or run 'firebreak login')`,
        undefined,
        null,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!response.ok) {
      const error = (
        parsed as
          | { error?: { code?: string; message?: string; details?: unknown; requestId?: string } }
          | undefined
      )?.error;
      throw new ApiError(
        response.status,
        error?.code ?? `HTTP_${response.status}`,
        error?.message ?? `the server answered ${response.status}`,
        error?.details,
        error?.requestId ?? null,
      );
    }
    // Parsed with the schema the server replies with (src/api): a reply that is not what this
    // client expects (another version, something else at that address) is a clear refusal.
    return checkReply(
      schema,
      parsed,
      `the reply of ${url} to ${method} ${path.split("?")[0]}`,
      response.status,
    );
  }

  return {
    url,
    hasToken: token !== undefined,
    /** A GET whose reply is parsed with `schema`. */
    get: <S extends z.ZodType>(path: string, schema: S) => call("GET", path, schema),
    /** A POST whose reply is parsed with `schema`. */
    post: <S extends z.ZodType>(path: string, body: unknown, schema: S) => call("POST", path, schema, body),
    /** A raw streaming GET (server-sent events, JSON lines), or a POST of `post.body` asking for `post.accept`. */
    async stream(path: string, signal?: AbortSignal, post?: { body: unknown; accept: string }) {
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      if (post) {
        headers.accept = post.accept;
        headers["content-type"] = "application/json";
      }
      let response: Response;
      try {
        response = await fetch(`${url}${path}`, {
          method: post ? "POST" : "GET",
          headers,
          body: post ? JSON.stringify(post.body) : undefined,
          signal,
        });
      } catch (error) {
        if (!post) throw error;
        throw new ApiError(
          0,
          "UNREACHABLE",
          `cannot reach the Firebreak server at ${url} (set FIREBREAK_URL or run 'firebreak login')`,
          undefined,
          null,
        );
      }
      if (!response.ok || !response.body) {
        const parsed = (await response.json().catch(() => undefined)) as
          | { error?: { code?: string; message?: string; details?: unknown; requestId?: string } }
          | undefined;
        throw new ApiError(
          response.status,
          parsed?.error?.code ?? `HTTP_${response.status}`,
          parsed?.error?.message ?? "stream failed",
          parsed?.error?.details,
          parsed?.error?.requestId ?? null,
        );
      }
      return response.body;
    },
  };
}
export type Client = Awaited<ReturnType<typeof createClient>>;

/** A refusal or failure from the API, with its stable code (`POLICY_DENIED`, `FORBIDDEN`, …). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | null;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, requestId: string | null, details: unknown) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.details = details;
  }
}

export type Method = "GET" | "POST" | "DELETE";

export interface Api {
  get<T>(path: string, query?: Record<string, string | number | boolean | undefined | null>): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<T>;
  /** The bearer token in use (null when a cookie session signs in). */
  token(): string | null;
}

/** Builds `path?query`, leaving out empty values. */
export function withQuery(
  path: string,
  query: Record<string, string | number | boolean | undefined | null> = {},
): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * The API over fetch: JSON in and out, the bearer token on every call, and the server's error
 * shape turned into an ApiError. A 401 signs the console out (the token was revoked or expired).
 */
/** The header a cookie session's state-changing requests carry (src/identity/session.cookies.ts). */
export const CSRF_HEADER = "x-firebreak-csrf";

export function createApi(options: {
  token: () => string | null;
  /** The session's CSRF token when signed in with the session cookie (single sign-on). */
  csrf?: () => string | null;
  onUnauthenticated: () => void;
}): Api {
  async function call<T>(method: Method, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    const token = options.token();
    if (token) headers.authorization = `Bearer ${token}`;
    const csrf = options.csrf?.();
    if (!token && csrf && method !== "GET") headers[CSRF_HEADER] = csrf;
    if (body !== undefined) headers["content-type"] = "application/json";
    let response: Response;
    try {
      response = await fetch(path, {
        method,
        headers,
        credentials: "same-origin",
        cache: "no-store",
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    } catch {
      throw new ApiError(0, "NETWORK", "the server could not be reached", null, undefined);
    }
    const text = await response.text();
    let parsed: unknown = null;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = null;
    }
    if (!response.ok) {
      const error = (parsed as { error?: Record<string, unknown> } | null)?.error;
      const failure = new ApiError(
        response.status,
        typeof error?.code === "string" ? error.code : `HTTP_${response.status}`,
        typeof error?.message === "string" ? error.message : `the server answered ${response.status}`,
        typeof error?.requestId === "string" ? error.requestId : null,
        error?.details,
      );
      if (response.status === 401) options.onUnauthenticated();
      throw failure;
    }
    return parsed as T;
  }
  return {
    get: (path, query) => call("GET", withQuery(path, query)),
    post: (path, body) => call("POST", path, body ?? {}),
    token: options.token,
  };
}

/** A sentence for people, with the request id when the server logged something for an operator. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const suffix = error.code === "INTERNAL" && error.requestId ? ` (request id ${error.requestId})` : "";
    return `${error.message}${suffix}`;
  }
  return error instanceof Error ? error.message : String(error);
}

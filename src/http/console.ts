import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { dirname, extname, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { FirebreakError } from "../errors.js";

/**
 * Serves the web console (console/dist, built by `npm run build:console`) from the API server.
 *
 * - Every path that is not an API path and has no file extension answers index.html, so each
 *   console page has its own URL that survives a reload or a link from chat.
 * - API paths (`/v1/…`, `/openapi.json`, health and metrics) never fall back to the page: an unknown
 *   one is the API's own NOT_FOUND error.
 * - The page runs under a strict Content-Security-Policy with no external origin: scripts, styles,
 *   images and connections come from this server only, nothing inline, no eval (WebAssembly may be
 *   compiled, for the terminal player: `'wasm-unsafe-eval'` allows nothing else).
 * - Hashed files under /assets/ are cached for a year; index.html is revalidated on every load.
 *   Files precompressed at build time (`.br`, `.gz`) are sent when the browser accepts them.
 */

/** Where `npm run build:console` writes; the same relative place from src/http and dist/http. */
export const DEFAULT_CONSOLE_ROOT = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "console",
  "dist",
);

export const CONSOLE_CSP = [
  "default-src 'none'",
  // WebAssembly compilation only (not JS eval): asciinema-player's terminal emulator is WASM,
  // bundled with the console (SSH session playback, src/gateway/ssh/NOTES.md).
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join("; ");

const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy": CONSOLE_CSP,
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
};

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".woff2": "font/woff2",
};

/** Paths that belong to the API: an unknown one is an API error, never the console page. */
const API_PATH = /^\/(v[0-9]+(\/|$)|openapi\.json$|healthz$|readyz$|metrics$)/;
const ASSET_CACHE = "public, max-age=31536000, immutable";
const PAGE_CACHE = "no-cache";

interface Variant {
  body: Buffer;
  etag: string;
}

interface CachedFile {
  mtimeMs: number;
  size: number;
  identity: Variant;
  br: Variant | null;
  gzip: Variant | null;
}

async function readVariant(path: string, suffix: string): Promise<Variant | null> {
  try {
    const body = await readFile(path);
    const digest = createHash("sha256").update(body).digest("base64url").slice(0, 22);
    return { body, etag: `"${digest}${suffix}"` };
  } catch {
    return null;
  }
}

/** Accepts `br` / `gzip` unless the client refused them with q=0. */
function accepts(header: string | undefined, coding: string): boolean {
  if (!header) return false;
  return header.split(",").some((part) => {
    const [name, ...params] = part.trim().split(";");
    if (name?.trim().toLowerCase() !== coding) return false;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

export function registerConsole(app: FastifyInstance, options: { root?: string } = {}): void {
  const root = resolve(options.root ?? DEFAULT_CONSOLE_ROOT);
  const cache = new Map<string, CachedFile>();

  /** The file under root for a URL path, or null when it does not exist or escapes root. */
  async function load(relative: string): Promise<CachedFile | null> {
    const path = resolve(root, `.${relative}`);
    if (path !== root && !path.startsWith(root + sep)) return null;
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(path);
    } catch {
      return null;
    }
    if (!info.isFile()) return null;
    const known = cache.get(path);
    if (known && known.mtimeMs === info.mtimeMs && known.size === info.size) return known;
    const identity = await readVariant(path, "");
    if (!identity) return null;
    const entry: CachedFile = {
      mtimeMs: info.mtimeMs,
      size: info.size,
      identity,
      br: await readVariant(`${path}.br`, "-br"),
      gzip: await readVariant(`${path}.gz`, "-gz"),
    };
    cache.set(path, entry);
    return entry;
  }

  function send(
    request: FastifyRequest,
    reply: FastifyReply,
    file: CachedFile,
    type: string,
    cacheControl: string,
  ) {
    const acceptEncoding = request.headers["accept-encoding"];
    let variant = file.identity;
    let encoding: string | null = null;
    if (file.br && accepts(acceptEncoding, "br")) {
      variant = file.br;
      encoding = "br";
    } else if (file.gzip && accepts(acceptEncoding, "gzip")) {
      variant = file.gzip;
      encoding = "gzip";
    }
    reply.headers(SECURITY_HEADERS);
    reply.header("content-type", type).header("cache-control", cacheControl).header("etag", variant.etag);
    if (file.br || file.gzip) reply.header("vary", "accept-encoding");
    if (request.headers["if-none-match"] === variant.etag) return reply.status(304).send();
    if (encoding) reply.header("content-encoding", encoding);
    return reply.status(200).send(variant.body);
  }

  app.get("/*", async (request, reply) => {
    const rawPath = request.url.split("?")[0] ?? "/";
    if (API_PATH.test(rawPath)) throw new FirebreakError("NOT_FOUND", "no such endpoint");
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      throw new FirebreakError("NOT_FOUND", "no such page");
    }
    if (path.includes("\0") || path.includes("\\") || path.split("/").includes("..")) {
      throw new FirebreakError("NOT_FOUND", "no such page");
    }
    const extension = extname(path);
    if (extension !== "") {
      // A path with an extension names a file: a missing one is a 404, never the page.
      const type = CONTENT_TYPES[extension];
      const file = type && path !== "/index.html" ? await load(path) : null;
      if (!file || !type) throw new FirebreakError("NOT_FOUND", "no such file");
      return send(request, reply, file, type, path.startsWith("/assets/") ? ASSET_CACHE : PAGE_CACHE);
    }
    const page = await load("/index.html");
    if (!page) {
      reply.headers(SECURITY_HEADERS);
      return reply
        .status(503)
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "no-store")
        .send("The web console is not built. Run 'npm run build' (or 'npm run build:console') and reload.\n");
    }
    return send(request, reply, page, "text/html; charset=utf-8", PAGE_CACHE);
  });
}

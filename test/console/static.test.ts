import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { FirebreakError } from "../../src/errors.js";
import { CONSOLE_CSP, registerConsole } from "../../src/http/console.js";
import { defineRoute } from "../../src/http/route.js";
import { createHttpServer } from "../../src/http/server.js";

/**
 * How the server serves the console's files: content types, the SPA fallback that gives every page
 * its URL, API paths that never fall back, the CSP, caching and precompressed variants. Runs
 * against a small stand-in build so it does not depend on `npm run build:console`.
 */

const INDEX =
  "<!doctype html><html><head><title>Firebreak</title></head><body><div id=root></div></body></html>";
const SCRIPT = `console.log(${JSON.stringify("x".repeat(2000))});`;

let root: string;
let app: FastifyInstance;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "firebreak-console-"));
  await mkdir(join(root, "assets"));
  await writeFile(join(root, "index.html"), INDEX);
  await writeFile(join(root, "favicon.svg"), "<svg xmlns='http://www.w3.org/2000/svg'/>");
  await writeFile(join(root, "assets", "index-abc123.js"), SCRIPT);
  await writeFile(join(root, "assets", "index-abc123.js.br"), brotliCompressSync(SCRIPT));
  await writeFile(join(root, "assets", "index-abc123.js.gz"), gzipSync(SCRIPT));
  await writeFile(join(root, "assets", "index-abc123.css"), "body{color:red}");
  await writeFile(join(tmpdir(), "firebreak-console-secret.txt"), "outside the root");
  app = createHttpServer({
    routes: [
      defineRoute({
        method: "GET",
        url: "/v1/things/:id",
        summary: "a stand-in API route",
        tag: "test",
        auth: "none",
        params: z.object({ id: z.string() }),
        reply: z.object({ id: z.string() }),
        handler: async ({ params }) => {
          if (params.id !== "known") throw new FirebreakError("NOT_FOUND", "no such thing");
          return { id: "known" };
        },
      }),
    ],
    authenticate: async () => {
      throw new FirebreakError("UNAUTHENTICATED", "no");
    },
    version: "test",
    log: { error() {} },
  });
  registerConsole(app, { root });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await rm(root, { recursive: true, force: true });
  await rm(join(tmpdir(), "firebreak-console-secret.txt"), { force: true });
});

const get = (url: string, headers: Record<string, string> = {}) =>
  app.inject({ method: "GET", url, headers });

describe("console static serving", () => {
  it("answers index.html for every page path, with a strict CSP and revalidation", async () => {
    for (const path of [
      "/",
      "/map",
      "/requests/new",
      "/requests/req_abc",
      "/audit?zone=db&type=grant.expired",
    ]) {
      const reply = await get(path);
      expect(reply.statusCode, path).toBe(200);
      expect(reply.headers["content-type"]).toBe("text/html; charset=utf-8");
      expect(reply.body).toBe(INDEX);
      expect(reply.headers["cache-control"]).toBe("no-cache");
      expect(reply.headers["content-security-policy"]).toBe(CONSOLE_CSP);
      expect(reply.headers["x-frame-options"]).toBe("DENY");
      expect(reply.headers["x-content-type-options"]).toBe("nosniff");
    }
    // No external origin, nothing inline, no eval.
    expect(CONSOLE_CSP).toContain("default-src 'none'");
    expect(CONSOLE_CSP).toContain("script-src 'self'");
    expect(CONSOLE_CSP).toContain("frame-ancestors 'none'");
    // 'wasm-unsafe-eval' (WebAssembly compilation, for the terminal player) is the one exception.
    expect(CONSOLE_CSP.replace(" 'wasm-unsafe-eval'", "")).not.toMatch(/unsafe|https?:|\*/);
  });

  it("serves files with their content types; hashed assets are immutable", async () => {
    const script = await get("/assets/index-abc123.js");
    expect(script.statusCode).toBe(200);
    expect(script.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(script.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(script.body).toBe(SCRIPT);
    const style = await get("/assets/index-abc123.css");
    expect(style.headers["content-type"]).toBe("text/css; charset=utf-8");
    const icon = await get("/favicon.svg");
    expect(icon.headers["content-type"]).toBe("image/svg+xml");
    expect(icon.headers["cache-control"]).toBe("no-cache");
  });

  it("sends the precompressed variant the browser accepts, and 304 for a known ETag", async () => {
    const br = await get("/assets/index-abc123.js", { "accept-encoding": "gzip, deflate, br" });
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers.vary).toBe("accept-encoding");
    expect(br.rawPayload.length).toBeLessThan(SCRIPT.length);
    const gz = await get("/assets/index-abc123.js", { "accept-encoding": "gzip" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    const refused = await get("/assets/index-abc123.js", { "accept-encoding": "br;q=0, gzip;q=0" });
    expect(refused.headers["content-encoding"]).toBeUndefined();
    expect(refused.body).toBe(SCRIPT);
    const again = await get("/assets/index-abc123.js", {
      "accept-encoding": "br",
      "if-none-match": String(br.headers.etag),
    });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe("");
  });

  it("never answers the page for API paths or missing files", async () => {
    for (const path of ["/v1/nowhere", "/v1/things/known/extra", "/v2/anything", "/metrics"]) {
      const reply = await get(path);
      expect(reply.statusCode, path).toBe(404);
      expect(reply.json().error.code, path).toBe("NOT_FOUND");
      expect(reply.headers["content-type"]).toContain("application/json");
    }
    expect((await get("/v1/things/known")).json()).toEqual({ id: "known" });
    expect((await get("/v1/things/other")).json().error.code).toBe("NOT_FOUND");
    for (const path of [
      "/assets/missing.js",
      "/robots.txt",
      "/index.html.br",
      "/assets/index-abc123.js.map",
    ]) {
      const reply = await get(path);
      expect(reply.statusCode, path).toBe(404);
    }
  });

  it("refuses paths that try to leave its directory", async () => {
    for (const path of [
      "/../firebreak-console-secret.txt",
      "/..%2ffirebreak-console-secret.txt",
      "/assets/..%2f..%2ffirebreak-console-secret.txt",
      "/%2e%2e/firebreak-console-secret.txt",
      "/assets%5c..%5c..%5cfirebreak-console-secret.txt",
      "/%00.js",
      "/%E0%A4%A.js",
    ]) {
      const reply = await get(path);
      // Fastify itself answers 400 to a URL that is not valid percent-encoding.
      expect([400, 404], path).toContain(reply.statusCode);
      expect(reply.body, path).not.toContain("outside the root");
    }
  });

  it("says how to build the console when it is missing", async () => {
    const bare = createHttpServer({
      routes: [],
      authenticate: async () => {
        throw new FirebreakError("UNAUTHENTICATED", "no");
      },
      version: "test",
      log: { error() {} },
    });
    registerConsole(bare, { root: join(root, "not-built") });
    const reply = await bare.inject({ method: "GET", url: "/map" });
    expect(reply.statusCode).toBe(503);
    expect(reply.body).toContain("npm run build");
    expect(reply.body).not.toContain(root);
    await bare.close();
  });
});

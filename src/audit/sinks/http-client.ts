import http from "node:http";
import https from "node:https";
import { SinkDeliveryError, toDeliveryError } from "./sink-error.js";
import { tlsOptions } from "./tls-options.js";

type TlsSettings = Parameters<typeof tlsOptions>[0];

/** The most of a reply body kept (for status codes in JSON such as HEC's); the rest is drained. */
const MAX_REPLY_BYTES = 16 * 1024;

export interface HttpReply {
  status: number;
  body: string;
}

/**
 * A small HTTP(S) client over node:http(s) with one keep-alive agent per sink, so a sink's own
 * CA or client certificate applies to its requests only. Every request honours an AbortSignal.
 */
export function createHttpClient(url: URL, config: TlsSettings, secret: (ref: string) => string) {
  const secure = url.protocol === "https:";
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: 4, ...tlsOptions(config, secret) })
    : new http.Agent({ keepAlive: true, maxSockets: 4 });

  return {
    post(
      path: string,
      headers: Record<string, string>,
      body: string,
      signal: AbortSignal,
    ): Promise<HttpReply> {
      return new Promise<HttpReply>((resolve, reject) => {
        if (signal.aborted) {
          reject(new SinkDeliveryError("timed out"));
          return;
        }
        const payload = Buffer.from(body, "utf8");
        const request = (secure ? https : http).request(
          {
            protocol: url.protocol,
            hostname: url.hostname.replace(/^\[|\]$/g, ""),
            port: url.port || (secure ? 443 : 80),
            path,
            method: "POST",
            agent,
            headers: { ...headers, "content-length": String(payload.length) },
            signal,
          },
          (response) => {
            const chunks: Buffer[] = [];
            let kept = 0;
            response.on("data", (chunk: Buffer) => {
              if (kept < MAX_REPLY_BYTES) {
                chunks.push(chunk);
                kept += chunk.length;
              }
            });
            response.on("end", () =>
              resolve({
                status: response.statusCode ?? 0,
                body: Buffer.concat(chunks).subarray(0, MAX_REPLY_BYTES).toString("utf8"),
              }),
            );
            response.on("error", (error) => reject(toDeliveryError(error)));
          },
        );
        request.on("error", (error) => reject(toDeliveryError(error)));
        request.end(payload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/** The request path of a URL, defaulting to `fallback` when the URL names none. */
export function pathOf(url: URL, fallback: string): string {
  const path = url.pathname === "" || url.pathname === "/" ? fallback : url.pathname;
  return `${path}${url.search}`;
}

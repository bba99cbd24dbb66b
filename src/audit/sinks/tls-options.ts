import type { z } from "zod";
import type { sinkTlsSettings } from "./tls.settings.js";

/** The TLS settings of a sink, with its secret references resolved. Verification is never off. */
export function tlsOptions(
  config: { tls?: z.output<typeof sinkTlsSettings> },
  secret: (ref: string) => string,
) {
  const tls = config.tls ?? {};
  return {
    ...(tls.ca ? { ca: secret(tls.ca) } : {}),
    ...(tls.cert ? { cert: secret(tls.cert) } : {}),
    ...(tls.key ? { key: secret(tls.key) } : {}),
    ...(tls.serverName ? { servername: tls.serverName } : {}),
    minVersion: "TLSv1.2" as const,
    rejectUnauthorized: true,
  };
}

/** `scheme://host:port` of a URL: what a sink shows as its target (paths and queries may hold secrets). */
export function printableOrigin(url: URL): string {
  const port = url.port || (url.protocol === "https:" ? "443" : url.protocol === "http:" ? "80" : "");
  return `${url.protocol}//${url.hostname.includes(":") ? `[${url.hostname}]` : url.hostname}${port ? `:${port}` : ""}`;
}

import type { FirebreakConfig } from "../../config/schema.js";
import { FirebreakError } from "../../errors.js";
import type { TargetEndpoint } from "./gateway.js";

/**
 * Where the gateway logs in for a resource: the resource's `address` when it has one, else the host
 * of its admin `connection.url`; the database is the URL's (as the connector reports it to users).
 */
export function targetOf(
  config: FirebreakConfig,
  resourceName: string,
  secret: (ref: string) => string,
): TargetEndpoint {
  const resource = config.resources?.[resourceName];
  if (resource?.type !== "postgres" || !resource.connection?.url)
    throw new FirebreakError(
      "CONNECTOR_FAILED",
      `resource '${resourceName}' is not a PostgreSQL resource with a connection.url`,
    );
  const ref = resource.connection.url;
  const url = new URL(ref.startsWith("env:") || ref.startsWith("file:") ? secret(ref) : ref);
  const database = decodeURIComponent(url.pathname.replace(/^\//, "")) || "postgres";
  const address = resource.address ? /^(.*):(\d+)$/.exec(resource.address) : null;
  const host = (address ? (address[1] as string) : url.hostname).replace(/^\[|\]$/g, "");
  const port = address ? Number(address[2]) : Number(url.port || 5432);
  return { host, port, database };
}

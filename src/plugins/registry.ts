import { createAgentEnforcer } from "../agent/agent.enforcer.js";
import { createFileSink } from "../audit/sinks/file.sink.js";
import { createSplunkHecSink } from "../audit/sinks/splunk-hec.sink.js";
import { createSyslogSink } from "../audit/sinks/syslog.sink.js";
import { createWebhookSink } from "../audit/sinks/webhook.sink.js";
import type { ResourceType } from "../config/schema.js";
import { createLogConnector } from "../connectors/log/log.connector.js";
import { createMariadbConnector } from "../connectors/mariadb/mariadb.connector.js";
import { createPostgresConnector } from "../connectors/postgres/postgres.connector.js";
import { createLogEnforcer } from "../enforcers/log/log.enforcer.js";
import { FirebreakError } from "../errors.js";
import type {
  ConnectorDeps,
  CredentialConnector,
  EnforcerDeps,
  EnforcerKind,
  IssueContext,
  NetworkEnforcer,
  RevokeContext,
  SinkFactory,
  SinkKind,
} from "./contracts.js";

/**
 * A connector for a target type this build cannot reach yet. It refuses to issue, so activation
 * fails closed with CONNECTOR_FAILED instead of pretending access was granted.
 */
function unavailableConnector(kind: ResourceType): CredentialConnector {
  const refuse = (): never => {
    throw new FirebreakError("CONNECTOR_FAILED", `the '${kind}' connector is not available in this build`);
  };
  return {
    kind,
    available: false,
    plannedExternalId: (grantId) => `fb_${grantId}`,
    listManaged: async () => [],
    close: async () => {},
    issue: async (_context: IssueContext) => refuse(),
    revoke: async (_context: RevokeContext) => refuse(),
    verifyRevoked: async (_context: RevokeContext) => false,
  };
}

export type ConnectorRegistry = Record<ResourceType, CredentialConnector>;

/** The one place that maps each resource type to its connector. */
export function createConnectorRegistry(
  deps: ConnectorDeps,
  made: { ssh: CredentialConnector },
): ConnectorRegistry {
  return {
    log: createLogConnector(),
    postgres: createPostgresConnector(deps),
    mariadb: createMariadbConnector(deps),
    ssh: made.ssh,
    http: unavailableConnector("http"),
  };
}

export type EnforcerRegistry = Record<EnforcerKind, (deps: EnforcerDeps) => NetworkEnforcer>;

/** The one place that maps each enforcer kind to its implementation. */
export const enforcerRegistry: EnforcerRegistry = {
  log: () => createLogEnforcer(),
  agent: (deps) => createAgentEnforcer({ kind: "agent", ...deps }),
  // The server runs the nftables agent loop itself; opening and closing wait for it like for any agent.
  nftables: (deps) => createAgentEnforcer({ kind: "nftables", ...deps }),
};

export type SinkRegistry = Record<SinkKind, SinkFactory>;

/** The one place that maps each audit sink type to its implementation. */
export const sinkRegistry: SinkRegistry = {
  file: createFileSink,
  syslog: createSyslogSink,
  "splunk-hec": createSplunkHecSink,
  webhook: createWebhookSink,
};

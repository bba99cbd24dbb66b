import { createFileSink } from "../audit/sinks/file.sink.js";
import { createSplunkHecSink } from "../audit/sinks/splunk-hec.sink.js";
import { createSyslogSink } from "../audit/sinks/syslog.sink.js";
import { createWebhookSink } from "../audit/sinks/webhook.sink.js";
import type { ResourceType } from "../config/schema.js";
import { createLogConnector } from "../connectors/log/log.connector.js";
import { createMariadbConnector } from "../connectors/mariadb/mariadb.connector.js";
import { createPostgresConnector } from "../connectors/postgres/postgres.connector.js";
import { createAgentEnforcer } from "../enforcement/agent.enforcer.js";
import { createLogEnforcer } from "../enforcers/log/log.enforcer.js";
import type {
  ConnectorDeps,
  CredentialConnector,
  EnforcerDeps,
  EnforcerKind,
  NetworkEnforcer,
  SinkFactory,
  SinkKind,
} from "./contracts.js";

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

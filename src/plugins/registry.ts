import type { ResourceType } from "../config/schema.js";
import { createLogConnector, type LogConnectorRecord } from "../connectors/log/log.connector.js";
import { createMariadbConnector } from "../connectors/mariadb/mariadb.connector.js";
import { createPostgresConnector } from "../connectors/postgres/postgres.connector.js";
import { createLogEnforcer } from "../enforcers/log/log.enforcer.js";
import { FirebreakError } from "../errors.js";
import type {
  ConnectorDeps,
  CredentialConnector,
  EnforcerKind,
  IssueContext,
  NetworkEnforcer,
  RevokeContext,
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
  deps: ConnectorDeps & { onRecord?: (record: LogConnectorRecord) => void },
): ConnectorRegistry {
  return {
    log: createLogConnector({ onRecord: deps.onRecord }),
    postgres: createPostgresConnector(deps),
    mariadb: createMariadbConnector(deps),
    ssh: unavailableConnector("ssh"),
    http: unavailableConnector("http"),
  };
}

export type EnforcerRegistry = Record<EnforcerKind, () => NetworkEnforcer>;

/** The one place that maps each enforcer kind to its implementation. */
export const enforcerRegistry: EnforcerRegistry = {
  log: createLogEnforcer,
};

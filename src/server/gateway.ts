import type { AuditEventInput } from "../audit/audit.repo.js";
import type { FirebreakConfig } from "../config/schema.js";
import type { createSshConnector } from "../connectors/ssh/ssh.connector.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import type { GatewayCredentials } from "../gateway/credentials.js";
import { ready as readyToClassify } from "../gateway/postgres/classify.js";
import { createPostgresGateway, type PostgresGateway } from "../gateway/postgres/gateway.js";
import type { StatementInspector } from "../gateway/postgres/proxy.js";
import { createStatementInspector } from "../gateway/postgres/statement-rules.js";
import { targetOf } from "../gateway/postgres/target.js";
import type { GatewaySessions, SessionHolder } from "../gateway/session.service.js";
import { findGrant, type GrantRecord } from "../grants/grant.repo.js";
import type { ConnectorDeps } from "../plugins/contracts.js";
import { findRequest } from "../requests/request.repo.js";
import type { Clock } from "../shared/clock.js";
import { createSshGatewayService, type SshGatewayService } from "./ssh-gateway.js";

/**
 * Wires the protocol gateways for `firebreak serve`: the PostgreSQL gateway listens when
 * `gateway.postgres` is configured at start (a reload does not move the listener).
 */
export function createGateways(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  config: () => FirebreakConfig;
  credentials: GatewayCredentials;
  sessions: GatewaySessions;
  holder: SessionHolder;
  sourceZoneOf(address: string): string | null;
  secret(ref: string): string;
  log: { error(message: string, fields?: Record<string, unknown>): void };
  /** For the SSH gateway (`gateway.ssh`): the sealed key store and the SSH connector (the zone CAs). */
  ssh?: { keys: ConnectorDeps["keys"]; connector: ReturnType<typeof createSshConnector> };
}) {
  let postgres: PostgresGateway | null = null;
  const ssh: SshGatewayService | null = deps.ssh
    ? createSshGatewayService({
        db: deps.db,
        clock: deps.clock,
        config: deps.config,
        sessions: deps.sessions,
        holder: deps.holder,
        keys: deps.ssh.keys,
        connector: deps.ssh.connector,
        secret: deps.secret,
        audit: (event) => deps.inTransaction((unit) => unit.audit(event)),
        log: deps.log,
      })
    : null;
  let bound: { host: string; port: number } | null = null;
  return {
    /** Where the PostgreSQL gateway listens once started (the port chosen when `listen` said 0). */
    address: () => bound,
    /** Starts what is configured; resolves to each gateway's bound address, if any. */
    async start(): Promise<{
      postgres: { host: string; port: number } | null;
      ssh: { host: string; port: number } | null;
    }> {
      const started = await startPostgres();
      // endOrphans ran with the PostgreSQL gateway's start; without it, the SSH gateway runs it.
      if (!started && deps.config().gateway?.ssh) await deps.sessions.endOrphans();
      return { postgres: started, ssh: (await ssh?.start()) ?? null };
    },
    /** The SSH gateway's host key line (when the gateway made it), for users' known_hosts. */
    sshHostKey: () => ssh?.hostPublicKey() ?? Promise.resolve(null),
    async stop(): Promise<void> {
      await ssh?.stop();
      await postgres?.stop();
      postgres = null;
      bound = null;
    },
  };

  async function startPostgres(): Promise<{ host: string; port: number } | null> {
    {
      const settings = deps.config().gateway?.postgres;
      if (!settings) return null;
      // The statement parser (WASM) is loaded before the first session needs it.
      await readyToClassify();
      const inspector = createStatementInspector({
        rulesFor: (resource, role) => {
          const settings = deps.config().resources?.[resource];
          return settings?.type === "postgres" ? settings.roles[role]?.statements : undefined;
        },
      });
      const inspect = async (grant: GrantRecord, resource: string): Promise<StatementInspector> => {
        const request = await findRequest(deps.db, grant.requestId);
        const inspected = {
          id: grant.id,
          user: grant.user,
          zone: grant.zone,
          role: grant.role,
          policy: grant.policy ?? "",
          resource,
        };
        const context = request ? { reason: request.reason, ticket: request.ticket } : null;
        return (text) => inspector.inspect({ text, grant: inspected, request: context });
      };
      // Sessions left open by a crash of this process have no connection any more.
      await deps.sessions.endOrphans();
      postgres = createPostgresGateway({
        settings,
        config: deps.config,
        clock: deps.clock,
        findGrant: (id) => findGrant(deps.db, id),
        credentials: deps.credentials,
        target: (resource) => targetOf(deps.config(), resource, deps.secret),
        sessions: deps.sessions,
        holder: deps.holder,
        audit: (event: AuditEventInput) => deps.inTransaction((unit) => unit.audit(event)),
        sourceZoneOf: deps.sourceZoneOf,
        secret: deps.secret,
        inspect,
        log: deps.log,
      });
      bound = await postgres.start();
      return bound;
    }
  }
}

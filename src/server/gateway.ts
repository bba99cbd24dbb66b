import type { AuditEventInput } from "../audit/audit.repo.js";
import type { FirebreakConfig } from "../config/schema.js";
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
import { findRequest } from "../requests/request.repo.js";
import type { Clock } from "../shared/clock.js";

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
}) {
  let postgres: PostgresGateway | null = null;
  let bound: { host: string; port: number } | null = null;
  return {
    /** Where the PostgreSQL gateway listens once started (the port chosen when `listen` said 0). */
    address: () => bound,
    /** Starts what is configured; resolves to the PostgreSQL gateway's bound address, if any. */
    async start(): Promise<{ postgres: { host: string; port: number } | null }> {
      const settings = deps.config().gateway?.postgres;
      if (!settings) return { postgres: null };
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
      return { postgres: bound };
    },
    async stop(): Promise<void> {
      await postgres?.stop();
      postgres = null;
      bound = null;
    },
  };
}

import { createAgent } from "../agent/agent.js";
import type { FirebreakConfig } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { createEnforcementRoutes } from "../enforcement/enforcement.routes.js";
import { createEnforcementService } from "../enforcement/enforcement.service.js";
import { createNftRunner } from "../enforcers/nftables/nft.js";
import { createNftablesEnforcer } from "../enforcers/nftables/nftables.enforcer.js";
import type { EnforcerKind } from "../plugins/contracts.js";
import { checkEnforcerOptions } from "../plugins/enforcer-options.js";
import { enforcerRegistry } from "../plugins/registry.js";
import type { Clock } from "../shared/clock.js";
import type { EventBus } from "../shared/events.js";
import { createLocalStateSource } from "./local-state-source.js";

export interface EnforcementOptions {
  /** `log` (default): paths are recorded only; `agent`: agents enforce; `nftables`: this server does. */
  kind?: EnforcerKind;
  /** For `nftables`: run nft in this network namespace, in this table. */
  netns?: string | null;
  table?: string;
  /** How long opening or closing a path waits for agents to confirm. */
  confirmTimeoutMs?: number;
}

/**
 * Network enforcement as the composition root wires it: the desired-state service, its routes,
 * the enforcer grants open and close paths through, and — with `nftables` — the agent loop this
 * server runs itself.
 */
export function createEnforcement(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  bus: Pick<EventBus, "subscribe">;
  config: () => FirebreakConfig;
  options?: EnforcementOptions;
  log: {
    info(message: string, fields?: Record<string, unknown>): void;
    error(message: string, fields?: Record<string, unknown>): void;
  };
}) {
  const kind = deps.options?.kind ?? "log";
  checkEnforcerOptions(kind, { netns: deps.options?.netns, table: deps.options?.table });
  const service = createEnforcementService({
    db: deps.db,
    clock: deps.clock,
    inTransaction: deps.inTransaction,
    bus: deps.bus,
    config: deps.config,
    onError: (error) =>
      deps.log.error("computing the desired network state failed", {
        error: error instanceof Error ? error.message : String(error),
      }),
  });
  const enforcer = enforcerRegistry[kind]({
    enforcement: service,
    confirmTimeoutMs: deps.options?.confirmTimeoutMs,
  });
  let local: { controller: AbortController; done: Promise<void> } | null = null;

  return {
    enforcer,
    service,
    routes: createEnforcementRoutes({ clock: deps.clock, config: deps.config, enforcement: service }),
    async start() {
      await service.start();
      if (kind !== "nftables") return;
      const graceMs = 30_000;
      const agent = createAgent({
        name: "local",
        enforcerKind: "nftables",
        source: createLocalStateSource({
          enforcement: service,
          clock: deps.clock,
          agent: "local",
          enforcer: "nftables",
          graceMs,
        }),
        enforcer: createNftablesEnforcer({
          runner: createNftRunner({ netns: deps.options?.netns ?? null }),
          table: deps.options?.table,
        }),
        graceMs,
        driftCheckMs: 10_000,
        log: deps.log,
      });
      const controller = new AbortController();
      local = { controller, done: agent.run(controller.signal) };
    },
    async stop() {
      local?.controller.abort();
      await local?.done;
      local = null;
      service.stop();
    },
  };
}

import { FirebreakError } from "../errors.js";
import type { EnforcerKind, NetworkEnforcer } from "../plugins/contracts.js";

/**
 * What this enforcer needs of the server's enforcement service, which satisfies it. Declared here
 * because plug-ins sit below services: importing the service's type closed a cycle through the
 * plug-in registry and the grant effects.
 */
export interface PathConfirmations {
  /** The desired state changed: publish it. */
  changed(): void;
  /** Agents that hold the grant's path open, and those that do not yet (bounded wait). */
  waitOpen(grantId: string, timeoutMs: number): Promise<{ confirmed: string[]; pending: string[] }>;
  /** Agents that have dropped the grant's path (or cannot hold it), and those that may still. */
  waitClosed(grantId: string, timeoutMs: number): Promise<{ confirmed: string[]; pending: string[] }>;
}

/** How long opening or closing a path waits for the agents to confirm, by default. */
export const DEFAULT_CONFIRM_TIMEOUT_MS = 10_000;

/** The identity of a grant's path in every enforcer and in the audit log. */
export function pathRuleId(grantId: string): string {
  return `firebreak:grant:${grantId}`;
}

/**
 * The server's enforcer when agents enforce (`agent`), or when the server runs the nftables
 * agent loop itself (`nftables`). Opening publishes the new desired state and waits (bounded) for
 * the agents to apply it; closing does the same and fails — so the grant's revocation is retried
 * and alerted — until every agent that could hold the path has dropped it.
 */
export function createAgentEnforcer(deps: {
  kind: Extract<EnforcerKind, "agent" | "nftables">;
  enforcement: PathConfirmations;
  confirmTimeoutMs?: number;
}): NetworkEnforcer {
  const timeout = deps.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
  return {
    kind: deps.kind,
    async open(path) {
      deps.enforcement.changed();
      const result = await deps.enforcement.waitOpen(path.grantId, timeout);
      return {
        ruleId: pathRuleId(path.grantId),
        detail: { appliedBy: result.confirmed, notYetAppliedBy: result.pending },
      };
    },
    async close(grantId) {
      deps.enforcement.changed();
      const result = await deps.enforcement.waitClosed(grantId, timeout);
      if (result.pending.length > 0) {
        throw new FirebreakError(
          "CONNECTOR_FAILED",
          `agent(s) ${result.pending.join(", ")} have not confirmed that the path is closed`,
        );
      }
      return { detail: { closedBy: result.confirmed } };
    },
  };
}

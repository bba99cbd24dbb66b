import type { NetworkEnforcer, PathSpec } from "../../plugins/contracts.js";

/**
 * Opens nothing and records what it would open, so grants carry their network path through the
 * lifecycle (and the audit chain) before a real enforcer such as nftables is deployed.
 */
export function createLogEnforcer(): NetworkEnforcer & { openPaths(): PathSpec[] } {
  const open = new Map<string, PathSpec>();
  return {
    kind: "log",
    async open(path) {
      open.set(path.grantId, path);
      return { ruleId: `fb-${path.grantId}` };
    },
    async close(grantId) {
      open.delete(grantId);
      return undefined;
    },
    openPaths: () => [...open.values()],
  };
}

import type { StateSource } from "../agent/agent.js";
import type { EnforcementService } from "../enforcement/enforcement.service.js";
import type { Clock } from "../shared/clock.js";

/** The desired state in process, for `firebreak serve --enforcer nftables`. */
export function createLocalStateSource(deps: {
  enforcement: Pick<EnforcementService, "polling" | "waitForChange" | "report">;
  clock: Clock;
  agent: string;
  enforcer: string;
  graceMs: number;
}): StateSource {
  return {
    async poll(after, waitSeconds, signal) {
      const release = await deps.enforcement.polling(deps.agent, deps.enforcer, deps.graceMs);
      try {
        const state = await deps.enforcement.waitForChange(after, waitSeconds * 1000, signal);
        return { serverTime: deps.clock.now(), state };
      } finally {
        release();
      }
    },
    report: (report) => deps.enforcement.report("system:firebreak", report),
  };
}

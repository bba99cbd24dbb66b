import type { FirebreakConfig } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import type { ConnectorRegistry } from "../plugins/registry.js";
import { listLiveEffects } from "./grant.repo.js";

/**
 * Finds stale privilege: accounts that exist on a target under Firebreak's naming prefix but
 * belong to no live grant (a crash between creating one and recording it, a grant closed while
 * the target was unreachable, someone copying the naming scheme by hand). Each is revoked and
 * audited as `credential.reconciled`. Runs at start and periodically.
 */
export function createReconciler(deps: {
  db: Db;
  inTransaction: InTransaction;
  config: () => FirebreakConfig;
  connectors: ConnectorRegistry;
  onError: (resource: string, error: unknown) => void;
}) {
  return async function reconcile(): Promise<{ resource: string; revoked: string[] }[]> {
    const results: { resource: string; revoked: string[] }[] = [];
    for (const [name, resource] of Object.entries(deps.config().resources ?? {})) {
      const connector = deps.connectors[resource.type];
      if (!connector.available) continue;
      try {
        const existing = await connector.listManaged(name, resource);
        if (existing.length === 0) continue;
        const live = new Set<string>();
        for (const effect of await listLiveEffects(deps.db, name)) {
          live.add(effect.externalId ?? connector.plannedExternalId(effect.grantId, effect.user, resource));
        }
        const revoked: string[] = [];
        for (const externalId of existing) {
          if (live.has(externalId)) continue;
          // Re-check just before acting: a grant may have been activated since the list was read.
          const again = await listLiveEffects(deps.db, name);
          if (
            again.some(
              (e) =>
                (e.externalId ?? connector.plannedExternalId(e.grantId, e.user, resource)) === externalId,
            )
          )
            continue;
          const context = { grantId: "", user: "", resourceName: name, resource, externalId, detail: {} };
          await connector.revoke(context);
          const gone = await connector.verifyRevoked(context);
          await deps.inTransaction((unit) =>
            unit.audit({
              type: gone ? "credential.reconciled" : "alert.raised",
              actor: "system:reconciler",
              zone: resource.zone,
              resource: name,
              context: gone
                ? { externalId, connector: resource.type, finding: "stale privilege: no live grant; revoked" }
                : { alert: "stale-privilege-persists", externalId, connector: resource.type },
            }),
          );
          if (gone) revoked.push(externalId);
        }
        if (revoked.length > 0) results.push({ resource: name, revoked });
      } catch (error) {
        deps.onError(name, error);
      }
    }
    return results;
  };
}

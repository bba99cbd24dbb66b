import type { FirebreakConfig } from "../config/schema.js";
import { assert } from "../errors.js";
import type { NetworkEnforcer } from "../plugins/contracts.js";
import type { ConnectorRegistry } from "../plugins/registry.js";
import { type GrantEffect, type GrantRecord, PATH_CONNECTOR_PREFIX } from "./grant.repo.js";

// Declared with the rows it describes, so the enforcement repository can read paths without
// importing the grant lifecycle.
export { PATH_CONNECTOR_PREFIX };

export interface AppliedEffect {
  externalId: string;
  detail: Record<string, unknown>;
  /** Shown once to the grant's owner; never stored in clear, never audited. */
  secret: string | null;
  auditType: "credential.issued" | "flow.opened";
  auditContext: Record<string, unknown>;
}

/**
 * What a grant does outside Firebreak, one effect row at a time: a credential on a resource (through
 * its connector) or a network path to the resource's address (through the enforcer). Both kinds go
 * through the same intent → issued → closed records, so crash recovery treats them alike.
 */
export function createEffectRunner(deps: {
  connectors: ConnectorRegistry;
  enforcer: NetworkEnforcer;
  config: () => FirebreakConfig;
}) {
  function resourceOf(effect: GrantEffect) {
    const resource = deps.config().resources?.[effect.resource];
    assert(resource, "CONNECTOR_FAILED", `resource '${effect.resource}' is no longer configured`);
    return resource;
  }

  return {
    async apply(effect: GrantEffect, grant: GrantRecord): Promise<AppliedEffect> {
      const resource = resourceOf(effect);
      if (effect.connector.startsWith(PATH_CONNECTOR_PREFIX)) {
        assert(
          resource.address,
          "CONNECTOR_FAILED",
          `resource '${effect.resource}' has no address to open a path to`,
        );
        const { ruleId, detail } = await deps.enforcer.open({
          grantId: grant.id,
          fromZone: grant.sourceZone,
          fromAddress: grant.clientAddress,
          toAddress: resource.address,
          endsAt: grant.endsAt,
        });
        const context = {
          rule: ruleId,
          enforcer: deps.enforcer.kind,
          fromZone: grant.sourceZone,
          fromAddress: grant.clientAddress,
          to: resource.address,
          until: new Date(grant.endsAt).toISOString(),
          ...detail,
        };
        return {
          externalId: ruleId,
          detail: context,
          secret: null,
          auditType: "flow.opened",
          auditContext: context,
        };
      }
      const issued = await deps.connectors[resource.type].issue({
        grantId: grant.id,
        user: grant.user,
        zone: grant.zone,
        resourceName: effect.resource,
        resource,
        role: grant.role,
        startsAt: grant.startsAt,
        endsAt: grant.endsAt,
        sourceZone: grant.sourceZone,
        sourceCidrs: grant.sourceZone ? (deps.config().zones[grant.sourceZone]?.cidrs ?? []) : [],
        clientAddress: grant.clientAddress,
        publicKey: typeof effect.detail.publicKey === "string" ? effect.detail.publicKey : null,
      });
      return {
        externalId: issued.externalId,
        detail: issued.detail,
        secret: issued.secret,
        auditType: "credential.issued",
        auditContext: {
          connector: resource.type,
          externalId: issued.externalId,
          validUntil: new Date(grant.endsAt).toISOString(),
        },
      };
    },

    /** Takes the effect away and proves it: false when it still works. */
    async undo(
      effect: GrantEffect,
      grant: GrantRecord,
    ): Promise<{
      verified: boolean;
      auditType: "credential.revoked" | "flow.closed";
      auditContext: Record<string, unknown>;
    }> {
      if (effect.connector.startsWith(PATH_CONNECTOR_PREFIX)) {
        const closed = await deps.enforcer.close(grant.id);
        return {
          verified: true,
          auditType: "flow.closed",
          auditContext: {
            rule: effect.detail.externalId ?? null,
            enforcer: deps.enforcer.kind,
            ...(closed ? closed.detail : {}),
          },
        };
      }
      const resource = resourceOf(effect);
      const connector = deps.connectors[resource.type];
      const context = {
        grantId: grant.id,
        user: grant.user,
        resourceName: effect.resource,
        resource,
        externalId: String(
          effect.detail.externalId ?? connector.plannedExternalId(grant.id, grant.user, resource),
        ),
        detail: effect.detail,
      };
      await connector.revoke(context);
      const verified = await connector.verifyRevoked(context);
      return {
        verified,
        auditType: "credential.revoked",
        auditContext: { connector: resource.type, externalId: context.externalId },
      };
    },

    /**
     * What the targets of `resourceNames` say is wrong with their settings (connectors'
     * `checkTarget`). A target that cannot be reached is left out: issuing reports that itself.
     */
    async checkTargets(resourceNames: readonly string[]): Promise<TargetFinding[]> {
      const findings: TargetFinding[] = [];
      for (const name of resourceNames) {
        const resource = deps.config().resources?.[name];
        const connector = resource ? deps.connectors[resource.type] : undefined;
        if (!resource || !connector?.checkTarget) continue;
        let problems: string[];
        try {
          problems = await connector.checkTarget(name, resource);
        } catch {
          continue;
        }
        if (problems.length > 0) findings.push({ resource: name, zone: resource.zone, problems });
      }
      return findings;
    },
  };
}

/** A resource whose target contradicts its settings. */
export interface TargetFinding {
  resource: string;
  zone: string;
  problems: string[];
}
export type EffectRunner = ReturnType<typeof createEffectRunner>;

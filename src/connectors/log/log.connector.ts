import type { CredentialConnector, IssueContext, RevokeContext } from "../../plugins/contracts.js";

/**
 * Issues nothing and records what it would do, so the whole lifecycle runs before a real target is
 * configured. The record goes to the grant's effect row and its audit events.
 */
export function createLogConnector() {
  const live = new Set<string>();
  const connector: CredentialConnector = {
    kind: "log",
    available: true,
    plannedExternalId: (grantId) => `fb_${grantId}`,
    async issue(context: IssueContext) {
      const externalId = `fb_${context.grantId}`;
      const detail = {
        wouldCreate: `a credential for ${context.user} with role '${context.role}' on ${context.resourceName}`,
        validUntil: new Date(context.endsAt).toISOString(),
        roleSettings: context.resource.roles[context.role] ?? {},
      };
      live.add(externalId);
      return { externalId, detail, secret: null };
    },
    async revoke(context: RevokeContext) {
      live.delete(context.externalId);
    },
    async verifyRevoked(context: RevokeContext) {
      return !live.has(context.externalId);
    },
    async listManaged() {
      return [...live];
    },
    async close() {},
  };
  return connector;
}

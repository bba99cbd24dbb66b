import type { ResourceType } from "../config/schema.js";
import { resourceOfType } from "../config/schema.js";
import type { CredentialConnector } from "./contracts.js";

/**
 * A connector written against its own resource type, offered to callers that hold any resource:
 * every call checks the resource's `type` first, so a resource of another type is refused instead
 * of being read through the wrong connector's settings.
 */
export function connectorForType<Type extends ResourceType>(
  connector: CredentialConnector<Type>,
): CredentialConnector {
  const type = connector.kind;
  const { checkTarget, usage } = connector;
  return {
    kind: type,
    get available() {
      return connector.available;
    },
    plannedExternalId: (grantId, user, resource) =>
      connector.plannedExternalId(grantId, user, resource && resourceOfType(resource, type)),
    issue: async (context) =>
      connector.issue({ ...context, resource: resourceOfType(context.resource, type) }),
    revoke: async (context) =>
      connector.revoke({ ...context, resource: resourceOfType(context.resource, type) }),
    verifyRevoked: async (context) =>
      connector.verifyRevoked({ ...context, resource: resourceOfType(context.resource, type) }),
    listManaged: async (resourceName, resource) =>
      connector.listManaged(resourceName, resourceOfType(resource, type)),
    ...(checkTarget
      ? {
          checkTarget: async (
            resourceName: string,
            resource: Parameters<CredentialConnector["listManaged"]>[1],
          ) => checkTarget.call(connector, resourceName, resourceOfType(resource, type)),
        }
      : {}),
    ...(usage
      ? {
          usage: async (
            resourceName: string,
            resource: Parameters<CredentialConnector["listManaged"]>[1],
            externalId: string,
          ) => usage.call(connector, resourceName, resourceOfType(resource, type), externalId),
        }
      : {}),
    close: () => connector.close(),
  };
}

import { z } from "zod";
import { namePrefixSchema } from "../../config/primitives.js";
import type { ConfigPath, RawSettings, ResourceSettings, SettingsReport } from "../../plugins/contracts.js";
import { parsePrivilege } from "./mariadb.privileges.js";

/** Where the one-shot expiry events live when the resource does not say (`connection.controlDatabase`). */
export const DEFAULT_CONTROL_DATABASE = "firebreak";

/** What a `type: mariadb` resource and its roles say, beside what every resource says. */
export const mariadbResourceSettings = {
  resource: {
    namePrefix: namePrefixSchema.optional(),
  },
  role: {
    /** MariaDB roles granted to the grant's account. */
    grants: z.array(z.string().min(1).max(63)).optional(),
    /** Privileges such as `SELECT, INSERT ON shop.*`, in the strict grammar of mariadb.privileges.ts. */
    privileges: z.array(z.string().min(1).max(200)).optional(),
  },
  prefixedAccounts: true,
  check: checkMariadbResource,
} satisfies ResourceSettings;

/** Refuses at load the privilege entries the connector would refuse at activation. */
export function checkMariadbResource(resource: RawSettings, path: ConfigPath, report: SettingsReport): void {
  const connection = isMapping(resource.connection) ? resource.connection : {};
  const controlDatabase =
    typeof connection.controlDatabase === "string" ? connection.controlDatabase : DEFAULT_CONTROL_DATABASE;
  const roles = isMapping(resource.roles) ? resource.roles : {};
  for (const [role, settings] of Object.entries(roles)) {
    if (!isMapping(settings) || !Array.isArray(settings.privileges)) continue;
    settings.privileges.forEach((entry: unknown, index: number) => {
      if (typeof entry !== "string") return;
      try {
        parsePrivilege(entry, controlDatabase);
      } catch (problem) {
        report.error([...path, "roles", role, "privileges", index], (problem as Error).message);
      }
    });
  }
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

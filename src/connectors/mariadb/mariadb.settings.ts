import { z } from "zod";
import { namePrefixSchema } from "../../config/primitives.js";
import type {
  ConfigPath,
  RawSettings,
  ResourceSettings,
  SettingsReport,
} from "../../plugins/settings-contract.js";
import { parsePrivilege, SAFE_IDENTIFIER } from "./mariadb.privileges.js";

/** Where the one-shot expiry events live when the resource does not say (`connection.controlDatabase`). */
export const DEFAULT_CONTROL_DATABASE = "firebreak";
/** `connection.userHost`: a host, an address, a netmask or a `%` pattern; never a quote. */
export const ACCOUNT_HOST = /^[A-Za-z0-9.%_:/-]{1,255}$/;

/** The `connection` keys the connector writes into statements, and what each must look like. */
const CONNECTION_FIELDS = [
  ["controlDatabase", SAFE_IDENTIFIER, "a plain database name of letters, digits and '_'"],
  ["database", SAFE_IDENTIFIER, "a plain database name of letters, digits and '_'"],
  ["userHost", ACCOUNT_HOST, "a host, an address, a netmask or a '%' pattern"],
] as const;

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

/** Refuses at load the connection names and privilege entries the connector would refuse at activation. */
export function checkMariadbResource(resource: RawSettings, path: ConfigPath, report: SettingsReport): void {
  const connection = isMapping(resource.connection) ? resource.connection : {};
  for (const [key, pattern, expected] of CONNECTION_FIELDS) {
    const value = connection[key];
    if (typeof value === "string" && !pattern.test(value))
      report.error([...path, "connection", key], `expected ${expected}`);
  }
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

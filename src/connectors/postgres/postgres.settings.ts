import { z } from "zod";
import { namePrefixSchema } from "../../config/primitives.js";
import { statementRulesSchema } from "../../gateway/postgres/statement-rules.settings.js";
import type {
  ConfigPath,
  RawSettings,
  ResourceSettings,
  SettingsReport,
} from "../../plugins/settings-contract.js";

const roleName = z.string().min(1).max(63);

/** What a `type: postgres` resource and its roles say, beside what every resource says. */
export const postgresResourceSettings = {
  resource: {
    namePrefix: namePrefixSchema.optional(),
    /** What happens to objects a grant's login role created, at revoke (default: drop them). */
    ownedObjects: z.enum(["drop", "reassign"]).optional(),
    /** The role that receives those objects when `ownedObjects` is `reassign`. */
    reassignTo: roleName.optional(),
    /** `gateway`: users reach it through the PostgreSQL gateway only, with a token (default `direct`). */
    access: z.enum(["gateway", "direct"]).optional(),
    /** What the gateway records of bound parameters: their length and SHA-256 (default), or their values. */
    recordParameters: z.enum(["hash", "values"]).optional(),
  },
  role: {
    /** PostgreSQL roles the grant's login role becomes a member of. */
    grants: z.array(roleName).optional(),
    /** Statement rules the gateway applies to this role's statements (CEL, gateway/postgres/statement-rules.ts). */
    statements: statementRulesSchema.optional(),
  },
  prefixedAccounts: true,
  check: checkPostgresResource,
} satisfies ResourceSettings;

/** Load-time checks of a PostgreSQL resource that its schema cannot express. */
export function checkPostgresResource(resource: RawSettings, path: ConfigPath, report: SettingsReport): void {
  // Without a role to receive them, 'reassign' would quietly drop what a grant's login created.
  if (resource.ownedObjects === "reassign" && resource.reassignTo === undefined)
    report.error(
      [...path, "ownedObjects"],
      "ownedObjects 'reassign' needs reassignTo: the PostgreSQL role that receives what a grant's login role owns",
    );
}

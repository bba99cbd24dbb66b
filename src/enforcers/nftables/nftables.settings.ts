import { z } from "zod";
import type { EnforcerSettings } from "../../plugins/contracts.js";
import { NETNS_PATTERN } from "./nft.js";
import { TABLE_PATTERN } from "./ruleset.js";

/** `serve --enforcer nftables`: where nft runs, and the table Firebreak owns there. */
export const nftablesEnforcerSettings = {
  options: z.strictObject({
    netns: z
      .string()
      .regex(NETNS_PATTERN, "a network namespace name of letters, digits, '_', '.' or '-'")
      .nullable()
      .optional(),
    table: z.string().regex(TABLE_PATTERN, "a lowercase letter, then letters, digits or '_'").optional(),
  }),
} satisfies EnforcerSettings;

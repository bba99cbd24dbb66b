import { z } from "zod";
import type { EnforcerSettings } from "../../plugins/settings-contract.js";

/** Namespace names nft is run in (`ip netns exec NAME`): an argument, so no other characters. */
export const NETNS_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Table names Firebreak accepts: they are written into commands, so no other characters. */
export const TABLE_PATTERN = /^[a-z][a-z0-9_]{0,30}$/;

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

import { z } from "zod";
import type { EnforcerSettings } from "../../plugins/settings-contract.js";

/** The log enforcer records paths and takes no options. */
export const logEnforcerSettings = { options: z.strictObject({}) } satisfies EnforcerSettings;

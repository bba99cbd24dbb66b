import { z } from "zod";
import type { EnforcerSettings } from "../plugins/settings-contract.js";

/** `serve --enforcer agent`: agents enforce; the server only publishes and waits, so nothing to set. */
export const agentEnforcerSettings = { options: z.strictObject({}) } satisfies EnforcerSettings;

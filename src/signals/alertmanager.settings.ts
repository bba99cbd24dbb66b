import { z } from "zod";
import { secretRefSchema } from "../config/primitives.js";
import type { SignalSettings } from "../plugins/settings-contract.js";

/** `signals.alertmanager`: Alertmanager's webhook, authenticated by a bearer token. */
export const alertmanagerSignalSettings = {
  schema: z.strictObject({ token: secretRefSchema, zoneLabel: z.string().min(1).default("zone") }),
} satisfies SignalSettings;

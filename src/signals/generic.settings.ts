import { z } from "zod";
import { durationSchema, secretRefSchema } from "../config/primitives.js";
import type { SignalSettings } from "../plugins/settings-contract.js";

/** `signals.generic`: any sender that signs its timestamp and body with the shared secret. */
export const genericSignalSettings = {
  schema: z.strictObject({
    secret: secretRefSchema,
    tolerance: durationSchema
      .optional()
      .describe("How far x-firebreak-timestamp may be from the server's clock (default 5m)"),
  }),
} satisfies SignalSettings;

import { z } from "zod";
import { durationSchema, nameSchema, secretRefSchema } from "../config/primitives.js";
import type {
  ConfigPath,
  RawSettings,
  SettingsReport,
  SignalSettings,
} from "../plugins/settings-contract.js";

/** `signals.pagerduty`: PagerDuty v3 webhooks, signed with the subscription's secret. */
export const pagerdutySignalSettings = {
  schema: z.strictObject({
    secret: secretRefSchema,
    services: z.record(z.string().min(1), nameSchema).optional(),
    tolerance: durationSchema
      .optional()
      .describe("How far an event's occurred_at may be from the server's clock (default 30m)"),
  }),
  check: checkPagerdutySettings,
} satisfies SignalSettings;

/** Every service maps to a zone the configuration defines. */
export function checkPagerdutySettings(
  settings: RawSettings,
  path: ConfigPath,
  report: SettingsReport,
): void {
  const services = settings.services;
  if (typeof services !== "object" || services === null || Array.isArray(services)) return;
  for (const [service, zone] of Object.entries(services)) report.zone([...path, "services", service], zone);
}

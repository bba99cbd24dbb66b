import { z } from "zod";
import { required, secretRefSchema } from "../../config/primitives.js";
import type { SinkSettings } from "../../plugins/settings-contract.js";
import { isHttpUrl, sinkHostnameSetting, sinkTlsSettings, sinkUrlSetting } from "./tls.settings.js";

/** What a `type: splunk-hec` sink says, beside what every sink says. */
export const splunkHecSinkSettings = {
  sink: {
    url: required(
      sinkUrlSetting(isHttpUrl, "an http:// or https:// URL"),
      "a 'url' such as 'https://splunk.internal:8088' for a Splunk HEC sink",
    ),
    token: required(secretRefSchema, "a 'token' (a secret reference) for a Splunk HEC sink"),
    tls: sinkTlsSettings.optional(),
    hostname: sinkHostnameSetting.describe("The event's host (default this machine's name)"),
    index: z.string().min(1).max(200).optional().describe("Splunk index"),
    sourcetype: z.string().min(1).max(200).optional().describe("Splunk sourcetype (default firebreak:audit)"),
  },
} satisfies SinkSettings;

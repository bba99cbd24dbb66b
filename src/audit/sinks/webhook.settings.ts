import { required, secretRefSchema } from "../../config/primitives.js";
import type { SinkSettings } from "../../plugins/settings-contract.js";
import { isHttpUrl, sinkTlsSettings, sinkUrlSetting } from "./tls.settings.js";

/** What a `type: webhook` sink says, beside what every sink says. */
export const webhookSinkSettings = {
  sink: {
    url: required(
      sinkUrlSetting(isHttpUrl, "an http:// or https:// URL"),
      "a 'url' such as 'https://soar.internal/firebreak' for a webhook sink",
    ),
    secret: required(
      secretRefSchema,
      "a 'secret' (a secret reference to a 'whsec_…' key) for a webhook sink",
    ),
    tls: sinkTlsSettings.optional(),
  },
} satisfies SinkSettings;

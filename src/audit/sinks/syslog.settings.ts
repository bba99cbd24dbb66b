import { z } from "zod";
import { required } from "../../config/primitives.js";
import type { SinkSettings } from "../../plugins/settings-contract.js";
import { sinkHostnameSetting, sinkTlsSettings, sinkUrlSetting } from "./tls.settings.js";

/** RFC 5424 facility names, in code order (`audit` is 13, "log audit"). */
export const SYSLOG_FACILITIES = [
  "kern",
  "user",
  "mail",
  "daemon",
  "auth",
  "syslog",
  "lpr",
  "news",
  "uucp",
  "cron",
  "authpriv",
  "ftp",
  "ntp",
  "audit",
  "alert",
  "clock",
  "local0",
  "local1",
  "local2",
  "local3",
  "local4",
  "local5",
  "local6",
  "local7",
] as const;

/** What a `type: syslog` sink says, beside what every sink says. */
export const syslogSinkSettings = {
  sink: {
    url: required(
      sinkUrlSetting(
        (url) => /^(udp|tcp|tls|tcp\+tls):\/\/[^/?#]+:[0-9]{1,5}\/?$/.test(url),
        "a syslog address 'udp://', 'tcp://' or 'tcp+tls://' with host and port",
      ),
      "a 'url' such as 'tcp+tls://siem.internal:6514' for a syslog sink",
    ),
    tls: sinkTlsSettings.optional(),
    facility: z.enum(SYSLOG_FACILITIES).optional().describe("Syslog facility (default authpriv)"),
    hostname: sinkHostnameSetting.describe("Syslog HOSTNAME (default this machine's name)"),
    maxMessageBytes: z
      .number()
      .int()
      .min(480)
      .max(1_048_576)
      .optional()
      .describe("Syslog: longer messages are truncated (default 8192 over UDP, unlimited over TCP)"),
  },
} satisfies SinkSettings;

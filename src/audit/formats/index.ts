import type { SinkFormat } from "../../config/schema.js";
import type { SinkRecord } from "../analyst-view.js";
import { cefLine } from "./cef.js";
import { jsonObject } from "./json.js";
import { ocsfObject } from "./ocsf.js";
import { type SyslogHeaderOptions, syslogMessage } from "./rfc5424.js";

/** One record rendered: `text` for line- and message-oriented sinks, `data` to embed in JSON bodies. */
export interface Rendered {
  text: string;
  data: unknown;
}

export type Formatter = (record: SinkRecord, options: SyslogHeaderOptions) => Rendered;

const asJson = (data: Record<string, unknown>): Rendered => ({ text: JSON.stringify(data), data });

/**
 * Every format a sink may be configured with. `rfc5424` renders a whole syslog message (for a file
 * or HTTP sink that should carry syslog lines); a syslog sink always frames RFC 5424 itself and
 * uses the format only for MSG (see `syslogBody`).
 */
export const formatters: Record<SinkFormat, Formatter> = {
  json: (record) => asJson(jsonObject(record)),
  ocsf: (record) => asJson(ocsfObject(record)),
  cef: (record, options) => {
    const text = cefLine(record, options.hostname);
    return { text, data: text };
  },
  rfc5424: (record, options) => {
    const text = syslogMessage(record, JSON.stringify(jsonObject(record)), options);
    return { text, data: text };
  },
};

/** The MSG part of a syslog message in `format`: JSON of the event for `rfc5424` and `json`. */
export function syslogBody(format: SinkFormat, record: SinkRecord, options: SyslogHeaderOptions): string {
  return format === "rfc5424"
    ? formatters.json(record, options).text
    : formatters[format](record, options).text;
}

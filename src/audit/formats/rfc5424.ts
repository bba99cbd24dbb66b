import type { SinkRecord } from "../analyst-view.js";
import { SYSLOG_SEVERITY } from "../severity.js";

/**
 * RFC 5424 syslog messages. The header and structured data carry the fields a SIEM indexes
 * (event id, seq, type, zone, grant, purpose, ticket, approvers, …); MSG carries the whole event.
 */

/** Our SD-ID. 32473 is the private enterprise number RFC 5612 reserves for documentation. */
export const SD_ID = "firebreak@32473";
const BOM = "\uFEFF";
const NILVALUE = "-";

export interface SyslogHeaderOptions {
  facility: number;
  hostname: string;
  appName: string;
  procId: string;
  /** Longest message in bytes (UTF-8); MSG is cut at a character boundary to fit. */
  maxBytes?: number;
}

/** A header field: printable US-ASCII without spaces, at most `max` characters, `-` when empty. */
export function headerField(value: string | null | undefined, max: number): string {
  const cleaned = (value ?? "").replace(/[^!-~]/g, "_").slice(0, max);
  return cleaned === "" ? NILVALUE : cleaned;
}

/** A PARAM-VALUE: `"`, `\` and `]` escaped with a backslash (RFC 5424 section 6.3.3). */
export function escapeParamValue(value: string): string {
  return value.replace(/[\\"\]]/g, (character) => `\\${character}`);
}

function element(id: string, params: [string, string | null | undefined][]): string {
  const body = params
    .filter((param): param is [string, string] => typeof param[1] === "string" && param[1] !== "")
    .map(([name, value]) => ` ${name}="${escapeParamValue(value)}"`)
    .join("");
  return `[${id}${body}]`;
}

/** The structured data of one record: `[meta sequenceId]` and `[firebreak@32473 …]`. */
export function structuredData(record: SinkRecord, full = true): string {
  const { event, view } = record;
  // RFC 5424 section 7.3.1: sequenceId runs 1 to 2147483647 and wraps.
  const sequenceId = String(((event.seq - 1) % 2_147_483_647) + 1);
  const core: [string, string | null][] = [
    ["id", event.id],
    ["seq", String(event.seq)],
    ["type", event.type],
    ["severity", record.severity],
    ["actor", event.actor],
    ["zone", view.zone],
    ["resource", view.resource],
    ["subject", event.subject],
  ];
  const detail: [string, string | null][] = full
    ? [
        ["request", view.request],
        ["grant", view.grant],
        ["user", view.user],
        ["role", view.role],
        ["policy", view.policy],
        ["purpose", view.purpose],
        ["ticket", view.ticket],
        ["approvers", view.approvers.join(",")],
        ["factors", view.factors.join(",")],
        ["sourceZone", view.sourceZone],
        ["clientAddress", view.clientAddress],
        ["reasons", view.reasons.join("; ")],
        ["signals", view.signals ? JSON.stringify(view.signals) : null],
        ["link", view.links.grant ?? view.links.request ?? view.links.event ?? null],
        ["hash", event.hash],
        ["prevHash", event.prevHash],
      ]
    : [];
  return `${element("meta", [["sequenceId", sequenceId]])}${element(SD_ID, [...core, ...detail])}`;
}

/** A complete RFC 5424 message for `record` whose MSG is `body`. */
export function syslogMessage(record: SinkRecord, body: string, options: SyslogHeaderOptions): string {
  const pri = options.facility * 8 + SYSLOG_SEVERITY[record.severity];
  const header = [
    `<${pri}>1`,
    record.event.time,
    headerField(options.hostname, 255),
    headerField(options.appName, 48),
    headerField(options.procId, 128),
    headerField(record.event.type, 32),
  ].join(" ");
  let sd = structuredData(record);
  const max = options.maxBytes;
  if (max !== undefined && Buffer.byteLength(`${header} ${sd} ${BOM}`) > max)
    sd = structuredData(record, false);
  const prefix = `${header} ${sd} `;
  const message = `${prefix}${BOM}${body}`;
  if (max === undefined || Buffer.byteLength(message) <= max) return message;
  return truncateUtf8(message, max);
}

/** Cuts `text` to at most `maxBytes` of UTF-8 without splitting a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // Back up over continuation bytes (10xxxxxx) to the start of the cut character.
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

import { VERSION } from "../../version.js";
import type { SinkRecord } from "../analyst-view.js";
import { summaryOf } from "../analyst-view.js";
import { canonicalJson } from "../chain.js";
import { CEF_SEVERITY } from "../severity.js";

/**
 * ArcSight Common Event Format (CEF:0). Standard keys where the dictionary has one (rt, externalId,
 * suser, duser, src, act, cat, msg, reason, request), labelled custom strings for Firebreak's own
 * fields, and `fbContext` with the whole context as JSON so nothing is lost.
 */

/** Header fields escape `\` and `|`; line breaks become spaces. */
export function escapeCefHeader(value: string): string {
  return value.replace(/[\\|]/g, (character) => `\\${character}`).replace(/[\r\n]+/g, " ");
}

/** Extension values escape `\` and `=`, and write line breaks as `\n` and `\r`. */
export function escapeCefValue(value: string): string {
  return value
    .replace(/[\\=]/g, (character) => `\\${character}`)
    .replace(/\r/g, "\\r")
    .replace(/\n/g, "\\n");
}

const IPV4 = /^(\d{1,3}\.){3}\d{1,3}$/;

export function cefLine(record: SinkRecord, hostname: string): string {
  const { event, view } = record;
  const dot = event.type.indexOf(".");
  const extension: [string, string | null][] = [
    ["rt", String(Date.parse(event.time))],
    ["externalId", event.id],
    ["cat", dot > 0 ? event.type.slice(0, dot) : event.type],
    ["act", dot > 0 ? event.type.slice(dot + 1) : event.type],
    ["suser", event.actor],
    ["duser", view.user],
    ["src", view.clientAddress && IPV4.test(view.clientAddress) ? view.clientAddress : null],
    ["c6a1", view.clientAddress?.includes(":") ? view.clientAddress : null],
    ["dvchost", hostname],
    ["msg", summaryOf(record)],
    ["reason", view.reasons.length > 0 ? view.reasons.join("; ") : null],
    ["request", view.links.grant ?? view.links.request ?? view.links.event ?? null],
    ["cn1Label", "seq"],
    ["cn1", String(event.seq)],
    ["cs1Label", "zone"],
    ["cs1", view.zone],
    ["cs2Label", "resource"],
    ["cs2", view.resource],
    ["cs3Label", "grant"],
    ["cs3", view.grant],
    ["cs4Label", "purpose"],
    ["cs4", view.purpose],
    ["cs5Label", "ticket"],
    ["cs5", view.ticket],
    ["cs6Label", "sourceZone"],
    ["cs6", view.sourceZone],
    ["flexString1Label", "approvers"],
    ["flexString1", view.approvers.length > 0 ? view.approvers.join(",") : null],
    ["flexString2Label", "factors"],
    ["flexString2", view.factors.length > 0 ? view.factors.join(",") : null],
    ["fbRequest", view.request],
    ["fbRole", view.role],
    ["fbPolicy", view.policy],
    ["fbClientAddress", view.clientAddress],
    ["fbSignals", view.signals ? canonicalJson(view.signals) : null],
    ["fbContext", canonicalJson(event.context)],
    ["fbRelated", record.related ? canonicalJson(record.related) : null],
    ["fbHash", event.hash],
    ["fbPrevHash", event.prevHash],
  ];
  // A label without its value says nothing; drop both.
  const present = extension.filter(([key, value], index) => {
    if (value === null || value === "") return false;
    if (key.endsWith("Label"))
      return (extension[index + 1]?.[1] ?? null) !== null && extension[index + 1]?.[1] !== "";
    return true;
  });
  const header = [
    "CEF:0",
    "Firebreak",
    "Firebreak",
    VERSION,
    event.type,
    summaryOf(record).slice(0, 512),
    String(CEF_SEVERITY[record.severity]),
  ]
    .map((field, index) => (index === 0 ? field : escapeCefHeader(field)))
    .join("|");
  return `${header}|${present.map(([key, value]) => `${key}=${escapeCefValue(value as string)}`).join(" ")}`;
}

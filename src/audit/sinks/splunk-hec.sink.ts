import { randomUUID } from "node:crypto";
import { type AuditSinkConfig, sinkOfType } from "../../config/schema.js";
import type { AuditSink, SinkDeps } from "../../plugins/contracts.js";
import type { SinkRecord } from "../analyst-view.js";
import { formatters } from "../formats/index.js";
import { createHttpClient, pathOf } from "./http-client.js";
import { SinkDeliveryError } from "./sink-error.js";
import { printableOrigin } from "./tls-options.js";

/**
 * Splunk HTTP Event Collector: one POST per batch to `/services/collector/event`, the events as
 * concatenated JSON objects, `Authorization: Splunk <token>`. A 200 means Splunk accepted the
 * batch. When it refuses one event (400 with `invalid-event-number`), the events before it were
 * indexed, and the worker moves past them.
 */
export function createSplunkHecSink(settings: AuditSinkConfig, deps: SinkDeps): AuditSink {
  const config = sinkOfType(settings, "splunk-hec");
  const url = new URL(resolve(config.url, deps));
  const token = deps.secret(config.token);
  const client = createHttpClient(url, config, (ref) => deps.secret(ref));
  const path = pathOf(url, "/services/collector/event");
  const channel = randomUUID();
  const format = formatters[config.format ?? "json"];
  const header = {
    facility: 10,
    hostname: deps.hostname,
    appName: config.appName ?? "firebreak",
    procId: deps.procId,
  };

  const envelope = (record: SinkRecord) => {
    const { event, view } = record;
    const fields: Record<string, string> = {
      type: event.type,
      severity: record.severity,
      seq: String(event.seq),
    };
    if (view.zone) fields.zone = view.zone;
    if (view.resource) fields.resource = view.resource;
    if (view.grant) fields.grant = view.grant;
    if (view.user) fields.user = view.user;
    return JSON.stringify({
      time: Date.parse(event.time) / 1000,
      host: config.hostname ?? deps.hostname,
      source: "firebreak",
      sourcetype: config.sourcetype ?? "firebreak:audit",
      ...(config.index ? { index: config.index } : {}),
      event: format(record, header).data,
      fields,
    });
  };

  return {
    kind: "splunk-hec",
    target: printableOrigin(url),
    async deliver(records, signal) {
      const body = records.map(envelope).join("\n");
      const reply = await client.post(
        path,
        {
          authorization: `Splunk ${token}`,
          "content-type": "application/json",
          "x-splunk-request-channel": channel,
        },
        body,
        signal,
      );
      if (reply.status >= 200 && reply.status < 300) return;
      // HEC answers {"text": "...", "code": N[, "invalid-event-number": K]}; only the numbers are kept.
      let code: number | undefined;
      let invalid: number | undefined;
      try {
        const parsed = JSON.parse(reply.body) as Record<string, unknown>;
        if (typeof parsed.code === "number") code = parsed.code;
        if (typeof parsed["invalid-event-number"] === "number") invalid = parsed["invalid-event-number"];
      } catch {
        // Not HEC's JSON: the status says enough.
      }
      throw new SinkDeliveryError(
        `HTTP ${reply.status}${code === undefined ? "" : ` (HEC code ${code})`}`,
        invalid !== undefined && invalid >= 0 && invalid < records.length ? invalid : 0,
      );
    },
    async close() {
      client.close();
    },
  };
}

function resolve(url: string, deps: SinkDeps): string {
  return /^(env:|file:\/)/.test(url) ? deps.secret(url) : url;
}

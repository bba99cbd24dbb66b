import { type AuditSinkConfig, sinkOfType } from "../../config/schema.js";
import type { AuditSink, SinkDeps } from "../../plugins/contracts.js";
import { signWebhook } from "../../shared/standard-webhooks.js";
import { formatters } from "../formats/index.js";
import { createHttpClient, pathOf } from "./http-client.js";
import { SinkDeliveryError } from "./sink-error.js";
import { printableOrigin } from "./tls-options.js";

/**
 * A generic HTTPS webhook signed as the Standard Webhooks specification says: one POST per event,
 * body `{"type", "timestamp", "data"}`, headers `webhook-id` (the event id, the same on every
 * retry, so receivers de-duplicate on it), `webhook-timestamp` and `webhook-signature`
 * (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the `whsec_` key). Any 2xx is delivery.
 */
export function createWebhookSink(settings: AuditSinkConfig, deps: SinkDeps): AuditSink {
  const config = sinkOfType(settings, "webhook");
  const url = new URL(/^(env:|file:\/)/.test(config.url) ? deps.secret(config.url) : config.url);
  const secret = deps.secret(config.secret);
  const client = createHttpClient(url, config, (ref) => deps.secret(ref));
  const path = pathOf(url, "/");
  const format = formatters[config.format ?? "json"];
  const header = {
    facility: 10,
    hostname: deps.hostname,
    appName: config.appName ?? "firebreak",
    procId: deps.procId,
  };

  return {
    kind: "webhook",
    target: printableOrigin(url),
    async deliver(records, signal) {
      let delivered = 0;
      for (const record of records) {
        const body = JSON.stringify({
          type: record.event.type,
          timestamp: record.event.time,
          data: format(record, header).data,
        });
        const headers = signWebhook(secret, record.event.id, Math.floor(deps.now() / 1000), body);
        let status: number;
        try {
          status = (await client.post(path, { ...headers, "content-type": "application/json" }, body, signal))
            .status;
        } catch (error) {
          throw error instanceof SinkDeliveryError
            ? new SinkDeliveryError(error.message, delivered)
            : new SinkDeliveryError("failed", delivered);
        }
        if (status < 200 || status >= 300) throw new SinkDeliveryError(`HTTP ${status}`, delivered);
        delivered++;
      }
    },
    async close() {
      client.close();
    },
  };
}

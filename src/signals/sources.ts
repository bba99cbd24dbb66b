import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { FirebreakConfig } from "../config/schema.js";
import type { IncidentSignal, SignalSource, SignalSourceKind } from "../plugins/contracts.js";

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Constant-time comparison of two strings of possibly different length. */
export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  // Compare against itself when lengths differ so timing does not reveal the length match.
  return timingSafeEqual(left, left.length === right.length ? right : left) && left.length === right.length;
}

function hmacHex(secret: string, body: Buffer): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}

/** Severity 1 is the worst. Alertmanager labels usually carry words; numbers are taken as they are. */
export function severityFromLabel(label: string | undefined): number {
  if (!label) return 3;
  const numeric = /^[1-5]$/.exec(label.trim());
  if (numeric) return Number(label.trim());
  const words: Record<string, number> = {
    critical: 1,
    page: 1,
    high: 2,
    error: 2,
    major: 2,
    warning: 3,
    minor: 3,
    info: 4,
    low: 4,
  };
  return words[label.trim().toLowerCase()] ?? 3;
}

const alertmanagerPayload = z.object({
  status: z.enum(["firing", "resolved"]).optional(),
  alerts: z
    .array(
      z.object({
        status: z.enum(["firing", "resolved"]),
        labels: z.record(z.string(), z.string().max(1000)),
        annotations: z.record(z.string(), z.string().max(5000)).optional(),
        fingerprint: z.string().min(1).max(200).optional(),
      }),
    )
    .max(1000),
});

const pagerdutyPayload = z.object({
  event: z.object({
    event_type: z.string().max(100),
    data: z.object({
      id: z.string().min(1).max(200),
      title: z.string().max(1000).optional(),
      urgency: z.string().max(20).optional(),
      priority: z.object({ summary: z.string().max(20).optional() }).nullish(),
      service: z.object({ id: z.string().max(200) }).optional(),
    }),
  }),
});

const genericPayload = z.object({
  id: z.string().min(1).max(200),
  zone: z.string().min(1).max(63),
  severity: z.number().int().min(1).max(5),
  title: z.string().max(1000).default(""),
  status: z.enum(["open", "resolved"]),
});

/**
 * One factory per signal source kind. Each returns null when the configuration does not enable
 * that source, so its endpoint answers 404 rather than accepting unauthenticated input.
 */
export type SignalSourceRegistry = Record<
  SignalSourceKind,
  (config: FirebreakConfig, secret: (ref: string) => string) => SignalSource | null
>;

export const signalSources: SignalSourceRegistry = {
  alertmanager(config, secret) {
    const settings = config.signals?.alertmanager;
    if (!settings) return null;
    const token = secret(settings.token);
    return {
      kind: "alertmanager",
      authenticate: (headers) => safeEqual(header(headers, "authorization") ?? "", `Bearer ${token}`),
      parse(body) {
        const payload = alertmanagerPayload.parse(body);
        const signals: IncidentSignal[] = [];
        for (const alert of payload.alerts) {
          const zone = alert.labels[settings.zoneLabel];
          if (!zone) continue;
          signals.push({
            source: "alertmanager",
            externalId: alert.fingerprint ?? `${alert.labels.alertname ?? "alert"}:${zone}`,
            zone,
            severity: severityFromLabel(alert.labels.severity),
            title: alert.annotations?.summary ?? alert.labels.alertname ?? "alert",
            status: alert.status === "firing" ? "open" : "resolved",
          });
        }
        return signals;
      },
    };
  },
  pagerduty(config, secret) {
    const settings = config.signals?.pagerduty;
    if (!settings) return null;
    const key = secret(settings.secret);
    return {
      kind: "pagerduty",
      authenticate(headers, rawBody) {
        // PagerDuty v3 sends one or more comma-separated `v1=<hex>` signatures (several during key rotation).
        const expected = `v1=${hmacHex(key, rawBody)}`;
        const presented = (header(headers, "x-pagerduty-signature") ?? "").split(",").map((s) => s.trim());
        let ok = false;
        for (const signature of presented) ok = safeEqual(signature, expected) || ok;
        return ok;
      },
      parse(body) {
        const { event } = pagerdutyPayload.parse(body);
        const zone = event.data.service ? settings.services?.[event.data.service.id] : undefined;
        if (!zone || !event.event_type.startsWith("incident.")) return [];
        const priority = /^P([1-5])$/.exec(event.data.priority?.summary ?? "");
        const severity = priority ? Number(priority[1]) : event.data.urgency === "high" ? 1 : 3;
        const resolved = event.event_type === "incident.resolved";
        return [
          {
            source: "pagerduty",
            externalId: event.data.id,
            zone,
            severity,
            title: event.data.title ?? event.data.id,
            status: resolved ? "resolved" : "open",
          },
        ];
      },
    };
  },
  generic(config, secret) {
    const settings = config.signals?.generic;
    if (!settings) return null;
    const key = secret(settings.secret);
    return {
      kind: "generic",
      authenticate: (headers, rawBody) =>
        safeEqual(header(headers, "x-firebreak-signature") ?? "", `sha256=${hmacHex(key, rawBody)}`),
      parse(body) {
        const payload = genericPayload.parse(body);
        return [{ source: "generic", externalId: payload.id, ...payload }];
      },
    };
  },
};

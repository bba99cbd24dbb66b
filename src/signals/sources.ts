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

function hmacHex(secret: string, ...parts: (string | Buffer)[]): string {
  const hmac = createHmac("sha256", secret);
  for (const part of parts) hmac.update(part);
  return hmac.digest("hex");
}

/** PagerDuty retries a failed delivery for about 20 minutes, so its events may arrive that late. */
export const DEFAULT_PAGERDUTY_TOLERANCE_MS = 30 * 60_000;
/** The generic sender signs at send time, so only clock skew and transit need room. */
export const DEFAULT_GENERIC_TOLERANCE_MS = 5 * 60_000;

/** Unix seconds, as signed in `x-firebreak-timestamp`; anything else is not a timestamp. */
const UNIX_SECONDS = /^[1-9][0-9]{8,10}$/;

/** An RFC 3339 time (Alertmanager and PagerDuty write them) as epoch ms, or NaN. */
const timestamp = z
  .string()
  .max(64)
  .refine((text) => /^\d{4}-\d{2}-\d{2}T/.test(text) && Number.isFinite(Date.parse(text)), "an RFC 3339 time")
  .transform((text) => Date.parse(text));

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
        // When the alert started firing, and (once resolved) when it ended: the order of its events.
        startsAt: timestamp,
        endsAt: z.string().max(64).optional(),
      }),
    )
    .max(1000),
});

const pagerdutyPayload = z.object({
  event: z.object({
    id: z.string().min(1).max(200),
    occurred_at: timestamp,
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
      // A bearer token signs nothing: there is no delivery time or id to check, only event times.
      toleranceMs: 0,
      authenticate: (headers) => safeEqual(header(headers, "authorization") ?? "", `Bearer ${token}`),
      parse(body) {
        const payload = alertmanagerPayload.parse(body);
        const signals: IncidentSignal[] = [];
        for (const [index, alert] of payload.alerts.entries()) {
          const zone = alert.labels[settings.zoneLabel];
          if (!zone) continue;
          // A resolved alert's event is its end; a firing one's is its start, which Alertmanager
          // repeats unchanged in every notification until it resolves.
          const endsAt = alert.endsAt === undefined ? Number.NaN : Date.parse(alert.endsAt);
          if (alert.status === "resolved" && !(Number.isFinite(endsAt) && endsAt >= alert.startsAt)) {
            throw new z.ZodError([
              {
                code: "custom",
                path: ["alerts", index, "endsAt"],
                message: "a resolved alert needs its end time (RFC 3339, not before startsAt)",
                input: alert.endsAt,
              },
            ]);
          }
          signals.push({
            source: "alertmanager",
            externalId: alert.fingerprint ?? `${alert.labels.alertname ?? "alert"}:${zone}`,
            zone,
            severity: severityFromLabel(alert.labels.severity),
            title: alert.annotations?.summary ?? alert.labels.alertname ?? "alert",
            status: alert.status === "firing" ? "open" : "resolved",
            occurredAt: alert.status === "firing" ? alert.startsAt : endsAt,
          });
        }
        return { signals, receipt: null, sentAt: null };
      },
    };
  },
  pagerduty(config, secret) {
    const settings = config.signals?.pagerduty;
    if (!settings) return null;
    const key = secret(settings.secret);
    return {
      kind: "pagerduty",
      toleranceMs: settings.tolerance ?? DEFAULT_PAGERDUTY_TOLERANCE_MS,
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
        // The event id is PagerDuty's own and the same on every retry; occurred_at is signed with it.
        const delivery = { receipt: event.id, sentAt: event.occurred_at };
        const zone = event.data.service ? settings.services?.[event.data.service.id] : undefined;
        if (!zone || !event.event_type.startsWith("incident.")) return { signals: [], ...delivery };
        const priority = /^P([1-5])$/.exec(event.data.priority?.summary ?? "");
        const severity = priority ? Number(priority[1]) : event.data.urgency === "high" ? 1 : 3;
        const resolved = event.event_type === "incident.resolved";
        return {
          signals: [
            {
              source: "pagerduty",
              externalId: event.data.id,
              zone,
              severity,
              title: event.data.title ?? event.data.id,
              status: resolved ? "resolved" : "open",
              occurredAt: event.occurred_at,
            },
          ],
          ...delivery,
        };
      },
    };
  },
  generic(config, secret) {
    const settings = config.signals?.generic;
    if (!settings) return null;
    const key = secret(settings.secret);
    // The timestamp is signed with the body (`<timestamp>.<body>`), so it cannot be moved forward
    // to pass the window again, and the signature is unique to one send: it is the receipt.
    const signature = (headers: Headers, rawBody: Buffer): string | null => {
      const sent = header(headers, "x-firebreak-timestamp") ?? "";
      return UNIX_SECONDS.test(sent) ? `sha256=${hmacHex(key, sent, ".", rawBody)}` : null;
    };
    return {
      kind: "generic",
      toleranceMs: settings.tolerance ?? DEFAULT_GENERIC_TOLERANCE_MS,
      authenticate(headers, rawBody) {
        const expected = signature(headers, rawBody);
        // Compared even without a timestamp, so a missing one takes as long as a wrong signature.
        const matches = safeEqual(header(headers, "x-firebreak-signature") ?? "", expected ?? "sha256=");
        return expected !== null && matches;
      },
      parse(body, headers) {
        const payload = genericPayload.parse(body);
        const sentAt = Number(header(headers, "x-firebreak-timestamp")) * 1000;
        return {
          signals: [{ source: "generic", externalId: payload.id, ...payload, occurredAt: sentAt }],
          receipt: header(headers, "x-firebreak-signature") ?? null,
          sentAt,
        };
      },
    };
  },
};

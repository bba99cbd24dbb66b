import { SEVERITIES, type Severity } from "../config/schema.js";
import type { AuditEvent } from "./chain.js";

export type { Severity };

const BY_TYPE: Record<string, Severity> = {
  "alert.raised": "high",
  "decision.denied": "medium",
  "request.denied": "medium",
  "credential.delivery_refused": "medium",
  "signal.rejected": "medium",
  "grant.activated": "medium",
  "grant.revoked": "low",
  "credential.issued": "low",
  "credential.revoked": "low",
  "flow.opened": "low",
  "flow.closed": "low",
  "request.created": "low",
  "request.approved": "low",
  "incident.opened": "low",
  "config.applied": "low",
  "config.refused": "medium",
  "user.created": "low",
  "token.issued": "low",
  // Someone's factors removed by an administrator, or a burst of wrong codes: worth a look.
  "factor.reset": "medium",
  "factor.rate_limited": "medium",
  "factor.enrolled": "low",
};

/**
 * How much an analyst should care about an event, derived from its type (and, for alerts and
 * reviews, its context): `alert.raised` is high unless it names its own severity, a flagged review
 * is high, a break-glass activation medium, routine lifecycle steps low or info. Not part of the
 * hashed event: it is recomputed wherever it is needed.
 */
export function severityOf(event: Pick<AuditEvent, "type" | "context">): Severity {
  const stated = event.context.severity;
  if (event.type === "alert.raised" && typeof stated === "string" && isSeverity(stated)) return stated;
  if (event.type === "review.completed" && event.context.verdict === "flagged") return "high";
  return BY_TYPE[event.type] ?? "info";
}

export function isSeverity(value: string): value is Severity {
  return (SEVERITIES as readonly string[]).includes(value);
}

/** True when `severity` is `minimum` or worse. */
export function atLeast(severity: Severity, minimum: Severity): boolean {
  return SEVERITIES.indexOf(severity) >= SEVERITIES.indexOf(minimum);
}

/** Syslog severity (RFC 5424 table 2): critical 2, high 3, medium 4, low 5, info 6. */
export const SYSLOG_SEVERITY: Record<Severity, number> = { critical: 2, high: 3, medium: 4, low: 5, info: 6 };
/** CEF severity, 0 to 10. */
export const CEF_SEVERITY: Record<Severity, number> = { critical: 10, high: 8, medium: 5, low: 3, info: 1 };
/** OCSF severity_id: 1 Informational … 5 Critical. */
export const OCSF_SEVERITY: Record<Severity, { id: number; name: string }> = {
  info: { id: 1, name: "Informational" },
  low: { id: 2, name: "Low" },
  medium: { id: 3, name: "Medium" },
  high: { id: 4, name: "High" },
  critical: { id: 5, name: "Critical" },
};

import type { AuditEvent } from "./chain.js";
import { type Severity, severityOf } from "./severity.js";

/**
 * What an analyst needs to judge one event without a second lookup, gathered from the event, its
 * context and (for events whose services recorded only ids) the request behind its grant.
 * Derived, never hashed: the chained event stays exactly as the service recorded it.
 */
export interface AnalystView {
  zone: string | null;
  resource: string | null;
  request: string | null;
  grant: string | null;
  /** The person the access is for (requester or grant holder). */
  user: string | null;
  role: string | null;
  policy: string | null;
  purpose: string | null;
  ticket: string | null;
  approvers: string[];
  /** Factor kinds used, with when when known: `totp`, `webauthn@2026-11-29T02:10:00.000Z`. */
  factors: string[];
  signals: Record<string, unknown> | null;
  sourceZone: string | null;
  clientAddress: string | null;
  /** Why: decision reasons (`CODE: message`), a revoke or close reason, an alert's message. */
  reasons: string[];
  /** Console pages about this event, when `server.publicUrl` is configured. */
  links: Record<string, string>;
}

/**
 * Facts about the request behind a grant, looked up by delivery for events whose context carries
 * only the grant id (credential.issued, flow.opened, revocation.verified, …).
 */
export interface RelatedContext {
  request: string;
  user: string;
  role: string;
  policy: string | null;
  purpose: string;
  ticket: string | null;
  approvers: string[];
  factors: string[];
  signals: Record<string, unknown>;
  sourceZone: string | null;
  clientAddress: string | null;
}

/** One committed event as a sink receives it. */
export interface SinkRecord {
  event: AuditEvent;
  severity: Severity;
  view: AnalystView;
  /** What delivery looked up, when the event's own context lacked the request's facts. */
  related: RelatedContext | null;
}

const text = (value: unknown): string | null =>
  typeof value === "string" && value.length > 0 ? value : null;

function strings(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  const out: string[] = [];
  for (const item of value) {
    if (typeof item === "string") out.push(item);
    else if (item && typeof item === "object") {
      const record = item as Record<string, unknown>;
      // Approvals and factors recorded as objects: { approver } / { kind, at }.
      const name = text(record.approver) ?? text(record.kind) ?? text(record.name);
      if (name !== null) out.push(text(record.at) ? `${name}@${record.at as string}` : name);
    }
  }
  return out;
}

function reasonsOf(context: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (Array.isArray(context.reasons)) {
    for (const reason of context.reasons) {
      if (typeof reason === "string") out.push(reason);
      else if (reason && typeof reason === "object") {
        const { code, message } = reason as Record<string, unknown>;
        out.push([text(code), text(message)].filter((part) => part !== null).join(": "));
      }
    }
  }
  for (const key of ["reason", "denialReason", "message"]) {
    const value = text(context[key]);
    // On request events `reason` is the purpose again (requestContext also spells it `purpose`);
    // on a revoke or close it is why.
    if (value !== null && !(key === "reason" && value === context.purpose)) out.push(value);
  }
  return out;
}

/** Builds the console links for an event: the request, the grant, the zone and the event itself. */
export function consoleLinks(
  publicUrl: string | null | undefined,
  event: Pick<AuditEvent, "seq" | "zone">,
  ids: { request: string | null; grant: string | null },
): Record<string, string> {
  if (!publicUrl) return {};
  const base = publicUrl.replace(/\/+$/, "");
  const links: Record<string, string> = { event: `${base}/audit?seq=${event.seq}` };
  if (ids.request) links.request = `${base}/requests/${encodeURIComponent(ids.request)}`;
  if (ids.grant) links.grant = `${base}/grants/${encodeURIComponent(ids.grant)}`;
  if (event.zone) links.zone = `${base}/zones/${encodeURIComponent(event.zone)}`;
  return links;
}

/** The ids of the request and grant an event is about, from its subject and context. */
export function subjectIds(event: Pick<AuditEvent, "subject" | "context">) {
  const subject = event.subject ?? "";
  return {
    request: text(event.context.request) ?? (subject.startsWith("req_") ? subject : null),
    grant: text(event.context.grant) ?? (subject.startsWith("grt_") ? subject : null),
  };
}

/**
 * True when a lookup could add to the event's own context: events about a grant, whose services
 * record the grant's request facts unevenly (approvers on the activation only, none on the issued
 * credential or the opened path).
 */
export function needsRelated(event: AuditEvent): boolean {
  return subjectIds(event).grant !== null;
}

/** The analyst's view of an event: its context first, what delivery looked up filling the gaps. */
export function analystView(
  event: AuditEvent,
  related: RelatedContext | null,
  publicUrl?: string | null,
): AnalystView {
  const c = event.context;
  const ids = subjectIds(event);
  const request = ids.request ?? related?.request ?? null;
  const approvers = strings(c.approvers);
  const factors = strings(c.factors);
  const signals = c.signals && typeof c.signals === "object" && !Array.isArray(c.signals) ? c.signals : null;
  return {
    zone: event.zone,
    resource: event.resource,
    request,
    grant: ids.grant,
    user: text(c.user) ?? text(c.requester) ?? text(c.owner) ?? related?.user ?? null,
    role: text(c.role) ?? related?.role ?? null,
    policy: text(c.policy) ?? related?.policy ?? null,
    purpose: text(c.purpose) ?? related?.purpose ?? null,
    ticket: text(c.ticket) ?? related?.ticket ?? null,
    approvers: approvers.length > 0 ? approvers : (related?.approvers ?? []),
    factors: factors.length > 0 ? factors : (related?.factors ?? []),
    signals: (signals as Record<string, unknown> | null) ?? related?.signals ?? null,
    sourceZone: text(c.sourceZone) ?? related?.sourceZone ?? null,
    clientAddress: text(c.clientAddress) ?? related?.clientAddress ?? null,
    reasons: reasonsOf(c),
    links: consoleLinks(publicUrl, event, { request, grant: ids.grant }),
  };
}

/** A sink record for an event, with its severity and analyst view. */
export function toSinkRecord(
  event: AuditEvent,
  related: RelatedContext | null,
  publicUrl?: string | null,
): SinkRecord {
  return { event, severity: severityOf(event), view: analystView(event, related, publicUrl), related };
}

/** One line a person can read: `alice activated admin on payments-db (INC-1: restore the ledger)`. */
export function summaryOf(record: SinkRecord): string {
  const { event, view } = record;
  const target = view.resource ?? view.zone;
  const parts = [event.type, `by ${event.actor}`];
  if (view.user && view.user !== event.actor) parts.push(`for ${view.user}`);
  if (view.role) parts.push(`role ${view.role}`);
  if (target) parts.push(`on ${target}`);
  if (view.ticket) parts.push(`ticket ${view.ticket}`);
  if (view.purpose) parts.push(`purpose: ${view.purpose}`);
  if (view.reasons.length > 0) parts.push(`reasons: ${view.reasons.join("; ")}`);
  return parts.join(" ");
}

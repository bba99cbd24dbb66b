import type { AuditEventView } from "../api/audit.schema.js";
import type { Explanation } from "../api/decisions.schema.js";
import type { CredentialView, GrantView } from "../api/grants.schema.js";
import type { RequestView } from "../api/requests.schema.js";
import type { ConfigChangeSummary } from "../api/system.schema.js";
import { out } from "./context.js";
import { safeText, timeLeft } from "./format.js";

/**
 * Human output of the commands: requests, grants, credentials, explanations, configuration
 * changes and audit events. Every value from the server that a person chose (names, reasons,
 * tickets, comments, notes) goes through safeText, so none can end a line or reorder one and
 * forge what follows it.
 */

function targetOf(view: { zone: string; resource: string | null }): string {
  return view.resource
    ? `${safeText(view.resource)} (zone ${safeText(view.zone)})`
    : `zone ${safeText(view.zone)}`;
}

export function describeRequest(r: RequestView): string {
  const lines = [
    `${safeText(r.id)}  ${safeText(r.state.toUpperCase())}`,
    `  ${safeText(r.requester)} asks for role '${safeText(r.role)}' on ${targetOf(r)} for ${safeText(r.duration)}`,
    `  reason: ${safeText(r.reason)}${r.ticket ? `   ticket: ${safeText(r.ticket)}` : ""}`,
    `  policy: ${safeText(r.policy ?? "-")}${r.autoApproved ? " (auto-approved)" : ""}${r.sourceZone ? `   from zone: ${safeText(r.sourceZone)}` : ""}`,
  ];
  for (const a of r.approvals)
    lines.push(
      `  ${a.decision === "approve" ? "approved" : "denied"} by ${safeText(a.approver)}${a.comment ? `: ${safeText(a.comment)}` : ""}`,
    );
  if (r.grantId) lines.push(`  grant: ${safeText(r.grantId)}`);
  lines.push(`  next: ${safeText(r.next)}`);
  return lines.join("\n");
}

export function describeGrant(g: GrantView): string {
  const active = g.state === "active";
  const lines = [
    `${safeText(g.id)}  ${safeText(g.state.toUpperCase())}${active ? `  ${timeLeft(g.secondsLeft)} left (until ${safeText(g.endsAt)})` : ""}`,
    `  ${safeText(g.user)} ${active ? "holds" : "held"} role '${safeText(g.role)}' on ${targetOf(g)}   request: ${safeText(g.requestId)}`,
  ];
  if (!active)
    lines.push(`  closed: ${safeText(g.closeReason)}   revocation: ${safeText(g.revocation.status)}`);
  for (const e of g.effects)
    lines.push(
      `  ${safeText(e.resource)} (${safeText(e.connector)}): ${safeText(e.state)}${e.address ? ` -> ${safeText(e.address)}` : ""}`,
    );
  // How to use what was granted: the credential (shown once when it holds a secret) and connect.
  const logins = g.effects.filter((e) => !e.connector.startsWith("path:"));
  if (active && logins.length > 0)
    lines.push(
      `  use: firebreak connect ${safeText(g.id)}   (or: firebreak credential ${safeText(g.id)}, which shows a secret once)`,
    );
  if (g.review.state !== "none") {
    lines.push(
      `  review: ${safeText(g.review.state)}${g.review.dueAt && g.review.state === "due" ? ` by ${safeText(g.review.dueAt)}${g.review.overdue ? " (OVERDUE)" : ""}` : ""}${g.review.reviewer ? ` by ${safeText(g.review.reviewer)}: ${safeText(g.review.notes)}` : ""}`,
    );
  }
  return lines.join("\n");
}

/** A grant's credentials; a secret is printed as it is, since showing it is the point. */
export function describeCredentials(credentials: readonly CredentialView[]): string {
  return (
    credentials
      .map((c) =>
        [
          `${safeText(c.resource)} (${safeText(c.connector)})`,
          ...Object.entries(c.detail).map(
            ([k, v]) => `  ${safeText(k)}: ${safeText(typeof v === "string" ? v : JSON.stringify(v))}`,
          ),
          c.secret === null
            ? "  (no secret: this part can be shown again)"
            : `  secret (shown once): ${c.secret}`,
        ].join("\n"),
      )
      .join("\n") || "(this grant issued no credentials)"
  );
}

/** One line per kind of thing that changed: `zones: added a, b; removed c`. */
export function describeConfigChange(summary: ConfigChangeSummary): string[] {
  const lines: string[] = [];
  const named = (label: string, change: ConfigChangeSummary["zones"] | undefined) => {
    if (!change) return;
    const parts = (["added", "removed", "changed"] as const)
      .filter((kind) => change[kind].length > 0)
      .map((kind) => `${kind} ${change[kind].map(safeText).join(", ")}`);
    if (parts.length) lines.push(`  ${label}: ${parts.join("; ")}`);
  };
  const counted = (label: string, change: { added: number; removed: number } | undefined) => {
    if (change && (change.added || change.removed))
      lines.push(`  ${label}: ${change.added} added, ${change.removed} removed`);
  };
  named("zones", summary.zones);
  named("resources", summary.resources);
  named("break-glass policies", summary.policies);
  named("users", summary.users);
  counted("flows", summary.flows);
  counted("standing bindings", summary.standing);
  if (summary.otherSections?.length)
    lines.push(`  other sections: ${summary.otherSections.map(safeText).join(", ")}`);
  return lines;
}

// Fixed widths, so `--follow` lines that arrive later stay under the header; a longer value
// pushes its own line only.
const EVENT_COLUMNS = [6, 24, 27, 16] as const;

function eventRow(cells: readonly [string, string, string, string, string]): string {
  const [seq, time, type, actor, about] = cells;
  return [
    seq.padStart(EVENT_COLUMNS[0]),
    time.padEnd(EVENT_COLUMNS[1]),
    type.padEnd(EVENT_COLUMNS[2]),
    actor.padEnd(EVENT_COLUMNS[3]),
    about,
  ]
    .join("  ")
    .trimEnd();
}

export function printEventHeader(json: boolean) {
  if (!json) out(eventRow(["SEQ", "TIME", "TYPE", "ACTOR", "ABOUT"]));
}

export function printEvent(event: AuditEventView, json: boolean) {
  if (json) return out(JSON.stringify(event));
  // Whom an event concerns, when it is a person rather than a zone or a subject (token.issued).
  const user = typeof event.context.user === "string" ? `user ${event.context.user}` : null;
  const about = [event.zone ? `zone ${event.zone}` : null, event.subject, user].filter(Boolean).join("  ");
  out(
    eventRow([
      String(event.seq),
      safeText(event.time),
      safeText(event.type),
      safeText(event.actor),
      safeText(about),
    ]),
  );
}

export function describeExplanation(
  user: string,
  target: string,
  role: string,
  explanation: Explanation,
): string {
  const d = explanation.decision;
  const reasons = d.outcome === "deny" ? d.reasons : [];
  const lines: string[] = [];
  if (d.outcome === "allow")
    lines.push(
      `ALLOW: ${user} may take role '${role}' on ${target} (${d.via}${"policy" in d && d.policy ? `, policy ${d.policy}` : ""})`,
    );
  else if (d.outcome === "needs-approval")
    lines.push(
      `NEEDS APPROVAL under policy ${d.policy}: ${d.approvals.map((a) => `${a.count} from ${a.from.join(" or ")}`).join(", then ")}`,
    );
  else {
    lines.push(`DENY: ${user} may not take role '${role}' on ${target}`);
    for (const reason of reasons)
      lines.push(`  - [${reason.code}]${reason.policy ? ` ${reason.policy}:` : ""} ${reason.message}`);
  }
  // A reason the decision already gave is not repeated under its policy.
  const given = new Set(reasons.map((r) => `${r.policy ?? ""}\u0000${r.code}\u0000${r.message}`));
  for (const p of explanation.policies) {
    const unmet = p.unmet.filter((u) => !given.has(`${p.policy}\u0000${u.code}\u0000${u.message}`));
    lines.push(
      `policy ${p.policy}: ${p.applies ? (p.unmet.length ? `unmet conditions${unmet.length === 0 ? " (above)" : ""}` : "all conditions hold") : "does not apply"}`,
    );
    for (const u of unmet) lines.push(`  - [${u.code}] ${u.message}`);
    if (p.requires.approvals.length)
      lines.push(
        `  requires approvals: ${p.requires.approvals.map((a) => `${a.count} from ${a.from.join(" or ")}`).join(", then ")}`,
      );
    if (p.requires.factors.length) lines.push(`  requires a factor: ${p.requires.factors.join(" or ")}`);
  }
  // Each line is built as one line; a message or name holding a line break stays inside it.
  return lines.map(safeText).join("\n");
}

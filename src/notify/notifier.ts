import type { AuditEvent } from "../audit/chain.js";
import type { FirebreakConfig } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Clock } from "../shared/clock.js";
import { signWebhook } from "../shared/standard-webhooks.js";

/** Audit event types people are told about, and who the message is for. */
const NOTIFIED: Record<string, "approvers" | "requester" | "reviewers"> = {
  "request.created": "approvers",
  "request.reminder": "approvers",
  "approval.recorded": "approvers",
  "request.approved": "requester",
  "request.denied": "requester",
  "request.cancelled": "approvers",
  "request.lapsed": "requester",
  "grant.activated": "reviewers",
  "grant.revoked": "requester",
  "grant.expired": "requester",
};

const ATTEMPTS = 4;

export interface NotifierDeps {
  config: () => FirebreakConfig;
  secret: (ref: string) => string;
  clock: Clock;
  inTransaction: InTransaction;
  fetch?: typeof fetch;
  /** Who could approve a request (for the message); computed by the request service. */
  suggestedApprovers: (event: AuditEvent) => string[];
}

function describe(event: AuditEvent): string {
  const c = event.context as Record<string, unknown>;
  const who = String(c.requester ?? event.actor);
  const what = `role '${String(c.role ?? "?")}' on ${event.resource ?? event.zone ?? "?"}`;
  switch (event.type) {
    case "request.created":
      return `${who} asks for ${what} for ${c.durationSeconds ? `${Math.round(Number(c.durationSeconds) / 60)}m` : "?"}: "${String(c.purpose ?? "")}"${c.ticket ? ` (${String(c.ticket)})` : ""}`;
    case "request.reminder":
      return `Reminder: ${who}'s request for ${what} lapses soon without a decision`;
    case "approval.recorded":
      return `${event.actor} approved ${who}'s request for ${what}; more approvals are needed`;
    case "request.approved":
      return `${who}: your request for ${what} was approved${event.actor.startsWith("system:") ? " by policy" : ` by ${event.actor}`}`;
    case "request.denied":
      return `${who}: your request for ${what} was denied by ${event.actor}: "${String(c.denialReason ?? "")}"`;
    case "request.cancelled":
      return `${who} cancelled the request for ${what}`;
    case "request.lapsed":
      return `${who}: your request for ${what} lapsed without a decision`;
    case "grant.activated":
      return `${who} activated ${what} until ${String(c.endsAt ?? "?")}; this use will need a review`;
    case "grant.revoked":
      return `${who}: your grant of ${what} was revoked by ${event.actor}: "${String(c.reason ?? "")}"`;
    case "grant.expired":
      return `${who}: your grant of ${what} has ended`;
    case "alert.raised":
      return `Drill '${String(c.drill ?? "?")}' ${c.alert === "drill-overdue" ? "is overdue" : `failed at step '${String(c.step ?? "?")}'`}: ${String(c.message ?? "")}${Array.isArray(c.recipients) && c.recipients.length ? ` (for ${c.recipients.join(", ")})` : ""}`;
    default:
      return event.type;
  }
}

/**
 * Tells people about decisions: approvers when something waits for them, the requester of every
 * decision, reviewers when a break-glass use starts. Runs after commit from the event bus, in the
 * background with retries, so a slow or dead receiver never delays a request; a delivery that
 * still fails is audited as `notification.failed`. Generic webhooks are signed as Standard
 * Webhooks says; Slack-compatible ones get a message with a link to the console.
 */
export function createNotifier(deps: NotifierDeps) {
  const send = deps.fetch ?? fetch;
  const pending = new Set<Promise<void>>();

  async function deliver(
    target: NonNullable<FirebreakConfig["notify"]>[number],
    event: AuditEvent,
    audience: string,
  ) {
    const config = deps.config();
    const base = config.server?.publicUrl?.replace(/\/+$/, "");
    const subject = event.subject ?? "";
    const link = base ? `${base}/${subject.startsWith("grt_") ? "grants" : "requests"}/${subject}` : null;
    const text = describe(event);
    const suggested = audience === "approvers" ? deps.suggestedApprovers(event) : [];
    const url =
      target.url.startsWith("env:") || target.url.startsWith("file:") ? deps.secret(target.url) : target.url;
    let body: string;
    let headers: Record<string, string> = { "content-type": "application/json" };
    if (target.type === "slack") {
      const line = `${text}${suggested.length ? `\nApprovers: ${suggested.join(", ")}` : ""}`;
      body = JSON.stringify({
        text: line,
        blocks: [
          { type: "section", text: { type: "mrkdwn", text: line } },
          ...(link
            ? [
                {
                  type: "actions",
                  elements: [
                    { type: "button", text: { type: "plain_text", text: "Open in Firebreak" }, url: link },
                  ],
                },
              ]
            : []),
        ],
      });
    } else {
      body = JSON.stringify({
        type: `firebreak.${event.type}`,
        timestamp: event.time,
        data: {
          event: {
            seq: event.seq,
            id: event.id,
            type: event.type,
            actor: event.actor,
            zone: event.zone,
            resource: event.resource,
            subject: event.subject,
            context: event.context,
          },
          audience,
          message: text,
          suggestedApprovers: suggested,
          link,
        },
      });
      if (target.secret)
        headers = {
          ...headers,
          ...signWebhook(deps.secret(target.secret), event.id, Math.floor(deps.clock.now() / 1000), body),
        };
    }
    let lastError = "";
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        const response = await send(url, {
          method: "POST",
          headers,
          body,
          signal: AbortSignal.timeout(5_000),
        });
        if (response.ok) return;
        lastError = `HTTP ${response.status}`;
      } catch (error) {
        lastError = (error as { name?: string }).name === "TimeoutError" ? "timed out" : "unreachable";
      }
      if (attempt < ATTEMPTS)
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt * (0.5 + Math.random())));
    }
    await deps.inTransaction((unit) =>
      unit.audit({
        type: "notification.failed",
        actor: "system:notifier",
        zone: event.zone,
        subject: event.subject,
        context: { channel: target.type, event: event.id, eventType: event.type, error: lastError },
      }),
    );
  }

  return {
    /** Called with every committed audit event. */
    handle(event: AuditEvent) {
      // A drill's own grant is nobody's to hear about; its failures go to the drill's recipients.
      const drill = typeof event.context.drill === "string";
      if (drill && event.type !== "alert.raised") return;
      const audience = drill && event.type === "alert.raised" ? "drill-recipients" : NOTIFIED[event.type];
      const targets = deps.config().notify ?? [];
      if (!audience || targets.length === 0) return;
      for (const target of targets) {
        const job = deliver(target, event, audience).catch(() => {});
        pending.add(job);
        job.finally(() => pending.delete(job));
      }
    },
    /** Waits for deliveries in flight (shutdown, tests). */
    async drain() {
      await Promise.all([...pending]);
    },
  };
}

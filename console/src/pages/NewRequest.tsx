import { type FormEvent, useEffect, useMemo, useRef, useState } from "react";
import { ApiError } from "../api/client";
import type {
  BlastRadiusChanges,
  Explanation,
  PolicyRequirements,
  Reason,
  RequestView,
  ZoneView,
} from "../api/types";
import { useSignedIn } from "../auth/session";
import { Empty, ErrorNotice, Loading, Notice, PageTitle, PrincipalRefs } from "../components/common";
import { type Offer, offerKey, requestOffers } from "../lib/targets";
import { formatDurationMs } from "../lib/time";
import { navigate, useLocation } from "../router";

const DURATION = /^[1-9][0-9]{0,5}(s|m|h|d)$/;

interface Draft {
  target: string;
  role: string;
  duration: string;
  reason: string;
  ticket: string;
}

function targetBody(target: string): { zone: string } | { resource: string } | null {
  const [kind, name] = target.split(":", 2) as [string, string | undefined];
  if (!name) return null;
  return kind === "resource" ? { resource: name } : { zone: name };
}

/** The policy whose requirements are shown: the one the decision chose, else the first that applies. */
function chosenPolicy(explanation: Explanation) {
  const decided = "policy" in explanation.decision ? explanation.decision.policy : null;
  return (
    explanation.policies.find((p) => p.policy === decided) ??
    explanation.policies.find((p) => p.applies) ??
    null
  );
}

export function NewRequestPage() {
  const { api } = useSignedIn();
  const { query } = useLocation();
  const [offers, setOffers] = useState<Offer[] | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [draft, setDraft] = useState<Draft>(() => ({
    target: query.get("resource")
      ? `resource:${query.get("resource")}`
      : query.get("zone")
        ? `zone:${query.get("zone")}`
        : "",
    role: query.get("role") ?? "",
    duration: "",
    reason: "",
    ticket: "",
  }));
  const [preview, setPreview] = useState<Explanation | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const [previewing, setPreviewing] = useState(false);
  const [sending, setSending] = useState(false);
  const [sendError, setSendError] = useState<unknown>(null);
  const sequence = useRef(0);

  // Only what some break-glass policy could give this viewer is offered (the server decides).
  useEffect(() => {
    api
      .get<{ zones: ZoneView[] }>("/v1/zones")
      .then((reply) => requestOffers(api, reply.zones))
      .then(setOffers)
      .catch(setLoadError);
  }, [api]);

  const offered = offers?.find((offer) => offerKey(offer) === draft.target) ?? null;
  const roles = useMemo(() => offered?.roles ?? [], [offered]);
  // Pick the only role, or keep the chosen one when it still exists.
  useEffect(() => {
    if (!offers) return;
    if (roles.length === 1 && draft.role !== roles[0]) setDraft((d) => ({ ...d, role: roles[0] ?? "" }));
    else if (draft.role && !roles.includes(draft.role)) setDraft((d) => ({ ...d, role: "" }));
  }, [roles, draft.role, offers]);
  // A link may name a target no policy offers this viewer: say so rather than show an empty form.
  const [unavailable, setUnavailable] = useState<string | null>(null);
  useEffect(() => {
    if (!offers || draft.target === "") return;
    if (!offers.some((offer) => offerKey(offer) === draft.target)) {
      setUnavailable(draft.target.split(":", 2)[1] ?? draft.target);
      setDraft((d) => ({ ...d, target: "", role: "" }));
    }
  }, [offers, draft.target]);

  const durationInvalid = draft.duration !== "" && !DURATION.test(draft.duration.trim());

  // Ask the server, a moment after typing stops, what this request would need and why it would fail.
  useEffect(() => {
    const target = targetBody(draft.target);
    if (!target || !draft.role) {
      setPreview(null);
      return;
    }
    const mine = ++sequence.current;
    setPreviewing(true);
    const timer = setTimeout(() => {
      api
        .post<{ user: string; explanation: Explanation }>("/v1/decisions", {
          ...target,
          role: draft.role,
          ...(draft.duration && !durationInvalid ? { duration: draft.duration.trim() } : {}),
          reason: draft.reason,
          ...(draft.ticket.trim() ? { ticket: draft.ticket.trim() } : {}),
        })
        .then((reply) => {
          if (mine !== sequence.current) return;
          setPreview(reply.explanation);
          setPreviewError(null);
        })
        .catch((error) => {
          if (mine !== sequence.current) return;
          setPreview(null);
          setPreviewError(error);
        })
        .finally(() => {
          if (mine === sequence.current) setPreviewing(false);
        });
    }, 300);
    return () => clearTimeout(timer);
  }, [api, draft, durationInvalid]);

  // How the grant would widen what its source zone reaches (servers with segmentation analysis).
  const [blast, setBlast] = useState<BlastRadiusChanges | null>(null);
  useEffect(() => {
    const target = targetBody(draft.target);
    setBlast(null);
    if (!target || !draft.role) return;
    let cancelled = false;
    api
      .post<BlastRadiusChanges>("/v1/zones/blast-radius", { ...target, role: draft.role })
      .then((reply) => !cancelled && setBlast(reply))
      .catch(() => {});
    return () => {
      cancelled = true;
    };
  }, [api, draft.target, draft.role]);

  const update = (field: keyof Draft) => (event: { target: { value: string } }) =>
    setDraft((d) => ({ ...d, [field]: event.target.value }));

  const policy = preview ? chosenPolicy(preview) : null;
  const requires = policy?.requires ?? null;
  const outcome = preview?.decision.outcome ?? null;
  const standing =
    preview?.decision.outcome === "allow" && "via" in preview.decision && preview.decision.via === "standing";
  const blocked = outcome === "deny" || standing || durationInvalid;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const target = targetBody(draft.target);
    if (!target) return;
    setSending(true);
    setSendError(null);
    try {
      const created = await api.post<RequestView>("/v1/requests", {
        ...target,
        role: draft.role,
        ...(draft.duration ? { duration: draft.duration.trim() } : {}),
        reason: draft.reason,
        ...(draft.ticket.trim() ? { ticket: draft.ticket.trim() } : {}),
      });
      navigate(`/requests/${created.id}`);
    } catch (failure) {
      setSendError(failure);
    } finally {
      setSending(false);
    }
  };

  if (loadError) return <ErrorNotice error={loadError} />;
  if (!offers) return <Loading what="what you may ask for" />;
  if (offers.length === 0) {
    return (
      <>
        <PageTitle title="Request access">Request break-glass access</PageTitle>
        <Empty>No break-glass policy makes you eligible for any zone or resource.</Empty>
      </>
    );
  }
  const zoneOffers = offers.filter((offer) => offer.kind === "zone");
  const resourceOffers = offers.filter((offer) => offer.kind === "resource");

  return (
    <>
      <PageTitle title="Request access">Request break-glass access</PageTitle>
      <p className="lede">
        Ask for one role in one zone (or on one resource) for a bounded time. What the policy requires, and
        why it would refuse, shows on the right before you send.
      </p>
      {unavailable ? (
        <Notice tone="warn">
          No break-glass policy lets you ask for access to <code>{unavailable}</code>; choose one of the
          targets below.
        </Notice>
      ) : null}
      <div className="request-layout">
        <form className="panel stack" onSubmit={submit} aria-describedby="preview-title">
          <div className="field">
            <label htmlFor="target">Zone or resource</label>
            <select
              id="target"
              required
              value={draft.target}
              onChange={update("target")}
              aria-describedby="target-help"
            >
              <option value="">Choose…</option>
              {zoneOffers.length > 0 ? (
                <optgroup label="Zones">
                  {zoneOffers.map((offer) => (
                    <option key={offerKey(offer)} value={offerKey(offer)}>
                      {offer.name}
                    </option>
                  ))}
                </optgroup>
              ) : null}
              {resourceOffers.length > 0 ? (
                <optgroup label="Resources">
                  {resourceOffers.map((offer) => (
                    <option key={offerKey(offer)} value={offerKey(offer)}>
                      {offer.name} ({offer.type} in {offer.zone})
                    </option>
                  ))}
                </optgroup>
              ) : null}
            </select>
            <p id="target-help" className="hint">
              Only zones and resources a break-glass policy could give you are listed.
            </p>
          </div>
          <div className="field">
            <label htmlFor="role">Role</label>
            <select
              id="role"
              required
              value={draft.role}
              onChange={update("role")}
              disabled={roles.length === 0}
            >
              <option value="">{roles.length === 0 ? "Choose a zone or resource first" : "Choose…"}</option>
              {roles.map((role) => (
                <option key={role} value={role}>
                  {role}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor="duration">For how long</label>
            <input
              id="duration"
              value={draft.duration}
              onChange={update("duration")}
              placeholder={requires ? formatDurationMs(requires.duration.defaultMs) : "30m"}
              aria-describedby="duration-help"
              aria-invalid={durationInvalid}
              size={8}
            />
            <p id="duration-help" className={durationInvalid ? "hint hint-error" : "hint"}>
              {durationInvalid
                ? "Write a duration such as 90s, 15m, 1h or 1d."
                : requires
                  ? `Leave empty for the policy's default, ${formatDurationMs(requires.duration.defaultMs)}; at most ${formatDurationMs(requires.duration.maxMs)}.`
                  : "Such as 15m or 1h; empty means the policy's default."}
            </p>
          </div>
          <div className="field">
            <label htmlFor="reason">Why (what is broken, what you will do)</label>
            <textarea
              id="reason"
              rows={4}
              required
              maxLength={2000}
              value={draft.reason}
              onChange={update("reason")}
              aria-describedby="reason-help"
            />
            <p id="reason-help" className="hint">
              {draft.reason.trim().length} characters
              {requires && requires.justification.minLength > 0
                ? ` of at least ${requires.justification.minLength}`
                : ""}
              . Approvers and reviewers read this.
            </p>
          </div>
          <div className="field">
            <label htmlFor="ticket">Ticket</label>
            <input
              id="ticket"
              value={draft.ticket}
              onChange={update("ticket")}
              maxLength={200}
              aria-describedby="ticket-help"
            />
            <p id="ticket-help" className="hint">
              {requires?.justification.ticketPattern
                ? `Required, matching ${requires.justification.ticketPattern}`
                : "Optional"}
            </p>
          </div>
          <ErrorNotice error={sendError} />
          {sendError instanceof ApiError &&
          Array.isArray((sendError.details as { reasons?: unknown })?.reasons) ? (
            <ReasonList reasons={(sendError.details as { reasons: Reason[] }).reasons} />
          ) : null}
          <div className="actions">
            <button type="submit" className="button primary" disabled={sending || blocked || !draft.role}>
              {sending ? "Sending…" : outcome === "allow" ? "Send (approved at once)" : "Send request"}
            </button>
            {blocked && outcome ? (
              <span className="hint">
                {standing ? "You already hold this role." : "Resolve what the preview lists first."}
              </span>
            ) : null}
          </div>
        </form>
        <section
          className="panel preview"
          aria-labelledby="preview-title"
          aria-live="polite"
          aria-busy={previewing}
        >
          <h2 id="preview-title">What this request needs</h2>
          {previewError ? <ErrorNotice error={previewError} /> : null}
          {!preview ? (
            <p className="muted">Choose a zone or resource and a role to see what the policy asks for.</p>
          ) : (
            <DecisionPreview explanation={preview} requires={requires} policyName={policy?.policy ?? null} />
          )}
          {blast ? <BlastRadiusPreview blast={blast} /> : null}
        </section>
      </div>
    </>
  );
}

function ReasonList({ reasons }: { reasons: Reason[] }) {
  return (
    <ul className="reasons">
      {reasons.map((reason) => (
        <li key={`${reason.code}-${reason.policy ?? ""}-${reason.field ?? ""}`}>
          <code className="reason-code">{reason.code}</code> {reason.message}
        </li>
      ))}
    </ul>
  );
}

function DecisionPreview(props: {
  explanation: Explanation;
  requires: PolicyRequirements | null;
  policyName: string | null;
}) {
  const { decision } = props.explanation;
  let verdict: { tone: string; text: string };
  if (decision.outcome === "deny") {
    verdict = { tone: "bad", text: "Would be refused now" };
  } else if (decision.outcome === "needs-approval") {
    verdict = { tone: "warn", text: "Needs approval before you can activate it" };
  } else if ("via" in decision && decision.via === "standing") {
    verdict = { tone: "ok", text: "You already have this role through a standing binding" };
  } else if ("via" in decision && decision.via === "auto-approve") {
    verdict = { tone: "ok", text: "Would be approved at once (auto-approval condition holds)" };
  } else {
    verdict = { tone: "ok", text: "Would be approved at once (this policy needs no approval)" };
  }
  const requires = props.requires;
  return (
    <div className="stack">
      <p className={`verdict verdict-${verdict.tone}`} data-outcome={decision.outcome}>
        {verdict.text}
      </p>
      {decision.outcome === "deny" ? (
        <>
          <h3>Why</h3>
          <ReasonList reasons={decision.reasons} />
        </>
      ) : null}
      {requires ? (
        <>
          <h3>
            Policy <code>{props.policyName}</code> requires
          </h3>
          <ul className="requirements">
            <li>
              <strong>Approvals:</strong>{" "}
              {requires.approvals.length === 0
                ? "none"
                : requires.approvals.map((step, index) => (
                    <span key={step.from.join()}>
                      {index > 0 ? ", then " : ""}
                      {step.count} from <PrincipalRefs refs={step.from} />
                    </span>
                  ))}
              {requires.autoApproveCondition ? (
                <>
                  {" "}
                  (none when <code>{requires.autoApproveCondition}</code>)
                </>
              ) : null}
            </li>
            <li>
              <strong>Factors at activation:</strong>{" "}
              {requires.factors.length === 0
                ? "none"
                : `${requires.factors.join(" or ")}, used within ${formatDurationMs(requires.factorFreshnessMs)}`}
            </li>
            <li>
              <strong>Justification:</strong>{" "}
              {requires.justification.minLength > 0
                ? `at least ${requires.justification.minLength} characters`
                : "any reason"}
              {requires.justification.ticketPattern ? (
                <>
                  ; a ticket matching <code>{requires.justification.ticketPattern}</code>
                </>
              ) : null}
            </li>
            <li>
              <strong>Duration:</strong> {formatDurationMs(requires.duration.defaultMs)} by default, at most{" "}
              {formatDurationMs(requires.duration.maxMs)}
            </li>
            {requires.sourceZones ? (
              <li>
                <strong>From zone:</strong> {requires.sourceZones.join(" or ")}
              </li>
            ) : null}
            {requires.condition ? (
              <li>
                <strong>Only when:</strong> <code>{requires.condition}</code>
              </li>
            ) : null}
            <li>
              <strong>Review:</strong> within {formatDurationMs(requires.review.withinMs)} of the end
              {requires.review.by ? (
                <>
                  {" "}
                  by <PrincipalRefs refs={requires.review.by} />
                </>
              ) : null}
              {requires.review.blockWhenOverdue ? "; an overdue review blocks your next request" : ""}
            </li>
            <li>
              <strong>Who may ask:</strong> <PrincipalRefs refs={requires.eligible} />
            </li>
          </ul>
        </>
      ) : decision.outcome === "deny" ? null : (
        <p className="muted">No break-glass policy is involved.</p>
      )}
    </div>
  );
}

function BlastRadiusPreview({ blast }: { blast: BlastRadiusChanges }) {
  if (blast.changes.length === 0) {
    return blast.note ? (
      <>
        <h3>What the grant opens on the network</h3>
        <p className="muted">{blast.note}</p>
      </>
    ) : null;
  }
  return (
    <>
      <h3>What the grant opens on the network</h3>
      <ul className="requirements">
        {blast.changes.map((change) => (
          <li key={change.sourceZone}>
            From <code>{change.sourceZone}</code>:{" "}
            {change.paths.length > 0
              ? `a path to ${change.paths.map((p) => `${p.resource} (${p.to})`).join(", ")} for the grant's window`
              : "no network path"}
            .{" "}
            {change.addedZones.length > 0 || change.addedResources.length > 0
              ? `Newly reachable: ${[...change.addedZones.map((z) => z.zone), ...change.addedResources].join(", ")}; blast radius ${change.before.zones} → ${change.after.zones} zones, ${change.before.resources} → ${change.after.resources} resources.`
              : "Nothing becomes reachable that was not already."}
          </li>
        ))}
      </ul>
    </>
  );
}

import { useId, useState } from "react";
import type { GrantView, RequestView, ZoneView } from "../api/types";
import { matchesPrincipal, useSignedIn } from "../auth/session";
import { formatDateTime, relativeTime } from "../lib/time";
import { Link, navigate } from "../router";
import { Countdown, ErrorNotice, Fact, Facts, PrincipalRefs, StateBadge } from "./common";
import { FactorPrompt, factorsOf, needsFactor } from "./FactorPrompt";
import { UserText } from "./UserText";

export function targetText(item: { zone: string; resource: string | null; role: string }) {
  return (
    <>
      <strong>{item.role}</strong> in <code>{item.zone}</code>
      {item.resource ? (
        <>
          {" "}
          on <code>{item.resource}</code>
        </>
      ) : null}
    </>
  );
}

/**
 * The positions of the steps the viewer's approval would count for: steps still short of
 * approvals whose `from` names the viewer, on a pending request the viewer neither made nor
 * already decided. The server matches approvers to steps (src/policy/approvals.ts); an approver
 * who fits several open steps fills one of them.
 */
export function stepsForViewer(
  request: RequestView,
  principal: { name: string; groups: string[]; isAdmin: boolean; isAuditor: boolean },
): number[] {
  if (request.state !== "pending" || request.requester === principal.name) return [];
  if (request.approvals.some((a) => a.approver === principal.name)) return [];
  return request.requires.approvals.flatMap((step, position) =>
    step.remaining > 0 && matchesPrincipal(principal, step.from) ? [position] : [],
  );
}

export function ApprovalProgress({ request }: { request: RequestView }) {
  const { principal } = useSignedIn();
  if (request.requires.approvals.length === 0) {
    return <span>{request.autoApproved ? "auto-approved by policy" : "no approval needed"}</span>;
  }
  const mine = stepsForViewer(request, principal);
  return (
    <ul className="steps">
      {/* Steps have no identity of their own and never move: their position is their key. */}
      {request.requires.approvals
        .map((step, position) => ({ step, position, key: `step-${position}` }))
        .map(({ step, position, key }) => (
          <li
            key={key}
            className={`${step.remaining === 0 ? "step-done" : "step-waiting"}${mine.includes(position) ? " step-mine" : ""}`}
            data-step={position + 1}
            data-mine={mine.includes(position) ? "true" : undefined}
          >
            <span aria-hidden="true">{step.remaining === 0 ? "✓" : "○"}</span> {step.count - step.remaining}{" "}
            of {step.count} from <PrincipalRefs refs={step.from} />
            {step.have.length > 0 ? <span className="muted"> ({step.have.join(", ")})</span> : null}
            {mine.includes(position) ? (
              <strong className="step-mine-label">
                {" "}
                ← {mine.length > 1 ? "you can fill this step" : "your approval fills this step"}
              </strong>
            ) : null}
          </li>
        ))}
    </ul>
  );
}

export function RequestFacts({
  request,
  showRequester = true,
}: {
  request: RequestView;
  showRequester?: boolean;
}) {
  const open = request.state === "pending" || request.state === "approved";
  return (
    <Facts>
      <Fact label="Requester">{showRequester ? request.requester : null}</Fact>
      <Fact label="Reason">
        <UserText text={request.reason} />
      </Fact>
      <Fact label="Ticket">
        <UserText text={request.ticket} />
      </Fact>
      <Fact label="Duration">{request.duration}</Fact>
      <Fact label="Policy">{request.policy ? <code>{request.policy}</code> : null}</Fact>
      <Fact label="From zone">{request.sourceZone ?? "unknown"}</Fact>
      <Fact label="Client address">{request.clientAddress}</Fact>
      <Fact label="Asked">
        <time dateTime={request.createdAt}>{formatDateTime(request.createdAt)}</time>
      </Fact>
      <Fact label="Lapses">
        {request.lapsesAt && open ? (
          <>
            in <Countdown deadline={Date.parse(request.lapsesAt)} expiredLabel="now" /> if nobody acts
          </>
        ) : null}
      </Fact>
      <Fact label="Approvals">
        <ApprovalProgress request={request} />
      </Fact>
      <Fact label="Factors to activate">
        {request.requires.factors.length > 0 ? request.requires.factors.join(" or ") : null}
      </Fact>
      <Fact label="Closed because">
        {/* A denial's reason is already the denier's comment, shown with the decisions. */}
        {!request.closedReason || request.approvals.some((a) => a.comment === request.closedReason) ? null : (
          <UserText text={request.closedReason} />
        )}
      </Fact>
    </Facts>
  );
}

export function ApprovalComments({ request }: { request: RequestView }) {
  if (request.approvals.length === 0) return null;
  return (
    <ul className="comments">
      {request.approvals.map((approval) => (
        <li key={`${approval.approver}-${approval.at}`}>
          <StateBadge
            state={approval.decision === "approve" ? "accepted" : "denied"}
            label={approval.decision}
          />{" "}
          <strong>{approval.approver}</strong> <span className="muted">{relativeTime(approval.at)}</span>
          {approval.comment ? (
            <q>
              <UserText text={approval.comment} />
            </q>
          ) : null}
        </li>
      ))}
    </ul>
  );
}

/** True when a pending request still waits for a step this person could fill. */
export function waitsForMe(
  request: RequestView,
  principal: { name: string; groups: string[]; isAdmin: boolean; isAuditor: boolean },
) {
  return (
    request.state === "pending" &&
    request.requester !== principal.name &&
    !request.approvals.some((a) => a.approver === principal.name) &&
    request.requires.approvals.some((step) => step.remaining > 0 && matchesPrincipal(principal, step.from))
  );
}

/** Approve (comment optional) or deny (reason required); asks for a factor when policy wants one. */
export function DecideForm({
  request,
  onDone,
}: {
  request: RequestView;
  onDone: (updated: RequestView) => void;
}) {
  const { api } = useSignedIn();
  const id = useId();
  const [comment, setComment] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [factorFor, setFactorFor] = useState<string[] | null>(null);

  const approve = async (factor: { totp?: string } = {}) => {
    setBusy(true);
    setError(null);
    try {
      const updated = await api.post<RequestView>(`/v1/requests/${request.id}/approve`, {
        ...(comment.trim() ? { comment: comment.trim() } : {}),
        ...(factor.totp ? { totp: factor.totp } : {}),
      });
      setFactorFor(null);
      onDone(updated);
    } catch (failure) {
      if (needsFactor(failure)) setFactorFor(factorsOf(failure));
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const deny = async () => {
    if (!comment.trim()) {
      setError(new Error("Write why you deny it: the requester reads it."));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onDone(await api.post<RequestView>(`/v1/requests/${request.id}/deny`, { reason: comment.trim() }));
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="decide stack">
      <div className="field">
        <label htmlFor={`${id}-comment`}>Comment (required to deny)</label>
        <textarea
          id={`${id}-comment`}
          rows={2}
          maxLength={2000}
          value={comment}
          onChange={(event) => setComment(event.target.value)}
        />
      </div>
      <ErrorNotice error={error} />
      {factorFor ? (
        <FactorPrompt
          api={api}
          factors={factorFor}
          action="approve"
          busy={busy}
          onSubmit={(factor) => void approve(factor)}
          onCancel={() => {
            setFactorFor(null);
            setError(null);
          }}
        />
      ) : (
        <div className="actions">
          <button type="button" className="button primary" disabled={busy} onClick={() => void approve()}>
            Approve
          </button>
          <button type="button" className="button danger" disabled={busy} onClick={() => void deny()}>
            Deny
          </button>
        </div>
      )}
    </div>
  );
}

/** SSH resources in the request's scope: activation needs the requester's public key for them. */
export function needsPublicKey(request: RequestView, zones: ZoneView[] | null): boolean {
  const zone = zones?.find((z) => z.name === request.zone);
  if (!zone) return false;
  return zone.resources.some(
    (r) =>
      r.type === "ssh" &&
      r.roles.includes(request.role) &&
      (request.resource === null || request.resource === r.name),
  );
}

/** The requester's controls: activate an approved request (with a factor or key when needed), or cancel. */
export function RequesterActions(props: {
  request: RequestView;
  zones: ZoneView[] | null;
  onChange: () => void;
}) {
  const { api } = useSignedIn();
  const id = useId();
  const { request } = props;
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [factorFor, setFactorFor] = useState<string[] | null>(null);
  const [publicKey, setPublicKey] = useState("");
  const wantsKey = needsPublicKey(request, props.zones);

  const activate = async (factor: { totp?: string } = {}) => {
    setBusy(true);
    setError(null);
    try {
      const grant = await api.post<GrantView>(`/v1/requests/${request.id}/activate`, {
        ...(factor.totp ? { totp: factor.totp } : {}),
        ...(publicKey.trim() ? { publicKey: publicKey.trim() } : {}),
      });
      setFactorFor(null);
      props.onChange();
      navigate(`/grants/${grant.id}`);
    } catch (failure) {
      if (needsFactor(failure)) setFactorFor(factorsOf(failure, request.requires.factors));
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.post(`/v1/requests/${request.id}/cancel`);
      props.onChange();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  if (request.state !== "pending" && request.state !== "approved") return null;
  return (
    <div className="stack">
      {request.state === "approved" && wantsKey ? (
        <div className="field">
          <label htmlFor={`${id}-key`}>Your SSH public key (the certificate is issued for it)</label>
          <textarea
            id={`${id}-key`}
            rows={2}
            spellCheck={false}
            placeholder="ssh-ed25519 AAAA… you@laptop"
            value={publicKey}
            onChange={(event) => setPublicKey(event.target.value)}
          />
        </div>
      ) : null}
      <ErrorNotice error={error} />
      {factorFor ? (
        <FactorPrompt
          api={api}
          factors={factorFor}
          action="activate"
          busy={busy}
          onSubmit={(factor) => void activate(factor)}
          onCancel={() => {
            setFactorFor(null);
            setError(null);
          }}
        />
      ) : (
        <div className="actions">
          {request.state === "approved" ? (
            <button
              type="button"
              className="button primary"
              disabled={busy || (wantsKey && !publicKey.trim())}
              onClick={() =>
                request.requires.factors.length > 0
                  ? setFactorFor([...request.requires.factors])
                  : void activate()
              }
            >
              Activate now
            </button>
          ) : null}
          <button type="button" className="button" disabled={busy} onClick={() => void cancel()}>
            Cancel request
          </button>
        </div>
      )}
    </div>
  );
}

export function RequestLink({ request }: { request: RequestView }) {
  return (
    <Link href={`/requests/${request.id}`} className="id-link">
      {request.id}
    </Link>
  );
}

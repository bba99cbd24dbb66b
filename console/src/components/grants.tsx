import { useId, useState } from "react";
import type { CredentialView, GrantView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { toOpenGrant } from "../lib/grants";
import { formatDateTime } from "../lib/time";
import { Countdown, ErrorNotice, Fact, Facts, StateBadge } from "./common";
import { UserText } from "./UserText";

export function GrantFacts({ grant, receivedAt }: { grant: GrantView; receivedAt: number }) {
  const active = grant.state === "active";
  const { revocation, review } = grant;
  return (
    <Facts>
      <Fact label="State">
        <StateBadge state={grant.state} />
      </Fact>
      <Fact label="Time left">
        {active ? <Countdown deadline={toOpenGrant(grant, receivedAt).deadline} /> : null}
      </Fact>
      <Fact label="Holder">{grant.user}</Fact>
      <Fact label="Policy">{grant.policy ? <code>{grant.policy}</code> : null}</Fact>
      <Fact label="From zone">{grant.sourceZone ?? null}</Fact>
      <Fact label="Started">
        <time dateTime={grant.startsAt}>{formatDateTime(grant.startsAt)}</time>
      </Fact>
      <Fact label={active ? "Ends" : "Was due to end"}>
        <time dateTime={grant.endsAt}>{formatDateTime(grant.endsAt)}</time>
      </Fact>
      <Fact label="Closed">
        {grant.closedAt ? (
          <>
            {formatDateTime(grant.closedAt)} by {grant.closedBy}
            {grant.closeReason ? (
              <>
                {" "}
                — “<UserText text={grant.closeReason} />”
              </>
            ) : null}
          </>
        ) : null}
      </Fact>
      <Fact label="Factor used">
        {grant.factor ? `${grant.factor.kind} at ${formatDateTime(grant.factor.at)}` : null}
      </Fact>
      <Fact label="Access on">
        {grant.effects.length > 0
          ? grant.effects
              .map((e) => `${e.resource} (${e.connector.replace(/^path:/, "network path, ")}: ${e.state})`)
              .join("; ")
          : "nothing issued"}
      </Fact>
      <Fact label="Revocation">
        {revocation.status === "not-needed" ? null : (
          <>
            <StateBadge state={revocation.status} />
            {revocation.status === "failed"
              ? ` after ${revocation.attempts} attempt(s); retrying at ${formatDateTime(revocation.nextAttemptAt)}`
              : null}
          </>
        )}
      </Fact>
      <Fact label="Review">
        {review.state === "none" ? null : (
          <>
            <StateBadge
              state={review.overdue ? "failed" : review.state}
              label={review.overdue ? "overdue" : review.state}
            />
            {review.state === "due" && review.dueAt ? ` by ${formatDateTime(review.dueAt)}` : null}
            {review.reviewer ? ` by ${review.reviewer}` : null}
            {review.notes ? (
              <>
                {" "}
                — “<UserText text={review.notes} />”
              </>
            ) : null}
          </>
        )}
      </Fact>
    </Facts>
  );
}

/** The credential, fetched once: the server wipes the secret as it hands it over. */
export function CredentialOnce({ grant }: { grant: GrantView }) {
  const { api } = useSignedIn();
  const [credentials, setCredentials] = useState<CredentialView[] | null>(null);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [copied, setCopied] = useState<string | null>(null);

  const reveal = async () => {
    setBusy(true);
    setError(null);
    try {
      const reply = await api.post<{ credentials: CredentialView[] }>(`/v1/grants/${grant.id}/credential`);
      setCredentials(reply.credentials);
      setConfirming(false);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  const copy = async (text: string, key: string) => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(key);
    } catch {
      setCopied(null);
    }
  };

  if (credentials) {
    return (
      <section className="credential" aria-label="Credential">
        {credentials.some((credential) => credential.secret) ? (
          <p className="notice notice-warn" role="status">
            Shown this once. Copy what you need now: reloading this page will not show it again.
          </p>
        ) : (
          <p className="notice" role="status">
            Nothing secret here: this can be shown again.
          </p>
        )}
        {credentials.length === 0 ? <p>This grant issued no credential (nothing to connect with).</p> : null}
        {credentials.map((credential) => (
          <div key={credential.resource} className="credential-item">
            <h4>
              <code>{credential.resource}</code> <span className="muted">({credential.connector})</span>
            </h4>
            <Facts>
              {Object.entries(credential.detail)
                .filter(([key]) => key !== "externalId")
                .map(([key, value]) => (
                  <Fact key={key} label={key}>
                    {typeof value === "string" ? value : JSON.stringify(value)}
                  </Fact>
                ))}
            </Facts>
            {credential.secret ? (
              <div className="secret">
                <code className="secret-value">{credential.secret}</code>
                <button
                  type="button"
                  className="button small"
                  onClick={() => void copy(credential.secret ?? "", credential.resource)}
                >
                  {copied === credential.resource ? "Copied" : "Copy"}
                </button>
              </div>
            ) : (
              <p className="muted">No secret for this one.</p>
            )}
          </div>
        ))}
      </section>
    );
  }
  return (
    <div className="stack">
      <ErrorNotice error={error} />
      {confirming ? (
        <div className="confirm">
          <p>The credential is shown once and then wiped from the server. Ready to copy it?</p>
          <div className="actions">
            <button type="button" className="button primary" disabled={busy} onClick={() => void reveal()}>
              Show it now
            </button>
            <button type="button" className="button subtle" onClick={() => setConfirming(false)}>
              Not yet
            </button>
          </div>
        </div>
      ) : (
        <div className="actions">
          <button type="button" className="button" onClick={() => setConfirming(true)}>
            Show credential (once)
          </button>
        </div>
      )}
    </div>
  );
}

export function RevokeForm({ grant, onDone }: { grant: GrantView; onDone: (grant: GrantView) => void }) {
  const { api } = useSignedIn();
  const id = useId();
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const revoke = async () => {
    setBusy(true);
    setError(null);
    try {
      onDone(await api.post<GrantView>(`/v1/grants/${grant.id}/revoke`, { reason: reason.trim() }));
      setOpen(false);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };

  if (!open) {
    return (
      <button type="button" className="button danger" onClick={() => setOpen(true)}>
        Revoke now…
      </button>
    );
  }
  return (
    <form
      className="stack revoke-form"
      onSubmit={(event) => {
        event.preventDefault();
        void revoke();
      }}
    >
      <div className="field">
        <label htmlFor={`${id}-reason`}>Why end it early</label>
        <input
          id={`${id}-reason`}
          required
          maxLength={4000}
          value={reason}
          onChange={(event) => setReason(event.target.value)}
        />
      </div>
      <ErrorNotice error={error} />
      <div className="actions">
        <button type="submit" className="button danger" disabled={busy || !reason.trim()}>
          Revoke grant
        </button>
        <button type="button" className="button subtle" onClick={() => setOpen(false)}>
          Keep it
        </button>
      </div>
    </form>
  );
}

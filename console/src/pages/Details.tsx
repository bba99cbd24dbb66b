import { useCallback, useEffect, useState } from "react";
import type { AuditEvent, GrantView, RequestView, ZoneView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { Empty, ErrorNotice, Loading, PageTitle, StateBadge } from "../components/common";
import { GatewaySessions } from "../components/GatewaySessions";
import { ConnectionPanel, GrantRequestPanel, IncidentNotice, useGrantZone } from "../components/GrantContext";
import { CredentialOnce, GrantFacts, RevokeForm } from "../components/grants";
import { ReviewForm } from "../components/ReviewForm";
import {
  ApprovalComments,
  DecideForm,
  RequesterActions,
  RequestFacts,
  targetText,
  waitsForMe,
} from "../components/requests";
import { UserText } from "../components/UserText";
import { useLiveUpdates } from "../lib/live";
import { formatDateTime } from "../lib/time";
import { Link } from "../router";
import { summarize } from "./Audit";

/** The audit events about these subjects (request and grant ids), for administrators and auditors. */
function AuditTrail({ subjects }: { subjects: string[] }) {
  const { api, principal } = useSignedIn();
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const key = subjects.join(",");
  const load = useCallback(() => {
    Promise.all(
      key
        .split(",")
        .map((subject) => api.get<{ events: AuditEvent[] }>("/v1/audit", { subject, limit: 200 })),
    )
      .then((pages) => setEvents(pages.flatMap((p) => p.events).sort((a, b) => a.seq - b.seq)))
      .catch(() => setEvents([]));
  }, [api, key]);
  const allowed = principal.isAdmin || principal.isAuditor;
  useEffect(() => {
    if (allowed) load();
  }, [allowed, load]);
  useLiveUpdates(
    (event) => event.subject !== null && key.split(",").includes(event.subject),
    () => {
      if (allowed) load();
    },
    15_000,
  );
  if (!allowed) return null;
  return (
    <section className="panel" aria-labelledby="trail-title">
      <h2 id="trail-title">Audit trail</h2>
      {events === null ? (
        <Loading what="events" />
      ) : events.length === 0 ? (
        <Empty>No events.</Empty>
      ) : (
        <ol className="trail">
          {events.map((event) => (
            <li key={event.seq}>
              <time dateTime={event.time}>{formatDateTime(event.time)}</time> <code>{event.type}</code> by{" "}
              {event.actor}{" "}
              <span className="muted">
                <UserText text={summarize(event)} />
              </span>
            </li>
          ))}
        </ol>
      )}
      <p>
        <Link href={`/audit?subject=${encodeURIComponent(subjects[subjects.length - 1] ?? "")}`}>
          Open in the timeline
        </Link>
      </p>
    </section>
  );
}

export function RequestDetailPage({ id }: { id: string }) {
  const { api, principal } = useSignedIn();
  const [request, setRequest] = useState<RequestView | null>(null);
  const [zones, setZones] = useState<ZoneView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => {
    api
      .get<RequestView>(`/v1/requests/${encodeURIComponent(id)}`)
      .then((reply) => {
        setRequest(reply);
        setError(null);
      })
      .catch(setError);
  }, [api, id]);
  useEffect(load, [load]);
  useEffect(() => {
    api
      .get<{ zones: ZoneView[] }>("/v1/zones")
      .then((reply) => setZones(reply.zones))
      .catch(() => {});
  }, [api]);
  useLiveUpdates((event) => event.subject === id || event.context.request === id, load, 5000);

  if (error && !request) {
    return (
      <>
        <PageTitle title="Request">Request {id}</PageTitle>
        <ErrorNotice error={error} />
      </>
    );
  }
  if (!request) return <Loading what="the request" />;
  return (
    <>
      <PageTitle title={`Request ${request.id}`}>
        {request.requester === principal.name ? "Your request" : `${request.requester}'s request`}:{" "}
        {targetText(request)}
      </PageTitle>
      <p className="lede">
        <StateBadge state={request.state} /> {request.next}
        {request.grantId ? (
          <>
            {" "}
            · <Link href={`/grants/${request.grantId}`}>see the grant {request.grantId}</Link>
          </>
        ) : null}
      </p>
      <ErrorNotice error={error} />
      <div className="detail-layout">
        <section className="panel" aria-labelledby="request-facts">
          <h2 id="request-facts">Details</h2>
          <RequestFacts request={request} />
          <ApprovalComments request={request} />
        </section>
        {request.requester === principal.name &&
        (request.state === "pending" || request.state === "approved") ? (
          <section className="panel" aria-labelledby="request-actions">
            <h2 id="request-actions">What you can do</h2>
            <RequesterActions request={request} zones={zones} onChange={load} />
          </section>
        ) : null}
        {waitsForMe(request, principal) ? (
          <section className="panel" aria-labelledby="request-decide">
            <h2 id="request-decide">Your decision</h2>
            <DecideForm request={request} onDone={setRequest} />
          </section>
        ) : null}
      </div>
      <AuditTrail subjects={[request.id, ...(request.grantId ? [request.grantId] : [])]} />
    </>
  );
}

export function GrantDetailPage({ id }: { id: string }) {
  const { api, principal } = useSignedIn();
  const [grant, setGrant] = useState<{ view: GrantView; receivedAt: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => {
    api
      .get<GrantView>(`/v1/grants/${encodeURIComponent(id)}`)
      .then((view) => {
        setGrant({ view, receivedAt: Date.now() });
        setError(null);
      })
      .catch(setError);
  }, [api, id]);
  useEffect(load, [load]);
  useLiveUpdates((event) => event.subject === id, load, 5000);
  const zone = useGrantZone(grant?.view.zone ?? null, grant?.view.state === "active");
  // Look again just after the end, when the server has closed it.
  useEffect(() => {
    if (grant?.view.state !== "active") return;
    const timer = setTimeout(load, grant.view.secondsLeft * 1000 + 1500 - (Date.now() - grant.receivedAt));
    return () => clearTimeout(timer);
  }, [grant, load]);

  if (error && !grant) {
    return (
      <>
        <PageTitle title="Grant">Grant {id}</PageTitle>
        <ErrorNotice error={error} />
      </>
    );
  }
  if (!grant) return <Loading what="the grant" />;
  const view = grant.view;
  const mine = view.user === principal.name;
  return (
    <>
      <PageTitle title={`Grant ${view.id}`}>
        {mine ? "Your grant" : `${view.user}'s grant`}: {targetText(view)}
      </PageTitle>
      <p className="lede">
        <StateBadge state={view.state} /> from request{" "}
        <Link href={`/requests/${view.requestId}`}>{view.requestId}</Link>
      </p>
      <IncidentNotice grant={view} zone={zone} />
      <ErrorNotice error={error} />
      <div className="detail-layout">
        <section className="panel" aria-labelledby="grant-facts">
          <h2 id="grant-facts">Window</h2>
          <GrantFacts grant={view} receivedAt={grant.receivedAt} />
        </section>
        {view.state === "active" && (mine || principal.isAdmin) ? (
          <section className="panel" aria-labelledby="grant-actions">
            <h2 id="grant-actions">While it is open</h2>
            <div className="stack">
              {mine ? <CredentialOnce grant={view} /> : null}
              <RevokeForm grant={view} onDone={(next) => setGrant({ view: next, receivedAt: Date.now() })} />
            </div>
          </section>
        ) : null}
        <GrantRequestPanel grant={view} />
        <ConnectionPanel grant={view} zone={zone} />
        {view.review.state === "due" && !mine ? (
          <section className="panel" aria-labelledby="grant-review">
            <h2 id="grant-review">Review this use</h2>
            <ReviewForm grant={view} onDone={(next) => setGrant({ view: next, receivedAt: Date.now() })} />
          </section>
        ) : null}
        <GatewaySessions grantId={view.id} open={view.state === "active"} />
      </div>
      <AuditTrail subjects={[view.requestId, view.id]} />
    </>
  );
}

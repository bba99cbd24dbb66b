import { useCallback, useEffect, useState } from "react";
import type { GrantView, RequestView, ZoneView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { Countdown, Empty, ErrorNotice, Loading, PageTitle, StateBadge } from "../components/common";
import { CredentialOnce, RevokeForm } from "../components/grants";
import { RequesterActions, RequestLink, targetText } from "../components/requests";
import { toOpenGrant } from "../lib/grants";
import { useLiveUpdates } from "../lib/live";
import { formatDateTime } from "../lib/time";
import { Link } from "../router";

export function MyAccessPage() {
  const { api, principal } = useSignedIn();
  const [requests, setRequests] = useState<RequestView[] | null>(null);
  const [grants, setGrants] = useState<{ list: GrantView[]; receivedAt: number } | null>(null);
  const [zones, setZones] = useState<ZoneView[] | null>(null);
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => {
    Promise.all([
      api.get<{ requests: RequestView[] }>("/v1/requests", { mine: true, limit: 100 }),
      api.get<{ grants: GrantView[] }>("/v1/grants", { mine: true, limit: 100 }),
    ])
      .then(([r, g]) => {
        setRequests(r.requests);
        setGrants({ list: g.grants, receivedAt: Date.now() });
        setError(null);
      })
      .catch(setError);
  }, [api]);
  useEffect(load, [load]);
  useEffect(() => {
    api
      .get<{ zones: ZoneView[] }>("/v1/zones")
      .then((reply) => setZones(reply.zones))
      .catch(() => {});
  }, [api]);
  useLiveUpdates(
    (event) =>
      (event.type.startsWith("request.") ||
        event.type.startsWith("grant.") ||
        event.type.startsWith("review.")) &&
      (event.actor === principal.name ||
        event.context.requester === principal.name ||
        event.context.user === principal.name),
    load,
    5000,
  );

  const active = (grants?.list ?? []).filter((g) => g.state === "active");
  const open = (requests ?? []).filter((r) => r.state === "pending" || r.state === "approved");
  const history = (requests ?? []).filter((r) => !["pending", "approved", "active"].includes(r.state));
  const grantOf = (request: RequestView) => grants?.list.find((g) => g.requestId === request.id) ?? null;

  // A grant that reaches its end while shown: look again once the server has closed it.
  useEffect(() => {
    const running = (grants?.list ?? []).filter((g) => g.state === "active");
    if (!grants || running.length === 0) return;
    const soonest = Math.min(...running.map((g) => toOpenGrant(g, grants.receivedAt).deadline));
    const timer = setTimeout(load, Math.max(soonest - Date.now(), 0) + 1500);
    return () => clearTimeout(timer);
  }, [grants, load]);

  return (
    <>
      <PageTitle title="My access">My requests and grants</PageTitle>
      <div className="page-actions">
        <Link href="/requests/new" className="button primary">
          Request access
        </Link>
      </div>
      <ErrorNotice error={error} />
      {requests === null || grants === null ? (
        <Loading what="your requests and grants" />
      ) : (
        <>
          <section aria-labelledby="active-title">
            <h2 id="active-title" className="section-title">
              Active grants ({active.length})
            </h2>
            {active.length === 0 ? (
              <Empty>You hold no elevated access right now.</Empty>
            ) : (
              <ul className="cards">
                {active.map((grant) => (
                  <li key={grant.id} className="card card-live" data-grant={grant.id}>
                    <div className="card-head">
                      <h3>
                        {targetText(grant)} —{" "}
                        <Countdown deadline={toOpenGrant(grant, grants.receivedAt).deadline} /> left
                      </h3>
                      <p className="muted">
                        <Link href={`/grants/${grant.id}`} className="id-link">
                          {grant.id}
                        </Link>{" "}
                        · ends {formatDateTime(grant.endsAt)}
                      </p>
                    </div>
                    <div className="stack">
                      <CredentialOnce grant={grant} />
                      <RevokeForm grant={grant} onDone={load} />
                    </div>
                  </li>
                ))}
              </ul>
            )}
          </section>
          <section aria-labelledby="open-title">
            <h2 id="open-title" className="section-title">
              Open requests ({open.length})
            </h2>
            {open.length === 0 ? (
              <Empty>No request of yours is waiting.</Empty>
            ) : (
              <ul className="cards">
                {open.map((request) => (
                  <li key={request.id} className="card" data-request={request.id}>
                    <div className="card-head">
                      <h3>
                        {targetText(request)} for {request.duration} <StateBadge state={request.state} />
                      </h3>
                      <p className="muted">
                        <RequestLink request={request} /> · {request.next}
                      </p>
                    </div>
                    <RequesterActions request={request} zones={zones} onChange={load} />
                  </li>
                ))}
              </ul>
            )}
          </section>
          <section aria-labelledby="history-title">
            <h2 id="history-title" className="section-title">
              History
            </h2>
            {history.length === 0 ? (
              <Empty>Nothing yet.</Empty>
            ) : (
              <div className="table-wrap">
                <table>
                  <caption className="visually-hidden">Your earlier requests</caption>
                  <thead>
                    <tr>
                      <th scope="col">Request</th>
                      <th scope="col">Access</th>
                      <th scope="col">State</th>
                      <th scope="col">Asked</th>
                      <th scope="col">Grant</th>
                    </tr>
                  </thead>
                  <tbody>
                    {history.map((request) => {
                      const grant = grantOf(request);
                      return (
                        <tr key={request.id}>
                          <td>
                            <RequestLink request={request} />
                          </td>
                          <td>{targetText(request)}</td>
                          <td>
                            <StateBadge state={request.state} />
                          </td>
                          <td>{formatDateTime(request.createdAt)}</td>
                          <td>
                            {grant ? (
                              <Link href={`/grants/${grant.id}`} className="id-link">
                                {grant.id}
                              </Link>
                            ) : (
                              "—"
                            )}
                            {grant && grant.review.state !== "none" ? (
                              <>
                                {" "}
                                <StateBadge
                                  state={grant.review.state}
                                  label={`review ${grant.review.state}`}
                                />
                              </>
                            ) : null}
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        </>
      )}
    </>
  );
}

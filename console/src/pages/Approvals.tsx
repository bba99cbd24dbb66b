import { useCallback, useEffect, useState } from "react";
import type { RequestView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { Countdown, Empty, ErrorNotice, Loading, Notice, PageTitle } from "../components/common";
import { DecideForm, RequestFacts, RequestLink, targetText, waitsForMe } from "../components/requests";
import { useLiveUpdates } from "../lib/live";

export function ApprovalsPage() {
  const { api, principal } = useSignedIn();
  const [requests, setRequests] = useState<RequestView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);

  const load = useCallback(() => {
    api
      .get<{ requests: RequestView[] }>("/v1/requests", { state: "pending", limit: 500 })
      .then((reply) => {
        setRequests(reply.requests.filter((r) => r.requester !== principal.name));
        setError(null);
      })
      .catch(setError);
  }, [api, principal.name]);
  useEffect(load, [load]);
  useLiveUpdates(
    (event) => event.type.startsWith("request.") || event.type === "approval.recorded",
    load,
    10_000,
  );

  const mine = (requests ?? []).filter((r) => waitsForMe(r, principal));
  const others = (requests ?? []).filter((r) => !waitsForMe(r, principal));

  return (
    <>
      <PageTitle title="Approvals">Approvals inbox</PageTitle>
      <p className="lede">
        Requests waiting for a decision. Nobody approves their own; each step needs a different person.
      </p>
      <ErrorNotice error={error} />
      {done ? <Notice tone="ok">{done}</Notice> : null}
      {requests === null ? (
        <Loading what="requests" />
      ) : (
        <>
          <h2 className="section-title">Waiting for you ({mine.length})</h2>
          {mine.length === 0 ? (
            <Empty>Nothing waits for your approval.</Empty>
          ) : (
            <ul className="cards">
              {mine.map((request) => (
                <li key={request.id} className="card" data-request={request.id}>
                  <RequestHeader request={request} />
                  <RequestFacts request={request} />
                  <DecideForm
                    request={request}
                    onDone={(updated) => {
                      setDone(
                        updated.state === "denied"
                          ? `Denied ${updated.requester}'s request (${updated.id}).`
                          : `Approved ${updated.requester}'s request (${updated.id}): ${updated.next}.`,
                      );
                      load();
                    }}
                  />
                </li>
              ))}
            </ul>
          )}
          {others.length > 0 ? (
            <>
              <h2 className="section-title">Waiting for someone else ({others.length})</h2>
              <ul className="cards">
                {others.map((request) => (
                  <li key={request.id} className="card card-muted" data-request={request.id}>
                    <RequestHeader request={request} />
                    <p>{request.next}</p>
                  </li>
                ))}
              </ul>
            </>
          ) : null}
        </>
      )}
    </>
  );
}

function RequestHeader({ request }: { request: RequestView }) {
  return (
    <div className="card-head">
      <h3>
        {request.requester} asks for {targetText(request)} for {request.duration}
      </h3>
      <p className="muted">
        <RequestLink request={request} />
        {request.lapsesAt ? (
          <>
            {" "}
            · lapses in <Countdown deadline={Date.parse(request.lapsesAt)} expiredLabel="now" />
          </>
        ) : null}
      </p>
    </div>
  );
}

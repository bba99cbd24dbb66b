import { useCallback, useEffect, useState } from "react";
import { ApiError } from "../api/client";
import type { GrantView, RequestView, ZoneView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { useLiveUpdates } from "../lib/live";
import { formatDateTime, relativeTime } from "../lib/time";
import { Link } from "../router";
import { Empty, Fact, Facts, StateBadge } from "./common";
import { ApprovalComments } from "./requests";
import { UserText } from "./UserText";

/**
 * What the grant page shows around the window itself: the request behind the grant (reason,
 * ticket, who approved and what they said), how to reach what it opened (address, resource type,
 * `firebreak connect`), and an incident open in its zone while it runs.
 */

/** Effects whose connector opens a network path rather than issuing a credential (src/grants/effects.ts). */
const PATH_CONNECTOR = "path:";
/** The client `firebreak connect` starts for each kind of credential (src/cli/connect.ts). */
const CLIENTS: Record<string, string> = { postgres: "psql", mariadb: "mysql", ssh: "ssh" };
/** Incidents reach only administrators and auditors live; an open grant's page looks this often. */
const INCIDENT_POLL_MS = 30_000;

/**
 * The grant's zone as `/v1/zones/:id` describes it (resources with their addresses, open
 * incidents), kept current while the grant is open.
 */
export function useGrantZone(zone: string | null, open: boolean) {
  const { api } = useSignedIn();
  const [view, setView] = useState<ZoneView | null>(null);
  const load = useCallback(() => {
    if (zone === null) return;
    api
      .get<ZoneView>(`/v1/zones/${encodeURIComponent(zone)}`)
      .then(setView)
      .catch(() => {});
  }, [api, zone]);
  useEffect(load, [load]);
  useLiveUpdates(
    (event) => event.zone === zone && (event.type.startsWith("incident.") || event.type === "config.applied"),
    () => {
      if (open) load();
    },
    INCIDENT_POLL_MS,
    { pollWhileLive: open },
  );
  return view;
}

/** The request behind a grant; `hidden` when the server does not show it to this viewer. */
function useRequestOf(grant: GrantView) {
  const { api } = useSignedIn();
  const [state, setState] = useState<{ request: RequestView | null; hidden: boolean }>({
    request: null,
    hidden: false,
  });
  const load = useCallback(() => {
    api
      .get<RequestView>(`/v1/requests/${encodeURIComponent(grant.requestId)}`)
      .then((request) => setState({ request, hidden: false }))
      .catch((error) =>
        setState((previous) => ({
          request: previous.request,
          hidden: error instanceof ApiError && error.status === 404,
        })),
      );
  }, [api, grant.requestId]);
  useEffect(load, [load]);
  return state;
}

/** An open incident in the grant's zone, said at the top of the page while the grant runs. */
export function IncidentNotice({ grant, zone }: { grant: GrantView; zone: ZoneView | null }) {
  if (grant.state !== "active" || !zone || zone.openIncidents.length === 0) return null;
  const count = zone.openIncidents.length;
  return (
    <div className="notice notice-incident" role="status" data-incidents={count}>
      <div>
        <strong>
          {count === 1 ? "An incident is" : `${count} incidents are`} open in <code>{zone.name}</code>
        </strong>{" "}
        while this grant runs:
        <ul className="plain-list">
          {zone.openIncidents.map((incident) => (
            <li key={incident.id}>
              <UserText text={incident.id} /> (severity {incident.severity})
              {incident.title ? (
                <>
                  : <UserText text={incident.title} />
                </>
              ) : null}{" "}
              <span className="muted">
                · opened <time dateTime={incident.openedAt}>{relativeTime(incident.openedAt)}</time>
              </span>
            </li>
          ))}
        </ul>
      </div>
    </div>
  );
}

/** Why the grant exists and who let it: the request's reason and ticket, and every decision on it. */
export function GrantRequestPanel({ grant }: { grant: GrantView }) {
  const { request, hidden } = useRequestOf(grant);
  const approvers = request?.approvals.filter((a) => a.decision === "approve").map((a) => a.approver) ?? [];
  return (
    <section className="panel" aria-labelledby="grant-request">
      <h2 id="grant-request">Why, and who approved</h2>
      {request ? (
        <>
          <Facts>
            <Fact label="Reason">
              <UserText text={request.reason} />
            </Fact>
            <Fact label="Ticket">
              <UserText text={request.ticket} />
            </Fact>
            <Fact label="Asked">
              <time dateTime={request.createdAt}>{formatDateTime(request.createdAt)}</time> by{" "}
              {request.requester} for {request.duration}
            </Fact>
            <Fact label="Approved by">
              {approvers.length > 0
                ? approvers.join(", ")
                : request.autoApproved
                  ? "auto-approved by policy"
                  : "no approval was needed"}
            </Fact>
          </Facts>
          <ApprovalComments request={request} />
        </>
      ) : hidden ? (
        <Empty>The request behind this grant is not shown to you.</Empty>
      ) : (
        <p className="loading">Loading the request…</p>
      )}
      <p>
        <Link href={`/requests/${grant.requestId}`}>Request {grant.requestId}</Link>
      </p>
    </section>
  );
}

interface Target {
  resource: string;
  type: string | null;
  address: string | null;
  credential: { connector: string; state: string } | null;
  path: { state: string } | null;
}

/** The resources the grant gave access to, with their type and address, from its effects. */
function targetsOf(grant: GrantView, zone: ZoneView | null): Target[] {
  const byName = new Map<string, Target>();
  for (const effect of grant.effects) {
    const known = zone?.resources.find((r) => r.name === effect.resource);
    const target = byName.get(effect.resource) ?? {
      resource: effect.resource,
      type: known?.type ?? null,
      address: known?.address ?? null,
      credential: null,
      path: null,
    };
    if (effect.connector.startsWith(PATH_CONNECTOR)) target.path = { state: effect.state };
    else target.credential = { connector: effect.connector, state: effect.state };
    byName.set(effect.resource, target);
  }
  return [...byName.values()];
}

/** Where to connect and how: each resource's type and address, and the `firebreak connect` command. */
export function ConnectionPanel({ grant, zone }: { grant: GrantView; zone: ZoneView | null }) {
  const { principal } = useSignedIn();
  const targets = targetsOf(grant, zone);
  const active = grant.state === "active";
  const connectable = targets.flatMap((t) => {
    const client = t.credential?.state === "issued" ? CLIENTS[t.credential.connector] : undefined;
    return client ? [{ resource: t.resource, client }] : [];
  });
  const showCommand = active && grant.user === principal.name && connectable.length > 0;
  return (
    <section className="panel" aria-labelledby="grant-connection">
      <h2 id="grant-connection">Connection</h2>
      {targets.length === 0 ? (
        <Empty>This grant issued nothing to connect to.</Empty>
      ) : (
        <ul className="connection-list">
          {targets.map((target) => (
            <li key={target.resource} data-resource={target.resource}>
              <Facts>
                <Fact label="Resource">
                  <code>{target.resource}</code>
                  {target.type ? <span className="muted"> ({target.type})</span> : null}
                </Fact>
                <Fact label="Address">
                  {target.address ? <code>{target.address}</code> : "none configured"}
                </Fact>
                <Fact label="Credential">
                  {target.credential ? <StateBadge state={target.credential.state} /> : null}
                </Fact>
                <Fact label="Network path">
                  {target.path
                    ? `${target.path.state === "issued" ? "open" : target.path.state}${target.address ? ` to ${target.address}` : ""}`
                    : null}
                </Fact>
              </Facts>
            </li>
          ))}
        </ul>
      )}
      {showCommand ? (
        <div className="connect-hint">
          <p>
            From a terminal signed in with <code>firebreak login</code>, this starts{" "}
            {[...new Set(connectable.map((c) => c.client))].join(" or ")} with the credential, without
            printing it:
          </p>
          {connectable.map((target) => (
            <pre key={target.resource} className="command" data-resource={target.resource}>
              <code>
                firebreak connect {grant.id}
                {connectable.length > 1 ? ` --resource ${target.resource}` : ""}
              </code>
            </pre>
          ))}
          <p className="hint">
            It fetches the credential, which is handed out once: use it or “Show credential”, not both.
          </p>
        </div>
      ) : null}
    </section>
  );
}

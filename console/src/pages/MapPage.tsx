import { lazy, Suspense, useCallback, useEffect, useState } from "react";
import { ApiError } from "../api/client";
import type { Reachability, ReachedZone, ZoneView } from "../api/types";
import { useSignedIn } from "../auth/session";
import {
  Countdown,
  Empty,
  ErrorNotice,
  Fact,
  Facts,
  Loading,
  PageTitle,
  StateBadge,
} from "../components/common";
import { UserText } from "../components/UserText";
import { type ClosedGrant, type OpenGrant, useOpenGrants } from "../lib/grants";
import { useLiveUpdates } from "../lib/live";
import { Link, setQuery, useLocation } from "../router";

const ZoneGraph = lazy(() => import("../components/ZoneGraph"));

function useZones() {
  const { api, principal } = useSignedIn();
  const [zones, setZones] = useState<ZoneView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => {
    api
      .get<{ zones: ZoneView[] }>("/v1/zones")
      .then((reply) => {
        setZones(reply.zones);
        setError(null);
      })
      .catch(setError);
  }, [api]);
  useEffect(load, [load]);
  useLiveUpdates(
    (event) => event.type === "config.applied" || event.type.startsWith("incident."),
    load,
    60_000,
    // Those events reach only administrators and auditors live; everyone else looks now and then.
    { pollWhileLive: !(principal.isAdmin || principal.isAuditor) },
  );
  return { zones, error };
}

export function MapPage() {
  const { query } = useLocation();
  const selected = query.get("zone");
  const { zones, error: zonesError } = useZones();
  const { open, closed, announcement, error: grantsError } = useOpenGrants();
  const select = (zone: string | null) => setQuery({ zone });

  const openZones = new Set((open ?? []).map((o) => o.grant.zone));
  const flowCount = (zones ?? []).reduce((sum, z) => sum + z.flowsOut.length, 0);
  const summary = zones
    ? `Zone map: ${zones.length} zones, ${flowCount} standing flows. ${
        openZones.size > 0 ? `Open now: ${[...openZones].join(", ")}.` : "No zone is open right now."
      } The list beside the map has the same information.`
    : "Zone map";
  const selectedZone = zones?.find((z) => z.name === selected) ?? null;

  return (
    <div className="map-page">
      <div className="page-head">
        <PageTitle title="Zone map">Zone map</PageTitle>
        <p className="lede">
          Zones and the standing flows between them. A zone lights up while a break-glass grant is open in it,
          with its path and the time left.
        </p>
      </div>
      <ErrorNotice error={zonesError ?? grantsError} />
      <p className="visually-hidden" aria-live="polite" aria-atomic="true">
        {announcement}
      </p>
      {zones === null ? (
        <Loading what="zones" />
      ) : (
        <div className="map-layout">
          <section className="map-canvas" aria-label="Graph">
            <Suspense fallback={<Loading what="the map" />}>
              <ZoneGraph
                zones={zones}
                open={open ?? []}
                closed={closed}
                selected={selected}
                onSelect={select}
                label={summary}
              />
            </Suspense>
            <MapLegend />
          </section>
          <aside className="map-side">
            <ZoneList zones={zones} open={open ?? []} closed={closed} selected={selected} onSelect={select} />
          </aside>
        </div>
      )}
      {selectedZone ? (
        <ZonePanel
          zone={selectedZone}
          open={(open ?? []).filter((o) => o.grant.zone === selectedZone.name)}
        />
      ) : zones && selected ? (
        <Empty>There is no zone named “{selected}”.</Empty>
      ) : null}
    </div>
  );
}

function MapLegend() {
  return (
    <ul className="legend" aria-label="Legend">
      <li>
        <span className="swatch swatch-zone" aria-hidden="true" /> zone (enforced)
      </li>
      <li>
        <span className="swatch swatch-monitor" aria-hidden="true" /> zone (monitor only)
      </li>
      <li>
        <span className="swatch swatch-open" aria-hidden="true" /> open: a grant is active
      </li>
      <li>
        <span className="swatch swatch-closed" aria-hidden="true" /> just closed
      </li>
      <li>
        <span className="swatch swatch-flow" aria-hidden="true" /> standing flow
      </li>
      <li>
        <span className="swatch swatch-path" aria-hidden="true" /> grant path
      </li>
    </ul>
  );
}

function ZoneList(props: {
  zones: ZoneView[];
  open: OpenGrant[];
  closed: ClosedGrant[];
  selected: string | null;
  onSelect: (zone: string) => void;
}) {
  return (
    <>
      <h2 className="section-title">Zones</h2>
      <ul className="zone-list">
        {props.zones.map((zone) => {
          const here = props.open.filter((o) => o.grant.zone === zone.name);
          const closedHere = props.closed.filter((c) => c.grant.zone === zone.name);
          const state = here.length > 0 ? "open" : closedHere.length > 0 ? "closed" : "shut";
          return (
            <li key={zone.name} data-zone={zone.name} data-state={state}>
              <button
                type="button"
                className={`zone-item zone-${state}`}
                aria-pressed={props.selected === zone.name}
                onClick={() => props.onSelect(zone.name)}
              >
                <span className="zone-item-name">{zone.name}</span>
                {here.length > 0 ? (
                  <span className="zone-item-state">
                    <StateBadge state="active" label="open" />{" "}
                    {here.map((o) => (
                      <span key={o.grant.id} className="zone-item-grant">
                        {o.grant.user} · {o.grant.role} · <Countdown deadline={o.deadline} />
                      </span>
                    ))}
                  </span>
                ) : closedHere.length > 0 ? (
                  <span className="zone-item-state">
                    <StateBadge
                      state={closedHere.at(-1)?.how ?? "expired"}
                      label={`closed · ${closedHere.at(-1)?.how}`}
                    />
                  </span>
                ) : (
                  <span className="zone-item-state muted">
                    {zone.enforcement === "monitor" ? "monitor only · " : ""}
                    {zone.resources.length} resource{zone.resources.length === 1 ? "" : "s"}
                    {zone.openIncidents.length > 0 ? " · incident open" : ""}
                  </span>
                )}
              </button>
            </li>
          );
        })}
      </ul>
    </>
  );
}

function useReachability(
  zone: string,
): { data: Reachability | null; missing: boolean; error: unknown } | null {
  const { api } = useSignedIn();
  const [result, setResult] = useState<{
    data: Reachability | null;
    missing: boolean;
    error: unknown;
  } | null>(null);
  useEffect(() => {
    let cancelled = false;
    setResult(null);
    api
      .get<Reachability>(`/v1/zones/${encodeURIComponent(zone)}/reachability`)
      .then((data) => !cancelled && setResult({ data, missing: false, error: null }))
      .catch((error: unknown) => {
        if (cancelled) return;
        const missing = error instanceof ApiError && error.status === 404;
        setResult({ data: null, missing, error: missing ? null : error });
      });
    return () => {
      cancelled = true;
    };
  }, [api, zone]);
  return result;
}

const hops = (reached: ReachedZone) =>
  [reached.path[0]?.from, ...reached.path.map((hop) => `${hop.to}${hop.via === "grant" ? " (grant)" : ""}`)]
    .filter(Boolean)
    .join(" → ");

function ReachabilityView({ zone }: { zone: string }) {
  const reach = useReachability(zone);
  if (!reach) return <Loading what="reachability" />;
  if (reach.error) return <ErrorNotice error={reach.error} />;
  if (!reach.data) return <Empty>This server does not offer reachability analysis yet.</Empty>;
  const { direct, transitive, reachedBy, blastRadius, includesGrants } = reach.data;
  return (
    <div className="reach">
      <p>
        <strong>Blast radius:</strong> {blastRadius.zones} zone{blastRadius.zones === 1 ? "" : "s"} and{" "}
        {blastRadius.resources} resource{blastRadius.resources === 1 ? "" : "s"} reachable (
        {blastRadius.directZones} directly){includesGrants ? ", counting open grant paths" : ""}.
      </p>
      <p className="reach-title">Reaches directly</p>
      {direct.length === 0 ? (
        <Empty>nothing</Empty>
      ) : (
        <ul className="plain-list">
          {direct.map((reached) => (
            <li key={reached.zone}>
              <code>{reached.zone}</code>{" "}
              <span className="muted">
                {reached.path[0]?.ports.join(", ")}
                {reached.path[0]?.via === "grant" ? " · grant path" : ""}
              </span>
            </li>
          ))}
        </ul>
      )}
      {transitive.length > 0 ? (
        <>
          <p className="reach-title">Reaches through other zones (lateral movement)</p>
          <ul className="plain-list">
            {transitive.map((reached) => (
              <li key={reached.zone}>
                <code>{reached.zone}</code> <span className="muted">via {hops(reached)}</span>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <p className="reach-title">Reached by</p>
      <p>
        {reachedBy.direct.length + reachedBy.transitive.length === 0
          ? "no other zone"
          : [...reachedBy.direct, ...reachedBy.transitive.map((z) => `${z} (indirectly)`)].join(", ")}
      </p>
    </div>
  );
}

function ZonePanel({ zone, open }: { zone: ZoneView; open: OpenGrant[] }) {
  const labels = Object.entries(zone.labels);
  return (
    <section className="panel zone-panel" aria-labelledby="zone-panel-title">
      <div className="panel-head">
        <h2 id="zone-panel-title">
          Zone <code>{zone.name}</code>
        </h2>
        <Link className="button primary" href={`/requests/new?zone=${encodeURIComponent(zone.name)}`}>
          Request access to {zone.name}
        </Link>
      </div>
      {zone.description ? <p>{zone.description}</p> : null}
      <Facts>
        <Fact label="Enforcement">
          {zone.enforcement === "monitor" ? "monitor (logs what it would drop)" : "enforce"}
        </Fact>
        <Fact label="Labels">
          {labels.length > 0 ? labels.map(([k, v]) => `${k}=${v}`).join(", ") : null}
        </Fact>
        <Fact label="Addresses">{zone.cidrs.length > 0 ? zone.cidrs.join(", ") : null}</Fact>
        <Fact label="Flows in">
          {zone.flowsIn.length > 0
            ? zone.flowsIn.map((f) => `${f.from} (${f.ports.join(", ")})`).join("; ")
            : "none"}
        </Fact>
        <Fact label="Flows out">
          {zone.flowsOut.length > 0
            ? zone.flowsOut.map((f) => `${f.to} (${f.ports.join(", ")})`).join("; ")
            : "none"}
        </Fact>
      </Facts>
      {zone.openIncidents.length > 0 ? (
        <div className="notice notice-warn">
          <span>
            <strong>Open incidents:</strong>{" "}
            {zone.openIncidents.map((incident, index) => (
              <span key={incident.id}>
                {index > 0 ? "; " : ""}
                <UserText text={incident.id} /> (severity {incident.severity}
                {incident.title ? (
                  <>
                    : <UserText text={incident.title} />
                  </>
                ) : null}
                )
              </span>
            ))}
          </span>
        </div>
      ) : null}
      <div className="panel-grid">
        <div>
          <h3>Active grants</h3>
          {open.length === 0 ? (
            <Empty>Nobody holds elevated access here right now.</Empty>
          ) : (
            <ul className="plain-list">
              {open.map(({ grant, deadline }) => (
                <li key={grant.id}>
                  <Link href={`/grants/${grant.id}`}>
                    {grant.user} · {grant.role}
                    {grant.resource ? ` on ${grant.resource}` : ""}
                  </Link>{" "}
                  — <Countdown deadline={deadline} /> left
                  {grant.sourceZone ? <span className="muted"> · from {grant.sourceZone}</span> : null}
                </li>
              ))}
            </ul>
          )}
        </div>
        <div>
          <h3>Resources</h3>
          {zone.resources.length === 0 ? (
            <Empty>No resources are configured in this zone.</Empty>
          ) : (
            <ul className="plain-list">
              {zone.resources.map((resource) => (
                <li key={resource.name}>
                  <code>{resource.name}</code> <span className="muted">({resource.type})</span> — roles{" "}
                  {resource.roles.join(", ")}
                </li>
              ))}
            </ul>
          )}
        </div>
        <div>
          <h3>Break-glass policies</h3>
          {zone.policies.length === 0 ? (
            <Empty>No break-glass policy covers this zone: nobody can elevate here.</Empty>
          ) : (
            <ul className="plain-list">
              {zone.policies.map((policy) => (
                <li key={policy.name}>
                  <code>{policy.name}</code> — {policy.roles.join(", ")}{" "}
                  {policy.roles.map((role) => (
                    <Link
                      key={role}
                      className="small-link"
                      href={`/requests/new?zone=${encodeURIComponent(zone.name)}&role=${encodeURIComponent(role)}`}
                    >
                      request {role}
                    </Link>
                  ))}
                </li>
              ))}
            </ul>
          )}
        </div>
        <div>
          <h3>Reachability</h3>
          <ReachabilityView zone={zone.name} />
        </div>
      </div>
    </section>
  );
}

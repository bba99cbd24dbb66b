import { type FormEvent, useCallback, useEffect, useRef, useState } from "react";
import type { AuditEvent, VerifyResult, ZoneView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { Empty, ErrorNotice, Loading, Notice, PageTitle } from "../components/common";
import { UserText } from "../components/UserText";
import { useLiveUpdates } from "../lib/live";
import { formatDateTime } from "../lib/time";
import { Link, setQuery, useLocation } from "../router";

const KNOWN_TYPES = [
  "request.created",
  "request.approved",
  "approval.recorded",
  "request.denied",
  "request.cancelled",
  "request.lapsed",
  "decision.denied",
  "grant.activated",
  "credential.issued",
  "flow.opened",
  "credential.delivered",
  "credential.delivery_refused",
  "grant.expired",
  "grant.revoked",
  "credential.revoked",
  "flow.closed",
  "revocation.verified",
  "review.completed",
  "alert.raised",
  "incident.opened",
  "incident.resolved",
  "signal.rejected",
  "config.applied",
  "user.created",
  "token.issued",
];

const PAGE = 500;
/** Pages read per load when filters apply on this side (user, time), before offering "older". */
const MAX_PAGES_PER_LOAD = 10;
/** Rows shown per load. */
const SHOW = 200;

interface Filters {
  zone: string;
  user: string;
  type: string;
  subject: string;
  from: string;
  to: string;
}

function filtersFrom(query: URLSearchParams): Filters {
  return {
    zone: query.get("zone") ?? "",
    user: query.get("user") ?? "",
    type: query.get("type") ?? "",
    subject: query.get("subject") ?? "",
    from: query.get("from") ?? "",
    to: query.get("to") ?? "",
  };
}

/** `datetime-local` values are this machine's local time. */
const localMs = (value: string) => (value ? new Date(value).getTime() : Number.NaN);

/** Filters the server cannot apply: the user (acting or affected) and the time window. */
function matchesHere(event: AuditEvent, filters: Filters): boolean {
  if (filters.user) {
    const user = filters.user;
    const context = event.context;
    if (event.actor !== user && context.user !== user && context.requester !== user && context.owner !== user)
      return false;
  }
  const time = Date.parse(event.time);
  const from = localMs(filters.from);
  const to = localMs(filters.to);
  if (!Number.isNaN(from) && time < from) return false;
  if (!Number.isNaN(to) && time > to) return false;
  return true;
}

function matchesServer(event: AuditEvent, filters: Filters): boolean {
  return (
    (!filters.zone || event.zone === filters.zone) &&
    (!filters.type || event.type === filters.type) &&
    (!filters.subject || event.subject === filters.subject)
  );
}

/** One line about what an event means, from the fields its context usually carries. */
export function summarize(event: AuditEvent): string {
  const c = event.context;
  const text = (value: unknown) => (typeof value === "string" && value ? value : null);
  const parts = [
    text(c.user) ?? text(c.requester),
    text(c.role),
    text(c.verdict),
    text(c.alert),
    text(c.denialReason) ?? text(c.comment) ?? text(c.reason) ?? text(c.purpose),
    text(c.ticket),
    text(c.message),
    text(c.to) ? `to ${c.to}` : null,
  ].filter((p): p is string => p !== null);
  return [...new Set(parts)].join(" · ");
}

export function AuditPage() {
  const { api, principal } = useSignedIn();
  const { query } = useLocation();
  const filters = filtersFrom(query);
  const filterKey = JSON.stringify(filters);
  const [draft, setDraft] = useState<Filters>(filters);
  const [events, setEvents] = useState<AuditEvent[] | null>(null);
  const [oldestSeq, setOldestSeq] = useState<number | null>(null);
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [verify, setVerify] = useState<VerifyResult | null>(null);
  const [verifying, setVerifying] = useState(false);
  const [zones, setZones] = useState<string[]>([]);
  const [fresh, setFresh] = useState<Set<number>>(new Set());
  const generation = useRef(0);
  const allowed = principal.isAdmin || principal.isAuditor;

  useEffect(() => setDraft(JSON.parse(filterKey) as Filters), [filterKey]);

  /** Reads newest-first pages before `before` until SHOW rows match or the pages run out. */
  const read = useCallback(
    async (before: number | null) => {
      const active = JSON.parse(filterKey) as Filters;
      const found: AuditEvent[] = [];
      let cursor = before;
      let exhausted = false;
      for (let page = 0; page < MAX_PAGES_PER_LOAD && found.length < SHOW; page++) {
        const { events: batch } = await api.get<{ events: AuditEvent[] }>("/v1/audit", {
          order: "desc",
          limit: PAGE,
          beforeSeq: cursor ?? undefined,
          zone: active.zone || undefined,
          type: active.type || undefined,
          subject: active.subject || undefined,
        });
        for (const event of batch) if (matchesHere(event, active)) found.push(event);
        const last = batch.at(-1);
        if (last) cursor = last.seq;
        const from = localMs(active.from);
        if (batch.length < PAGE || (last && !Number.isNaN(from) && Date.parse(last.time) < from)) {
          exhausted = true;
          break;
        }
      }
      return { found: found.slice(0, SHOW), cursor, exhausted: exhausted && found.length <= SHOW };
    },
    [api, filterKey],
  );

  const load = useCallback(async () => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const { found, cursor, exhausted } = await read(null);
      if (mine !== generation.current) return;
      setEvents(found);
      setOldestSeq(found.at(-1)?.seq ?? cursor);
      setMore(!exhausted);
      setError(null);
    } catch (failure) {
      if (mine === generation.current) setError(failure);
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, [read]);

  const loadOlder = async () => {
    if (oldestSeq === null) return;
    setLoading(true);
    try {
      const { found, exhausted } = await read(oldestSeq);
      setEvents((list) => [...(list ?? []), ...found]);
      setOldestSeq(found.at(-1)?.seq ?? oldestSeq);
      setMore(!exhausted && found.length > 0);
    } catch (failure) {
      setError(failure);
    } finally {
      setLoading(false);
    }
  };

  const runVerify = useCallback(() => {
    setVerifying(true);
    api
      .get<VerifyResult>("/v1/audit/verify")
      .then(setVerify)
      .catch(setError)
      .finally(() => setVerifying(false));
  }, [api]);

  useEffect(() => {
    if (!allowed) return;
    void load();
  }, [allowed, load]);
  useEffect(() => {
    if (!allowed) return;
    runVerify();
    api
      .get<{ zones: ZoneView[] }>("/v1/zones")
      .then((reply) => setZones(reply.zones.map((z) => z.name)))
      .catch(() => {});
  }, [allowed, api, runVerify]);

  // New events extend the chain: verify again once they stop arriving for a moment.
  const reverify = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (reverify.current) clearTimeout(reverify.current);
    },
    [],
  );

  // Live: new events that match are added on top (not when the window has an end).
  useLiveUpdates(
    () => true,
    (event) => {
      if (!allowed) return;
      if (reverify.current) clearTimeout(reverify.current);
      reverify.current = setTimeout(runVerify, 1500);
      const active = JSON.parse(filterKey) as Filters;
      if (event === null) {
        if (!active.to) void load();
        return;
      }
      if (active.to || !matchesServer(event, active) || !matchesHere(event, active)) return;
      setEvents((list) => (list && !list.some((e) => e.seq === event.seq) ? [event, ...list] : list));
      setFresh((set) => new Set(set).add(event.seq));
    },
    15_000,
  );

  if (!allowed) {
    return (
      <>
        <PageTitle title="Audit">Audit timeline</PageTitle>
        <Notice tone="warn">Only administrators and auditors can read the audit log.</Notice>
      </>
    );
  }

  const apply = (event: FormEvent) => {
    event.preventDefault();
    setQuery({ ...draft });
  };
  const clear = () => setQuery({ zone: null, user: null, type: null, subject: null, from: null, to: null });
  const update = (field: keyof Filters) => (event: { target: { value: string } }) =>
    setDraft((d) => ({ ...d, [field]: event.target.value }));

  return (
    <>
      <PageTitle title="Audit">Audit timeline</PageTitle>
      <VerifyBanner result={verify} busy={verifying} onVerify={runVerify} />
      <form className="panel filters" onSubmit={apply} aria-label="Filter events">
        <div className="field">
          <label htmlFor="f-zone">Zone</label>
          <select id="f-zone" value={draft.zone} onChange={update("zone")}>
            <option value="">All zones</option>
            {zones.map((zone) => (
              <option key={zone} value={zone}>
                {zone}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-user">User (acting or affected)</label>
          <input id="f-user" value={draft.user} onChange={update("user")} size={12} />
        </div>
        <div className="field">
          <label htmlFor="f-type">Event type</label>
          <input id="f-type" list="f-types" value={draft.type} onChange={update("type")} size={18} />
          <datalist id="f-types">
            {KNOWN_TYPES.map((type) => (
              <option key={type} value={type} />
            ))}
          </datalist>
        </div>
        <div className="field">
          <label htmlFor="f-subject">Request or grant id</label>
          <input id="f-subject" value={draft.subject} onChange={update("subject")} size={18} />
        </div>
        <div className="field">
          <label htmlFor="f-from">From</label>
          <input id="f-from" type="datetime-local" step={1} value={draft.from} onChange={update("from")} />
        </div>
        <div className="field">
          <label htmlFor="f-to">Until</label>
          <input id="f-to" type="datetime-local" step={1} value={draft.to} onChange={update("to")} />
        </div>
        <div className="actions filter-actions">
          <button type="submit" className="button primary">
            Apply filters
          </button>
          <button type="button" className="button subtle" onClick={clear}>
            Clear
          </button>
        </div>
      </form>
      <ErrorNotice error={error} />
      {events === null ? (
        <Loading what="events" />
      ) : events.length === 0 ? (
        <Empty>No event matches these filters.</Empty>
      ) : (
        <div className="table-wrap">
          <table className="audit-table">
            <caption className="visually-hidden">Audit events, newest first</caption>
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Seq</th>
                <th scope="col">Type</th>
                <th scope="col">Actor</th>
                <th scope="col">Zone</th>
                <th scope="col">Subject</th>
                <th scope="col">What</th>
              </tr>
            </thead>
            <tbody>
              {events.map((event) => (
                <tr
                  key={event.seq}
                  data-type={event.type}
                  className={fresh.has(event.seq) ? "row-fresh" : undefined}
                >
                  <td>
                    <time dateTime={event.time}>{formatDateTime(event.time)}</time>
                  </td>
                  <td>{event.seq}</td>
                  <td>
                    <code className={`event-type event-${event.type.split(".")[0]}`}>{event.type}</code>
                  </td>
                  <td>{event.actor}</td>
                  <td>
                    {event.zone ?? "—"}
                    {event.resource ? <span className="muted"> / {event.resource}</span> : null}
                  </td>
                  <td>
                    {event.subject ? (
                      <Link
                        className="id-link"
                        href={
                          event.subject.startsWith("grt_")
                            ? `/grants/${event.subject}`
                            : event.subject.startsWith("req_")
                              ? `/requests/${event.subject}`
                              : `/audit?subject=${event.subject}`
                        }
                      >
                        {event.subject}
                      </Link>
                    ) : (
                      "—"
                    )}
                  </td>
                  <td>
                    <details>
                      <summary>{summarize(event) ? <UserText text={summarize(event)} /> : "details"}</summary>
                      <pre className="json">
                        <UserText text={JSON.stringify(event.context, null, 2)} multiline />
                      </pre>
                      <p className="hash">
                        hash <code>{event.hash}</code>
                        <br />
                        previous <code>{event.prevHash}</code>
                      </p>
                    </details>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {more ? (
        <div className="actions">
          <button type="button" className="button" disabled={loading} onClick={() => void loadOlder()}>
            {loading ? "Loading…" : "Load older events"}
          </button>
        </div>
      ) : null}
    </>
  );
}

function VerifyBanner(props: { result: VerifyResult | null; busy: boolean; onVerify: () => void }) {
  const { result } = props;
  return (
    <div
      className={`verify ${result ? (result.ok ? "verify-ok" : "verify-bad") : ""}`}
      role="status"
      data-verified={result ? String(result.ok) : undefined}
    >
      <div>
        {result === null ? (
          "Verifying the hash chain…"
        ) : result.ok ? (
          <>
            <strong>Chain intact:</strong> {result.count} events verified
            {result.headHash ? (
              <>
                , head <code>{result.headHash.slice(0, 16)}…</code>
              </>
            ) : null}
            .
          </>
        ) : (
          <>
            <strong>Chain broken</strong> at event {result.firstBadSeq ?? "?"}:{" "}
            {result.reason ? <UserText text={result.reason} /> : "unknown reason"}. Events after it cannot be
            trusted.
          </>
        )}
      </div>
      <button type="button" className="button small" disabled={props.busy} onClick={props.onVerify}>
        {props.busy ? "Verifying…" : "Verify again"}
      </button>
    </div>
  );
}

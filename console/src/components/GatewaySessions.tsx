import { lazy, Suspense, useCallback, useEffect, useState } from "react";
import type { SessionView, TranscriptRecordView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { useLiveUpdates } from "../lib/live";
import { formatDateTime } from "../lib/time";
import { Empty, ErrorNotice } from "./common";
import { UserText } from "./UserText";

// The player (and its WebAssembly terminal) is a chunk of its own, fetched only for an SSH shell.
const SshPlayer = lazy(() => import("./SshPlayer").then((module) => ({ default: module.SshPlayer })));

/**
 * A grant's gateway sessions (PostgreSQL, SSH) and their transcripts: what was done with the
 * access, shown on the grant page and to the reviewer. Read from `/v1/grants/:id/sessions` and
 * `/v1/sessions/:id/transcript` (src/api/sessions.schema.ts), visible to whoever sees the grant.
 * Statement text is the user's: it is shown as text (UserText), never as markup.
 */

/** Records fetched per page; a long session shows its first pages and says there is more. */
const PAGE = 200;

interface Transcript {
  records: TranscriptRecordView[];
  more: number | null;
}

export function GatewaySessions({ grantId, open }: { grantId: string; open: boolean }) {
  const { api } = useSignedIn();
  const [sessions, setSessions] = useState<SessionView[] | null>(null);
  const [transcripts, setTranscripts] = useState<Record<string, Transcript>>({});
  const [error, setError] = useState<unknown>(null);

  const load = useCallback(() => {
    api
      .get<{ sessions: SessionView[] }>(`/v1/grants/${encodeURIComponent(grantId)}/sessions`)
      .then(async ({ sessions: found }) => {
        setSessions(found);
        const loaded: Record<string, Transcript> = {};
        for (const session of found) {
          const page = await api.get<{ records: TranscriptRecordView[]; nextAfterSeq: number | null }>(
            `/v1/sessions/${encodeURIComponent(session.id)}/transcript`,
            { limit: PAGE },
          );
          loaded[session.id] = { records: page.records, more: page.nextAfterSeq };
        }
        setTranscripts(loaded);
        setError(null);
      })
      .catch(setError);
  }, [api, grantId]);
  useEffect(load, [load]);
  // Statements arrive as `session.*` events on the grant; while it is open the page follows them.
  useLiveUpdates((event) => event.subject === grantId && event.type.startsWith("session."), load, 5000, {
    pollWhileLive: open,
  });

  return (
    <section className="panel panel-wide" aria-labelledby={`sessions-${grantId}`} data-sessions={grantId}>
      <h2 id={`sessions-${grantId}`}>Gateway sessions</h2>
      <ErrorNotice error={error} />
      {sessions === null ? null : sessions.length === 0 ? (
        <Empty>No session through the gateway.</Empty>
      ) : (
        sessions.map((session) => (
          <SessionTranscript key={session.id} session={session} transcript={transcripts[session.id]} />
        ))
      )}
    </section>
  );
}

function SessionTranscript({
  session,
  transcript,
}: {
  session: SessionView;
  transcript: Transcript | undefined;
}) {
  const statements = (transcript?.records ?? []).filter((record) => record.kind === "statement");
  const others = (transcript?.records ?? []).filter((record) => record.kind !== "statement");
  return (
    <article className="session" data-session={session.id}>
      <h3>
        {session.protocol} session to {session.resource}{" "}
        <span className="muted">
          from {session.clientAddress ?? "an unknown address"}, {formatDateTime(session.startedAt)} →{" "}
          {session.endedAt ? formatDateTime(session.endedAt) : "open"}
        </span>
      </h3>
      {session.endReason ? (
        <p className="session-end" data-end-reason>
          Ended: <UserText text={session.endReason} />
        </p>
      ) : null}
      {statements.length > 0 ? (
        <table className="transcript">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Time</th>
              <th scope="col">Statement</th>
              <th scope="col">Duration</th>
              <th scope="col">Rows</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {statements.map((record) => (
              <StatementRow key={record.seq} record={record} />
            ))}
          </tbody>
        </table>
      ) : session.protocol === "postgres" ? (
        <Empty>No statement recorded.</Empty>
      ) : null}
      {session.protocol === "ssh" && others.some((record) => record.kind === "shell") ? (
        <Suspense fallback={<p className="muted">Loading the player…</p>}>
          <SshPlayer sessionId={session.id} />
        </Suspense>
      ) : null}
      {others.length > 0 && session.protocol !== "postgres" ? (
        <p className="muted">{others.length} recorded event(s) of this session (see `firebreak sessions`).</p>
      ) : null}
      {transcript?.more !== null && transcript?.more !== undefined ? (
        <p className="muted">
          The first {transcript.records.length} of {session.records} records are shown; `firebreak sessions{" "}
          {session.grantId} --transcript {session.id}` prints them all.
        </p>
      ) : null}
    </article>
  );
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");
const count = (value: unknown): string => (typeof value === "number" ? String(value) : "");

function StatementRow({ record }: { record: TranscriptRecordView }) {
  const payload = record.payload;
  const refused = payload.refused as { rule?: unknown; message?: unknown } | undefined;
  const sqlstate = text(payload.sqlstate);
  const duration = typeof payload.durationMs === "number" ? `${payload.durationMs} ms` : "";
  return (
    <tr
      data-seq={record.seq}
      data-refused={refused ? "true" : undefined}
      className={refused ? "refused" : undefined}
    >
      <td>{record.seq}</td>
      <td>{formatDateTime(record.time)}</td>
      <td>
        <code>
          <UserText text={text(payload.text)} multiline />
        </code>
      </td>
      <td>{duration}</td>
      <td>{count(payload.rows)}</td>
      <td data-outcome>
        {refused ? (
          <strong>
            Refused by {text(refused.rule)}: <UserText text={text(refused.message)} />
          </strong>
        ) : sqlstate ? (
          `error ${sqlstate}`
        ) : (
          text(payload.tag)
        )}
      </td>
    </tr>
  );
}

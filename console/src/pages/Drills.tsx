import { useEffect, useState } from "react";
import type { DrillStatusView } from "../api/types";
import { useSignedIn } from "../auth/session";
import { Empty, ErrorNotice, Loading, PageTitle } from "../components/common";
import { formatDateTime } from "../lib/time";

/** Each zone's break-glass drills: last result (with the failing step), next run, overdue. */
export function DrillsPage() {
  const { api } = useSignedIn();
  const [drills, setDrills] = useState<DrillStatusView[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api
      .get<{ drills: DrillStatusView[] }>("/v1/drills")
      .then((reply) => setDrills(reply.drills))
      .catch(setError);
  }, [api]);
  const zones = [...new Set((drills ?? []).map((d) => d.zone))].sort();
  return (
    <>
      <PageTitle title="Drills">Break-glass drills</PageTitle>
      {error ? <ErrorNotice error={error} /> : null}
      {drills === null && !error ? <Loading what="drills" /> : null}
      {drills?.length === 0 ? <Empty>No drills are configured.</Empty> : null}
      {zones.map((zone) => (
        <section key={zone} aria-label={`Drills of ${zone}`}>
          <h2>{zone}</h2>
          <table>
            <thead>
              <tr>
                <th>Drill</th>
                <th>Target</th>
                <th>Last result</th>
                <th>Last passed</th>
                <th>Next run</th>
              </tr>
            </thead>
            <tbody>
              {(drills ?? [])
                .filter((d) => d.zone === zone)
                .map((d) => (
                  <tr key={d.name} data-drill={d.name}>
                    <td>
                      {d.name}
                      {d.overdue ? <strong> overdue</strong> : null}
                    </td>
                    <td>
                      {d.resource} / {d.role}
                    </td>
                    <td>
                      {d.last
                        ? `${d.last.outcome}${d.last.failedStep ? ` at ${d.last.failedStep}` : ""} (${formatDateTime(d.last.startedAt)})`
                        : "never run"}
                    </td>
                    <td>{d.lastPassedAt ? formatDateTime(d.lastPassedAt) : "never"}</td>
                    <td>{d.nextRunAt ? formatDateTime(d.nextRunAt) : "-"}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </section>
      ))}
    </>
  );
}

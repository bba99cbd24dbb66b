import {
  type DrillRunView,
  drillNameParams,
  drillRunReply,
  drillsReply,
  readinessReply,
} from "../api/drills.schema.js";
import { assert } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { DrillService } from "./drill.service.js";

type Run = NonNullable<Awaited<ReturnType<DrillService["status"]>>[number]["last"]>;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function runView(run: Run): DrillRunView {
  return {
    id: run.id,
    drill: run.drill,
    zone: run.zone,
    trigger: run.trigger,
    actor: run.actor,
    grantId: run.grantId,
    outcome: run.outcome,
    failedStep: run.failedStep,
    steps: run.steps,
    startedAt: new Date(run.startedAt).toISOString(),
    finishedAt: iso(run.finishedAt),
  };
}

/** Drills: their status for everyone signed in, running one for administrators; readiness. */
export function createDrillRoutes(deps: {
  drills: Pick<DrillService, "status" | "run" | "readiness">;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/drills",
      summary: "Each drill's schedule, last result and next run",
      tag: "drills",
      auth: "user",
      reply: drillsReply,
      handler: async () => ({
        drills: (await deps.drills.status()).map((d) => ({
          name: d.name,
          policy: d.policy,
          zone: d.zone,
          resource: d.resource,
          role: d.role,
          schedule: d.schedule,
          nextRunAt: iso(d.nextRunAt),
          overdue: d.overdue,
          lastPassedAt: iso(d.lastPassedAt),
          last: d.last ? runView(d.last) : null,
        })),
      }),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/drills/:name/run",
      summary: "Run a drill now (administrators); answers once every step has ended",
      tag: "drills",
      auth: "user",
      params: drillNameParams,
      reply: drillRunReply,
      handler: async ({ principal, params }) => {
        assert(principal.isAdmin, "FORBIDDEN", "only administrators can run a drill");
        return {
          run: runView(await deps.drills.run(params.name, { trigger: "manual", actor: principal.name })),
        };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/readiness",
      summary:
        "For every break-glass policy, who could use it now and what stands in each eligible person's way",
      tag: "drills",
      auth: "user",
      reply: readinessReply,
      handler: async ({ principal }) => {
        assert(
          principal.isAdmin || principal.isAuditor,
          "FORBIDDEN",
          "only administrators and auditors can see readiness",
        );
        return { policies: await deps.drills.readiness() };
      },
    }),
  ];
}

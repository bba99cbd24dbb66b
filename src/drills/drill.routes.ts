import type { FastifyReply } from "fastify";
import {
  type DrillRunStreamLine,
  type DrillRunView,
  drillNameParams,
  drillRunReply,
  drillRunStreamLine,
  drillsReply,
  readinessReply,
} from "../api/drills.schema.js";
import { assert, isFirebreakError } from "../errors.js";
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

const NDJSON = "application/x-ndjson";

/**
 * The run's lines as they come. Nothing is sent before the first step, so a refusal before the
 * run begins (not found, busy, deferred) is the ordinary error reply; after that, the status is
 * sent and a failure can only be a last `error` line.
 */
function lineWriter(reply: FastifyReply) {
  let started = false;
  return {
    get started() {
      return started;
    },
    write(line: DrillRunStreamLine) {
      if (!started) {
        reply.hijack();
        reply.raw.writeHead(200, { "content-type": `${NDJSON}; charset=utf-8`, "cache-control": "no-store" });
        started = true;
      }
      reply.raw.write(`${JSON.stringify(drillRunStreamLine.parse(line))}\n`);
    },
    end() {
      reply.raw.end();
    },
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
      summary:
        "Run a drill now (administrators); answers once every step has ended, or with 'Accept: application/x-ndjson' streams a {step} line as each step ends and a last {run} line",
      tag: "drills",
      auth: "user",
      params: drillNameParams,
      reply: drillRunReply,
      handler: async ({ principal, params, request, reply }) => {
        assert(principal.isAdmin, "FORBIDDEN", "only administrators can run a drill");
        const options = { trigger: "manual" as const, actor: principal.name };
        if (!String(request.headers.accept ?? "").includes(NDJSON))
          return { run: runView(await deps.drills.run(params.name, options)) };
        const out = lineWriter(reply);
        try {
          const run = await deps.drills.run(params.name, {
            ...options,
            onStep: (step) => out.write({ step }),
          });
          out.write({ run: runView(run) });
        } catch (error) {
          if (!out.started) throw error;
          out.write({
            error: isFirebreakError(error)
              ? { code: error.code, message: error.message, requestId: request.id }
              : {
                  code: "INTERNAL",
                  message: "internal error; quote the request id to an administrator",
                  requestId: request.id,
                },
          });
        }
        out.end();
        return undefined;
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

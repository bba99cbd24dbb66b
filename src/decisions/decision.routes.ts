import { z } from "zod";
import { nameSchema } from "../config/schema.js";
import type { Db } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import { countBlockingOverdueReviews } from "../grants/grant.repo.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { AccessIndex } from "../policy/access-index.js";
import { explain, zoneOfTarget } from "../policy/engine.js";
import { durationText } from "../requests/request.routes.js";
import type { Runtime } from "../server/runtime.js";
import type { Clock } from "../shared/clock.js";
import { NO_INCIDENT, type SignalService } from "../signals/signal.service.js";
import type { UserService } from "../users/user.service.js";

export function createDecisionRoutes(deps: {
  db: Db;
  clock: Clock;
  current: () => Runtime;
  users: Pick<UserService, "resolve">;
  signals: Pick<SignalService, "snapshot">;
  access: () => AccessIndex;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "POST",
      url: "/v1/decisions",
      summary: "Explain a decision: allowed or not, every unmet condition, and what it would take",
      tag: "policy",
      auth: "user",
      body: z
        .strictObject({
          user: z.string().min(1).max(128).optional(),
          zone: nameSchema.optional(),
          resource: nameSchema.optional(),
          role: nameSchema,
          duration: durationText.optional(),
          reason: z.string().max(2000).default(""),
          ticket: z.string().max(200).nullish(),
          sourceZone: z.string().max(63).nullish(),
        })
        .refine(
          (b) => (b.zone === undefined) !== (b.resource === undefined),
          "exactly one of 'zone' or 'resource'",
        ),
      reply: z.object({ user: z.string(), explanation: z.unknown() }),
      async handler({ principal, body, request }) {
        const name = body.user ?? principal.name;
        assert(
          name === principal.name || principal.isAdmin || principal.isAuditor,
          "FORBIDDEN",
          "only administrators and auditors can explain decisions for someone else",
        );
        const subject = name === principal.name ? principal : await deps.users.resolve(name);
        if (!subject) throw new FirebreakError("NOT_FOUND", `no user '${name}'`);
        const runtime = deps.current();
        const now = deps.clock.now();
        const sourceZone =
          body.sourceZone === undefined ? runtime.sourceZoneOf(request.ip ?? null) : body.sourceZone;
        const zone = zoneOfTarget(
          runtime.policy,
          body.resource ? { resource: body.resource } : { zone: body.zone },
        );
        const signals = zone
          ? await deps.signals.snapshot(zone, sourceZone ?? null, now)
          : {
              incident: NO_INCIDENT,
              sourceZone: sourceZone ?? null,
            };
        const explanation = explain(runtime.policy, {
          principal: { name: subject.name, groups: subject.groups },
          target: { zone: body.zone ?? null, resource: body.resource ?? null },
          role: body.role,
          durationMs: body.duration,
          reason: body.reason,
          ticket: body.ticket ?? null,
          sourceZone: sourceZone ?? null,
          signals,
          blockingOverdueReviews: await countBlockingOverdueReviews(deps.db, subject.name, now),
          now,
        });
        return { user: subject.name, explanation };
      },
    }),
    defineRoute({
      method: "GET",
      url: "/v1/access",
      summary:
        "The enforcement check: does this user hold this role in this zone (or on this resource) right now",
      tag: "policy",
      auth: "user",
      query: z
        .object({
          user: z.string().min(1).max(128),
          zone: nameSchema.optional(),
          resource: nameSchema.optional(),
          role: nameSchema,
        })
        .refine(
          (q) => (q.zone === undefined) !== (q.resource === undefined),
          "exactly one of 'zone' or 'resource'",
        ),
      reply: z.object({
        user: z.string(),
        zone: z.string().nullable(),
        resource: z.string().nullable(),
        role: z.string(),
        allowed: z.boolean(),
      }),
      async handler({ principal, query }) {
        assert(
          query.user === principal.name || principal.isAdmin || principal.isAuditor,
          "FORBIDDEN",
          "only administrators and auditors can check someone else's access",
        );
        const now = deps.clock.now();
        const index = deps.access();
        const allowed = query.resource
          ? index.checkResource(query.user, query.resource, query.role, now)
          : index.check(query.user, query.zone ?? "", query.role, now);
        return {
          user: query.user,
          zone: query.zone ?? null,
          resource: query.resource ?? null,
          role: query.role,
          allowed,
        };
      },
    }),
  ];
}

import {
  emergencyKitReply,
  emergencyReportBody,
  emergencyReportReply,
  emergencyZoneParams,
} from "../api/emergency.schema.js";
import { assert } from "../errors.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { EmergencyService } from "./emergency.service.js";

/** Emergency kits: administrators fetch a zone's current kit and report a journal of openings. */
export function createEmergencyRoutes(deps: {
  emergency: Pick<EmergencyService, "currentKit" | "importJournal">;
}): AnyRoute[] {
  return [
    defineRoute({
      method: "POST",
      url: "/v1/emergency/:zone/kit",
      summary: "The zone's current sealed emergency kit (made when none is live); administrators",
      tag: "emergency",
      auth: "user",
      params: emergencyZoneParams,
      reply: emergencyKitReply,
      async handler({ principal, params }) {
        assert(principal.isAdmin, "FORBIDDEN", "only administrators can fetch emergency kits");
        return { kit: await deps.emergency.currentKit(params.zone, principal.name) };
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/emergency/report",
      summary:
        "Import a journal of emergency kit openings: break-glass grants due for review, alerts, and the kits rotated; administrators",
      tag: "emergency",
      auth: "user",
      body: emergencyReportBody,
      reply: emergencyReportReply,
      async handler({ principal, body }) {
        assert(principal.isAdmin, "FORBIDDEN", "only administrators can report emergency kit openings");
        return deps.emergency.importJournal(body.journal, principal.name);
      },
    }),
  ];
}

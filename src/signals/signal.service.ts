import { z } from "zod";
import type { FirebreakConfig } from "../config/schema.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import type { IncidentSignal, SignalSource, SignalSourceKind } from "../plugins/contracts.js";
import { newId } from "../shared/ids.js";
import type { InTransaction } from "../shared/transaction.js";
import { findIncident, insertIncident, listOpenIncidents, updateIncident } from "./incident.repo.js";

/** What policy sees of the outside world for one zone at one moment. */
export interface SignalSnapshot {
  incident: { open: boolean; severity: number; id: string; title: string; ageSeconds: number };
  sourceZone: string | null;
}

/** No incident: severity 99 so that `severity <= 2` is false and never accidentally true. */
export const NO_INCIDENT: SignalSnapshot["incident"] = {
  open: false,
  severity: 99,
  id: "",
  title: "",
  ageSeconds: 0,
};

export function createSignalService(deps: {
  db: Db;
  inTransaction: InTransaction;
  config: () => FirebreakConfig;
  sources: () => Record<SignalSourceKind, SignalSource | null>;
}) {
  /** Opens, updates or resolves the incident one signal describes, with its audit event. */
  async function applySignal(actor: string, signal: IncidentSignal) {
    await deps.inTransaction(async (unit) => {
      const existing = await findIncident(unit.tx, signal.source, signal.externalId);
      const context = {
        source: signal.source,
        externalId: signal.externalId,
        severity: signal.severity,
        title: signal.title,
      };
      if (signal.status === "open") {
        if (!existing) {
          const id = newId("inc", unit.now);
          await insertIncident(unit.tx, { id, ...signal, openedAt: unit.now, resolvedAt: null });
          await unit.audit({
            type: "incident.opened",
            actor: actor,
            zone: signal.zone,
            subject: id,
            context,
          });
        } else {
          const reopened = existing.resolvedAt !== null;
          await updateIncident(unit.tx, existing.id, {
            severity: signal.severity,
            title: signal.title,
            resolvedAt: null,
            openedAt: reopened ? unit.now : existing.openedAt,
          });
          if (reopened || existing.severity !== signal.severity) {
            await unit.audit({
              type: reopened ? "incident.opened" : "incident.updated",
              actor: actor,
              zone: signal.zone,
              subject: existing.id,
              context,
            });
          }
        }
      } else if (existing && existing.resolvedAt === null) {
        await updateIncident(unit.tx, existing.id, {
          severity: existing.severity,
          title: existing.title,
          resolvedAt: unit.now,
          openedAt: existing.openedAt,
        });
        await unit.audit({
          type: "incident.resolved",
          actor: actor,
          zone: signal.zone,
          subject: existing.id,
          context,
        });
      }
    });
  }

  return {
    /** The worst open incident in the zone (lowest severity number, then oldest). */
    async snapshot(zone: string, sourceZone: string | null, now: number): Promise<SignalSnapshot> {
      const [worst] = await listOpenIncidents(deps.db, zone);
      return {
        incident: worst
          ? {
              open: true,
              severity: worst.severity,
              id: worst.externalId,
              title: worst.title,
              ageSeconds: Math.max(0, Math.floor((now - worst.openedAt) / 1000)),
            }
          : NO_INCIDENT,
        sourceZone,
      };
    },

    /**
     * An incident declared by an administrator (an incident commander without a paging system, or
     * the demo). Audited like any signal, with the administrator as the actor.
     */
    async declare(
      actor: string,
      input: { zone: string; severity: number; title: string; status: "open" | "resolved"; id: string },
    ) {
      if (!Object.hasOwn(deps.config().zones, input.zone))
        throw new FirebreakError("NOT_FOUND", `no zone '${input.zone}'`);
      return applySignal(actor, {
        source: "generic",
        externalId: `manual:${input.id}`,
        zone: input.zone,
        severity: input.severity,
        title: input.title,
        status: input.status,
      });
    },

    async openIncidents() {
      return listOpenIncidents(deps.db);
    },

    /**
     * Authenticates and applies one webhook delivery. A bad signature is audited and refused with
     * UNAUTHENTICATED; incidents for zones the configuration does not know are ignored and counted.
     */
    async ingest(
      kind: SignalSourceKind,
      headers: Record<string, string | string[] | undefined>,
      rawBody: Buffer,
      body: unknown,
    ) {
      const source = deps.sources()[kind];
      if (!source) throw new FirebreakError("NOT_FOUND", `the '${kind}' signal source is not configured`);
      if (!source.authenticate(headers, rawBody)) {
        await deps.inTransaction((unit) =>
          unit.audit({
            type: "signal.rejected",
            actor: `signal:${kind}`,
            context: { source: kind, reason: "bad signature or token" },
          }),
        );
        throw new FirebreakError("UNAUTHENTICATED", "the signal's signature or token is not valid");
      }
      let signals: ReturnType<SignalSource["parse"]>;
      try {
        signals = source.parse(body);
      } catch (error) {
        const issues =
          error instanceof z.ZodError
            ? error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`)
            : [];
        throw new FirebreakError("VALIDATION_FAILED", `the ${kind} payload is not valid`, { issues });
      }
      const zones = deps.config().zones;
      let applied = 0;
      let ignored = 0;
      for (const signal of signals) {
        if (!Object.hasOwn(zones, signal.zone)) {
          ignored++;
          continue;
        }
        await applySignal(`signal:${kind}`, signal);
        applied++;
      }
      return { applied, ignored };
    },
  };
}
export type SignalService = ReturnType<typeof createSignalService>;

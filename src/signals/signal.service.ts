import { z } from "zod";
import type { FirebreakConfig } from "../config/schema.js";
import type { InTransaction, UnitOfWork } from "../db/transaction.js";
import type { Db, Executor } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import type { IncidentSignal, SignalDelivery, SignalSource, SignalSourceKind } from "../plugins/contracts.js";
import type { Clock } from "../shared/clock.js";
import { newId } from "../shared/ids.js";
import { insertIncident, listOpenIncidents, lockIncident, updateIncident } from "./incident.repo.js";
import { deleteExpiredReceipts, recordReceipt } from "./receipt.repo.js";
import { createRejectionTracker, REJECTION_INTERVAL_MS, type RejectionReason } from "./rejections.js";

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
  clock: Clock;
  inTransaction: InTransaction;
  config: () => FirebreakConfig;
  sources: () => Record<SignalSourceKind, SignalSource | null>;
}) {
  const rejections = createRejectionTracker();
  let receiptsPurgedAt = Number.NEGATIVE_INFINITY;

  /**
   * Opens, updates or resolves the incident one signal describes, with its audit event, in the
   * caller's transaction. Events are applied in the order the sender says they happened: one older
   * than the last applied is superseded, and a resolved incident reopens only for a strictly newer
   * event, so a replayed or late "open" cannot undo a resolution. An administrator's declaration
   * (`byHand`) is a command of the moment and always applies.
   */
  async function applySignal(
    unit: UnitOfWork,
    actor: string,
    signal: IncidentSignal,
    byHand = false,
  ): Promise<"applied" | "superseded"> {
    const context = {
      source: signal.source,
      externalId: signal.externalId,
      severity: signal.severity,
      title: signal.title,
      occurredAt: new Date(signal.occurredAt).toISOString(),
    };
    let existing = await lockIncident(unit.tx, signal.source, signal.externalId);
    if (!existing) {
      const id = newId("inc", unit.now);
      const open = signal.status === "open";
      // A resolution seen first is kept too, so the older "open" delivered after it is superseded.
      const inserted = await insertIncident(unit.tx, {
        id,
        ...signal,
        openedAt: unit.now,
        resolvedAt: open ? null : unit.now,
        lastEventAt: signal.occurredAt,
      });
      if (inserted) {
        await unit.audit({
          type: open ? "incident.opened" : "incident.resolved",
          actor,
          zone: signal.zone,
          subject: id,
          context,
        });
        return "applied";
      }
      // Another delivery created it meanwhile; judge this one against what that one wrote.
      existing = await lockIncident(unit.tx, signal.source, signal.externalId);
      if (!existing) throw new FirebreakError("CONFLICT", "the incident changed while being recorded");
    }
    const resolved = existing.resolvedAt !== null;
    if (
      !byHand &&
      (signal.occurredAt < existing.lastEventAt ||
        (signal.status === "open" && resolved && signal.occurredAt === existing.lastEventAt))
    ) {
      return "superseded";
    }
    const lastEventAt = Math.max(existing.lastEventAt, signal.occurredAt);
    if (signal.status === "open") {
      await updateIncident(unit.tx, existing.id, {
        severity: signal.severity,
        title: signal.title,
        resolvedAt: null,
        openedAt: resolved ? unit.now : existing.openedAt,
        lastEventAt,
      });
      if (resolved || existing.severity !== signal.severity) {
        await unit.audit({
          type: resolved ? "incident.opened" : "incident.updated",
          actor,
          zone: signal.zone,
          subject: existing.id,
          context,
        });
      }
      return "applied";
    }
    await updateIncident(unit.tx, existing.id, {
      severity: existing.severity,
      title: existing.title,
      resolvedAt: resolved ? existing.resolvedAt : unit.now,
      openedAt: existing.openedAt,
      lastEventAt,
    });
    if (!resolved) {
      await unit.audit({
        type: "incident.resolved",
        actor,
        zone: signal.zone,
        subject: existing.id,
        context,
      });
    }
    return "applied";
  }

  /**
   * Counts a refused delivery towards its sender's summary and throws the refusal: its own code,
   * or RATE_LIMITED once the sender is over its allowance for the interval. No audit event is
   * written here; `maintain` writes one per sender and interval.
   */
  function refuse(kind: SignalSourceKind, clientAddress: string | null, reason: RejectionReason): never {
    const { limited, retryAfterMs } = rejections.note(kind, clientAddress, reason, deps.clock.now());
    if (limited) {
      throw new FirebreakError(
        "RATE_LIMITED",
        "too many refused signals from this address; try again later",
        {
          retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
        },
      );
    }
    if (reason === "stale")
      throw new FirebreakError("SIGNAL_STALE", "the signal's timestamp is outside the accepted window");
    if (reason === "replayed")
      throw new FirebreakError("SIGNAL_REPLAYED", "this signal delivery was received before");
    throw new FirebreakError("UNAUTHENTICATED", "the signal's signature or token is not valid");
  }

  /** Writes one `signal.rejected` per sender whose interval has ended (every one when `all`). */
  async function flushRejections(all: boolean): Promise<number> {
    const due = rejections.take(deps.clock.now(), all);
    if (due.length === 0) return 0;
    try {
      await deps.inTransaction(async (unit) => {
        for (const summary of due) {
          await unit.audit({
            type: "signal.rejected",
            actor: `signal:${summary.source}`,
            context: {
              source: summary.source,
              clientAddress: summary.clientAddress,
              count: summary.count,
              reasons: summary.reasons,
              rateLimited: summary.rateLimited,
              firstAt: new Date(summary.firstAt).toISOString(),
              lastAt: new Date(summary.lastAt).toISOString(),
              intervalSeconds: REJECTION_INTERVAL_MS / 1000,
            },
          });
        }
      });
    } catch (error) {
      rejections.restore(due);
      throw error;
    }
    return due.length;
  }

  return {
    /**
     * The worst open incident in the zone (lowest severity number, then oldest). Inside a
     * transaction pass its executor: on SQLite the database has a single connection.
     */
    async snapshot(
      zone: string,
      sourceZone: string | null,
      now: number,
      executor: Executor = deps.db,
    ): Promise<SignalSnapshot> {
      const [worst] = await listOpenIncidents(executor, zone);
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
      await deps.inTransaction((unit) =>
        applySignal(
          unit,
          actor,
          {
            source: "generic",
            externalId: `manual:${input.id}`,
            zone: input.zone,
            severity: input.severity,
            title: input.title,
            status: input.status,
            occurredAt: unit.now,
          },
          true,
        ),
      );
    },

    async openIncidents() {
      return listOpenIncidents(deps.db);
    },

    /**
     * Authenticates and applies one webhook delivery. Refused: a bad token or signature
     * (UNAUTHENTICATED), a signed time outside the source's window (SIGNAL_STALE), a delivery seen
     * before (SIGNAL_REPLAYED), and any of these beyond the sender's allowance (RATE_LIMITED).
     * Incidents for zones the configuration does not know are ignored and counted; events older
     * than what an incident last applied are superseded and counted.
     */
    async ingest(
      kind: SignalSourceKind,
      headers: Record<string, string | string[] | undefined>,
      rawBody: Buffer,
      body: unknown,
      clientAddress: string | null,
    ) {
      const source = deps.sources()[kind];
      if (!source) throw new FirebreakError("NOT_FOUND", `the '${kind}' signal source is not configured`);
      if (!source.authenticate(headers, rawBody)) refuse(kind, clientAddress, "bad-credentials");
      let delivery: SignalDelivery;
      try {
        delivery = source.parse(body, headers);
      } catch (error) {
        const issues =
          error instanceof z.ZodError
            ? error.issues.slice(0, 5).map((i) => `${i.path.join(".")}: ${i.message}`)
            : [];
        throw new FirebreakError("VALIDATION_FAILED", `the ${kind} payload is not valid`, { issues });
      }
      const now = deps.clock.now();
      const { sentAt, receipt } = delivery;
      if (sentAt !== null && !(Math.abs(now - sentAt) <= source.toleranceMs))
        refuse(kind, clientAddress, "stale");
      const zones = deps.config().zones;
      const outcome = await deps.inTransaction(async (unit) => {
        if (receipt !== null) {
          // Kept until no copy of the delivery could pass the window any more, with as much again
          // to spare for a clock that steps back.
          const expiresAt = Math.max(sentAt ?? unit.now, unit.now) + 2 * source.toleranceMs;
          const fresh = await recordReceipt(unit.tx, {
            source: kind,
            receipt,
            receivedAt: unit.now,
            expiresAt,
          });
          if (!fresh) return null;
        }
        const counts = { applied: 0, ignored: 0, superseded: 0 };
        // Incident rows are locked in one order by every delivery, so two cannot deadlock; the
        // sort is stable, so events about one incident keep the order the sender gave them.
        const ordered = [...delivery.signals].sort((a, b) =>
          a.externalId < b.externalId ? -1 : a.externalId > b.externalId ? 1 : 0,
        );
        for (const signal of ordered) {
          if (!Object.hasOwn(zones, signal.zone)) counts.ignored++;
          else counts[await applySignal(unit, `signal:${kind}`, signal)]++;
        }
        return counts;
      });
      if (outcome === null) refuse(kind, clientAddress, "replayed");
      return outcome;
    },

    /**
     * Periodic upkeep: writes the refusal summaries of ended intervals (all of them when `final`,
     * at shutdown) and, at most once per interval, forgets receipts past their expiry.
     */
    async maintain(final = false): Promise<{ summaries: number; receiptsDeleted: number }> {
      const summaries = await flushRejections(final);
      let receiptsDeleted = 0;
      const now = deps.clock.now();
      if (now - receiptsPurgedAt >= REJECTION_INTERVAL_MS) {
        receiptsDeleted = await deleteExpiredReceipts(deps.db, now);
        receiptsPurgedAt = now;
      }
      return { summaries, receiptsDeleted };
    },
  };
}
export type SignalService = ReturnType<typeof createSignalService>;

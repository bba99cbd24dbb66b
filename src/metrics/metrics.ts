import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { AuditEvent } from "../audit/chain.js";
import type { DeliveryObserver, SinkStatus } from "../audit/delivery.js";
import { type Db, REQUEST_STATES } from "../db/types.js";
import type { EventBus } from "../shared/events.js";
import {
  countActiveGrantsByZone,
  countFailingRevocations,
  countRequestsByState,
  findGrantClosedAt,
  findRequestTiming,
} from "./metrics.repo.js";

/**
 * The process's own metrics (CPU, memory, event loop, GC), collected once per process: the
 * collectors cannot be stopped, so a registry per server would leak them in tests.
 */
let processRegistry: Registry | null = null;
function processMetrics(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * Prometheus metrics, one registry per server (so tests running several servers in a process keep
 * them apart). Gauges that describe stored state (requests by state, active grants, sink lag) are
 * read from the database at scrape time, so they are right after a restart and across processes;
 * counters and histograms count what this process saw happen.
 */
export function createMetrics(deps: {
  db: Db;
  bus: Pick<EventBus, "subscribe">;
  sinks: () => Promise<SinkStatus[]>;
  /** Each drill's last pass (epoch ms) and whether it is overdue, read at scrape time. */
  drills?: () => Promise<{ name: string; lastPassedAt: number | null; overdue: boolean }[]>;
  onError?: (error: unknown) => void;
}) {
  const { db } = deps;
  const registry = new Registry();

  new Gauge({
    name: "firebreak_requests",
    help: "Requests by state",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      const counts = await countRequestsByState(db);
      for (const state of REQUEST_STATES) this.set({ state }, counts.get(state) ?? 0);
    },
  });

  new Gauge({
    name: "firebreak_active_grants",
    help: "Grants active now, by zone",
    labelNames: ["zone"],
    registers: [registry],
    async collect() {
      const rows = await countActiveGrantsByZone(db);
      this.reset();
      for (const row of rows) this.set({ zone: row.zone }, row.count);
    },
  });

  new Gauge({
    name: "firebreak_grants_revocation_failing",
    help: "Closed grants whose credential or path could not yet be verified as revoked",
    registers: [registry],
    async collect() {
      this.set(await countFailingRevocations(db));
    },
  });

  const timeToApprove = new Histogram({
    name: "firebreak_time_to_approve_seconds",
    help: "From request to approval (auto-approved requests count as 0)",
    labelNames: ["via"],
    buckets: [0, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21_600, 86_400],
    registers: [registry],
  });
  const timeToRevoke = new Histogram({
    name: "firebreak_time_to_revoke_seconds",
    help: "From a grant's close (expiry or revoke) to its verified revocation",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const revocationFailures = new Counter({
    name: "firebreak_revocation_failures_total",
    help: "Failed attempts to close and verify a grant's access",
    labelNames: ["zone"],
    registers: [registry],
  });
  const decisionLatency = new Histogram({
    name: "firebreak_decision_latency_seconds",
    help: "Time to decide a request: signals, overdue reviews and policy",
    labelNames: ["outcome"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const auditEvents = new Counter({
    name: "firebreak_audit_events_total",
    help: "Audit events committed by this process, by type",
    labelNames: ["type"],
    registers: [registry],
  });

  const sinkDelivered = new Counter({
    name: "firebreak_audit_sink_delivered_total",
    help: "Events delivered to each audit sink",
    labelNames: ["sink"],
    registers: [registry],
  });
  const sinkErrors = new Counter({
    name: "firebreak_audit_sink_errors_total",
    help: "Failed delivery attempts per audit sink",
    labelNames: ["sink"],
    registers: [registry],
  });
  const sinkDeadLettered = new Counter({
    name: "firebreak_audit_sink_dead_lettered_total",
    help: "Events an audit sink gave up on after its attempts ran out",
    labelNames: ["sink"],
    registers: [registry],
  });
  const deliveryLag = new Histogram({
    name: "firebreak_audit_delivery_lag_seconds",
    help: "From an event's commit to its delivery, per sink",
    labelNames: ["sink"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });

  // One scrape reads the sinks' status once for the three gauges below.
  let statusOnce: Promise<SinkStatus[]> | null = null;
  const sinkStatus = () => {
    statusOnce ??= deps.sinks().finally(() => {
      setImmediate(() => {
        statusOnce = null;
      });
    });
    return statusOnce;
  };
  new Gauge({
    name: "firebreak_audit_sink_lag_events",
    help: "Events committed but not yet delivered, per audit sink",
    labelNames: ["sink"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const sink of await sinkStatus()) this.set({ sink: sink.name }, sink.lagEvents);
    },
  });
  new Gauge({
    name: "firebreak_audit_sink_lag_seconds",
    help: "Age of the oldest event not yet delivered, per audit sink",
    labelNames: ["sink"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const sink of await sinkStatus()) this.set({ sink: sink.name }, sink.lagSeconds);
    },
  });
  new Gauge({
    name: "firebreak_audit_sink_dead_letters",
    help: "Dead letters per audit sink, by state (dead, queued for replay, replayed)",
    labelNames: ["sink", "state"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const sink of await sinkStatus())
        for (const [state, count] of Object.entries(sink.deadLetters))
          this.set({ sink: sink.name, state }, count);
    },
  });

  // Drills (src/drills): the last pass and overdue state from the database, step times as seen here.
  const drillSteps = new Histogram({
    name: "firebreak_drill_step_duration_seconds",
    help: "How long each step of a drill took, by drill, step and outcome",
    labelNames: ["drill", "step", "outcome"],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  new Gauge({
    name: "firebreak_drill_last_success_timestamp_seconds",
    help: "When each drill last passed (Unix seconds); absent for a drill that never has",
    labelNames: ["drill"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const drill of (await deps.drills?.()) ?? [])
        if (drill.lastPassedAt !== null) this.set({ drill: drill.name }, drill.lastPassedAt / 1000);
    },
  });
  new Gauge({
    name: "firebreak_drill_overdue",
    help: "1 when a drill has not passed on schedule",
    labelNames: ["drill"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const drill of (await deps.drills?.()) ?? [])
        this.set({ drill: drill.name }, drill.overdue ? 1 : 0);
    },
  });

  async function observeEvent(event: AuditEvent): Promise<void> {
    auditEvents.inc({ type: event.type });
    if (event.type === "drill.completed" && Array.isArray(event.context.steps))
      for (const step of event.context.steps as { name?: unknown; outcome?: unknown; ms?: unknown }[])
        if (step.outcome !== "skipped" && typeof step.ms === "number")
          drillSteps.observe(
            {
              drill: String(event.context.drill ?? ""),
              step: String(step.name),
              outcome: String(step.outcome),
            },
            step.ms / 1000,
          );
    const time = Date.parse(event.time);
    if (event.type === "request.approved" && event.subject) {
      const request = await findRequestTiming(db, event.subject);
      if (request)
        timeToApprove.observe(
          { via: request.autoApproved ? "policy" : "approvers" },
          Math.max(0, (time - request.createdAt) / 1000),
        );
    } else if (event.type === "revocation.verified" && event.subject) {
      const closedAt = await findGrantClosedAt(db, event.subject);
      if (closedAt !== null) timeToRevoke.observe(Math.max(0, (time - closedAt) / 1000));
    } else if (event.type === "alert.raised" && event.context.alert === "revocation-failed") {
      revocationFailures.inc({ zone: event.zone ?? "" });
    }
  }

  const unsubscribe = deps.bus.subscribe((event) => {
    observeEvent(event).catch((error) => deps.onError?.(error));
  });

  const observer: DeliveryObserver = {
    delivered(sink, lagSeconds) {
      sinkDelivered.inc({ sink }, lagSeconds.length);
      for (const lag of lagSeconds) deliveryLag.observe({ sink }, lag);
    },
    failed(sink) {
      sinkErrors.inc({ sink });
    },
    deadLettered(sink) {
      sinkDeadLettered.inc({ sink });
    },
  };

  return {
    registry,
    /** For the audit delivery to report through. */
    observer,
    /** For the request service: how long a decision took. */
    observeDecision(outcome: string, seconds: number) {
      decisionLatency.observe({ outcome }, seconds);
    },
    /** The Prometheus text exposition. */
    async render(): Promise<{ contentType: string; body: string }> {
      const merged = Registry.merge([processMetrics(), registry]);
      return { contentType: registry.contentType, body: await merged.metrics() };
    },
    close() {
      unsubscribe();
    },
  };
}
export type Metrics = ReturnType<typeof createMetrics>;

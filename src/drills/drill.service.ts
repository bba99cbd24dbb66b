import { hostname } from "node:os";
import { readHead } from "../audit/audit.repo.js";
import type { SinkStatus } from "../audit/delivery.js";
import type { FactorKind, FirebreakConfig } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import { listFactors } from "../factors/factor.repo.js";
import { secretAad } from "../grants/delivery.js";
import { PATH_CONNECTOR_PREFIX } from "../grants/effects.js";
import {
  countBlockingOverdueReviews,
  findGrant,
  type GrantRecord,
  insertEffect,
  insertGrant,
  listEffects,
} from "../grants/grant.repo.js";
import type { GrantService } from "../grants/grant.service.js";
import { type CompiledPolicy, explain } from "../policy/engine.js";
import type { SecretBox } from "../secrets/secret-box.js";
import type { Clock } from "../shared/clock.js";
import { newId } from "../shared/ids.js";
import type { SignalService } from "../signals/signal.service.js";
import { listUsers } from "../users/user.repo.js";
import {
  activeDrillGrantIds,
  claimDue,
  clearOverdue,
  type DrillRun,
  type DrillStep,
  ensureScheduled,
  finishRun,
  insertRun,
  latestRuns,
  listRunning,
  listSchedule,
  markOverdueAlerted,
  setRunGrant,
} from "./drill.repo.js";
import {
  DEFAULT_DELIVERY_TIMEOUT_MS,
  DEFAULT_DRILL_GRANT_MS,
  type DrillSettings,
  drillPeriodMs,
  nextDrillTime,
} from "./drill.settings.js";
import { login, type ProbeCredential, ProbeRefused } from "./probes.js";
import { assessReadiness, type EnrolledFactor, type PolicyReadiness } from "./readiness.js";

/** The drill principal: never a person, named in every event a drill writes. */
export const DRILL_PRINCIPAL = "system:drill";

/** The steps of a drill, in order (src/drills/NOTES.md). */
export const DRILL_STEPS = ["decision", "issue", "login", "revoke", "refused", "delivery"] as const;
export type DrillStepName = (typeof DRILL_STEPS)[number];

export interface DrillObserver {
  /** A run ended: its outcome, each step's time, and when. */
  finished(drill: string, outcome: DrillRun["outcome"], steps: readonly DrillStep[], at: number): void;
}

export interface DrillStatus {
  name: string;
  policy: string;
  zone: string;
  resource: string;
  role: string;
  schedule: string;
  nextRunAt: number | null;
  overdue: boolean;
  last: DrillRun | null;
  lastPassedAt: number | null;
}

const OWNER = `${hostname()}:${process.pid}`;

/** True when `owner` names a process of this host that no longer runs (a crash, a kill -9). */
function isDeadLocalOwner(owner: string): boolean {
  const [host, pid] = owner.split(":");
  if (host !== hostname() || !pid) return false;
  if (Number(pid) === process.pid) return true;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as { code?: string }).code === "ESRCH";
  }
}

/** A step's failure with what it found, for the report. */
class StepFailure extends Error {
  constructor(
    message: string,
    readonly detail: Record<string, unknown>,
  ) {
    super(message);
  }
}

const failure = (error: unknown): string =>
  error instanceof FirebreakError || error instanceof ProbeRefused || error instanceof StepFailure
    ? error.message
    : error instanceof Error && /^(the |a |no )/.test(error.message)
      ? error.message
      : "the step failed";

/**
 * Break-glass drills (issue 16): the whole path run as `system:drill` against the real target —
 * decision, issuance through the connector, a login and one harmless action, revocation, proof the
 * credential no longer logs in, and every audit sink's confirmation — each step timed, recorded
 * as `drill.completed`, a failure raised as `alert.raised` to the drill's recipients.
 */
export function createDrillService(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  current: () => { config: FirebreakConfig; policy: CompiledPolicy };
  grants: Pick<GrantService, "issueEffects" | "close">;
  box: Pick<SecretBox, "open">;
  signals: Pick<SignalService, "snapshot">;
  /** Audit sinks: where each stands, and a wake-up so they deliver the drill's events now. */
  delivery: { status(): Promise<SinkStatus[]>; poke(): void };
  /** Told about the drill's grant like about any other (access index, expiry scheduler). */
  activated: (grant: GrantRecord) => void;
  enforcerKind: string;
  /** An SSH key pair for a drill on an SSH resource (the certificate signs its public half). */
  sshKeyPair: () => Promise<{ privateKey: string; publicKey: string }>;
  observer?: DrillObserver;
  /** How often a wait for the sinks looks again (real time). */
  pollMs?: number;
}) {
  const running = new Set<string>();

  function settingsOf(name: string): DrillSettings {
    const drill = deps.current().config.drills?.find((d) => d.name === name);
    if (!drill) throw new FirebreakError("NOT_FOUND", `no drill named '${name}'`);
    return drill;
  }

  /** Everyone Firebreak knows, with each one's confirmed factors and blocking overdue reviews. */
  async function readinessFacts(now: number) {
    const config = deps.current().config;
    const byName = new Map<string, Set<string>>();
    for (const [name, user] of Object.entries(config.directory?.users ?? {}))
      byName.set(name, new Set(user.groups));
    for (const user of await listUsers(deps.db)) {
      const groups = byName.get(user.name) ?? new Set<string>();
      for (const group of user.groups) groups.add(group);
      byName.set(user.name, groups);
    }
    const users = [...byName].map(([name, groups]) => ({ name, groups: [...groups] }));
    const factors = new Map<string, EnrolledFactor[]>();
    const overdue = new Map<string, number>();
    for (const user of users) {
      const rows = await listFactors(deps.db, user.name);
      factors.set(
        user.name,
        rows
          .filter((row) => row.confirmed_at !== null)
          .map((row) => ({
            kind: row.kind as FactorKind,
            settlesAt: Number(row.settles_at ?? row.confirmed_at),
          })),
      );
      overdue.set(user.name, await countBlockingOverdueReviews(deps.db, user.name, now));
    }
    return { users, factors, overdueReviews: overdue, now };
  }

  async function readiness(): Promise<PolicyReadiness[]> {
    const { config, policy } = deps.current();
    return assessReadiness(config, policy, await readinessFacts(deps.clock.now()));
  }

  /** Step 1: what it would take for the eligible people, and the engine's answer for one of them. */
  async function decisionStep(
    drill: DrillSettings,
  ): Promise<{ detail: Record<string, unknown>; problem: string | null }> {
    const { config, policy } = deps.current();
    const assessed = assessReadiness(config, policy, await readinessFacts(deps.clock.now())).find(
      (p) => p.policy === drill.policy,
    );
    if (!assessed) return { detail: {}, problem: `policy '${drill.policy}' is no longer configured` };
    const detail: Record<string, unknown> = {
      eligible: assessed.eligible.length,
      readyUsers: assessed.readyUsers,
      blockers: [
        ...assessed.blockers.map((b) => b.code),
        ...assessed.eligible.flatMap((p) => p.blockers.map((b) => `${p.user}: ${b.code}`)),
      ],
    };
    const user = assessed.readyUsers[0];
    if (user === undefined) {
      const first = assessed.blockers[0] ?? assessed.eligible[0]?.blockers[0];
      return {
        detail,
        problem: `nobody could use policy '${drill.policy}' now${first ? `: ${first.message}` : ""}`,
      };
    }
    // The request a responder would make during a severity-1 incident, from an allowed source
    // zone; what depends on the words of the request (justification, ticket) is left out.
    const rules = config.breakGlass?.find((p) => p.name === drill.policy);
    const sourceZone = rules?.sourceZones?.find((z) => (config.zones[z]?.cidrs ?? []).length > 0) ?? null;
    const explanation = explain(policy, {
      principal: { name: user, groups: [] },
      target: { resource: drill.resource },
      role: drill.role,
      reason: "break-glass drill",
      ticket: null,
      sourceZone,
      signals: {
        incident: { open: true, severity: 1, id: "DRILL", title: "break-glass drill", ageSeconds: 0 },
        sourceZone,
      },
      blockingOverdueReviews: 0,
      now: deps.clock.now(),
    });
    const mine = explanation.policies.find((p) => p.policy === drill.policy);
    const unmet = (mine?.unmet ?? []).filter(
      (r) => !["JUSTIFICATION_TOO_SHORT", "TICKET_REQUIRED", "TICKET_MISMATCH"].includes(r.code),
    );
    detail.decisionFor = user;
    detail.outcome = unmet.length === 0 && mine?.applies ? "allowed" : "denied";
    detail.unmet = unmet.map((r) => r.code);
    if (!mine?.applies || unmet.length > 0)
      return {
        detail,
        problem: `policy '${drill.policy}' would not let ${user} in during an incident: ${unmet.map((r) => r.message).join("; ") || "it does not apply"}`,
      };
    return { detail, problem: null };
  }

  /** Writes the drill's grant and its intents, marked as a drill, as activation does for a person. */
  async function openGrant(
    drill: DrillSettings,
    runId: string,
    publicKey: string | null,
  ): Promise<GrantRecord> {
    const config = deps.current().config;
    const resource = config.resources?.[drill.resource];
    if (!resource)
      throw new FirebreakError("NOT_FOUND", `resource '${drill.resource}' is no longer configured`);
    const grant = await deps.inTransaction(async (unit) => {
      const record: GrantRecord = {
        id: newId("grt", unit.now),
        // A drill has no request: its run stands in for one (the column is unique, as a run is).
        requestId: runId,
        user: DRILL_PRINCIPAL,
        zone: resource.zone,
        resource: drill.resource,
        role: drill.role,
        policy: drill.policy,
        sourceZone: null,
        clientAddress: null,
        state: "active",
        startsAt: unit.now,
        endsAt: unit.now + (drill.grantFor ?? DEFAULT_DRILL_GRANT_MS),
        closedAt: null,
        closeReason: null,
        closedBy: null,
        factorKind: null,
        factorAt: null,
        revocationStatus: "not-needed",
        revocationAttempts: 0,
        revocationNextAt: null,
        // Nobody's use to review: the drill's own report is the record.
        reviewState: "none",
        reviewDueAt: null,
        reviewBlock: false,
        reviewer: null,
        reviewNotes: null,
        reviewedAt: null,
        reviewAlertedAt: null,
      };
      try {
        await insertGrant(unit.tx, record);
      } catch {
        throw new FirebreakError(
          "DRILL_BUSY",
          `a drill already holds '${drill.role}' in ${resource.zone}; it ends within ${Math.round((drill.grantFor ?? DEFAULT_DRILL_GRANT_MS) / 60_000)}m`,
        );
      }
      await setRunGrant(unit.tx, runId, record.id);
      const intent = {
        grantId: record.id,
        resource: drill.resource,
        state: "intent" as const,
        detail: publicKey && resource.type === "ssh" ? { publicKey } : {},
        secretEnc: null,
        deliveredAt: null,
        createdAt: unit.now,
        updatedAt: unit.now,
      };
      await insertEffect(unit.tx, { ...intent, id: newId("eff", unit.now), connector: resource.type });
      if (resource.address)
        await insertEffect(unit.tx, {
          ...intent,
          detail: {},
          id: newId("eff", unit.now),
          connector: `${PATH_CONNECTOR_PREFIX}${deps.enforcerKind}`,
        });
      await unit.audit({
        type: "grant.activated",
        actor: DRILL_PRINCIPAL,
        zone: record.zone,
        resource: record.resource,
        subject: record.id,
        context: {
          drill: drill.name,
          drillRun: runId,
          grant: record.id,
          user: DRILL_PRINCIPAL,
          role: record.role,
          policy: record.policy,
          startsAt: new Date(record.startsAt).toISOString(),
          endsAt: new Date(record.endsAt).toISOString(),
          resources: [drill.resource],
        },
      });
      return record;
    });
    deps.activated(grant);
    return grant;
  }

  /** The issued credential of the drill's resource, opened for the login (never stored, never shown). */
  async function credentialOf(grant: GrantRecord, resource: string, privateKey: string | undefined) {
    const effect = (await listEffects(deps.db, grant.id)).find(
      (e) => e.resource === resource && !e.connector.startsWith(PATH_CONNECTOR_PREFIX),
    );
    if (effect?.state !== "issued") throw new FirebreakError("CONNECTOR_FAILED", "no credential was issued");
    const credential: ProbeCredential = {
      detail: effect.detail,
      secret: effect.secretEnc ? deps.box.open(effect.secretEnc, secretAad(effect.id)) : null,
      privateKey,
    };
    return credential;
  }

  /** Waits until every configured sink has delivered through `seq`; the sinks still behind, if any. */
  async function awaitDelivery(seq: number, timeoutMs: number) {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const sinks = await deps.delivery.status();
      const behind = sinks.filter((s) => s.deliveredSeq < seq);
      if (behind.length === 0 || performance.now() >= deadline) return { sinks, behind };
      deps.delivery.poke();
      await new Promise((resolve) => setTimeout(resolve, deps.pollMs ?? 50));
    }
  }

  async function finish(
    drill: DrillSettings,
    run: DrillRun,
    steps: DrillStep[],
    outcome: DrillRun["outcome"],
    grantId: string | null,
  ): Promise<DrillRun> {
    const failed = steps.find((s) => s.outcome === "failed") ?? null;
    const finished = await deps.inTransaction(async (unit) => {
      const done = await finishRun(unit.tx, run.id, {
        outcome,
        failedStep: failed?.name ?? null,
        steps,
        grantId,
        now: unit.now,
      });
      if (!done) return null;
      if (outcome === "passed") await clearOverdue(unit.tx, drill.name);
      const context = {
        drill: drill.name,
        drillRun: run.id,
        trigger: run.trigger,
        requestedBy: run.actor,
        policy: drill.policy,
        role: drill.role,
        grant: grantId,
        outcome,
        failedStep: failed?.name ?? null,
        steps: steps.map((s) => ({ name: s.name, outcome: s.outcome, ms: s.ms, message: s.message })),
      };
      await unit.audit({
        type: "drill.completed",
        actor: DRILL_PRINCIPAL,
        zone: run.zone,
        resource: drill.resource,
        subject: run.id,
        context,
      });
      if (outcome === "failed" || outcome === "abandoned")
        await unit.audit({
          type: "alert.raised",
          actor: DRILL_PRINCIPAL,
          zone: run.zone,
          resource: drill.resource,
          subject: run.id,
          context: {
            alert: "drill-failed",
            drill: drill.name,
            drillRun: run.id,
            step: failed?.name ?? "process",
            message: failed?.message ?? "the drill's process ended before the drill finished",
            recipients: drill.notify,
          },
        });
      return { ...run, outcome, failedStep: failed?.name ?? null, steps, grantId, finishedAt: unit.now };
    });
    if (finished)
      deps.observer?.finished(drill.name, outcome, steps, finished.finishedAt ?? deps.clock.now());
    return finished ?? run;
  }

  /**
   * Runs a drill now. `onStep` hears each step as it ends. A real incident open in the zone makes
   * a drill that waits refuse (`DRILL_DEFERRED`) and one that skips record a skipped run.
   */
  async function run(
    name: string,
    options: { trigger: "schedule" | "manual"; actor: string; onStep?: (step: DrillStep) => void },
  ): Promise<DrillRun> {
    const drill = settingsOf(name);
    const config = deps.current().config;
    const resource = config.resources?.[drill.resource];
    if (!resource)
      throw new FirebreakError("NOT_FOUND", `resource '${drill.resource}' is no longer configured`);
    if (running.has(name)) throw new FirebreakError("DRILL_BUSY", `drill '${name}' is running`);
    const incident = (await deps.signals.snapshot(resource.zone, null, deps.clock.now())).incident;
    if (incident.open && drill.duringIncident === "wait")
      throw new FirebreakError(
        "DRILL_DEFERRED",
        `a real incident is open in ${resource.zone}; drill '${name}' waits until it is resolved`,
      );
    running.add(name);
    try {
      const startedAt = deps.clock.now();
      const record: DrillRun = {
        id: newId("drl", startedAt),
        drill: name,
        zone: resource.zone,
        trigger: options.trigger,
        actor: options.actor,
        owner: OWNER,
        grantId: null,
        outcome: "running",
        failedStep: null,
        steps: [],
        startedAt,
        finishedAt: null,
      };
      await insertRun(deps.db, record);
      const steps: DrillStep[] = [];
      const push = (step: DrillStep) => {
        steps.push(step);
        options.onStep?.(step);
      };
      if (incident.open) {
        for (const stepName of DRILL_STEPS)
          push({
            name: stepName,
            outcome: "skipped",
            ms: 0,
            detail: {},
            message: `a real incident is open in ${resource.zone}`,
          });
        return await finish(drill, record, steps, "skipped", null);
      }
      // Set by the steps; read by the ones after (a holder, so each closure sees the same).
      const held: { grant: GrantRecord | null; credential: ProbeCredential | null; failed: boolean } = {
        grant: null,
        credential: null,
        failed: false,
      };
      /** Times `work`; a step after a failure is skipped, except those that clean up. */
      const step = async (
        stepName: DrillStepName,
        work: () => Promise<Record<string, unknown>>,
        always = false,
      ) => {
        if (held.failed && !always) {
          push({ name: stepName, outcome: "skipped", ms: 0, detail: {}, message: "an earlier step failed" });
          return;
        }
        const began = performance.now();
        try {
          const detail = await work();
          push({
            name: stepName,
            outcome: "passed",
            ms: Math.round(performance.now() - began),
            detail,
            message: null,
          });
        } catch (error) {
          held.failed = true;
          const detail = error instanceof StepFailure ? error.detail : {};
          push({
            name: stepName,
            outcome: "failed",
            ms: Math.round(performance.now() - began),
            detail,
            message: failure(error),
          });
        }
      };
      let privateKey: string | undefined;
      await step("decision", async () => {
        const { detail, problem } = await decisionStep(drill);
        if (problem) throw new StepFailure(problem, detail);
        return detail;
      });
      await step("issue", async () => {
        let publicKey: string | null = null;
        if (resource.type === "ssh") ({ privateKey, publicKey } = await deps.sshKeyPair());
        const grant = await openGrant(drill, record.id, publicKey);
        held.grant = grant;
        // On failure this closes the grant and revokes what may exist (grants/NOTES.md §3).
        await deps.grants.issueEffects(grant);
        const credential = await credentialOf(grant, drill.resource, privateKey);
        held.credential = credential;
        return { grant: grant.id, username: credential.detail.username ?? credential.detail.keyId ?? null };
      });
      await step("login", async () => {
        const via =
          "access" in resource && resource.access === "gateway" ? "direct (gateway not wired yet)" : "direct";
        const done = await login(resource, drill.role, held.credential as ProbeCredential);
        return { ...done, via };
      });
      // Always, when a grant exists: a drill never leaves its credential behind.
      await step(
        "revoke",
        async () => {
          const open = held.grant;
          if (!open) return { grant: null };
          const current = await findGrant(deps.db, open.id);
          if (current?.state === "active")
            await deps.grants.close(open.id, "revoked", DRILL_PRINCIPAL, `drill ${name} finished`);
          const closed = await findGrant(deps.db, open.id);
          if (closed?.revocationStatus !== "verified" && closed?.revocationStatus !== "not-needed")
            throw new StepFailure(
              `the revocation is ${closed?.revocationStatus ?? "unknown"}, not verified`,
              {
                revocation: closed?.revocationStatus ?? null,
              },
            );
          return { grant: open.id, revocation: closed.revocationStatus, closedBy: closed.closedBy };
        },
        held.grant !== null,
      );
      await step("refused", async () => {
        try {
          await login(resource, drill.role, held.credential as ProbeCredential);
        } catch (error) {
          if (error instanceof ProbeRefused) return { refused: error.message };
          throw new StepFailure(
            "it could not be proven that the credential no longer logs in (the target did not answer)",
            {},
          );
        }
        throw new StepFailure("the credential still logs in after revocation", {});
      });
      await step("delivery", async () => {
        const head = (await readHead(deps.db)).seq;
        const { sinks, behind } = await awaitDelivery(
          head,
          drill.deliveryTimeout ?? DEFAULT_DELIVERY_TIMEOUT_MS,
        );
        const detail = {
          throughSeq: head,
          sinks: sinks.map((s) => s.name),
          behind: behind.map((s) => s.name),
        };
        if (behind.length > 0)
          throw new StepFailure(
            `audit sink${behind.length === 1 ? "" : "s"} ${behind.map((s) => `'${s.name}' (${s.state})`).join(", ")} did not receive the drill's events`,
            detail,
          );
        return detail;
      });
      return await finish(drill, record, steps, held.failed ? "failed" : "passed", held.grant?.id ?? null);
    } finally {
      running.delete(name);
    }
  }

  async function status(): Promise<DrillStatus[]> {
    const config = deps.current().config;
    const schedule = new Map((await listSchedule(deps.db)).map((row) => [row.drill, row]));
    const now = deps.clock.now();
    const out: DrillStatus[] = [];
    for (const drill of config.drills ?? []) {
      const { last, lastPassed } = await latestRuns(deps.db, drill.name);
      const row = schedule.get(drill.name);
      out.push({
        name: drill.name,
        policy: drill.policy,
        zone: config.resources?.[drill.resource]?.zone ?? "",
        resource: drill.resource,
        role: drill.role,
        schedule:
          drill.every !== undefined ? `every ${Math.round(drill.every / 1000)}s` : `cron ${drill.cron}`,
        nextRunAt: row?.nextAt ?? null,
        overdue: isOverdue(drill, row?.nextAt ?? null, lastPassed, now),
        last,
        lastPassedAt: lastPassed?.startedAt ?? null,
      });
    }
    return out;
  }

  /** Overdue: a due time a whole period ago with no run since, or no pass for two periods. */
  function isOverdue(drill: DrillSettings, nextAt: number | null, lastPassed: DrillRun | null, now: number) {
    if (nextAt === null) return false;
    const period = drillPeriodMs(drill, now);
    if (now > nextAt + period) return true;
    return lastPassed !== null && now > lastPassed.startedAt + 2 * period;
  }

  return {
    run,
    status,
    readiness,

    /**
     * One pass of the schedule: new drills get their first time, due ones are claimed (compare-and-
     * set, so of several replicas one runs each) and run one after another, overdue ones alerted
     * once. A drill that waits for an incident is not claimed, so it stays due.
     */
    async tick(): Promise<void> {
      const config = deps.current().config;
      const now = deps.clock.now();
      for (const drill of config.drills ?? []) {
        const first = nextDrillTime(drill, now);
        if (first !== null) await ensureScheduled(deps.db, drill.name, first);
      }
      const rows = new Map((await listSchedule(deps.db)).map((row) => [row.drill, row]));
      for (const drill of config.drills ?? []) {
        const row = rows.get(drill.name);
        if (!row) continue;
        const { lastPassed } = await latestRuns(deps.db, drill.name);
        if (isOverdue(drill, row.nextAt, lastPassed, now) && row.overdueAlertedAt === null) {
          await deps.inTransaction(async (unit) => {
            if (!(await markOverdueAlerted(unit.tx, drill.name, null, unit.now))) return;
            await unit.audit({
              type: "alert.raised",
              actor: DRILL_PRINCIPAL,
              zone: config.resources?.[drill.resource]?.zone ?? null,
              resource: drill.resource,
              context: {
                alert: "drill-overdue",
                drill: drill.name,
                step: "schedule",
                lastPassedAt: lastPassed ? new Date(lastPassed.startedAt).toISOString() : null,
                message: `drill '${drill.name}' has not passed on schedule`,
                recipients: drill.notify,
              },
            });
          });
        }
        if (row.nextAt > now || running.has(drill.name)) continue;
        const zone = config.resources?.[drill.resource]?.zone;
        if (
          zone &&
          drill.duringIncident === "wait" &&
          (await deps.signals.snapshot(zone, null, now)).incident.open
        )
          continue;
        const next = nextDrillTime(drill, now) ?? now + drillPeriodMs(drill, now);
        if (!(await claimDue(deps.db, drill.name, row.nextAt, next))) continue;
        await run(drill.name, { trigger: "schedule", actor: DRILL_PRINCIPAL }).catch(() => {});
      }
    },

    /**
     * At start: runs a dead process of this host left `running` are abandoned (recorded, alerted)
     * and their grants closed and revoked now, not at their end. A drill is never resumed.
     */
    async recover(): Promise<number> {
      let recovered = 0;
      for (const run of await listRunning(deps.db)) {
        if (!isDeadLocalOwner(run.owner)) continue;
        if (run.grantId) {
          const grant = await findGrant(deps.db, run.grantId);
          if (grant?.state === "active")
            await deps.grants.close(
              grant.id,
              "revoked",
              DRILL_PRINCIPAL,
              "the drill's process ended before it finished",
            );
        }
        const drill = deps.current().config.drills?.find((d) => d.name === run.drill) ?? {
          name: run.drill,
          policy: "",
          resource: "",
          role: "",
          notify: [],
          duringIncident: "wait" as const,
        };
        await finish(drill as DrillSettings, run, run.steps, "abandoned", run.grantId);
        recovered++;
      }
      // A drill grant with no running run (its run row was finished but the close was lost).
      for (const id of await activeDrillGrantIds(deps.db, DRILL_PRINCIPAL)) {
        const grant = await findGrant(deps.db, id);
        if (!grant) continue;
        const owner = await listRunning(deps.db).then((runs) => runs.find((r) => r.grantId === id));
        if (!owner)
          await deps.grants.close(id, "revoked", DRILL_PRINCIPAL, "a drill's grant outlived its drill");
      }
      return recovered;
    },
  };
}
export type DrillService = ReturnType<typeof createDrillService>;

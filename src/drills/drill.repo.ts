import type { DrillRunsTable, Executor } from "../db/types.js";

/** One step of a drill run: what it checked, how long it took, and what it found. */
export interface DrillStep {
  name: string;
  outcome: "passed" | "failed" | "skipped";
  ms: number;
  detail: Record<string, unknown>;
  /** Why it failed or was skipped, in words that never quote a driver or a secret. */
  message: string | null;
}

export interface DrillRun {
  id: string;
  drill: string;
  zone: string;
  trigger: "schedule" | "manual";
  actor: string;
  owner: string;
  grantId: string | null;
  outcome: "running" | "passed" | "failed" | "skipped" | "abandoned";
  failedStep: string | null;
  steps: DrillStep[];
  startedAt: number;
  finishedAt: number | null;
}

function toRun(row: DrillRunsTable): DrillRun {
  return {
    id: row.id,
    drill: row.drill,
    zone: row.zone,
    trigger: row.trigger as DrillRun["trigger"],
    actor: row.actor,
    owner: row.owner,
    grantId: row.grant_id,
    outcome: row.outcome as DrillRun["outcome"],
    failedStep: row.failed_step,
    steps: JSON.parse(row.steps_json) as DrillStep[],
    startedAt: Number(row.started_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
  };
}

export async function insertRun(db: Executor, run: DrillRun): Promise<void> {
  await db
    .insertInto("drill_runs")
    .values({
      id: run.id,
      drill: run.drill,
      zone: run.zone,
      trigger: run.trigger,
      actor: run.actor,
      owner: run.owner,
      grant_id: run.grantId,
      outcome: run.outcome,
      failed_step: run.failedStep,
      steps_json: JSON.stringify(run.steps),
      started_at: run.startedAt,
      finished_at: run.finishedAt,
    })
    .execute();
}

/** Records a run's end; only a run still `running` changes (a recovery may have closed it). */
export async function finishRun(
  db: Executor,
  id: string,
  end: {
    outcome: DrillRun["outcome"];
    failedStep: string | null;
    steps: DrillStep[];
    grantId: string | null;
    now: number;
  },
): Promise<boolean> {
  const result = await db
    .updateTable("drill_runs")
    .set({
      outcome: end.outcome,
      failed_step: end.failedStep,
      steps_json: JSON.stringify(end.steps),
      grant_id: end.grantId,
      finished_at: end.now,
    })
    .where("id", "=", id)
    .where("outcome", "=", "running")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function setRunGrant(db: Executor, id: string, grantId: string): Promise<void> {
  await db.updateTable("drill_runs").set({ grant_id: grantId }).where("id", "=", id).execute();
}

export async function listRunning(db: Executor): Promise<DrillRun[]> {
  const rows = await db.selectFrom("drill_runs").selectAll().where("outcome", "=", "running").execute();
  return rows.map(toRun);
}

export async function findRun(db: Executor, id: string): Promise<DrillRun | null> {
  const row = await db.selectFrom("drill_runs").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? toRun(row) : null;
}

/** The newest finished run of each drill, and the newest that passed. */
export async function latestRuns(
  db: Executor,
  drill: string,
): Promise<{ last: DrillRun | null; lastPassed: DrillRun | null }> {
  const last = await db
    .selectFrom("drill_runs")
    .selectAll()
    .where("drill", "=", drill)
    .where("outcome", "!=", "running")
    .orderBy("started_at", "desc")
    .orderBy("id", "desc")
    .limit(1)
    .executeTakeFirst();
  const lastPassed = await db
    .selectFrom("drill_runs")
    .selectAll()
    .where("drill", "=", drill)
    .where("outcome", "=", "passed")
    .orderBy("started_at", "desc")
    .orderBy("id", "desc")
    .limit(1)
    .executeTakeFirst();
  return { last: last ? toRun(last) : null, lastPassed: lastPassed ? toRun(lastPassed) : null };
}

export interface DrillScheduleRow {
  drill: string;
  nextAt: number;
  overdueAlertedAt: number | null;
}

export async function listSchedule(db: Executor): Promise<DrillScheduleRow[]> {
  const rows = await db.selectFrom("drill_schedule").selectAll().execute();
  return rows.map((row) => ({
    drill: row.drill,
    nextAt: Number(row.next_at),
    overdueAlertedAt: row.overdue_alerted_at === null ? null : Number(row.overdue_alerted_at),
  }));
}

/** A drill seen for the first time is due at `nextAt`; an existing row is left as it is. */
export async function ensureScheduled(db: Executor, drill: string, nextAt: number): Promise<void> {
  await db
    .insertInto("drill_schedule")
    .values({ drill, next_at: nextAt, overdue_alerted_at: null })
    .onConflict((c) => c.column("drill").doNothing())
    .execute();
}

/**
 * Takes a due drill: moves its next time from `expected` (what was read) to `next`. Of several
 * replicas that read it due, one gets true; the others leave it to that one.
 */
export async function claimDue(
  db: Executor,
  drill: string,
  expected: number,
  next: number,
): Promise<boolean> {
  const result = await db
    .updateTable("drill_schedule")
    .set({ next_at: next })
    .where("drill", "=", drill)
    .where("next_at", "=", expected)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** A drill passed: a later overdue period is alerted again. */
export async function clearOverdue(db: Executor, drill: string): Promise<void> {
  await db
    .updateTable("drill_schedule")
    .set({ overdue_alerted_at: null })
    .where("drill", "=", drill)
    .execute();
}

/** Marks the overdue alert as raised, once per overdue period (compare-and-set on what was read). */
export async function markOverdueAlerted(
  db: Executor,
  drill: string,
  expected: number | null,
  now: number,
): Promise<boolean> {
  let query = db.updateTable("drill_schedule").set({ overdue_alerted_at: now }).where("drill", "=", drill);
  query =
    expected === null
      ? query.where("overdue_alerted_at", "is", null)
      : query.where("overdue_alerted_at", "=", expected);
  const result = await query.executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Active grants held by the drill principal (closed at start: a drill is never resumed). */
export async function activeDrillGrantIds(db: Executor, principal: string): Promise<string[]> {
  const rows = await db
    .selectFrom("grants")
    .select("id")
    .where("user_name", "=", principal)
    .where("state", "=", "active")
    .execute();
  return rows.map((row) => row.id);
}

import type { Kysely } from "kysely";

// Break-glass drills (issue 16, src/drills/NOTES.md): one row per run with its timed steps, and
// one schedule row per drill whose due time is claimed by compare-and-set, so of several replicas
// one runs it. Frozen once landed.

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable("drill_runs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("drill", "text", (c) => c.notNull())
    .addColumn("zone", "text", (c) => c.notNull())
    .addColumn("trigger", "text", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    // hostname:pid of the process running it, so a restart knows a run its own host's dead process left.
    .addColumn("owner", "text", (c) => c.notNull())
    .addColumn("grant_id", "text")
    .addColumn("outcome", "text", (c) => c.notNull())
    .addColumn("failed_step", "text")
    .addColumn("steps_json", "text", (c) => c.notNull())
    .addColumn("started_at", "bigint", (c) => c.notNull())
    .addColumn("finished_at", "bigint")
    .execute();
  await db.schema.createIndex("drill_runs_drill").on("drill_runs").columns(["drill", "started_at"]).execute();
  await db.schema
    .createTable("drill_schedule")
    .addColumn("drill", "text", (c) => c.primaryKey())
    .addColumn("next_at", "bigint", (c) => c.notNull())
    .addColumn("overdue_alerted_at", "bigint")
    .execute();
}

// biome-ignore lint/suspicious/noExplicitAny: migrations are frozen and typed against no schema
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable("drill_schedule").execute();
  await db.schema.dropTable("drill_runs").execute();
}

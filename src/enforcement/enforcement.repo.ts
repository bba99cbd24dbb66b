import type { EnforcementAgentsTable, Executor } from "../db/types.js";
import { PATH_CONNECTOR_PREFIX } from "../grants/grant.repo.js";

/** A grant whose network path should be open: active, its path effect recorded and not failed. */
export interface OpenPathRow {
  grantId: string;
  user: string;
  zone: string;
  resource: string;
  sourceZone: string | null;
  clientAddress: string | null;
  endsAt: number;
}

/** Every path effect of an active grant that has not ended by `now` (one query, whatever the count). */
export async function listOpenPaths(db: Executor, now: number): Promise<OpenPathRow[]> {
  const rows = await db
    .selectFrom("grant_effects")
    .innerJoin("grants", "grants.id", "grant_effects.grant_id")
    .select([
      "grants.id as grant_id",
      "grants.user_name",
      "grants.zone",
      "grant_effects.resource",
      "grants.source_zone",
      "grants.client_address",
      "grants.ends_at",
    ])
    .where("grants.state", "=", "active")
    .where("grants.ends_at", ">", now)
    .where("grant_effects.connector", "like", `${PATH_CONNECTOR_PREFIX}%`)
    .where("grant_effects.state", "in", ["intent", "issued"])
    .orderBy("grants.id")
    .execute();
  return rows.map((row) => ({
    grantId: row.grant_id,
    user: row.user_name,
    zone: row.zone,
    resource: row.resource,
    sourceZone: row.source_zone,
    clientAddress: row.client_address,
    endsAt: Number(row.ends_at),
  }));
}

export interface AgentRecord {
  name: string;
  enforcer: string;
  firstSeenAt: number;
  lastSeenAt: number;
  graceMs: number;
  status: EnforcementAgentsTable["status"];
  appliedDigest: string | null;
  appliedAt: number | null;
  report: Record<string, unknown>;
}

function toRecord(row: EnforcementAgentsTable): AgentRecord {
  return {
    name: row.name,
    enforcer: row.enforcer,
    firstSeenAt: Number(row.first_seen_at),
    lastSeenAt: Number(row.last_seen_at),
    graceMs: Number(row.grace_ms),
    status: row.status,
    appliedDigest: row.applied_digest,
    appliedAt: row.applied_at === null ? null : Number(row.applied_at),
    report: JSON.parse(row.report_json) as Record<string, unknown>,
  };
}

export async function listAgents(db: Executor): Promise<AgentRecord[]> {
  const rows = await db.selectFrom("enforcement_agents").selectAll().orderBy("name").execute();
  return rows.map(toRecord);
}

export async function findAgent(db: Executor, name: string): Promise<AgentRecord | null> {
  const row = await db
    .selectFrom("enforcement_agents")
    .selectAll()
    .where("name", "=", name)
    .executeTakeFirst();
  return row ? toRecord(row) : null;
}

/** Inserts or replaces what an agent last reported. */
export async function saveAgent(db: Executor, agent: AgentRecord): Promise<void> {
  const values = {
    enforcer: agent.enforcer,
    last_seen_at: agent.lastSeenAt,
    grace_ms: agent.graceMs,
    status: agent.status,
    applied_digest: agent.appliedDigest,
    applied_at: agent.appliedAt,
    report_json: JSON.stringify(agent.report),
  };
  const updated = await db
    .updateTable("enforcement_agents")
    .set(values)
    .where("name", "=", agent.name)
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) > 0) return;
  await db
    .insertInto("enforcement_agents")
    .values({ name: agent.name, first_seen_at: agent.firstSeenAt, ...values })
    .execute();
}

/** Records that an agent was heard from (a poll), without touching what it reported. */
export async function touchAgent(db: Executor, name: string, now: number): Promise<void> {
  await db.updateTable("enforcement_agents").set({ last_seen_at: now }).where("name", "=", name).execute();
}

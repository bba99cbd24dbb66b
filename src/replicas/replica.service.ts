import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { ReplicaView } from "../api/replicas.schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { assert } from "../errors.js";
import type { AccessIndex } from "../policy/access-index.js";
import type { Principal } from "../shared/principal.js";
import type { ChangeFeed } from "./change-feed.js";
import { deleteReplicasSilentSince, listReplicas, type ReplicaRow, upsertReplica } from "./replica.repo.js";

/** How often a replica writes its heartbeat row. */
export const HEARTBEAT_MS = 2_000;
/** A replica is live while its heartbeat is younger than this. */
const LIVE_MS = 3 * HEARTBEAT_MS;
/** Rows of replicas silent this long are forgotten; until then they are listed as not live. */
const FORGET_MS = 60 * 60_000;
/** The event a reload of every replica is asked with; each replica's feed sees it and reloads. */
export const RELOAD_REQUESTED = "config.reload_requested";

/** Answers every access check with deny: what a replica that is not current answers from. */
export const denyingIndex: AccessIndex = {
  check: () => false,
  checkResource: () => false,
  addGrant() {},
  removeGrant() {},
  setUser() {},
  grantCount: () => 0,
};

/**
 * This process as a replica: its heartbeat row (version, configuration digest, whether its change
 * feed is current), the list of replicas, the configuration-mismatch alert, and the reload asked
 * of every replica at once (an event in the chain that every replica's feed follows).
 */
export function createReplicaService(deps: {
  db: Db;
  inTransaction: InTransaction;
  now: () => number;
  feed: ChangeFeed;
  version: string;
  configDigest: () => string;
  reload: (actor: string) => Promise<unknown>;
  log: { error(message: string, fields?: Record<string, unknown>): void };
}) {
  const id = `rep_${randomBytes(8).toString("hex")}`;
  const startedAt = deps.now();
  let address: string | null = null;
  let timer: NodeJS.Timeout | null = null;
  let unsubscribe: (() => void) | null = null;
  /** The set of digests last alerted, so a mismatch is raised once, and again only when it changes. */
  let alerted: string | null = null;

  function row(now: number, stoppedAt: number | null): ReplicaRow {
    const status = deps.feed.status();
    return {
      id,
      hostname: hostname(),
      pid: process.pid,
      version: deps.version,
      config_digest: deps.configDigest(),
      address,
      started_at: startedAt,
      heartbeat_at: now,
      seen_seq: status.seq,
      current: status.current ? 1 : 0,
      not_current_reason: status.reason,
      stopped_at: stoppedAt,
    };
  }

  async function beat() {
    const now = deps.now();
    await upsertReplica(deps.db, row(now, null));
    const live = await listReplicas(deps.db, now - LIVE_MS);
    const digests = [...new Set(live.map((r) => r.config_digest))].sort();
    if (digests.length <= 1) {
      alerted = null;
      return;
    }
    // One replica speaks for all (the oldest live one), so three replicas raise one alert.
    if (live[0]?.id !== id) return;
    const key = digests.join(",");
    if (alerted === key) return;
    alerted = key;
    await deps.inTransaction((unit) =>
      unit.audit({
        type: "alert.raised",
        actor: "system:firebreak",
        context: {
          alert: "replica-config-mismatch",
          message: `the live replicas run ${digests.length} different configurations; reload them all (firebreak replicas reload)`,
          replicas: live.map((r) => ({ id: r.id, hostname: r.hostname, configDigest: r.config_digest })),
        },
      }),
    );
  }

  function view(r: ReplicaRow, now: number): ReplicaView {
    return {
      id: r.id,
      hostname: r.hostname,
      pid: r.pid,
      version: r.version,
      configDigest: r.config_digest,
      address: r.address,
      startedAt: new Date(Number(r.started_at)).toISOString(),
      lastHeartbeatAt: new Date(Number(r.heartbeat_at)).toISOString(),
      live: Number(r.heartbeat_at) >= now - LIVE_MS,
      current: r.current === 1,
      notCurrentReason: r.not_current_reason,
      seenSeq: Number(r.seen_seq),
      self: r.id === id,
    };
  }

  return {
    id,
    async start(listening: string | null) {
      address = listening;
      unsubscribe = deps.feed.subscribe((event) => {
        if (event.type !== RELOAD_REQUESTED) return;
        deps.reload(event.actor).catch((error: unknown) =>
          deps.log.error("the reload asked of every replica was refused here", {
            error: error instanceof Error ? error.message : String(error),
          }),
        );
      });
      await beat();
      await deleteReplicasSilentSince(deps.db, deps.now() - FORGET_MS);
      timer = setInterval(() => {
        beat().catch((error: unknown) =>
          deps.log.error("replica heartbeat failed", {
            error: error instanceof Error ? error.message : String(error),
          }),
        );
      }, HEARTBEAT_MS);
      timer.unref();
    },
    async stop() {
      if (timer) clearInterval(timer);
      unsubscribe?.();
      const now = deps.now();
      await upsertReplica(deps.db, row(now, now)).catch(() => {});
    },
    /** Replicas heard from in the last hour, live or not (administrators and auditors). */
    async list(principal: Principal) {
      assert(
        principal.isAdmin || principal.isAuditor,
        "FORBIDDEN",
        "only administrators and auditors can list replicas",
      );
      const now = deps.now();
      // This replica's own row is fresh: written now, so the answer never shows it stale.
      await upsertReplica(deps.db, row(now, null));
      const rows = await listReplicas(deps.db, now - FORGET_MS);
      const replicas = rows.map((r) => view(r, now));
      const digests = new Set(replicas.filter((r) => r.live).map((r) => r.configDigest));
      return { replicas, configMismatch: digests.size > 1 };
    },
    /** Asks every replica to re-read its configuration file: one event, followed by every feed. */
    async reloadAll(principal: Principal) {
      assert(principal.isAdmin, "FORBIDDEN", "only an administrator can reload the configuration");
      const now = deps.now();
      const live = await listReplicas(deps.db, now - LIVE_MS);
      await deps.inTransaction(async (unit) => {
        await unit.audit({
          type: RELOAD_REQUESTED,
          actor: principal.name,
          context: { replicas: live.map((r) => r.id) },
        });
      });
      // The feed delivers the event to this replica too; each reload is its own config.applied
      // (or config.refused) event.
      return { replicas: live.length };
    },
  };
}
export type ReplicaService = ReturnType<typeof createReplicaService>;

import { summarizeConfigChange } from "../config/diff.js";
import { formatIssue, loadConfigFile } from "../config/load.js";
import type { FirebreakConfig } from "../config/schema.js";
import { resolveSecret } from "../config/secrets.js";
import type { Db } from "../db/types.js";
import { FirebreakError } from "../errors.js";
import type { SignalSource, SignalSourceKind } from "../plugins/contracts.js";
import { type CompiledPolicy, compilePolicy } from "../policy/engine.js";
import type { InTransaction } from "../shared/transaction.js";
import { createSourceZoneResolver } from "../signals/source-zone.js";
import { signalSources } from "../signals/sources.js";

/** Everything derived from one configuration file, swapped as a whole on reload. */
export interface Runtime {
  config: FirebreakConfig;
  policy: CompiledPolicy;
  digest: string;
  sourceZoneOf: (address: string | null) => string | null;
  signalSources: Record<SignalSourceKind, SignalSource | null>;
}

function derive(config: FirebreakConfig, digest: string, env: NodeJS.ProcessEnv): Runtime {
  const secret = (ref: string) => resolveSecret(ref as never, env);
  return {
    config,
    policy: compilePolicy(config),
    digest,
    sourceZoneOf: createSourceZoneResolver(config),
    signalSources: {
      alertmanager: signalSources.alertmanager(config, secret),
      pagerduty: signalSources.pagerduty(config, secret),
      generic: signalSources.generic(config, secret),
    },
  };
}

async function loadRuntime(path: string, env: NodeJS.ProcessEnv): Promise<Runtime> {
  const result = await loadConfigFile(path);
  if (!result.ok) {
    throw new FirebreakError(
      "CONFIG_INVALID",
      `${path} is not valid:\n${result.errors.map(formatIssue).join("\n")}`,
      {
        errors: result.errors,
      },
    );
  }
  return derive(result.config, result.digest, env);
}

/**
 * Holds the running configuration. A reload builds a complete new runtime first and swaps only
 * when everything in it is valid, so a bad file leaves the running one in place. Each applied
 * change is a `config.applied` event with a summary, recorded with the digest in one transaction.
 */
export async function createRuntimeHolder(deps: {
  path: string;
  db: Db;
  inTransaction: InTransaction;
  env?: NodeJS.ProcessEnv;
  onApplied?: (runtime: Runtime) => void | Promise<void>;
}) {
  const env = deps.env ?? process.env;
  let runtime = await loadRuntime(deps.path, env);

  async function record(actor: string, previous: FirebreakConfig | null): Promise<boolean> {
    // Several processes may record at once (a concurrent first start, a rolling restart): the
    // write is a compare-and-set on what was read, and a process that loses re-reads and retries.
    for (;;) {
      const stored = await deps.db
        .selectFrom("config_state")
        .selectAll()
        .where("id", "=", 1)
        .executeTakeFirst();
      if (stored?.digest === runtime.digest) return false;
      const before =
        previous ??
        (stored ? ((JSON.parse(stored.summary_json) as { config?: FirebreakConfig }).config ?? null) : null);
      const summary = summarizeConfigChange(before, runtime.config);
      const won = await deps.inTransaction(async (unit) => {
        const values = {
          digest: runtime.digest,
          summary_json: JSON.stringify({ summary, config: runtime.config }),
          applied_at: unit.now,
        };
        const changed = stored
          ? Number(
              (
                await unit.tx
                  .updateTable("config_state")
                  .set(values)
                  .where("id", "=", 1)
                  .where("digest", "=", stored.digest)
                  .executeTakeFirst()
              ).numUpdatedRows,
            )
          : Number(
              (
                await unit.tx
                  .insertInto("config_state")
                  .values({ id: 1, ...values })
                  .onConflict((conflict) => conflict.column("id").doNothing())
                  .executeTakeFirst()
              ).numInsertedOrUpdatedRows ?? 0,
            );
        if (changed !== 1) return false;
        await unit.audit({
          type: "config.applied",
          actor,
          context: {
            file: deps.path,
            digest: runtime.digest,
            previousDigest: stored?.digest ?? null,
            summary,
          },
        });
        return true;
      });
      if (won) return true;
    }
  }

  return {
    current: (): Runtime => runtime,
    /** Records the configuration the server started with, when it differs from the last one applied. */
    recordStartup: () => record("system:firebreak", null),
    /** Re-reads the file; throws CONFIG_INVALID (and keeps the running configuration) when it is bad. */
    async reload(actor: string) {
      const next = await loadRuntime(deps.path, env);
      const previous = runtime.config;
      if (next.digest === runtime.digest)
        return { changed: false, digest: runtime.digest, summary: summarizeConfigChange(previous, previous) };
      runtime = next;
      await record(actor, previous);
      await deps.onApplied?.(runtime);
      return { changed: true, digest: runtime.digest, summary: summarizeConfigChange(previous, next.config) };
    },
  };
}
export type RuntimeHolder = Awaited<ReturnType<typeof createRuntimeHolder>>;

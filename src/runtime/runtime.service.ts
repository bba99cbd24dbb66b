import { summarizeConfigChange } from "../config/diff.js";
import { type ConfigIssue, formatIssue, loadConfigFile } from "../config/load.js";
import type { FirebreakConfig } from "../config/schema.js";
import { resolveSecret } from "../config/secrets.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { FirebreakError, isFirebreakError } from "../errors.js";
import type { SignalSource, SignalSourceKind } from "../plugins/contracts.js";
import { type CompiledPolicy, compilePolicy } from "../policy/engine.js";
import { createSourceZoneResolver } from "../signals/source-zone.js";
import { signalSources } from "../signals/sources.js";
import { compareAndSetConfigState, readConfigState } from "./config-state.repo.js";

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

/** What a file must also agree with that the file alone cannot show (the stored users): problems, if any. */
export type ConfigCheck = (config: FirebreakConfig) => Promise<string[]>;

async function loadRuntime(path: string, env: NodeJS.ProcessEnv, check?: ConfigCheck): Promise<Runtime> {
  const result = await loadConfigFile(path);
  const problems = result.ok && check ? await check(result.config) : [];
  if (result.ok && problems.length > 0) {
    throw new FirebreakError("CONFIG_INVALID", `${path} is not valid:\n${problems.join("\n")}`, {
      errors: problems.map((message) => ({ file: path, line: 0, column: 0, path: "", message })),
    });
  }
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
  /** Checked at start and at each reload; a problem refuses the file like a schema error. */
  check?: ConfigCheck;
}) {
  const env = deps.env ?? process.env;
  let runtime = await loadRuntime(deps.path, env, deps.check);

  async function record(actor: string, previous: FirebreakConfig | null): Promise<boolean> {
    // Several processes may record at once (a concurrent first start, a rolling restart): the
    // write is a compare-and-set on what was read, and a process that loses re-reads and retries.
    for (;;) {
      const stored = await readConfigState(deps.db);
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
        if (!(await compareAndSetConfigState(unit.tx, stored?.digest ?? null, values))) return false;
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

  /** A refused reload is on record too: who asked, which file, and what was wrong with it. */
  async function recordRefusal(actor: string, error: unknown) {
    const errors = isFirebreakError(error)
      ? ((error.details as { errors?: ConfigIssue[] } | undefined)?.errors ?? [])
      : [];
    await deps.inTransaction((unit) =>
      unit.audit({
        type: "config.refused",
        actor,
        context: {
          file: deps.path,
          keptDigest: runtime.digest,
          errorCount: errors.length,
          // The first few positions and messages; a configuration file holds no secret values.
          errors: errors.slice(0, 10).map(formatIssue),
          ...(isFirebreakError(error) ? {} : { error: "the file could not be loaded" }),
        },
      }),
    );
  }

  return {
    current: (): Runtime => runtime,
    /** Records the configuration the server started with, when it differs from the last one applied. */
    recordStartup: () => record("system:firebreak", null),
    /** Re-reads the file; throws CONFIG_INVALID (and keeps the running configuration) when it is bad. */
    async reload(actor: string) {
      let next: Runtime;
      try {
        next = await loadRuntime(deps.path, env, deps.check);
      } catch (error) {
        await recordRefusal(actor, error);
        throw refusalKeepingRunning(error, runtime.digest);
      }
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

/** The reload's error, saying that the running configuration stays in force. */
function refusalKeepingRunning(error: unknown, keptDigest: string): FirebreakError {
  const kept = `the running configuration (${keptDigest.slice(0, 12)}) is kept`;
  if (isFirebreakError(error))
    return new FirebreakError(error.code, `${error.message}\n${kept}`, {
      ...((error.details as Record<string, unknown> | undefined) ?? {}),
      keptDigest,
    });
  return new FirebreakError("CONFIG_INVALID", `the configuration file could not be loaded; ${kept}`, {
    keptDigest,
  });
}

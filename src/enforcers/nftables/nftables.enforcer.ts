import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { NetworkState } from "../../segmentation/network-state.js";
import type { NftRunner } from "./nft.js";
import {
  buildRuleset,
  buildStandingRuleset,
  DEFAULT_TABLE,
  type GrantElement,
  grantSetCommands,
  type NftCommand,
  type Ruleset,
  replaceCommands,
  type StandingRuleset,
  TABLE_PATTERN,
} from "./ruleset.js";

/**
 * Keeps Firebreak's nftables table equal to a network state. Reconciliation is idempotent: an
 * unchanged state costs nothing, a change of grants rewrites only the two grant sets (one atomic
 * batch), anything else replaces the table atomically. What is loaded is compared with what
 * Firebreak loaded last time; a difference is a hand edit, reported as drift and undone.
 */

export interface Drift {
  /** Rules, sets or elements found in the table that Firebreak did not put there (now removed). */
  readonly removed: readonly string[];
  /** Things Firebreak loaded that had disappeared (now restored). */
  readonly restored: readonly string[];
}

export interface ApplyResult {
  readonly mode: "unchanged" | "grants" | "replaced";
  /** Grant ids whose paths are open after this apply. */
  readonly openGrants: readonly string[];
  readonly grantElements: readonly GrantElement[];
  readonly skipped: Ruleset["skipped"];
  readonly drift: Drift;
  readonly counts: Ruleset["counts"];
  readonly durationMs: number;
}

export interface ApplyOptions {
  /** Server time now: grant timeouts are measured against it, never against this host's clock. */
  readonly now: number;
  /** Fail closed: no grant paths at all, standing flows kept. */
  readonly withoutGrants?: boolean;
  /**
   * Compare the loaded table with what was loaded last time before changing it (a full listing).
   * Off for the latency-sensitive path of a grant closing; the periodic `check` covers it.
   */
  readonly checkDrift?: boolean;
}

interface Baseline {
  /** Canonical items of the whole table as listed after the last apply. */
  items: Map<string, number>;
  /**
   * When (on this host's monotonic clock) grant elements are due to expire, by set and comment:
   * elements with the same comment carry the same grants and so end together.
   */
  grantExpiry: Map<string, number>;
}

const GRANT_SETS = new Set(["grants4", "grants6"]);

/** An element value as nftables prints it: `10.0.0.0/24 . 10.1.0.5 . tcp . 5432`. */
export function describeValue(value: unknown): string {
  if (typeof value === "string" || typeof value === "number") return String(value);
  if (value && typeof value === "object") {
    const v = value as Record<string, unknown>;
    if (Array.isArray(v.concat)) return v.concat.map(describeValue).join(" . ");
    const prefix = v.prefix as { addr: string; len: number } | undefined;
    if (prefix) return `${prefix.addr}/${prefix.len}`;
    if (Array.isArray(v.range)) return `${describeValue(v.range[0])}-${describeValue(v.range[1])}`;
    if (Array.isArray(v.set)) return `{ ${v.set.map(describeValue).join(", ")} }`;
  }
  return JSON.stringify(value);
}

function stripVolatile(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(stripVolatile);
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) {
      if (key === "handle" || key === "expires") continue;
      out[key] = key === "counter" ? null : stripVolatile(inner);
    }
    return out;
  }
  return value;
}

/**
 * A listing as comparable items: one per set, chain, rule and element, without handles, counters
 * or the remaining time of elements. Grant elements keep their comment (the grant ids) but not
 * their timeout, which differs with every apply.
 */
export function canonicalItems(listing: readonly NftCommand[]): Map<string, number> {
  const items = new Map<string, number>();
  const add = (item: string) => items.set(item, (items.get(item) ?? 0) + 1);
  for (const entry of listing) {
    if (entry.set) {
      const { elem, ...set } = entry.set as { elem?: unknown[]; name: string };
      add(`set ${set.name} ${JSON.stringify(stripVolatile({ ...set, handle: undefined }))}`);
      for (const element of elem ?? []) add(elementItem(set.name, element));
    } else if (entry.chain) {
      add(`chain ${entry.chain.name} ${JSON.stringify(stripVolatile(entry.chain))}`);
    } else if (entry.rule) {
      add(`rule in chain ${entry.rule.chain}: ${JSON.stringify(stripVolatile(entry.rule.expr))}`);
    } else if (entry.table) {
      add(`table ${entry.table.family} ${entry.table.name}`);
    }
  }
  return items;
}

function elementItem(set: string, element: unknown): string {
  const wrapped = element as { elem?: { val: unknown; comment?: string } };
  const value = wrapped && typeof wrapped === "object" && "elem" in wrapped ? wrapped.elem?.val : element;
  const note = wrapped?.elem?.comment;
  return `element ${set}: ${describeValue(value)}${note ? ` comment "${note}"` : ""}`;
}

function difference(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): string[] {
  const out: string[] = [];
  for (const [item, count] of a) for (let i = b.get(item) ?? 0; i < count; i++) out.push(item);
  return out;
}

export function createNftablesEnforcer(deps: {
  runner: NftRunner;
  table?: string;
  /** DNS resolution for resource addresses that are names; the answers are validated as addresses. */
  resolve?: (host: string) => Promise<string[]>;
  /** A monotonic clock for when grant elements expire in the kernel (default: performance.now). */
  monotonic?: () => number;
}) {
  const table = deps.table ?? DEFAULT_TABLE;
  if (!TABLE_PATTERN.test(table)) throw new Error(`invalid nftables table name '${table}'`);
  const monotonic = deps.monotonic ?? (() => performance.now());
  const resolveHost =
    deps.resolve ??
    (async (host: string) => (await lookup(host, { all: true })).map((answer) => answer.address));
  let baseline: Baseline | null = null;
  /** Bumped by every change Firebreak makes to the table, so a listing taken meanwhile is discarded. */
  let generation = 0;
  /** The standing part for the last zones and flows seen: rebuilt only when they change. */
  let standingCache: { key: string; standing: StandingRuleset } | null = null;
  let loadedStanding: string | null = null;
  let loadedGrants: string | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  function serialised<T>(work: () => Promise<T>): Promise<T> {
    const next = queue.then(work, work);
    queue = next.catch(() => {});
    return next;
  }

  async function resolveAll(state: Pick<NetworkState, "paths">) {
    const resolved = new Map<string, string[]>();
    for (const path of state.paths) {
      const host = path.to.host;
      if (isIP(host) || resolved.has(host)) continue;
      try {
        resolved.set(
          host,
          (await resolveHost(host)).filter((address) => isIP(address) !== 0),
        );
      } catch {
        resolved.set(host, []);
      }
    }
    return resolved;
  }

  function grantSignature(elements: readonly GrantElement[]): string {
    return JSON.stringify(elements.map((e) => [e.key, e.comment, e.endsAt]));
  }

  function recordGrantExpiry(elements: readonly GrantElement[], into: Map<string, number>) {
    const at = monotonic();
    for (const element of elements)
      into.set(`${element.set} ${element.comment}`, at + element.timeoutSeconds * 1000);
  }

  async function listBaseline(ruleset: Ruleset): Promise<Baseline> {
    const listing = (await deps.runner.listTable(table)) ?? [];
    const grantExpiry = new Map<string, number>();
    recordGrantExpiry(ruleset.grantElements, grantExpiry);
    return { items: canonicalItems(listing), grantExpiry };
  }

  function standingFor(state: Pick<NetworkState, "zones" | "flows">): StandingRuleset {
    const key = JSON.stringify([state.zones, state.flows]);
    if (standingCache?.key !== key) standingCache = { key, standing: buildStandingRuleset(state, table) };
    return standingCache.standing;
  }

  async function detectDrift(listed?: NftCommand[] | null): Promise<Drift> {
    if (!baseline) return { removed: [], restored: [] };
    const listing = listed === undefined ? await deps.runner.listTable(table) : listed;
    if (listing === null) return { removed: [], restored: [`table inet ${table}`] };
    const current = canonicalItems(listing);
    const now = monotonic();
    const expired = (item: string) => {
      const found = /^element (grants[46]): .* comment "(.*)"$/.exec(item);
      const due = found ? baseline?.grantExpiry.get(`${found[1]} ${found[2]}`) : undefined;
      // The kernel drops an element when its timeout passes; allow for the rounding up to seconds.
      return due !== undefined && due <= now + 1000;
    };
    return {
      removed: difference(current, baseline.items),
      restored: difference(baseline.items, current).filter((item) => !expired(item)),
    };
  }

  return {
    table,
    where: deps.runner.where,

    /** Makes the loaded table equal to `state`; serialised, so concurrent calls never interleave. */
    apply(
      state: Pick<NetworkState, "zones" | "flows" | "paths">,
      options: ApplyOptions,
    ): Promise<ApplyResult> {
      return serialised(async () => {
        const started = performance.now();
        const resolved = await resolveAll(state);
        const ruleset = buildRuleset(state, {
          table,
          now: options.now,
          resolved,
          withoutGrants: options.withoutGrants,
          standing: standingFor(state),
        });
        const drift = options.checkDrift ? await detectDrift() : { removed: [], restored: [] };
        const drifted = drift.removed.length > 0 || drift.restored.length > 0;
        const signature = grantSignature(ruleset.grantElements);
        let mode: ApplyResult["mode"] = "unchanged";
        if (drifted || baseline === null || loadedStanding !== ruleset.standingDigest) {
          generation++;
          await deps.runner.apply(replaceCommands(ruleset));
          mode = "replaced";
          baseline = await listBaseline(ruleset);
        } else if (loadedGrants !== signature) {
          generation++;
          await deps.runner.apply(grantSetCommands(ruleset));
          mode = "grants";
          const current = baseline;
          for (const item of [...current.items.keys()])
            if (item.startsWith("element grants4: ") || item.startsWith("element grants6: "))
              current.items.delete(item);
          for (const name of GRANT_SETS) {
            for (const entry of await deps.runner.listSet(table, name))
              for (const element of entry.set?.elem ?? []) {
                const item = elementItem(name, element);
                current.items.set(item, (current.items.get(item) ?? 0) + 1);
              }
          }
          current.grantExpiry.clear();
          recordGrantExpiry(ruleset.grantElements, current.grantExpiry);
        }
        loadedStanding = ruleset.standingDigest;
        loadedGrants = signature;
        return {
          mode,
          openGrants: ruleset.openGrants,
          grantElements: ruleset.grantElements,
          skipped: ruleset.skipped,
          drift,
          counts: ruleset.counts,
          durationMs: performance.now() - started,
        };
      });
    },

    /**
     * Compares what is loaded with what Firebreak loaded; the caller re-applies when it drifted.
     * The listing (the slow part) is taken without holding up applies; if Firebreak changed the
     * table meanwhile the comparison would be meaningless, so it reports nothing and the next
     * check looks again.
     */
    async check(): Promise<Drift> {
      const before = generation;
      const listing = await deps.runner.listTable(table);
      return serialised(async () =>
        generation === before ? detectDrift(listing) : { removed: [], restored: [] },
      );
    },

    /** Removes Firebreak's table (uninstall; tests). */
    remove(): Promise<void> {
      return serialised(async () => {
        await deps.runner.apply([
          { add: { table: { family: "inet", name: table } } },
          { delete: { table: { family: "inet", name: table } } },
        ]);
        generation++;
        baseline = null;
        loadedStanding = null;
        loadedGrants = null;
      });
    },
  };
}
export type NftablesEnforcer = ReturnType<typeof createNftablesEnforcer>;

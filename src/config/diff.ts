import { canonicalJson } from "../shared/canonical-json.js";
import type { FirebreakConfig } from "./schema.js";

export interface NamedChanges {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface CountedChanges {
  added: number;
  removed: number;
}

/** What a new configuration changes, by name where things have names; the body of `config.applied`. */
export interface ConfigChangeSummary {
  zones: NamedChanges;
  resources: NamedChanges;
  /** Break-glass policies, by name. */
  policies: NamedChanges;
  flows: CountedChanges;
  standing: CountedChanges;
  users: NamedChanges;
  /**
   * Top-level sections that differ in a way the fields above do not count: other sections
   * (`identity`, `signals`, `notify`, `audit`, …), or `breakGlass`, `flows`, `standing` when only
   * the order of their entries changed.
   */
  otherSections: string[];
  unchanged: boolean;
}

/**
 * Summarizes the change from `previous` (null on first start) to `next`. Names are sorted so the
 * summary of the same change is always the same text; `unchanged` compares the whole configuration.
 */
export function summarizeConfigChange(
  previous: FirebreakConfig | null,
  next: FirebreakConfig,
): ConfigChangeSummary {
  const before = previous ?? undefined;
  const policiesOf = (config: FirebreakConfig | undefined) =>
    Object.fromEntries((config?.breakGlass ?? []).map((policy) => [policy.name, policy]));

  const summary = {
    zones: compareNamed(before?.zones, next.zones),
    resources: compareNamed(before?.resources, next.resources),
    policies: compareNamed(policiesOf(before), policiesOf(next)),
    flows: compareCounted(before?.flows, next.flows),
    standing: compareCounted(before?.standing, next.standing),
    users: compareNamed(before?.directory?.users, next.directory?.users),
  };
  const counted: Record<string, boolean> = {
    zones: true,
    resources: true,
    directory: true,
    breakGlass: isReported(summary.policies),
    flows: isReported(summary.flows),
    standing: isReported(summary.standing),
  };
  const sections = new Set([...Object.keys(before ?? {}), ...Object.keys(next)]);
  const otherSections = [...sections]
    .filter((section) => counted[section] !== true)
    .filter(
      (section) =>
        !same(
          (before as Record<string, unknown> | undefined)?.[section],
          (next as Record<string, unknown>)[section],
        ),
    )
    .sort();

  return {
    ...summary,
    otherSections,
    unchanged: previous !== null && same(previous, next),
  };
}

/** Equal as data; an absent section equals only another absent one. */
function same(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  return canonicalJson(a) === canonicalJson(b);
}

function isReported(changes: NamedChanges | CountedChanges): boolean {
  return Object.values(changes).some((value) => (Array.isArray(value) ? value.length > 0 : value > 0));
}

function compareNamed(
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown> | undefined,
): NamedChanges {
  const old = before ?? {};
  const current = after ?? {};
  const added: string[] = [];
  const changed: string[] = [];
  for (const name of Object.keys(current)) {
    if (!Object.hasOwn(old, name)) added.push(name);
    else if (!same(old[name], current[name])) changed.push(name);
  }
  const removed = Object.keys(old).filter((name) => !Object.hasOwn(current, name));
  return { added: added.sort(), removed: removed.sort(), changed: changed.sort() };
}

/** Unnamed entries (flows, standing bindings) are compared as multisets: reordering is no change. */
function compareCounted(
  before: readonly unknown[] | undefined,
  after: readonly unknown[] | undefined,
): CountedChanges {
  const remaining = new Map<string, number>();
  for (const entry of before ?? []) {
    const key = canonicalJson(entry);
    remaining.set(key, (remaining.get(key) ?? 0) + 1);
  }
  let added = 0;
  for (const entry of after ?? []) {
    const key = canonicalJson(entry);
    const count = remaining.get(key) ?? 0;
    if (count > 0) remaining.set(key, count - 1);
    else added++;
  }
  let removed = 0;
  for (const count of remaining.values()) removed += count;
  return { added, removed };
}

import type { AuditSinkConfig } from "../config/schema.js";
import type { AuditEvent } from "./chain.js";
import { CHECKPOINT_TYPE } from "./checkpoint.js";
import { atLeast, severityOf } from "./severity.js";

/** `grant.*` → /^grant\.[^.]*$/: `*` matches within one dot-separated part. */
function typePattern(pattern: string): RegExp {
  const source = pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join("[^.]*");
  return new RegExp(`^${source}$`);
}

/**
 * A sink's filter as a predicate over events: every configured condition must hold (types, zones,
 * minimum severity). Without a filter every event passes. Events with no zone never pass a zone filter.
 * Signed checkpoints pass every filter: each sink's copy is an anchor outside the database, and a
 * sink that never saw a checkpoint could not show where a truncated chain used to end.
 */
export function createSinkFilter(filter: AuditSinkConfig["filter"]): (event: AuditEvent) => boolean {
  if (!filter) return () => true;
  const types = filter.types?.map(typePattern);
  const zones = filter.zones ? new Set(filter.zones) : null;
  const minimum = filter.minSeverity;
  return (event) => {
    if (event.type === CHECKPOINT_TYPE) return true;
    if (types && !types.some((pattern) => pattern.test(event.type))) return false;
    if (zones && (event.zone === null || !zones.has(event.zone))) return false;
    if (minimum && !atLeast(severityOf(event), minimum)) return false;
    return true;
  };
}

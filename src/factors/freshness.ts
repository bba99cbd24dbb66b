import type { FactorAuthorization } from "../db/types.js";

/** A factor the user presented: its kind and when, and what the factor's enrolment allows. */
export interface PresentedFactor {
  kind: string;
  at: number;
  factorId: string;
  confirmedAt: number;
  /** Presentations before this time do not count (a first factor enrolled with a sign-in alone). */
  settlesAt: number;
  authorizedBy: FactorAuthorization;
}

/**
 * Whether `factor` is a fresh use of one of `kinds` for a rule whose freshness is `freshnessMs`,
 * judged at `now`. Besides kind and age, the factor must have settled, and a factor presented less
 * than `freshnessMs` after its own confirmation is no witness on its own: whoever could enrol it
 * could otherwise enrol it and use it at once. An administrator's enrolment code is the exception,
 * as it is a second, out-of-band vouching for the person.
 */
export function isFreshFactor(
  factor: PresentedFactor,
  kinds: readonly string[],
  freshnessMs: number,
  now: number,
): boolean {
  if (!kinds.includes(factor.kind)) return false;
  if (factor.at > now || now - factor.at > freshnessMs) return false;
  if (factor.at < factor.settlesAt) return false;
  if (factor.authorizedBy !== "enrolment-code" && factor.at - factor.confirmedAt < freshnessMs) return false;
  return true;
}

/** The newest of `candidates` (newest first) that `isFreshFactor` accepts, or null. */
export function pickFreshFactor(
  candidates: readonly PresentedFactor[],
  kinds: readonly string[],
  freshnessMs: number,
  now: number,
): PresentedFactor | null {
  return candidates.find((factor) => isFreshFactor(factor, kinds, freshnessMs, now)) ?? null;
}

/**
 * Why none of `candidates` was fresh although one was used recently, for the refusal's message:
 * empty when nothing of `kinds` was used within `freshnessMs` (the plain "present one" case).
 */
export function unfreshReason(
  candidates: readonly PresentedFactor[],
  kinds: readonly string[],
  freshnessMs: number,
  now: number,
): string {
  const used = candidates.find((f) => kinds.includes(f.kind) && f.at <= now && now - f.at <= freshnessMs);
  if (!used) return "";
  if (used.at < used.settlesAt)
    return `; your ${used.kind} factor was enrolled with a sign-in alone and counts from ${new Date(used.settlesAt).toISOString()}`;
  return `; a factor used within ${Math.round(freshnessMs / 60_000)}m of its enrolment does not count on its own`;
}

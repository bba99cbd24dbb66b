/** Every state a request can be in (the lifecycle in README and docs/SPEC.md). */
export const REQUEST_STATES = [
  "pending",
  "approved",
  "active",
  "denied",
  "cancelled",
  "lapsed",
  "expired",
  "revoked",
] as const;
export type RequestState = (typeof REQUEST_STATES)[number];

/** Time as the program sees it: injected everywhere so expiry can be tested without sleeping. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that only moves when told to; for tests and benchmarks. */
export function createManualClock(start = Date.parse("2026-01-01T02:00:00Z")) {
  let current = start;
  return {
    now: () => current,
    set(time: number) {
      current = time;
    },
    advance(ms: number) {
      current += ms;
    },
  };
}

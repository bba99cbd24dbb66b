import { describe, expect, it } from "vitest";
import { createRejectionTracker } from "./rejections.js";

describe("rejection tracker", () => {
  it("sums one sender's refusals over an interval and limits it beyond the allowance", () => {
    const tracker = createRejectionTracker({ intervalMs: 60_000, limit: 3 });
    const outcomes = [0, 1, 2, 3, 4].map((i) => tracker.note("generic", "10.0.0.1", "stale", 1_000 + i));
    expect(outcomes.map((o) => o.limited)).toEqual([false, false, false, true, true]);
    expect(outcomes[4]?.retryAfterMs).toBe(60_000 - 4);
    expect(tracker.take(60_999)).toEqual([]);
    expect(tracker.take(61_000)).toEqual([
      {
        source: "generic",
        clientAddress: "10.0.0.1",
        firstAt: 1_000,
        lastAt: 1_004,
        count: 5,
        reasons: { stale: 5 },
        rateLimited: 2,
      },
    ]);
    // The next refusal opens a new interval with a fresh allowance.
    expect(tracker.note("generic", "10.0.0.1", "replayed", 61_001).limited).toBe(false);
  });

  it("keeps sources and addresses apart, and an ended interval waits for the next take", () => {
    const tracker = createRejectionTracker({ intervalMs: 10 });
    tracker.note("pagerduty", "10.0.0.1", "bad-credentials", 0);
    tracker.note("generic", "10.0.0.1", "bad-credentials", 0);
    tracker.note("generic", "10.0.0.2", "bad-credentials", 0);
    // Its interval ended: this refusal starts a second one, the first waits to be taken.
    tracker.note("generic", "10.0.0.2", "replayed", 20);
    const taken = tracker.take(20);
    expect(taken.map((s) => [s.source, s.clientAddress, s.count, s.reasons])).toEqual([
      ["generic", "10.0.0.2", 1, { "bad-credentials": 1 }],
      ["pagerduty", "10.0.0.1", 1, { "bad-credentials": 1 }],
      ["generic", "10.0.0.1", 1, { "bad-credentials": 1 }],
    ]);
    expect(tracker.take(0, true).map((s) => [s.clientAddress, s.reasons])).toEqual([
      ["10.0.0.2", { replayed: 1 }],
    ]);
  });

  it("shares one summary among senders beyond the tracked maximum, so memory stays bounded", () => {
    const tracker = createRejectionTracker({ maxTracked: 2, limit: 100 });
    for (let i = 0; i < 50; i++) tracker.note("alertmanager", `10.0.1.${i}`, "bad-credentials", i);
    const taken = tracker.take(0, true);
    expect(taken.map((s) => [s.clientAddress, s.count])).toEqual([
      ["10.0.1.0", 1],
      ["10.0.1.1", 1],
      [null, 48],
    ]);
  });

  it("gives back summaries that could not be written", () => {
    const tracker = createRejectionTracker();
    tracker.note("generic", "10.0.0.1", "stale", 0);
    const taken = tracker.take(0, true);
    tracker.restore(taken);
    expect(tracker.take(0)).toEqual(taken);
    expect(tracker.take(0)).toEqual([]);
  });
});

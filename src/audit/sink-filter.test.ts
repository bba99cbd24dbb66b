import { describe, expect, it } from "vitest";
import type { AuditEvent } from "./chain.js";
import { CHECKPOINT_TYPE } from "./checkpoint.js";
import { createSinkFilter } from "./sink-filter.js";

const event = (type: string, zone: string | null, context: Record<string, unknown> = {}): AuditEvent => ({
  seq: 1,
  id: "evt_1",
  time: "2026-12-03T05:00:00.000Z",
  type,
  actor: "system:audit",
  zone,
  resource: null,
  subject: null,
  context,
  prevHash: "0".repeat(64),
  hash: "1".repeat(64),
});

describe("sink filters", () => {
  it("keep what every condition allows", () => {
    const filter = createSinkFilter({ types: ["grant.*"], zones: ["vault"], minSeverity: "medium" });
    expect(filter(event("grant.activated", "vault"))).toBe(true);
    expect(filter(event("grant.activated", "app"))).toBe(false);
    expect(filter(event("grant.revoked", "vault"))).toBe(false);
    expect(filter(event("request.created", "vault"))).toBe(false);
    expect(createSinkFilter(undefined)(event("request.created", null))).toBe(true);
  });

  it("never drop a signed checkpoint: each sink's copy anchors the chain outside the database", () => {
    // A checkpoint has no zone, is not a grant event and is only informational: each condition
    // alone would drop it.
    for (const filter of [{ types: ["grant.*"] }, { zones: ["vault"] }, { minSeverity: "critical" as const }])
      expect(createSinkFilter(filter)(event(CHECKPOINT_TYPE, null))).toBe(true);
  });
});

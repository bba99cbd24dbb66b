import { describe, expect, it } from "vitest";
import { loadConfigText } from "../config/load.js";

const BASE = `version: 1
zones:
  vault: {}
`;

const withEnrolment = (settings: string) => `${BASE}identity:\n  factorEnrolment: ${settings}\n`;

describe("identity.factorEnrolment", () => {
  it("accepts a settle period and requireCode", () => {
    const result = loadConfigText(withEnrolment("{ settle: 2h, requireCode: true }"));
    expect(result.ok && result.config.identity?.factorEnrolment).toEqual({
      settle: 2 * 3_600_000,
      requireCode: true,
    });
  });

  it("refuses a settle period shorter than the default factor freshness, with its position", () => {
    const result = loadConfigText(withEnrolment("{ settle: 1m }"));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      expect.objectContaining({ path: "identity.factorEnrolment.settle", line: 5 }),
    ]);
  });

  it("refuses keys it does not know", () => {
    expect(loadConfigText(withEnrolment("{ settleFor: 2h }")).ok).toBe(false);
  });
});

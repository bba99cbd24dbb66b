import { describe, expect, it } from "vitest";
import { isFreshFactor, type PresentedFactor, pickFreshFactor, unfreshReason } from "./freshness.js";

const MINUTE = 60_000;
const NOW = Date.parse("2026-03-03T12:00:00Z");
const FIVE = 5 * MINUTE;

/** A TOTP factor confirmed a day ago, authorized by an existing factor, used a minute ago. */
const settled: PresentedFactor = {
  kind: "totp",
  at: NOW - MINUTE,
  factorId: "mfa_a",
  confirmedAt: NOW - 24 * 60 * MINUTE,
  settlesAt: NOW - 24 * 60 * MINUTE,
  authorizedBy: "factor",
};

describe("isFreshFactor", () => {
  it("accepts a settled factor of a named kind used within the window", () => {
    expect(isFreshFactor(settled, ["totp"], FIVE, NOW)).toBe(true);
  });

  it("refuses another kind, a use older than the window, and a use from the future", () => {
    expect(isFreshFactor(settled, ["webauthn"], FIVE, NOW)).toBe(false);
    expect(isFreshFactor({ ...settled, at: NOW - FIVE - 1 }, ["totp"], FIVE, NOW)).toBe(false);
    expect(isFreshFactor({ ...settled, at: NOW + 1 }, ["totp"], FIVE, NOW)).toBe(false);
  });

  it("refuses a use before the factor settled", () => {
    const signIn = { ...settled, authorizedBy: "sign-in" as const, settlesAt: NOW - MINUTE + 1 };
    expect(isFreshFactor(signIn, ["totp"], FIVE, NOW)).toBe(false);
    expect(isFreshFactor({ ...signIn, settlesAt: NOW - MINUTE }, ["totp"], FIVE, NOW)).toBe(true);
  });

  it("refuses a use less than the window after the factor's confirmation, unless an administrator vouched", () => {
    const young = { ...settled, confirmedAt: NOW - 4 * MINUTE, settlesAt: NOW - 4 * MINUTE };
    expect(isFreshFactor(young, ["totp"], FIVE, NOW)).toBe(false);
    expect(isFreshFactor({ ...young, authorizedBy: "enrolment-code" }, ["totp"], FIVE, NOW)).toBe(true);
    // The rule follows the policy's own window: under 2 minutes the same use counts.
    expect(isFreshFactor(young, ["totp"], 2 * MINUTE, NOW)).toBe(true);
  });
});

describe("pickFreshFactor and unfreshReason", () => {
  const young = {
    ...settled,
    factorId: "mfa_b",
    at: NOW,
    confirmedAt: NOW - MINUTE,
    settlesAt: NOW - MINUTE,
  };

  it("picks an older fresh use when the newest does not count", () => {
    expect(pickFreshFactor([young, settled], ["totp"], FIVE, NOW)).toBe(settled);
    expect(pickFreshFactor([young], ["totp"], FIVE, NOW)).toBeNull();
  });

  it("says why a recent use did not count", () => {
    expect(unfreshReason([young], ["totp"], FIVE, NOW)).toContain("within 5m of its enrolment");
    const unsettled = { ...settled, authorizedBy: "sign-in" as const, settlesAt: NOW + MINUTE };
    expect(unfreshReason([unsettled], ["totp"], FIVE, NOW)).toContain(
      `counts from ${new Date(NOW + MINUTE).toISOString()}`,
    );
    expect(unfreshReason([], ["totp"], FIVE, NOW)).toBe("");
  });
});

import { afterEach, describe, expect, it, vi } from "vitest";
import { skipUnlessAvailable } from "./requirements.js";

describe("skipUnlessAvailable", () => {
  const ci = process.env.CI;
  afterEach(() => {
    if (ci === undefined) delete process.env.CI;
    else process.env.CI = ci;
    vi.restoreAllMocks();
  });

  it("runs a suite whose needs are met", () => {
    process.env.CI = "true";
    expect(skipUnlessAvailable(true, "suite", "needs root")).toBe(false);
  });

  it("fails in CI with the reason instead of skipping", () => {
    process.env.CI = "true";
    expect(() => skipUnlessAvailable(false, "netns suite", "needs root")).toThrow(
      /netns suite: cannot run here: needs root/,
    );
  });

  it("skips elsewhere, saying why", () => {
    delete process.env.CI;
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    expect(skipUnlessAvailable(false, "netns suite", "needs root")).toBe(true);
    expect(warn).toHaveBeenCalledWith("SKIPPED netns suite: cannot run here: needs root");
  });
});

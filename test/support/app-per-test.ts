import { afterEach, beforeEach, expect } from "vitest";
import { startTestApp, type TestApp } from "./app.js";
import type { TestDialect } from "./databases.js";

/**
 * A new server on a new database for every test of the calling `describe`, closed after it; a test
 * that made the server answer 500 fails. What the returned object is: the current test's app
 * (every property and method is read from it when used), so a suite writes `t.call(…)` as if it
 * held the app itself.
 */
export function freshAppPerTest(dialect: TestDialect, options?: Parameters<typeof startTestApp>[1]): TestApp {
  // Set only once a start succeeded, so a failed start is reported as itself, not as a cleanup error.
  let current: TestApp | null = null;
  beforeEach(async () => {
    current = null;
    current = await startTestApp(dialect, options);
  });
  afterEach(async () => {
    if (!current) return;
    const errors = current.serverErrors;
    await current.close();
    current = null;
    expect(errors, "the server answered 500 INTERNAL").toEqual([]);
  });
  return new Proxy({} as TestApp, {
    get(_target, key) {
      if (!current) throw new Error("the test app is used outside a test (or its start failed)");
      const value = Reflect.get(current, key, current);
      return typeof value === "function" ? value.bind(current) : value;
    },
  });
}

import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // End-to-end suites start real server processes and share the machine's PostgreSQL;
    // files run in parallel but each uses its own database.
    pool: "forks",
  },
});

import { runTimeToAccessBenchmarks } from "./access.bench.js";

/**
 * Issue 15's benchmarks alone (CLI start-up and time to access), for a shared machine where the
 * whole `npm run bench` would disturb others: `npm run build && npx tsc -p tsconfig.bench.json &&
 * node dist-bench/bench/access.main.js`.
 */
await runTimeToAccessBenchmarks();

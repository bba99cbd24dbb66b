import { runTimeToAccessBenchmarks } from "./access.bench.js";
import { runAuditBenchmarks } from "./audit.bench.js";
import { runConnectorBenchmarks } from "./connectors.bench.js";
import { runGatewayBenchmarks } from "./gateway.bench.js";
import { runHttpBenchmarks } from "./http.bench.js";
import { runPolicyBenchmarks } from "./policy.bench.js";
import { runReplicaBenchmarks } from "./replicas.bench.js";
import { runSegmentationBenchmarks } from "./segmentation.bench.js";
import { runSshGatewayBenchmarks } from "./ssh-gateway.bench.js";

/**
 * `npm run bench`: prints every benchmark with the peer it is compared with, measured in the same
 * run. Figures are printed, never asserted.
 */
await runPolicyBenchmarks();
await runHttpBenchmarks();
await runTimeToAccessBenchmarks();
await runConnectorBenchmarks();
await runSegmentationBenchmarks();
await runAuditBenchmarks();
await runReplicaBenchmarks();
await runGatewayBenchmarks();
await runSshGatewayBenchmarks();

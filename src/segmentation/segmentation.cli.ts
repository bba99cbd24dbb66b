import { writeFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import type { z } from "zod";
import type { BlastRadius, lintReply, Reachability } from "../api/segmentation.schema.js";
import type { Client } from "../cli/client.js";
import type { FirebreakConfig } from "../config/schema.js";
import type { ExportFormat } from "../exporters/exporters.js";
import type { Severity } from "./lint.js";
import type { NetworkState } from "./network-state.js";

/**
 * `firebreak reach`, `lint`, `export-policies` and the `--blast-radius` part of `explain`. Each
 * works against the running server, or offline on a file with `--config FILE` (for CI).
 */

export interface CliContext {
  emit(json: unknown, human: () => string): void;
  client(): Promise<Pick<Client, "get" | "post">>;
  fail(message: string, code: string): Error;
}

type LintFinding = z.infer<typeof lintReply>["findings"][number];

/**
 * The choices of `--fail-on` and `--format`, the linter's SEVERITIES and the exporters'
 * EXPORT_FORMATS: written out so that defining the commands (and `--help`) loads neither module
 * (segmentation.cli.test.ts checks they are the same). Everything else is import()ed by the action.
 */
export const SEVERITY_CHOICES: readonly Severity[] = ["high", "medium", "low"];
export const FORMAT_CHOICES: readonly ExportFormat[] = ["k8s", "cilium", "calico", "nftables"];

async function loadOffline(path: string, context: CliContext): Promise<FirebreakConfig> {
  // The loader (YAML, CEL, plug-in settings checks) is loaded only by the offline commands.
  const { formatIssue, loadConfigFile } = await import("../config/load.js");
  const loaded = await loadConfigFile(path);
  if (!loaded.ok) throw context.fail(loaded.errors.map(formatIssue).join("\n"), "CONFIG_INVALID");
  return loaded.config;
}

function describeReach(result: Reachability): string {
  const lines = [
    `zone ${result.zone} (${result.enforcement})${result.includesGrants ? "" : "  [standing flows only]"}`,
  ];
  const hopText = (hop: Reachability["direct"][number]["path"][number]) =>
    `${hop.from} -> ${hop.to} [${hop.ports.join(", ")}${hop.via === "grant" ? `; grant ${hop.grants.join(", ")}` : ""}]`;
  lines.push(`  reaches directly (${result.direct.length}):`);
  for (const r of result.direct)
    lines.push(
      `    ${r.zone}  ${r.path.map(hopText).join("  ")}${r.resources.length ? `  resources: ${r.resources.join(", ")}` : ""}`,
    );
  lines.push(`  reaches transitively (${result.transitive.length}):`);
  for (const r of result.transitive) {
    lines.push(
      `    ${r.zone} in ${r.path.length} hops${r.resources.length ? `  resources: ${r.resources.join(", ")}` : ""}`,
    );
    for (const hop of r.path) lines.push(`      ${hopText(hop)}`);
  }
  lines.push(
    `  reached by: ${[...result.reachedBy.direct, ...result.reachedBy.transitive.map((z) => `${z} (transitively)`)].join(", ") || "-"}`,
    `  blast radius: ${result.blastRadius.zones} zone(s), ${result.blastRadius.resources} resource(s) (directly: ${result.blastRadius.directZones} zone(s), ${result.blastRadius.directResources} resource(s))`,
  );
  return lines.join("\n");
}

function describeFindings(findings: readonly LintFinding[]): string {
  if (findings.length === 0) return "no findings";
  const lines = findings.map(
    (f) => `${f.severity.toUpperCase().padEnd(6)} ${f.code.padEnd(24)} ${f.path}: ${f.message}`,
  );
  const counts = SEVERITY_CHOICES.map((s) => `${findings.filter((f) => f.severity === s).length} ${s}`).join(
    ", ",
  );
  return `${lines.join("\n")}\n${findings.length} finding(s): ${counts}`;
}

/** The blast-radius change of a grant, offline from a file or from the server. */
export async function blastRadiusFor(
  context: CliContext,
  options: { config?: string; target: string; role: string; sourceZone?: string },
): Promise<BlastRadius> {
  if (!options.config) {
    const { zonesReply } = await import("../api/zones.schema.js");
    const { blastRadiusReply } = await import("../api/segmentation.schema.js");
    const c = await context.client();
    const { zones } = await c.get("/v1/zones", zonesReply);
    const isZone = zones.some((z) => z.name === options.target);
    return c.post(
      "/v1/zones/blast-radius",
      {
        ...(isZone ? { zone: options.target } : { resource: options.target }),
        role: options.role,
        ...(options.sourceZone ? { sourceZone: options.sourceZone } : {}),
      },
      blastRadiusReply,
    );
  }
  const { compilePolicy, resourcesForGrant } = await import("../policy/engine.js");
  const { blastRadiusChange } = await import("./reachability.js");
  const { hypotheticalPaths } = await import("./what-if.js");
  const config = await loadOffline(options.config, context);
  const isResource = Object.hasOwn(config.resources ?? {}, options.target);
  const zone = isResource ? config.resources?.[options.target]?.zone : options.target;
  if (!zone || !Object.hasOwn(config.zones, zone))
    throw context.fail(`'${options.target}' is neither a zone nor a resource`, "NOT_FOUND");
  const sources = options.sourceZone
    ? [options.sourceZone]
    : [
        ...new Set(
          (config.breakGlass ?? []).filter((p) => p.zone === zone).flatMap((p) => p.sourceZones ?? []),
        ),
      ];
  const resources = resourcesForGrant(
    compilePolicy(config),
    zone,
    isResource ? options.target : null,
    options.role,
  );
  const changes = sources.flatMap((sourceZone) => {
    const change = blastRadiusChange(
      config,
      sourceZone,
      [],
      hypotheticalPaths(config, sourceZone, resources, Date.now()),
    );
    return change ? [change] : [];
  });
  const note =
    sources.length === 0
      ? "the source zone is unknown: name one with --source-zone"
      : resources.every((r) => !config.resources?.[r]?.address)
        ? "no resource of this grant has an address, so it opens no network path"
        : null;
  return { changes, note };
}

export function describeBlastRadius(result: BlastRadius): string {
  const lines = ["blast radius:"];
  if (result.note) lines.push(`  ${result.note}`);
  for (const change of result.changes) {
    lines.push(
      `  from ${change.sourceZone}: ${change.before.zones} -> ${change.after.zones} zone(s), ${change.before.resources} -> ${change.after.resources} resource(s)` +
        (change.paths.length
          ? `  (opens ${change.paths.map((p) => `${p.resource} at ${p.to}`).join(", ")})`
          : ""),
    );
    for (const zone of change.addedZones)
      lines.push(
        `    newly reachable: ${zone.zone} via ${[change.sourceZone, ...zone.path.map((h) => h.to)].join(" -> ")}`,
      );
    if (change.addedZones.length === 0) lines.push("    nothing newly reachable at zone level");
  }
  return lines.join("\n");
}

export function registerSegmentationCommands(program: Command, context: CliContext): void {
  program
    .command("reach")
    .description("what a zone reaches directly and transitively (with hops), and its blast radius")
    .argument("<zone>", "the zone to analyse")
    .option("--config <file>", "analyse this configuration file offline (standing flows only)")
    .option("--no-grants", "leave out the paths of active grants (server only)")
    .action(async (zone: string, options: { config?: string; grants: boolean }) => {
      let result: Reachability;
      if (options.config) {
        const { analyseZone, buildReachabilityGraph } = await import("./reachability.js");
        const config = await loadOffline(options.config, context);
        const analysed = analyseZone(buildReachabilityGraph(config), zone);
        if (!analysed) throw context.fail(`no zone '${zone}' in ${options.config}`, "NOT_FOUND");
        result = { ...analysed, includesGrants: false };
      } else {
        const { reachabilityReply } = await import("../api/segmentation.schema.js");
        result = await (await context.client()).get(
          `/v1/zones/${encodeURIComponent(zone)}/reachability?grants=${options.grants}`,
          reachabilityReply,
        );
      }
      context.emit(result, () => describeReach(result));
    });

  program
    .command("lint")
    .description("risky configuration: standing admin roles, public zones reaching data, weak policies")
    .option("--config <file>", "lint this configuration file offline")
    .addOption(
      new Option("--fail-on <severity>", "exit 1 when a finding is at least this severe")
        .choices([...SEVERITY_CHOICES])
        .default("high"),
    )
    .action(async (options: { config?: string; failOn: Severity }) => {
      const { failsAt, lintConfig } = await import("./lint.js");
      const { lintReply } = await import("../api/segmentation.schema.js");
      const findings = options.config
        ? lintConfig(await loadOffline(options.config, context))
        : (await (await context.client()).get("/v1/lint", lintReply)).findings;
      context.emit({ findings, failOn: options.failOn }, () => describeFindings(findings));
      if (failsAt(findings, options.failOn)) process.exitCode = 1;
    });

  program
    .command("export-policies")
    .description("render standing flows and active grants as Kubernetes, Cilium, Calico or nftables policy")
    .addOption(
      new Option("--format <format>", "what to render").choices([...FORMAT_CHOICES]).makeOptionMandatory(),
    )
    .option("--config <file>", "render this configuration file offline (standing flows only)")
    .option("--namespace <name>", "namespace of NetworkPolicy and CiliumNetworkPolicy objects", "default")
    .option("--table <name>", "nftables table name", "firebreak")
    .option("--output <file>", "write to this file instead of standard output")
    .action(
      async (options: {
        format: ExportFormat;
        config?: string;
        namespace: string;
        table: string;
        output?: string;
      }) => {
        const { buildNetworkState, networkStateSchema, standingState } = await import("./network-state.js");
        const { exportPolicies } = await import("../exporters/exporters.js");
        let state: NetworkState;
        if (options.config) {
          state = buildNetworkState(
            standingState(await loadOffline(options.config, context)),
            [],
            Date.now(),
          );
        } else {
          const { desiredStateReply } = await import("../api/enforcement.schema.js");
          const reply = await (await context.client()).get(
            "/v1/enforcement/desired-state",
            desiredStateReply,
          );
          state = networkStateSchema.parse(reply.state);
        }
        const rendered = exportPolicies(state, options.format, {
          namespace: options.namespace,
          table: options.table,
          now: state.serverTime,
        });
        if (options.output) {
          await writeFile(options.output, rendered.text);
          context.emit(
            {
              format: rendered.format,
              output: options.output,
              documents: rendered.documents.length,
              notes: rendered.notes,
            },
            () => `wrote ${rendered.documents.length} document(s) to ${options.output}`,
          );
        } else process.stdout.write(rendered.text);
      },
    );
}

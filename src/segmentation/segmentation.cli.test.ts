import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FIXTURE_CONFIG } from "../../test/fixtures/segmentation/fixture.js";
import { main } from "../cli/main.js";

/** Runs the CLI in process and captures what it prints. */
async function cli(...args: string[]) {
  const printed: string[] = [];
  const spy = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => {
    printed.push(String(chunk));
    return true;
  });
  const previous = process.exitCode;
  process.exitCode = undefined;
  try {
    const code = await main(["node", "firebreak", ...args]);
    return { code, stdout: printed.join("") };
  } finally {
    spy.mockRestore();
    process.exitCode = previous;
  }
}

describe("offline segmentation commands (--config FILE, for CI)", () => {
  let directory: string | null = null;
  afterEach(async () => {
    if (directory) await rm(directory, { recursive: true, force: true });
    directory = null;
  });

  it("reach prints direct and transitive reachability with hops and blast radius", async () => {
    const human = await cli("reach", "edge", "--config", FIXTURE_CONFIG);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain("reaches transitively (2):");
    expect(human.stdout).toContain("payments-app -> payments_db [tcp/5432, tcp/6432, udp/53]");
    expect(human.stdout).toContain("blast radius: 3 zone(s), 2 resource(s)");
    const json = JSON.parse((await cli("--json", "reach", "payments_db", "--config", FIXTURE_CONFIG)).stdout);
    expect(json.reachedBy).toEqual({ direct: ["payments-app"], transitive: ["edge", "office"] });
    expect((await cli("reach", "nowhere", "--config", FIXTURE_CONFIG)).code).toBe(1);
  });

  it("lint exits 1 on findings at the chosen severity, 0 below it", async () => {
    const failing = await cli("lint", "--config", FIXTURE_CONFIG);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toContain("HIGH   STANDING_ADMIN_BINDING");
    expect(failing.stdout).toMatch(/9 finding\(s\): 2 high, 5 medium, 2 low/);
    const json = JSON.parse((await cli("--json", "lint", "--config", FIXTURE_CONFIG)).stdout);
    expect(json.findings).toHaveLength(9);
    expect((await cli("lint", "--config", "test/fixtures/segmentation/missing.yaml")).code).toBe(1);
  });

  it("lint passes the shipped example at its default fail level", async () => {
    const result = await cli("lint", "--config", "examples/firebreak.yaml");
    expect(result.stdout).not.toContain("HIGH");
    expect(result.stdout).toMatch(/finding\(s\): 0 high/);
    expect(result.code).toBe(0);
  });

  it("explain --blast-radius shows what the grant would newly reach", async () => {
    const result = await cli(
      "explain",
      "alice",
      "payments-pg",
      "--role",
      "admin",
      "--config",
      FIXTURE_CONFIG,
      "--blast-radius",
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(
      "from bastion: 0 -> 2 zone(s), 0 -> 2 resource(s)  (opens payments-pg at 10.40.0.5:5432)",
    );
    expect(result.stdout).toContain("newly reachable: reporting via bastion -> payments_db -> reporting");
  });

  it("export-policies renders the standing flows in every format", async () => {
    directory = await mkdtemp(join(tmpdir(), "firebreak-export-"));
    for (const format of ["k8s", "cilium", "calico", "nftables"]) {
      const output = join(directory, `out.${format}`);
      const result = await cli(
        "export-policies",
        "--format",
        format,
        "--config",
        FIXTURE_CONFIG,
        "--output",
        output,
      );
      expect(result.code, result.stdout).toBe(0);
      const text = await readFile(output, "utf8");
      expect(text.length).toBeGreaterThan(100);
      expect(text).not.toContain("grt_");
    }
    expect((await cli("export-policies", "--format", "iptables", "--config", FIXTURE_CONFIG)).code).toBe(2);
  });
});

import { readFile, writeFile } from "node:fs/promises";
import { CiliumNetworkPolicy } from "@kubernetes-models/cilium/cilium.io/v2/CiliumNetworkPolicy";
import { Ajv } from "ajv";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { fixtureConfig } from "../../test/fixtures/segmentation/fixture.js";
import { buildNetworkState, type PathState, standingState } from "../segmentation/network-state.js";
import { type Document, EXPORT_FORMATS, type ExportFormat, exportPolicies } from "./exporters.js";
import { DNS_SUBDOMAIN, isLabelKey, isLabelValue, objectName } from "./names.js";

const GOLDEN = "test/fixtures/exporters";
const SERVER_TIME = Date.parse("2026-03-03T02:00:00Z");
const grantPaths: PathState[] = [
  {
    grantId: "grt_mi3k2a9f4c1b8e0d7a6f3e2d",
    user: "alice",
    zone: "payments_db",
    resource: "payments-pg",
    from: { zone: "bastion", address: "10.20.0.7", cidrs: [] },
    to: { host: "10.40.0.5", port: 5432, protocol: "tcp" },
    endsAt: SERVER_TIME + 30 * 60_000,
  },
  {
    grantId: "grt_mi3k2b0a00112233445566aa",
    user: "bob",
    zone: "payments_db",
    resource: "payments-pg",
    from: { zone: "bastion", address: null, cidrs: ["10.20.0.0/24"] },
    to: { host: "10.40.0.5", port: 5432, protocol: "tcp" },
    endsAt: SERVER_TIME + 15 * 60_000,
  },
];

async function render(format: ExportFormat) {
  const state = buildNetworkState(standingState(await fixtureConfig()), grantPaths, SERVER_TIME);
  return exportPolicies(state, format, { namespace: "payments", now: SERVER_TIME });
}

const calicoSchema = JSON.parse(
  await readFile("test/fixtures/schemas/calico/globalnetworkpolicy.v3.schema.json", "utf8"),
);
const validateCalico = new Ajv({ allErrors: true, strict: true, strictRequired: false }).compile(
  calicoSchema,
);

/** Kubernetes naming rules on every object: name, labels. */
function kubernetesNamingProblems(document: Document): string[] {
  const problems: string[] = [];
  const name = String(document.metadata?.name ?? "");
  if (!DNS_SUBDOMAIN.test(name) || name.length > 63) problems.push(`name '${name}'`);
  for (const [key, value] of Object.entries(document.metadata?.labels ?? {})) {
    if (!isLabelKey(key)) problems.push(`label key '${key}'`);
    if (!isLabelValue(String(value))) problems.push(`label value '${String(value)}'`);
  }
  for (const selector of [document.spec?.podSelector, document.spec?.endpointSelector].filter(Boolean))
    for (const [key, value] of Object.entries(selector.matchLabels ?? {}))
      if (!isLabelKey(key) || !isLabelValue(String(value))) problems.push(`selector ${key}=${String(value)}`);
  return problems;
}

describe("policy exporters", () => {
  it.each(EXPORT_FORMATS)("renders %s exactly as the reviewed golden file", async (format) => {
    const rendered = await render(format);
    // The nftables golden is JSON as rendered; a name Biome does not format keeps it byte-exact.
    const file = `${GOLDEN}/${format}.${format === "nftables" ? "json.golden" : "yaml"}`;
    if (process.env.UPDATE_GOLDEN === "1") await writeFile(file, rendered.text);
    expect(rendered.text).toBe(await readFile(file, "utf8"));
  });

  it("renders NetworkPolicies that the Kubernetes schema accepts, with valid names and labels", async () => {
    const rendered = await render("k8s");
    expect(rendered.documents.map((d) => d.metadata.name)).toEqual([
      "firebreak-zone-edge",
      "firebreak-zone-bastion",
      "firebreak-zone-payments-app",
      "firebreak-zone-payments-db-afce8962",
      "firebreak-grt-mi3k2a9f4c1b8e0d7a6f3e2d-payments-pg-0cdfedf6",
      "firebreak-grt-mi3k2b0a00112233445566aa-payments-pg-f6fdfb25",
    ]);
    expect(rendered.notes).toEqual([
      "zone reporting is in monitor mode; NetworkPolicy cannot log, so it gets no policy",
      "zone office is in monitor mode; NetworkPolicy cannot log, so it gets no policy",
    ]);
    for (const document of rendered.documents) {
      expect(() => new NetworkPolicy(document as never).validate()).not.toThrow();
      expect(kubernetesNamingProblems(document)).toEqual([]);
    }
    const parsed = parseAllDocuments(rendered.text).map((d) => d.toJSON());
    expect(parsed).toEqual(rendered.documents);
  });

  it("renders CiliumNetworkPolicies that Cilium's schema accepts", async () => {
    const rendered = await render("cilium");
    for (const document of rendered.documents) {
      expect(() => new CiliumNetworkPolicy(document as never).validate()).not.toThrow();
      expect(kubernetesNamingProblems(document)).toEqual([]);
    }
    const monitor = rendered.documents.find((d) => d.metadata.labels["firebreak.io/zone"] === "reporting");
    expect(monitor?.spec.enableDefaultDeny).toEqual({ ingress: false, egress: false });
  });

  it("renders Calico GlobalNetworkPolicies that the (hand-written) Calico schema accepts", async () => {
    const rendered = await render("calico");
    for (const document of rendered.documents) {
      expect(validateCalico(document), JSON.stringify(validateCalico.errors)).toBe(true);
      expect(kubernetesNamingProblems(document)).toEqual([]);
    }
    const db = rendered.documents.find(
      (d) =>
        d.metadata.labels["firebreak.io/zone"] === "payments_db" && !d.metadata.labels["firebreak.io/grant"],
    );
    expect(db?.spec.ingress.at(-1)).toEqual({ action: "Deny" });
    const reporting = rendered.documents.find((d) => d.metadata.name === "firebreak-zone-reporting");
    expect(reporting?.spec.ingress.slice(-2)).toEqual([{ action: "Log" }, { action: "Allow" }]);
  });

  it("the schemas refuse what they should (the checks above can fail)", async () => {
    const zone = (await render("k8s")).documents[2];
    const broken = structuredClone(zone) as Document;
    broken.spec.ingress[1].ports[0].protocol = "TCPX";
    expect(() => new NetworkPolicy(broken as never).validate()).toThrow();
    const ciliumZone = (await render("cilium")).documents[2];
    const brokenCilium = structuredClone(ciliumZone) as Document;
    brokenCilium.spec.ingress[1].toPorts[0].ports[0].protocol = "TCPZ";
    expect(() => new CiliumNetworkPolicy(brokenCilium as never).validate()).toThrow();
    const [calicoZone] = (await render("calico")).documents;
    expect(
      validateCalico({ ...calicoZone, spec: { ...calicoZone?.spec, ingress: [{ action: "Maybe" }] } }),
    ).toBe(false);
    expect(
      kubernetesNamingProblems({ metadata: { name: "Bad_Name", labels: { "firebreak.io/zone": "-x" } } }),
    ).toHaveLength(2);
  });

  it("makes distinct, valid object names from any zone or grant name", () => {
    expect(objectName("firebreak", "zone", "payments-app")).toBe("firebreak-zone-payments-app");
    expect(objectName("firebreak", "zone", "a_b")).not.toBe(objectName("firebreak", "zone", "a-b"));
    const long = objectName("firebreak", "zone", "x".repeat(63));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(DNS_SUBDOMAIN.test(long)).toBe(true);
  });
});

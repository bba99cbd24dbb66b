import { describe, expect, it } from "vitest";
import { formatIssue, loadConfigText } from "../../src/config/load.js";

const BASE = `version: 1
zones:
  vault: {}
`;

describe("audit settings in firebreak.yaml", () => {
  it("parse sizes, delays, filters, TLS and delivery overrides", () => {
    const result = loadConfigText(`${BASE}server:
  publicUrl: https://firebreak.example.com
  metricsToken: env:METRICS_TOKEN
audit:
  signingKey: file:/etc/firebreak/audit-ed25519.pem
  checkpoint: { interval: 10m }
  delivery: { maxAttempts: 5, initialBackoff: 500ms, maxBackoff: 2m, batchSize: 100, timeout: 5s }
  sinks:
    - { name: siem, type: syslog, url: tcp+tls://siem.internal:6514, format: rfc5424, facility: audit, tls: { ca: file:/etc/ssl/siem-ca.pem } }
    - name: lake
      type: file
      path: /var/log/firebreak/audit.ocsf.jsonl
      format: ocsf
      rotate: { size: 100MiB, keep: 7 }
      filter: { types: [grant.*, alert.raised], zones: [vault], minSeverity: low }
    - { name: splunk, type: splunk-hec, url: https://splunk.internal:8088, token: env:HEC_TOKEN, index: security, delivery: { maxAttempts: 20 } }
    - { name: soar, type: webhook, url: https://soar.internal/firebreak, secret: env:SOAR_SECRET, startAt: newest }
`);
    if (!result.ok) throw new Error(result.errors.map(formatIssue).join("\n"));
    const audit = result.config.audit;
    expect(audit?.checkpoint?.interval).toBe(600_000);
    expect(audit?.delivery).toEqual({
      maxAttempts: 5,
      initialBackoff: 500,
      maxBackoff: 120_000,
      batchSize: 100,
      timeout: 5_000,
    });
    expect(audit?.sinks?.[1]).toMatchObject({
      rotate: { size: 100 * 1024 * 1024, keep: 7 },
      filter: { minSeverity: "low" },
    });
    expect(result.config.server?.metricsToken).toBe("env:METRICS_TOKEN");
  });

  it("report each mistake with its line, column and what was expected", () => {
    const result = loadConfigText(`${BASE}audit:
  delivery: { initialBackoff: 5 minutes }
  sinks:
    - { name: a, type: syslog }
    - { name: b, type: syslog, url: "http://siem:514" }
    - { name: c, type: webhook, url: https://soar.internal/x }
    - { name: d, type: splunk-hec, url: https://splunk:8088 }
    - { name: e, type: file }
    - { name: f, type: syslog, url: "udp://siem:514", rotate: { size: 1MB } }
    - { name: g, type: file, path: /tmp/x, rotate: { size: 12 bytes } }
    - { name: h, type: file, path: /tmp/x, filter: { types: ["Grant Activated"], minSeverity: huge } }
    - { name: i, type: syslog, url: "tcp+tls://siem:6514", tls: { insecure: true } }
`);
    expect(result.ok).toBe(false);
    const errors = result.ok
      ? []
      : result.errors.map((issue) => `${issue.line}:${issue.path}: ${issue.message}`);
    expect(errors).toEqual([
      "5:audit.delivery.initialBackoff: expected a delay such as '500ms', '2s' or '5m'",
      "7:audit.sinks[0].url: expected a 'url' such as 'tcp+tls://siem.internal:6514' for a syslog sink",
      "8:audit.sinks[1].url: expected a syslog address 'udp://', 'tcp://' or 'tcp+tls://' with host and port",
      "9:audit.sinks[2].secret: expected a 'secret' (a secret reference to a 'whsec_…' key) for a webhook sink",
      "10:audit.sinks[3].token: expected a 'token' (a secret reference) for a Splunk HEC sink",
      "11:audit.sinks[4].path: expected a 'path' for a file sink",
      "12:audit.sinks[5].rotate: expected 'rotate' only on a file sink",
      "13:audit.sinks[6].rotate.size: expected a size such as '500KB', '10MiB' or '1GB'",
      "14:audit.sinks[7].filter.types[0]: expected an event type such as 'grant.activated', or a pattern such as 'grant.*'",
      "14:audit.sinks[7].filter.minSeverity: expected one of 'info', 'low', 'medium', 'high', 'critical'",
      "15:audit.sinks[8].tls.insecure: unknown key; expected one of: ca, cert, key, serverName",
    ]);
  });

  it("take an anchor file only as an absolute path, and only with a signing key", () => {
    const anchored = loadConfigText(`${BASE}audit:
  signingKey: file:/etc/firebreak/audit-ed25519.pem
  anchor: { file: /var/lib/firebreak-anchor/anchor.jsonl }
`);
    if (!anchored.ok) throw new Error(anchored.errors.map(formatIssue).join("\n"));
    expect(anchored.config.audit?.anchor).toEqual({ file: "/var/lib/firebreak-anchor/anchor.jsonl" });
    const issues = (text: string) => {
      const result = loadConfigText(text);
      return result.ok ? [] : result.errors.map((issue) => `${issue.line}:${issue.path}: ${issue.message}`);
    };
    expect(issues(`${BASE}audit:\n  anchor: { file: /var/lib/firebreak-anchor/anchor.jsonl }\n`)).toEqual([
      "5:audit.anchor: audit.anchor needs audit.signingKey: the anchor is the newest signed checkpoint, and without a key none is written",
    ]);
    expect(
      issues(`${BASE}audit:\n  signingKey: file:/etc/k.pem\n  anchor: { file: anchor.jsonl }\n`),
    ).toEqual(["6:audit.anchor.file: expected an absolute path, outside the data directory"]);
  });
});

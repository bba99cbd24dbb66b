import { describe, expect, it } from "vitest";
import { summarizeConfigChange } from "./diff.js";
import { configSchema, type FirebreakConfig } from "./schema.js";

function config(overrides: Record<string, unknown> = {}): FirebreakConfig {
  return configSchema.parse({
    version: 1,
    directory: { users: { alice: { groups: ["sre"] }, bob: { groups: ["sre"] } } },
    zones: { app: {}, db: { enforcement: "enforce" } },
    flows: [
      { from: "app", to: "db", ports: ["tcp/5432"] },
      { from: "app", to: "db", ports: ["tcp/6432"] },
    ],
    resources: { pg: { zone: "db", type: "postgres", roles: { read: {}, admin: {} } } },
    standing: [{ group: "sre", zone: "app", role: "read" }],
    breakGlass: [
      {
        name: "db-emergency",
        zone: "db",
        roles: ["admin"],
        eligible: ["group:sre"],
        duration: { default: "30m", max: "1h" },
      },
    ],
    ...overrides,
  });
}

const nothing = { added: [], removed: [], changed: [] };

describe("summarizeConfigChange", () => {
  it("reports everything as added on first start", () => {
    expect(summarizeConfigChange(null, config())).toEqual({
      zones: { added: ["app", "db"], removed: [], changed: [] },
      resources: { added: ["pg"], removed: [], changed: [] },
      policies: { added: ["db-emergency"], removed: [], changed: [] },
      flows: { added: 2, removed: 0 },
      standing: { added: 1, removed: 0 },
      users: { added: ["alice", "bob"], removed: [], changed: [] },
      otherSections: ["version"],
      unchanged: false,
    });
  });

  it("reports an identical configuration as unchanged", () => {
    expect(summarizeConfigChange(config(), config())).toEqual({
      zones: nothing,
      resources: nothing,
      policies: nothing,
      flows: { added: 0, removed: 0 },
      standing: { added: 0, removed: 0 },
      users: nothing,
      otherSections: [],
      unchanged: true,
    });
  });

  it("names what was added, removed and changed", () => {
    const previous = config();
    const next = config({
      directory: { users: { alice: { groups: ["sre", "security"] }, carol: { groups: [] } } },
      zones: { db: { enforcement: "monitor" }, edge: {} },
      resources: { pg: { zone: "db", type: "postgres", roles: { read: {} } } },
      flows: [
        { from: "app", to: "db", ports: ["tcp/5432"] },
        { from: "edge", to: "app", ports: ["tcp/443"] },
      ],
      standing: [],
      breakGlass: [
        {
          name: "db-break-glass",
          zone: "db",
          roles: ["admin"],
          eligible: ["group:sre"],
          duration: { default: "30m", max: "1h" },
        },
      ],
      notify: [{ type: "slack", url: "env:SLACK" }],
    });
    expect(summarizeConfigChange(previous, next)).toEqual({
      zones: { added: ["edge"], removed: ["app"], changed: ["db"] },
      resources: { added: [], removed: [], changed: ["pg"] },
      policies: { added: ["db-break-glass"], removed: ["db-emergency"], changed: [] },
      flows: { added: 1, removed: 1 },
      standing: { added: 0, removed: 1 },
      users: { added: ["carol"], removed: ["bob"], changed: ["alice"] },
      otherSections: ["notify"],
      unchanged: false,
    });
  });

  it("sees a changed policy by name, and a reordering as a change of order only", () => {
    const previous = config();
    const longer = config({
      breakGlass: [
        {
          name: "db-emergency",
          zone: "db",
          roles: ["admin"],
          eligible: ["group:sre"],
          duration: { default: "30m", max: "2h" },
        },
      ],
    });
    expect(summarizeConfigChange(previous, longer).policies).toEqual({
      added: [],
      removed: [],
      changed: ["db-emergency"],
    });

    const flows = previous.flows ?? [];
    const reordered = { ...previous, flows: [...flows].reverse() };
    const summary = summarizeConfigChange(previous, reordered);
    expect(summary.flows).toEqual({ added: 0, removed: 0 });
    expect(summary.otherSections).toEqual(["flows"]);
    expect(summary.unchanged).toBe(false);
  });
});

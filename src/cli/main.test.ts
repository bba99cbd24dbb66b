import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { EXPORT_FORMATS } from "../exporters/exporters.js";
import { SEVERITIES } from "../segmentation/lint.js";
import { FORMAT_CHOICES, SEVERITY_CHOICES } from "../segmentation/segmentation.cli.js";
import { buildProgram, COMMANDS, commandNamed } from "./main.js";

describe("the command table of main.ts", () => {
  it("names, line by line, exactly the top-level commands each module registers", async () => {
    for (const entry of COMMANDS) {
      const program = new Command();
      await entry.register(program, { globals: () => ({}), emit: () => {}, client: never, fail: never });
      expect(program.commands.map((command) => command.name())).toEqual(entry.names);
    }
  });

  it("registers every command once, in the table's order, when no argv is given", async () => {
    const program = await buildProgram();
    expect(program.commands.map((command) => command.name())).toEqual(COMMANDS.flatMap((e) => e.names));
    expect(new Set(COMMANDS.flatMap((e) => e.names)).size).toBe(COMMANDS.flatMap((e) => e.names).length);
  });

  it("registers only the module of the command argv names", async () => {
    const names = async (...args: string[]) =>
      (await buildProgram(["node", "firebreak", ...args])).commands.map((command) => command.name());
    expect(await names("whoami")).toEqual(["login", "logout", "whoami"]);
    expect(await names("--json", "--server", "http://x", "activate", "req_1")).toEqual(
      COMMANDS.find((e) => e.names.includes("activate"))?.names,
    );
    expect(await names("--version")).toEqual([]);
    // Help, an unknown command (commander suggests the near ones) and no command need them all.
    const all = COMMANDS.flatMap((e) => e.names);
    expect(await names("--help")).toEqual(all);
    expect(await names("help", "request")).toEqual(all);
    expect(await names("reqest")).toEqual(all);
    expect(await names()).toEqual(all);
    expect(await names("--version", "--help")).toEqual(all);
  });

  it("finds the command name past the root options and their values", () => {
    expect(commandNamed(["node", "firebreak", "--server", "zones", "whoami"])).toBe("whoami");
    expect(commandNamed(["node", "firebreak", "--server=http://x", "--json", "zones"])).toBe("zones");
    expect(commandNamed(["node", "firebreak", "--json"])).toBeNull();
    expect(commandNamed(["node", "firebreak", "--", "zones"])).toBe("zones");
  });

  it("writes out the linter's severities and the exporters' formats as they are", () => {
    expect(SEVERITY_CHOICES).toEqual(SEVERITIES);
    expect(FORMAT_CHOICES).toEqual(EXPORT_FORMATS);
  });
});

function never(): never {
  throw new Error("not used while registering");
}

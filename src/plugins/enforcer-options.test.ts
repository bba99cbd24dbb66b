import { describe, expect, it } from "vitest";
import { isFirebreakError } from "../errors.js";
import { checkEnforcerOptions } from "./enforcer-options.js";

function refusal(run: () => void): string {
  try {
    run();
  } catch (error) {
    expect(isFirebreakError(error) && error.code).toBe("CONFIG_INVALID");
    return (error as Error).message;
  }
  throw new Error("expected the options to be refused");
}

describe("enforcer options", () => {
  it("takes what each enforcer declares, and unset options as not given", () => {
    expect(() => checkEnforcerOptions("nftables", { netns: "fb-router", table: "firebreak" })).not.toThrow();
    expect(() => checkEnforcerOptions("log", { netns: null, table: undefined })).not.toThrow();
    expect(() => checkEnforcerOptions("agent", {})).not.toThrow();
  });

  it("refuses an option another enforcer takes, and a value the enforcer would refuse, naming the option", () => {
    expect(refusal(() => checkEnforcerOptions("log", { netns: "fb-router" }))).toBe(
      "the 'log' enforcer takes no 'netns'",
    );
    expect(refusal(() => checkEnforcerOptions("nftables", { netns: "ns; reboot" }))).toBe(
      "'netns': expected a network namespace name of letters, digits, '_', '.' or '-'",
    );
    expect(refusal(() => checkEnforcerOptions("nftables", { table: "Fire-break" }))).toBe(
      "'table': expected a lowercase letter, then letters, digits or '_'",
    );
  });
});

import { describe, expect, it } from "vitest";
import { CelCompileError, type ConditionVars, compileCondition } from "./cel.js";

function vars(
  overrides: { incident?: Partial<ConditionVars["signals"]["incident"]> } & Partial<ConditionVars> = {},
) {
  const { incident, ...rest } = overrides;
  const base: ConditionVars = {
    principal: { name: "alice", groups: ["sre", "oncall"] },
    request: {
      zone: "payments-db",
      resource: null,
      role: "admin",
      durationSeconds: 1800,
      reason: "primary is down, failing over",
      ticket: null,
      sourceZone: "bastion",
    },
    signals: {
      incident: { open: true, severity: 2, id: "INC-7", title: "db down", ageSeconds: 300, ...incident },
      sourceZone: "bastion",
    },
    now: Date.parse("2026-03-01T02:30:00Z"),
  };
  return { ...base, ...rest };
}

function compileError(source: string): CelCompileError {
  try {
    compileCondition(source);
  } catch (error) {
    expect(error).toBeInstanceOf(CelCompileError);
    return error as CelCompileError;
  }
  throw new Error(`expected '${source}' not to compile`);
}

describe("compileCondition: evaluation", () => {
  it("evaluates the SPEC's incident condition with severities passed as JS numbers", () => {
    const condition = compileCondition("signals.incident.open && signals.incident.severity <= 2");
    expect(condition.source).toBe("signals.incident.open && signals.incident.severity <= 2");
    expect(condition.evaluate(vars())).toEqual({ ok: true, value: true });
    expect(condition.evaluate(vars({ incident: { severity: 3 } }))).toEqual({ ok: true, value: false });
    expect(condition.evaluate(vars({ incident: { open: false } }))).toEqual({ ok: true, value: false });
  });

  it("hands numbers to CEL as ints, so int arithmetic and equality work", () => {
    expect(compileCondition("signals.incident.severity + 1 == 3").evaluate(vars())).toEqual({
      ok: true,
      value: true,
    });
    expect(
      compileCondition("signals.incident.severity == 1").evaluate(vars({ incident: { severity: 1 } })),
    ).toEqual({
      ok: true,
      value: true,
    });
    expect(compileCondition("request.durationSeconds <= 3600").evaluate(vars())).toEqual({
      ok: true,
      value: true,
    });
    // A fractional age is truncated rather than becoming a double that breaks int comparisons.
    expect(
      compileCondition("signals.incident.ageSeconds == 90").evaluate(
        vars({ incident: { ageSeconds: 90.7 } }),
      ),
    ).toEqual({ ok: true, value: true });
  });

  it("exposes now as a timestamp with comparisons and calendar accessors", () => {
    expect(compileCondition("now > timestamp('2026-01-01T00:00:00Z')").evaluate(vars())).toEqual({
      ok: true,
      value: true,
    });
    expect(compileCondition("now < timestamp('2026-03-01T02:00:00Z')").evaluate(vars())).toEqual({
      ok: true,
      value: false,
    });
    const nightShift = compileCondition("now.getHours() < 6");
    expect(nightShift.evaluate(vars())).toEqual({ ok: true, value: true });
    expect(nightShift.evaluate(vars({ now: Date.parse("2026-03-01T14:00:00Z") }))).toEqual({
      ok: true,
      value: false,
    });
    expect(compileCondition("now.getHours('Europe/Paris') == 3").evaluate(vars())).toEqual({
      ok: true,
      value: true,
    });
    expect(
      compileCondition("now - timestamp('2026-03-01T02:00:00Z') == duration('30m')").evaluate(vars()),
    ).toEqual({ ok: true, value: true });
  });

  it("supports lists, macros, nulls and string functions", () => {
    const cases: [string, boolean][] = [
      ["'sre' in principal.groups", true],
      ["principal.groups.exists(g, g == 'oncall')", true],
      ["principal.groups.all(g, g.startsWith('s'))", false],
      ["request.ticket == null", true],
      ["has(request.ticket)", false],
      ["request.sourceZone in ['bastion', 'vpn']", true],
      ["request.reason.size() >= 20 && request.reason.contains('failing')", true],
      ["request.zone.matches('^payments-')", true],
      // A loop variable may shadow a top-level name without being mistaken for it.
      ["[1, 2].exists(request, request > 1)", true],
    ];
    for (const [source, expected] of cases) {
      expect(compileCondition(source).evaluate(vars()), source).toEqual({ ok: true, value: expected });
    }
  });

  it("evaluates each call on its own input", () => {
    const condition = compileCondition("principal.name == 'alice' && request.ticket == 'INC-7'");
    expect(condition.evaluate(vars())).toEqual({ ok: true, value: false });
    const withTicket = vars();
    withTicket.request.ticket = "INC-7";
    expect(condition.evaluate(withTicket)).toEqual({ ok: true, value: true });
    expect(condition.evaluate({ ...withTicket, principal: { name: "bob", groups: [] } })).toEqual({
      ok: true,
      value: false,
    });
  });

  it("returns an error, never a value, when evaluation fails", () => {
    const startsWith = compileCondition("request.ticket.startsWith('INC-')");
    const failed = startsWith.evaluate(vars());
    expect(failed.ok).toBe(false);
    expect(!failed.ok && failed.error).toMatch(/overload/);
    const withTicket = vars();
    withTicket.request.ticket = "INC-9";
    expect(startsWith.evaluate(withTicket)).toEqual({ ok: true, value: true });

    expect(compileCondition("1 / (signals.incident.severity - 2) == 0").evaluate(vars()).ok).toBe(false);
    // Input that cannot become a CEL int is an error result, not an exception.
    expect(
      compileCondition("signals.incident.severity <= 2").evaluate(
        vars({ incident: { severity: Number.NaN } }),
      ),
    ).toMatchObject({ ok: false });
  });

  it("treats a non-boolean result as an error, never as truthy", () => {
    const mixed = compileCondition("signals.incident.open ? 1 : true");
    expect(mixed.evaluate(vars())).toEqual({
      ok: false,
      error: "the condition produced the int 1, not true or false",
    });
    expect(mixed.evaluate(vars({ incident: { open: false } }))).toEqual({ ok: true, value: true });
    expect(compileCondition("dyn(request.zone)").evaluate(vars())).toEqual({
      ok: false,
      error: "the condition produced a string, not true or false",
    });
  });
});

describe("compileCondition: compile errors", () => {
  it("rejects an unknown variable, naming it and what exists", () => {
    const error = compileError("incident.open && principal.name == 'alice'");
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toBe(
      "unknown variable 'incident' at column 1; conditions may use principal, request, signals, now",
    );
  });

  it("reports every unknown name at once, listing what exists only once", () => {
    const error = compileError("reqest.zone == 'a' ||\n  user.name == 'b'");
    expect(error.problems).toEqual([
      "unknown variable 'reqest' at column 1 (did you mean 'request'?); conditions may use principal, request, signals, now",
      "unknown variable 'user' at line 2, column 3",
    ]);
  });

  it("rejects a misspelled field on a known variable, suggesting the right one", () => {
    expect(compileError("signals.incidnet.open").message).toBe(
      "unknown field 'incidnet' in signals at column 9 (did you mean 'incident'?); signals has incident, sourceZone",
    );
    expect(compileError("signals.incident.severty <= 2").message).toContain(
      "unknown field 'severty' in signals.incident",
    );
    expect(compileError("request['zon'] == 'payments'").message).toContain("unknown field 'zon' in request");
    expect(compileError("has(request.tickt)").message).toContain("unknown field 'tickt' in request");
    expect(compileError("principal.name.first == 'a'").message).toBe(
      "principal.name is a string and has no field 'first' at column 16",
    );
  });

  it("rejects unknown functions and methods, which would otherwise fail only when reached", () => {
    expect(compileError("signals.incident.open || isWeekend(now)").message).toBe(
      "unknown function 'isWeekend' at column 26",
    );
    expect(compileError("request.zone.lower() == 'a'").message).toBe("unknown method 'lower' at column 14");
  });

  it("rejects syntax errors with their column", () => {
    const error = compileError("signals.incident.open &&");
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toMatch(/^syntax error at column \d+: /);
    expect(compileError("request.role == 'admin")).toBeInstanceOf(CelCompileError);
    expect(compileError("(((true)").message).toMatch(/^syntax error/);
  });

  it("rejects expressions whose result is evidently not a boolean", () => {
    expect(compileError("signals.incident.severity").message).toBe(
      "a condition must be true or false, but this one produces a number (int)",
    );
    expect(compileError("signals.incident.severity - 1").message).toContain(
      "produces the result of arithmetic",
    );
    expect(compileError("request.ticket").message).toContain("produces a string or null");
    expect(compileError("principal.groups.filter(g, g == 'sre')").message).toContain("produces a list");
    expect(compileError("now").message).toContain("produces a timestamp");
    expect(compileError("'yes'").message).toContain("produces a string");
  });

  it("rejects empty, oversized and pathologically nested conditions without crashing", () => {
    expect(compileError("  ").message).toBe("the condition is empty");
    expect(compileError(`true${" && true".repeat(600)}`).message).toBe(
      "the condition is longer than 4096 characters",
    );
    expect(compileError(`${"(".repeat(2000)}true${")".repeat(2000)}`).message).toBe(
      "the condition is nested too deeply",
    );
    expect(compileError("google.protobuf.Timestamp{seconds: 1} == now").message).toContain(
      "creating messages",
    );
  });
});

import { describe, expect, it } from "vitest";
import { oidcSchema } from "../config/schema.js";
import { claimAt, identityFromClaims, mapGroups, signInRefusal } from "./claims.js";

const oidc = (extra: Record<string, unknown> = {}) =>
  oidcSchema.parse({ issuer: "https://sso.example.com", clientId: "firebreak", ...extra });

describe("claims", () => {
  it("finds a claim by exact name first, then by dotted path", () => {
    const claims = {
      "https://example.com/groups": ["a"],
      realm_access: { roles: ["sre"] },
      "realm_access.roles": undefined,
    };
    expect(claimAt(claims, "https://example.com/groups")).toEqual(["a"]);
    expect(claimAt({ realm_access: { roles: ["sre"] } }, "realm_access.roles")).toEqual(["sre"]);
    expect(claimAt(claims, "realm_access.missing")).toBeUndefined();
    expect(claimAt({ a: ["x"] }, "a.length")).toBeUndefined();
    expect(claimAt({}, "__proto__.constructor")).toBeUndefined();
  });

  it("maps groups through groupMap, keeps valid names, and sets the rest aside", () => {
    expect(
      mapGroups(["sre", "Payments Leads", "/org/ops", "sre", 7, "x".repeat(300)], {
        "Payments Leads": "leads",
        "/org/ops": ["ops", "oncall"],
      }),
    ).toEqual({ groups: ["leads", "oncall", "ops", "sre"], ignored: [] });
    expect(mapGroups(["SRE", "team one"], undefined)).toEqual({ groups: [], ignored: ["SRE", "team one"] });
    expect(mapGroups("sre", undefined)).toEqual({ groups: ["sre"], ignored: [] });
    expect(mapGroups({ sre: true }, undefined)).toEqual({ groups: [], ignored: [] });
    // A map key named like an object property is only used when it is really in the map.
    expect(mapGroups(["constructor"], {})).toEqual({ groups: ["constructor"], ignored: [] });
  });

  it("reads the identity and decides whether it may sign in", () => {
    const config = oidc({
      usernameClaim: "email",
      groupsClaim: "realm_access.roles",
      allowedGroups: ["sre"],
    });
    const identity = identityFromClaims(
      {
        iss: "https://sso.example.com",
        sub: "abc",
        email: "olivia@example.com",
        realm_access: { roles: ["sre"] },
      },
      config,
    );
    expect(identity).toEqual({
      issuer: "https://sso.example.com",
      subject: "abc",
      username: "olivia@example.com",
      groups: ["sre"],
      ignoredGroups: [],
    });
    expect(signInRefusal(identity, config, false)).toBeNull();
    expect(signInRefusal({ ...identity, groups: ["dev"] }, config, true)).toMatch(
      /limited to members of 'sre'/,
    );
    const badName = identityFromClaims(
      { iss: "i", sub: "s", email: "o'brien+x@example.com" },
      oidc({ usernameClaim: "email" }),
    );
    expect(badName.username).toBeNull();
    expect(signInRefusal(badName, oidc({ usernameClaim: "email" }), false)).toMatch(
      /'email' claim is missing or is not a valid user name/,
    );
    // Once bound, the user is found by subject: the username claim no longer matters.
    expect(signInRefusal(badName, oidc({ usernameClaim: "email" }), true)).toBeNull();
  });
});

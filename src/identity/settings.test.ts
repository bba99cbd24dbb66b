import { describe, expect, it } from "vitest";
import { loadConfigText } from "../config/load.js";
import { safeReturnPath } from "./oidc.service.js";
import { identitySettings } from "./settings.js";

const BASE = `version: 1
zones: { sandbox: {} }
`;

describe("identity configuration", () => {
  it("derives the redirect URL and cookie security from server.publicUrl", () => {
    const loaded = loadConfigText(`${BASE}server: { publicUrl: "https://fb.example.com/" }
identity:
  sessionLifetime: 8h
  oidc: { issuer: "https://sso.example.com", clientId: firebreak, clientSecret: "env:OIDC_SECRET" }
`);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const settings = identitySettings(loaded.config);
    expect(settings).toMatchObject({
      redirectUrl: "https://fb.example.com/v1/auth/oidc/callback",
      origin: "https://fb.example.com",
      secureCookies: true,
      sessionLifetimeMs: 8 * 3_600_000,
    });
    expect(settings.oidc).toMatchObject({
      scopes: ["openid", "profile", "email"],
      usernameClaim: "preferred_username",
      groupsClaim: "groups",
      clientAuthMethod: "client_secret_basic",
    });
    const noOidc = loadConfigText(BASE);
    if (!noOidc.ok) throw new Error("the base configuration is valid");
    expect(identitySettings(noOidc.config)).toMatchObject({
      oidc: null,
      redirectUrl: null,
      sessionLifetimeMs: 12 * 3_600_000,
    });
  });

  it("reports what is wrong with an OIDC section, with its place in the file", () => {
    const loaded = loadConfigText(`${BASE}identity:
  sessionLifetime: 90d
  oidc:
    issuer: "http://sso.example.com"
    clientId: firebreak
    scopes: [profile]
`);
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    const messages = loaded.errors.map((e) => `${e.path}: ${e.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^identity\.sessionLifetime: .*1m to 30d/),
        expect.stringMatching(/^identity\.oidc\.issuer: .*https URL/),
        expect.stringMatching(/^identity\.oidc\.scopes: .*'openid'/),
      ]),
    );
    expect(loaded.errors.every((e) => e.line > 0)).toBe(true);
    // Without a public URL only the device flow can work: a warning, not an error.
    expect(loaded.warnings.map((w) => `${w.path}: ${w.message}`)).toEqual([
      expect.stringMatching(/^identity\.oidc: browser sign-in needs server\.publicUrl/),
    ]);
    const loopback = loadConfigText(`${BASE}identity:
  oidc: { issuer: "http://127.0.0.1:9000", clientId: firebreak, redirectUrl: "http://127.0.0.1:8080/v1/auth/oidc/callback" }
`);
    expect(loopback.ok).toBe(true);
  });

  it("only returns to paths on this server after sign-in", () => {
    expect(safeReturnPath(undefined)).toBe("/");
    expect(safeReturnPath("/requests/req_1?tab=audit")).toBe("/requests/req_1?tab=audit");
    for (const bad of [
      "//evil.example",
      "/\\evil.example",
      "https://evil.example",
      "requests",
      "/a b",
      "/\u0000",
    ]) {
      expect(() => safeReturnPath(bad), bad).toThrow();
    }
  });
});

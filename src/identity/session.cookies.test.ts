import { describe, expect, it } from "vitest";
import { isFirebreakError } from "../errors.js";
import {
  clearedSessionCookies,
  cookieNames,
  csrfTokenFor,
  loginCookie,
  presentedCredential,
  sessionCookies,
} from "./session.cookies.js";
import type { IdentitySettings } from "./settings.js";

const http: IdentitySettings = {
  oidc: null,
  redirectUrl: "http://127.0.0.1:8080/v1/auth/oidc/callback",
  origin: "http://127.0.0.1:8080",
  secureCookies: false,
  sessionLifetimeMs: 3_600_000,
};
const https: IdentitySettings = {
  ...http,
  redirectUrl: "https://fb.example.com/firebreak/v1/auth/oidc/callback",
  origin: "https://fb.example.com",
  secureCookies: true,
};
const TOKEN = `fbk_0123456789abcdef.${"a".repeat(43)}`;

function codeOf(run: () => unknown): string | null {
  try {
    run();
    return null;
  } catch (error) {
    return isFirebreakError(error) ? error.code : "not a FirebreakError";
  }
}

describe("session cookies and CSRF", () => {
  it("prefers the Authorization header and never asks it for a CSRF token", () => {
    expect(
      presentedCredential(
        { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, cookie: "firebreak_session=other" } },
        http,
      ),
    ).toEqual({ token: TOKEN, via: "bearer" });
    expect(presentedCredential({ method: "POST", headers: { authorization: "Basic x" } }, http)).toEqual({
      token: undefined,
      via: "bearer",
    });
    expect(presentedCredential({ method: "POST", headers: {} }, http)).toEqual({
      token: undefined,
      via: null,
    });
  });

  it("accepts the cookie on safe methods, and on others only with the session's CSRF token from its origin", () => {
    const cookie = `firebreak_session=${TOKEN}; firebreak_csrf=${csrfTokenFor(TOKEN)}`;
    expect(presentedCredential({ method: "GET", headers: { cookie } }, http)).toEqual({
      token: TOKEN,
      via: "cookie",
    });
    expect(codeOf(() => presentedCredential({ method: "POST", headers: { cookie } }, http))).toBe(
      "CSRF_REQUIRED",
    );
    expect(
      codeOf(() =>
        presentedCredential(
          { method: "DELETE", headers: { cookie, "x-firebreak-csrf": csrfTokenFor("other") } },
          http,
        ),
      ),
    ).toBe("CSRF_REQUIRED");
    const good = { cookie, "x-firebreak-csrf": csrfTokenFor(TOKEN) };
    expect(presentedCredential({ method: "POST", headers: good }, http).via).toBe("cookie");
    expect(
      presentedCredential({ method: "POST", headers: { ...good, origin: "http://127.0.0.1:8080" } }, http)
        .via,
    ).toBe("cookie");
    expect(
      codeOf(() =>
        presentedCredential({ method: "POST", headers: { ...good, origin: "https://evil.example" } }, http),
      ),
    ).toBe("CSRF_REQUIRED");
  });

  it("uses __Host- names over https and ignores a plain cookie planted beside them", () => {
    expect(cookieNames(true)).toEqual({
      session: "__Host-firebreak_session",
      csrf: "__Host-firebreak_csrf",
      login: "__Secure-firebreak_oidc",
    });
    expect(
      presentedCredential({ method: "GET", headers: { cookie: `firebreak_session=${TOKEN}` } }, https),
    ).toEqual({
      token: undefined,
      via: null,
    });
    const [session, csrf] = sessionCookies(TOKEN, 600, https);
    expect(session).toBe(
      `__Host-firebreak_session=${TOKEN}; Path=/; Max-Age=600; HttpOnly; Secure; SameSite=Strict`,
    );
    expect(csrf).toBe(
      `__Host-firebreak_csrf=${csrfTokenFor(TOKEN)}; Path=/; Max-Age=600; Secure; SameSite=Strict`,
    );
    expect(clearedSessionCookies(https)[0]).toMatch(/^__Host-firebreak_session=; Path=\/; Max-Age=0;/);
    // The login cookie follows the redirect URL's path, under a proxy prefix too.
    expect(loginCookie("v1.x", https)).toBe(
      "__Secure-firebreak_oidc=v1.x; Path=/firebreak/v1/auth/oidc/callback; Max-Age=600; HttpOnly; Secure; SameSite=Lax",
    );
  });

  it("derives a CSRF token that is stable per session and different between sessions", () => {
    expect(csrfTokenFor(TOKEN)).toBe(csrfTokenFor(TOKEN));
    expect(csrfTokenFor(TOKEN)).not.toBe(csrfTokenFor(`${TOKEN}b`));
    expect(csrfTokenFor(TOKEN)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(csrfTokenFor(TOKEN)).not.toContain(TOKEN.slice(21));
  });
});

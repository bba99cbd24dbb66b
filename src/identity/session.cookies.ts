import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { assert } from "../errors.js";
import { parseCookies, serializeCookie } from "./cookies.js";
import { CALLBACK_PATH, type IdentitySettings } from "./settings.js";

/** The header a cookie-authenticated state-changing request must carry (see NOTES.md). */
export const CSRF_HEADER = "x-firebreak-csrf";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);
/** How long a browser has to come back from the provider. */
export const LOGIN_COOKIE_MAX_AGE_S = 600;

/**
 * Cookie names. Over https they carry the `__Host-` prefix (Secure, Path=/, no Domain), so a
 * sibling subdomain or a plain-http response cannot plant a session cookie; the login cookie is
 * path-scoped to the callback and so can only be `__Secure-`.
 */
export function cookieNames(secure: boolean) {
  return secure
    ? { session: "__Host-firebreak_session", csrf: "__Host-firebreak_csrf", login: "__Secure-firebreak_oidc" }
    : { session: "firebreak_session", csrf: "firebreak_csrf", login: "firebreak_oidc" };
}

/**
 * The CSRF token of a session: an HMAC keyed by the session token, so it is bound to that session,
 * reveals nothing about it, and needs no storage.
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHmac("sha256", sessionToken).update("firebreak csrf v1").digest("base64url");
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

export interface CredentialRequest {
  method: string;
  headers: IncomingHttpHeaders;
}

export interface PresentedCredential {
  token: string | undefined;
  via: "bearer" | "cookie" | null;
}

/**
 * Finds the credential a request presents. An `Authorization: Bearer` header wins and needs nothing
 * more (browsers never attach it on their own). Otherwise the session cookie counts: on safe methods
 * as is, on anything else only with the CSRF header matching the session and, when the browser
 * names an Origin, only from Firebreak's own origin.
 */
export function presentedCredential(
  request: CredentialRequest,
  settings: IdentitySettings,
): PresentedCredential {
  const header = request.headers.authorization;
  if (header !== undefined) {
    return { token: header.startsWith("Bearer ") ? header.slice(7).trim() : undefined, via: "bearer" };
  }
  const names = cookieNames(settings.secureCookies);
  const session = parseCookies(request.headers.cookie).get(names.session);
  if (!session) return { token: undefined, via: null };
  if (!SAFE_METHODS.has(request.method.toUpperCase())) {
    const origin = request.headers.origin;
    assert(
      origin === undefined || settings.origin === null || origin === settings.origin,
      "CSRF_REQUIRED",
      "a cookie-authenticated request must come from the Firebreak console's own origin",
    );
    const presented = request.headers[CSRF_HEADER];
    assert(
      typeof presented === "string" && sameText(presented, csrfTokenFor(session)),
      "CSRF_REQUIRED",
      `a cookie-authenticated ${request.method.toUpperCase()} needs the '${CSRF_HEADER}' header set to the value of the '${names.csrf}' cookie`,
    );
  }
  return { token: session, via: "cookie" };
}

/** `Set-Cookie` values that start a browser session: the httpOnly session and its readable CSRF token. */
export function sessionCookies(token: string, maxAgeSeconds: number, settings: IdentitySettings): string[] {
  const names = cookieNames(settings.secureCookies);
  const common = {
    maxAge: maxAgeSeconds,
    path: "/",
    secure: settings.secureCookies,
    sameSite: "Strict",
  } as const;
  return [
    serializeCookie(names.session, token, { ...common, httpOnly: true }),
    serializeCookie(names.csrf, csrfTokenFor(token), { ...common, httpOnly: false }),
  ];
}

/** `Set-Cookie` values that end a browser session. */
export function clearedSessionCookies(settings: IdentitySettings): string[] {
  const names = cookieNames(settings.secureCookies);
  const common = { maxAge: 0, path: "/", secure: settings.secureCookies, sameSite: "Strict" } as const;
  return [
    serializeCookie(names.session, "", { ...common, httpOnly: true }),
    serializeCookie(names.csrf, "", { ...common, httpOnly: false }),
  ];
}

/**
 * The cookie that binds a browser to the sign-in it started. SameSite=Lax because the provider
 * sends the browser back with a cross-site top-level GET, which Strict would strip.
 */
export function loginCookie(
  value: string,
  settings: IdentitySettings,
  maxAgeSeconds = LOGIN_COOKIE_MAX_AGE_S,
) {
  return serializeCookie(cookieNames(settings.secureCookies).login, value, {
    maxAge: maxAgeSeconds,
    // The browser returns to the redirect URL, which may sit under a proxy's path prefix.
    path: settings.redirectUrl ? new URL(settings.redirectUrl).pathname : CALLBACK_PATH,
    httpOnly: true,
    secure: settings.secureCookies,
    sameSite: "Lax",
  });
}

export function loginCookieOf(request: CredentialRequest, settings: IdentitySettings): string | undefined {
  return parseCookies(request.headers.cookie).get(cookieNames(settings.secureCookies).login);
}

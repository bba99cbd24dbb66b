import type { FastifyReply } from "fastify";
import {
  authConfigReply,
  authMethodsReply,
  devicePollBody,
  devicePollReply,
  deviceStartReply,
  logoutReply,
  oidcCallbackQuery,
  oidcLoginQuery,
  redirectReply,
  sessionReply,
} from "../api/auth.schema.js";
import { revokedTokensReply, userNameParams } from "../api/users.schema.js";
import type { FirebreakConfig } from "../config/schema.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import { type OidcService, safeReturnPath } from "./oidc.service.js";
import {
  CSRF_HEADER,
  clearedSessionCookies,
  cookieNames,
  csrfTokenFor,
  loginCookie,
  loginCookieOf,
  presentedCredential,
  sessionCookies,
} from "./session.cookies.js";
import type { SessionService } from "./session.service.js";
import { identitySettings } from "./settings.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function noStore(reply: FastifyReply) {
  reply.header("cache-control", "no-store");
}

/**
 * Sign-in and sessions over HTTP. The browser routes answer with redirects and cookies; the device
 * routes answer JSON to the CLI. See NOTES.md for the session and CSRF design.
 */
export function createIdentityRoutes(deps: {
  oidc: OidcService;
  sessions: SessionService;
  config: () => FirebreakConfig;
}): AnyRoute[] {
  const settings = () => identitySettings(deps.config());

  return [
    defineRoute({
      method: "GET",
      url: "/v1/auth/config",
      summary:
        "How to sign in here: whether OIDC is configured, where to start, and the session's CSRF names",
      tag: "auth",
      auth: "none",
      reply: authConfigReply,
      handler: async () => {
        const status = deps.oidc.status();
        const current = settings();
        return {
          oidc: {
            enabled: status.enabled,
            issuer: status.issuer,
            loginUrl: status.browser ? "/v1/auth/oidc/login" : null,
            deviceStartUrl: status.enabled ? "/v1/auth/oidc/device/start" : null,
          },
          session: {
            lifetimeSeconds: Math.floor(current.sessionLifetimeMs / 1000),
            csrfCookie: cookieNames(current.secureCookies).csrf,
            csrfHeader: CSRF_HEADER,
          },
        };
      },
    }),

    defineRoute({
      method: "GET",
      url: "/v1/auth/methods",
      summary: "Sign-in methods the console offers besides tokens (null when there is no browser sign-in)",
      tag: "auth",
      auth: "none",
      reply: authMethodsReply,
      handler: async () => {
        const status = deps.oidc.status();
        return {
          oidc:
            status.browser && status.issuer
              ? { url: "/v1/auth/oidc/login", label: `Sign in with ${new URL(status.issuer).host}` }
              : null,
        };
      },
    }),

    defineRoute({
      method: "GET",
      url: "/v1/auth/oidc/login",
      summary: "Start a browser sign-in: redirects to the identity provider (code flow with PKCE)",
      tag: "auth",
      auth: "none",
      query: oidcLoginQuery,
      reply: redirectReply,
      status: 302,
      async handler({ query, reply }) {
        const returnTo = safeReturnPath(query.returnTo ?? query.next);
        const { redirectTo, cookie } = await deps.oidc.beginLogin(returnTo);
        noStore(reply);
        reply.header("set-cookie", loginCookie(cookie, settings()));
        return reply.redirect(redirectTo, 302);
      },
    }),

    defineRoute({
      method: "GET",
      url: "/v1/auth/oidc/callback",
      summary: "Where the identity provider returns the browser; sets the session cookies and redirects",
      tag: "auth",
      auth: "none",
      query: oidcCallbackQuery,
      reply: redirectReply,
      status: 303,
      async handler({ request, reply }) {
        const current = settings();
        const rawQuery = request.url.includes("?") ? request.url.slice(request.url.indexOf("?")) : "";
        noStore(reply);
        // The login cookie is single-use whatever the outcome.
        const clearLogin = loginCookie("", current, 0);
        let completed: Awaited<ReturnType<OidcService["completeLogin"]>>;
        try {
          completed = await deps.oidc.completeLogin(rawQuery, loginCookieOf(request, current));
        } catch (error) {
          reply.header("set-cookie", clearLogin);
          throw error;
        }
        const signedIn = await deps.sessions.signIn(completed.identity, "browser", request.ip);
        // The cookie lives as long as the session; the server alone decides when the token stops working.
        reply.header("set-cookie", [
          ...sessionCookies(signedIn.token, Math.floor(current.sessionLifetimeMs / 1000), current),
          clearLogin,
        ]);
        const publicUrl = deps.config().server?.publicUrl?.replace(/\/+$/, "") ?? "";
        return reply.redirect(`${publicUrl}${completed.returnTo}`, 303);
      },
    }),

    defineRoute({
      method: "POST",
      url: "/v1/auth/oidc/device/start",
      summary:
        "Start a terminal sign-in (device authorization, brokered by the server): a code to enter in a browser",
      tag: "auth",
      auth: "none",
      reply: deviceStartReply,
      status: 201,
      async handler({ reply }) {
        noStore(reply);
        const started = await deps.oidc.startDevice();
        return { ...started, expiresAt: new Date(started.expiresAt).toISOString() };
      },
    }),

    defineRoute({
      method: "POST",
      url: "/v1/auth/oidc/device/poll",
      summary: "Poll a terminal sign-in; once approved the reply carries a session token, shown this once",
      tag: "auth",
      auth: "none",
      body: devicePollBody,
      reply: devicePollReply,
      async handler({ body, request, reply }) {
        noStore(reply);
        const polled = await deps.oidc.pollDevice(body.handle);
        if (polled.status === "pending") return polled;
        const signedIn = await deps.sessions.signIn(polled.identity, "device", request.ip);
        return {
          status: "complete" as const,
          user: signedIn.user,
          groups: signedIn.groups,
          token: signedIn.token,
          expiresAt: new Date(signedIn.expiresAt).toISOString(),
        };
      },
    }),

    defineRoute({
      method: "GET",
      url: "/v1/auth/session",
      summary: "The caller's session: who, until when, and (for cookie sessions) the CSRF token to send",
      tag: "auth",
      auth: "user",
      reply: sessionReply,
      async handler({ request, reply }) {
        noStore(reply);
        const presented = presentedCredential(request, settings());
        const { principal, expiresAt } = await deps.sessions.describe(presented.token);
        return {
          user: principal.name,
          groups: principal.groups,
          isAdmin: principal.isAdmin,
          isAuditor: principal.isAuditor,
          via: presented.via === "cookie" ? ("cookie" as const) : ("bearer" as const),
          expiresAt: iso(expiresAt),
          csrfToken: presented.via === "cookie" && presented.token ? csrfTokenFor(presented.token) : null,
        };
      },
    }),

    defineRoute({
      method: "POST",
      url: "/v1/auth/logout",
      summary: "Revoke the credential this request presents (session cookie or bearer token)",
      tag: "auth",
      auth: "user",
      reply: logoutReply,
      async handler({ request, reply }) {
        const current = settings();
        const presented = presentedCredential(request, current);
        const { user } = await deps.sessions.logout(presented.token);
        noStore(reply);
        if (presented.via === "cookie") reply.header("set-cookie", clearedSessionCookies(current));
        return { user, revoked: true };
      },
    }),

    defineRoute({
      method: "POST",
      url: "/v1/users/:name/tokens/revoke",
      summary: "Revoke every token and session of a user (administrators)",
      tag: "users",
      auth: "user",
      params: userNameParams,
      reply: revokedTokensReply,
      handler: async ({ principal, params }) => deps.sessions.revokeAll(principal, params.name),
    }),
  ];
}

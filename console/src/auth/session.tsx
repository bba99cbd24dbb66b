import { createContext, type ReactNode, useCallback, useContext, useEffect, useMemo, useState } from "react";
import { type Api, ApiError, createApi } from "../api/client";
import type { Principal } from "../api/types";

/**
 * Who is signed in, two ways:
 *
 * - An API token (the bearer tokens the CLI uses), typed on the sign-in page and kept in
 *   sessionStorage (localStorage with "keep me signed in"). Signing out forgets it here; it stays
 *   valid for the CLI until an administrator revokes it.
 * - Single sign-on: the server's OIDC callback leaves an httpOnly session cookie this page never
 *   sees. `GET /v1/auth/session` says who it is and hands out the CSRF token that every
 *   state-changing request then carries. Signing out revokes the session on the server.
 */

const TOKEN_KEY = "firebreak.token";
const ENDED = "Your session ended: the token is unknown, expired or revoked.";

function storedToken(): string | null {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY) ?? window.localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

function storeToken(token: string | null, remember: boolean) {
  try {
    window.sessionStorage.removeItem(TOKEN_KEY);
    window.localStorage.removeItem(TOKEN_KEY);
    if (token) (remember ? window.localStorage : window.sessionStorage).setItem(TOKEN_KEY, token);
  } catch {
    // Storage refused (private mode): the session lasts as long as the page.
  }
}

interface SessionReply {
  user: string;
  groups: string[];
  isAdmin: boolean;
  isAuditor: boolean;
  via: "bearer" | "cookie";
  expiresAt: string | null;
  csrfToken: string | null;
}

export type SessionState =
  | { status: "loading" }
  | { status: "signed-out"; reason: string | null }
  | {
      status: "signed-in";
      principal: Principal;
      via: "token" | "cookie";
      /** When the session ends by itself (single sign-on sessions), if the server says. */
      expiresAt: string | null;
    };

export interface Session {
  state: SessionState;
  api: Api;
  /** Checks the token with the server and keeps it when it is good; throws ApiError otherwise. */
  signIn(token: string, remember: boolean): Promise<Principal>;
  signOut(reason?: string | null): Promise<void>;
}

const SessionContext = createContext<Session | null>(null);

/** Who the credential is: `/v1/auth/session` where the server has it, else `/v1/whoami`. */
async function describe(
  api: Api,
): Promise<{ principal: Principal; csrf: string | null; expiresAt: string | null }> {
  try {
    const session = await api.get<SessionReply>("/v1/auth/session");
    return {
      principal: {
        name: session.user,
        groups: session.groups,
        isAdmin: session.isAdmin,
        isAuditor: session.isAuditor,
      },
      csrf: session.csrfToken,
      expiresAt: session.expiresAt,
    };
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    return { principal: await api.get<Principal>("/v1/whoami"), csrf: null, expiresAt: null };
  }
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<SessionState>({ status: "loading" });
  const [token, setToken] = useState<string | null>(() => storedToken());
  const [csrf, setCsrf] = useState<string | null>(null);

  const forget = useCallback((reason: string | null) => {
    storeToken(null, false);
    setToken(null);
    setCsrf(null);
    setState({ status: "signed-out", reason });
  }, []);

  const api = useMemo(
    () => createApi({ token: () => token, csrf: () => csrf, onUnauthenticated: () => forget(ENDED) }),
    [token, csrf, forget],
  );

  useEffect(() => {
    if (state.status !== "loading") return;
    let cancelled = false;
    // With no stored token this asks whether a single sign-on session cookie is there.
    describe(createApi({ token: () => token, onUnauthenticated: () => {} }))
      .then(({ principal, csrf: csrfToken, expiresAt }) => {
        if (cancelled) return;
        setCsrf(csrfToken);
        setState({ status: "signed-in", principal, via: token ? "token" : "cookie", expiresAt });
      })
      .catch((error: unknown) => {
        if (cancelled) return;
        const unauthenticated = error instanceof ApiError && error.status === 401;
        if (token && unauthenticated) storeToken(null, false);
        setState({
          status: "signed-out",
          reason:
            token && unauthenticated
              ? ENDED
              : unauthenticated
                ? null
                : `The server could not be asked who you are: ${error instanceof Error ? error.message : String(error)}`,
        });
      });
    return () => {
      cancelled = true;
    };
  }, [state.status, token]);

  const signIn = useCallback(async (candidate: string, remember: boolean) => {
    const trimmed = candidate.trim();
    const { principal, expiresAt } = await describe(
      createApi({ token: () => trimmed, onUnauthenticated: () => {} }),
    );
    storeToken(trimmed, remember);
    setToken(trimmed);
    setCsrf(null);
    setState({ status: "signed-in", principal, via: "token", expiresAt });
    return principal;
  }, []);

  const signOut = useCallback(
    async (reason: string | null = null) => {
      // A single sign-on session is revoked on the server; an API token is only forgotten here.
      if (state.status === "signed-in" && state.via === "cookie") {
        await api.post("/v1/auth/logout").catch(() => {});
      }
      forget(reason);
    },
    [api, state, forget],
  );

  const value = useMemo(() => ({ state, api, signIn, signOut }), [state, api, signIn, signOut]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}

/** The signed-in principal and the API; only for pages rendered behind sign-in. */
export function useSignedIn(): { principal: Principal; api: Api } {
  const { state, api } = useSession();
  if (state.status !== "signed-in") throw new Error("useSignedIn on a signed-out page");
  return { principal: state.principal, api };
}

/** True when `refs` (`user:NAME` / `group:NAME`) name the principal. */
export function matchesPrincipal(principal: Principal, refs: readonly string[]): boolean {
  return refs.some((ref) =>
    ref.startsWith("user:") ? ref.slice(5) === principal.name : principal.groups.includes(ref.slice(6)),
  );
}

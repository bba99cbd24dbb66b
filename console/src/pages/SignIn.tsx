import { type FormEvent, useEffect, useState } from "react";
import { ApiError } from "../api/client";
import { useSession } from "../auth/session";
import { ErrorNotice, Notice, PageTitle } from "../components/common";
import { navigate, useLocation } from "../router";

/**
 * Sign-in methods the server offers besides tokens. A server with OIDC sign-in answers
 * `GET /v1/auth/methods` with `{ oidc: { url, label } }`; the page then offers that button first.
 * Until then (404) only the token form is shown.
 */
interface SignInMethods {
  oidc?: { url: string; label?: string } | null;
}

function useSignInMethods(): SignInMethods {
  const [methods, setMethods] = useState<SignInMethods>({});
  useEffect(() => {
    let cancelled = false;
    fetch("/v1/auth/methods", { headers: { accept: "application/json" }, credentials: "same-origin" })
      .then(async (response) => {
        const body = (await response.json().catch(() => ({}))) as SignInMethods;
        return response.ok ? body : {};
      })
      .then((found) => {
        if (!cancelled) setMethods(found);
      })
      .catch(() => {});
    return () => {
      cancelled = true;
    };
  }, []);
  return methods;
}

/** Only same-origin paths are followed after sign-in, never another site. */
export function safeNext(next: string | null): string {
  return next?.startsWith("/") && !next.startsWith("//") && !next.startsWith("/sign-in") ? next : "/map";
}

export function SignInPage() {
  const { signIn, state } = useSession();
  const { query } = useLocation();
  const next = safeNext(query.get("next"));
  const methods = useSignInMethods();
  const [token, setToken] = useState("");
  const [remember, setRemember] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const endedReason = state.status === "signed-out" ? state.reason : null;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await signIn(token, remember);
      navigate(next, { replace: true });
    } catch (failure) {
      setError(
        failure instanceof ApiError && failure.status === 401
          ? new Error("That token is unknown, expired or revoked. Ask an administrator for a new one.")
          : failure,
      );
    } finally {
      setBusy(false);
    }
  };

  const oidc = methods.oidc;
  return (
    <main id="main" className="sign-in">
      <div className="sign-in-card">
        <p className="brand brand-large" aria-hidden="true">
          <span className="brand-mark" /> Firebreak
        </p>
        <PageTitle title="Sign in">Sign in to Firebreak</PageTitle>
        <p className="lede">Break-glass access: ask for it, approve it, watch it open and close.</p>
        {endedReason ? <Notice tone="warn">{endedReason}</Notice> : null}
        {oidc ? (
          <>
            <a className="button primary wide" href={`${oidc.url}?next=${encodeURIComponent(next)}`}>
              {oidc.label ?? "Sign in with single sign-on"}
            </a>
            <p className="divider">
              <span>or use an API token</span>
            </p>
          </>
        ) : null}
        <form onSubmit={submit} className="stack">
          <ErrorNotice error={error} />
          <div className="field">
            <label htmlFor="token">API token</label>
            <input
              id="token"
              name="token"
              type="password"
              autoComplete="off"
              spellCheck={false}
              required
              placeholder="fbk_…"
              aria-describedby="token-help"
              value={token}
              onChange={(event) => setToken(event.target.value)}
            />
            <p id="token-help" className="hint">
              The server prints the administrator's token on its first start. An administrator makes one for
              you with <code>firebreak users token YOUR-NAME</code>.
            </p>
          </div>
          <div className="check">
            <input
              id="remember"
              type="checkbox"
              checked={remember}
              onChange={(event) => setRemember(event.target.checked)}
            />
            <label htmlFor="remember">Keep me signed in on this browser</label>
          </div>
          <button type="submit" className="button primary wide" disabled={busy || token.trim() === ""}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </form>
      </div>
    </main>
  );
}

import type { FirebreakConfig, OidcConfig } from "../config/schema.js";

export const DEFAULT_SESSION_LIFETIME_MS = 12 * 3_600_000;
export const CALLBACK_PATH = "/v1/auth/oidc/callback";

/** What sign-in needs from the configuration, derived in one place. */
export interface IdentitySettings {
  oidc: OidcConfig | null;
  /** Where the provider sends the browser back (null when OIDC is not configured or has no public URL). */
  redirectUrl: string | null;
  /** The origin browsers use for Firebreak (`https://firebreak.example.com`), when known. */
  origin: string | null;
  /** Cookies are marked Secure (and use the `__Host-` prefix) when browsers reach Firebreak over https. */
  secureCookies: boolean;
  sessionLifetimeMs: number;
}

export function identitySettings(config: FirebreakConfig): IdentitySettings {
  const oidc = config.identity?.oidc ?? null;
  const publicUrl = config.server?.publicUrl ?? null;
  const redirectUrl = oidc
    ? (oidc.redirectUrl ?? (publicUrl ? `${publicUrl.replace(/\/+$/, "")}${CALLBACK_PATH}` : null))
    : null;
  const browserUrl = redirectUrl ?? publicUrl;
  const origin = browserUrl ? new URL(browserUrl).origin : null;
  return {
    oidc,
    redirectUrl,
    origin,
    secureCookies: origin?.startsWith("https:") ?? false,
    sessionLifetimeMs: config.identity?.sessionLifetime ?? DEFAULT_SESSION_LIFETIME_MS,
  };
}

import { createHash, timingSafeEqual } from "node:crypto";
import * as client from "openid-client";
import { z } from "zod";
import type { FirebreakConfig, OidcConfig, SecretRef } from "../config/schema.js";
import { assert, FirebreakError } from "../errors.js";
import type { SecretBox } from "../secrets/secret-box.js";
import type { Clock } from "../shared/clock.js";
import { claimAt, identityFromClaims, type ProviderIdentity } from "./claims.js";
import { LOGIN_COOKIE_MAX_AGE_S } from "./session.cookies.js";
import { identitySettings } from "./settings.js";

/** Provider metadata is read again after this long, so a changed provider is noticed without a restart. */
const DISCOVERY_TTL_MS = 3_600_000;
/** Seconds any one request to the provider may take. */
const PROVIDER_TIMEOUT_S = 10;
const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
// Associated data for the sealed blobs: a login cookie can never be presented as a device handle.
const LOGIN_AAD = "firebreak:oidc-login:v1";
const DEVICE_AAD = "firebreak:oidc-device:v1";

/** What a browser sign-in carries between /login and /callback, sealed in an httpOnly cookie. */
const pendingLoginSchema = z.strictObject({
  issuer: z.string(),
  clientId: z.string(),
  state: z.string(),
  nonce: z.string(),
  verifier: z.string(),
  returnTo: z.string(),
  expiresAt: z.number(),
});

/** What the CLI holds while a device sign-in is pending, sealed so the device code never leaves in clear. */
const pendingDeviceSchema = z.strictObject({
  issuer: z.string(),
  clientId: z.string(),
  deviceCode: z.string(),
  interval: z.number(),
  expiresAt: z.number(),
});

export interface DeviceStart {
  /** Opaque: the CLI sends it back to poll. */
  handle: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string | null;
  /** Seconds to wait between polls. */
  interval: number;
  expiresAt: number;
}

export type DevicePoll =
  | { status: "pending"; interval: number }
  | { status: "complete"; identity: ProviderIdentity };

/** A path on this server to return to after sign-in; anything else (another host, `//evil`) is refused. */
export function safeReturnPath(value: string | undefined): string {
  if (value === undefined || value === "") return "/";
  assert(
    value.length <= 2000 && /^\/(?![/\\])[\x21-\x7e]*$/.test(value),
    "VALIDATION_FAILED",
    "returnTo must be a path on this server, such as '/requests'",
  );
  return value;
}

function sameText(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** OAuth error codes are a registered vocabulary; anything else from a provider is not repeated. */
function oauthCode(value: unknown): string {
  return typeof value === "string" && /^[a-z_]{1,64}$/.test(value) ? value : "error";
}

/**
 * The relying party: talks to the OIDC provider with openid-client. The browser flow is
 * authorization code with PKCE, state and nonce; the terminal flow is device authorization
 * (RFC 8628) brokered by the server, so the client secret never leaves it. Both end in a
 * validated `ProviderIdentity`; issuing the session is the session service's job.
 *
 * Nothing is stored between steps: what a flow must remember is sealed under the master key and
 * handed to the browser (a cookie) or the CLI (a handle), so any replica can finish a flow another
 * one started.
 */
export function createOidcService(deps: {
  config: () => FirebreakConfig;
  clock: Clock;
  box: Pick<SecretBox, "seal" | "open">;
  secret: (ref: SecretRef) => string;
  log?: { error(message: string, fields?: Record<string, unknown>): void };
}) {
  const discovered = new Map<string, { at: number; configuration: Promise<client.Configuration> }>();

  function settingsOrFail() {
    const settings = identitySettings(deps.config());
    const { oidc, redirectUrl } = settings;
    assert(oidc, "OIDC_NOT_CONFIGURED", "OIDC sign-in is not configured on this server");
    return { ...settings, oidc, redirectUrl };
  }

  /** The provider's metadata and this client's credentials, discovered once per hour. */
  async function provider(oidc: OidcConfig): Promise<client.Configuration> {
    const secret = oidc.clientSecret ? deps.secret(oidc.clientSecret) : undefined;
    // The secret's digest is part of the key so that a rotated secret file takes effect at once.
    const key = JSON.stringify([
      oidc.issuer,
      oidc.clientId,
      oidc.clientAuthMethod,
      secret === undefined ? null : createHash("sha256").update(secret).digest("hex"),
    ]);
    const now = deps.clock.now();
    const cached = discovered.get(key);
    if (cached && now - cached.at < DISCOVERY_TTL_MS) return cached.configuration;
    const authentication =
      secret === undefined
        ? client.None()
        : oidc.clientAuthMethod === "client_secret_post"
          ? client.ClientSecretPost(secret)
          : client.ClientSecretBasic(secret);
    const issuer = new URL(oidc.issuer);
    const configuration = client.discovery(issuer, oidc.clientId, undefined, authentication, {
      timeout: PROVIDER_TIMEOUT_S,
      // The schema allows http only for a provider on the loopback interface.
      execute: issuer.protocol === "http:" ? [client.allowInsecureRequests] : [],
    });
    discovered.set(key, { at: now, configuration });
    configuration.catch(() => {
      if (discovered.get(key)?.configuration === configuration) discovered.delete(key);
    });
    try {
      return await configuration;
    } catch (error) {
      throw providerFailure(error, "discovery");
    }
  }

  /** Maps what openid-client throws onto Firebreak's codes; provider text is logged, never returned. */
  function providerFailure(error: unknown, step: string): FirebreakError {
    if (error instanceof FirebreakError) return error;
    if (error instanceof client.ResponseBodyError) {
      return new FirebreakError(
        "OIDC_SIGN_IN_FAILED",
        `the identity provider refused the ${step} (${oauthCode(error.error)})`,
      );
    }
    if (error instanceof client.AuthorizationResponseError) {
      return new FirebreakError(
        "SIGN_IN_REFUSED",
        `the identity provider refused: ${oauthCode(error.error)}`,
      );
    }
    const code = (error as { code?: unknown }).code;
    if (error instanceof client.ClientError && code !== "OAUTH_RESPONSE_IS_NOT_CONFORM") {
      deps.log?.error("OIDC response failed validation", { step, code, error: error.message });
      return new FirebreakError(
        "OIDC_SIGN_IN_FAILED",
        `the identity provider's answer to the ${step} failed validation`,
        { check: typeof code === "string" ? code : "unknown" },
      );
    }
    deps.log?.error("OIDC provider unavailable", {
      step,
      error: error instanceof Error ? error.message : String(error),
    });
    return new FirebreakError(
      "OIDC_PROVIDER_UNAVAILABLE",
      `the identity provider could not be reached (${step})`,
    );
  }

  /** ID token claims, completed from UserInfo when the username or groups claim is not in the token. */
  async function claimsOf(
    configuration: client.Configuration,
    tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers,
    oidc: OidcConfig,
  ): Promise<Record<string, unknown>> {
    const idToken = tokens.claims();
    if (!idToken) {
      throw new FirebreakError(
        "OIDC_SIGN_IN_FAILED",
        "the identity provider returned no ID token (the scopes must include 'openid')",
      );
    }
    const claims: Record<string, unknown> = { ...idToken };
    const missing =
      claimAt(claims, oidc.usernameClaim) === undefined || claimAt(claims, oidc.groupsClaim) === undefined;
    if (missing && configuration.serverMetadata().userinfo_endpoint && tokens.access_token) {
      try {
        // The subject is checked: UserInfo for another account can never fill in this one.
        const userInfo = await client.fetchUserInfo(configuration, tokens.access_token, idToken.sub);
        for (const [name, value] of Object.entries(userInfo)) if (!(name in claims)) claims[name] = value;
      } catch (error) {
        throw providerFailure(error, "userinfo request");
      }
    }
    return claims;
  }

  return {
    /** Whether sign-in is configured, for the console and the CLI (no network). */
    status() {
      const settings = identitySettings(deps.config());
      return {
        enabled: settings.oidc !== null,
        /** Browser sign-in also needs to know where the provider sends people back. */
        browser: settings.oidc !== null && settings.redirectUrl !== null,
        issuer: settings.oidc?.issuer ?? null,
      };
    },

    /** Starts a browser sign-in: the provider URL to send the browser to, and the sealed cookie value. */
    async beginLogin(returnTo: string): Promise<{ redirectTo: string; cookie: string }> {
      const { oidc, redirectUrl } = settingsOrFail();
      assert(
        redirectUrl,
        "OIDC_NOT_CONFIGURED",
        "browser sign-in needs server.publicUrl (or identity.oidc.redirectUrl) in the configuration",
      );
      const configuration = await provider(oidc);
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(configuration, {
        redirect_uri: redirectUrl,
        scope: oidc.scopes.join(" "),
        code_challenge: await client.calculatePKCECodeChallenge(verifier),
        code_challenge_method: "S256",
        state,
        nonce,
      });
      const pending: z.infer<typeof pendingLoginSchema> = {
        issuer: oidc.issuer,
        clientId: oidc.clientId,
        state,
        nonce,
        verifier,
        returnTo,
        expiresAt: deps.clock.now() + LOGIN_COOKIE_MAX_AGE_S * 1000,
      };
      return { redirectTo: url.href, cookie: deps.box.seal(JSON.stringify(pending), LOGIN_AAD) };
    },

    /**
     * Finishes a browser sign-in: the callback's query must carry the state this browser's cookie
     * holds; the code is exchanged with the PKCE verifier, and the ID token must carry the nonce.
     */
    async completeLogin(
      query: string,
      cookie: string | undefined,
    ): Promise<{ identity: ProviderIdentity; returnTo: string }> {
      const { oidc, redirectUrl } = settingsOrFail();
      assert(
        redirectUrl,
        "OIDC_NOT_CONFIGURED",
        "browser sign-in needs server.publicUrl in the configuration",
      );
      assert(
        cookie,
        "OIDC_STATE_INVALID",
        "no sign-in was started in this browser, or it took too long; start again",
      );
      let pending: z.infer<typeof pendingLoginSchema>;
      try {
        pending = pendingLoginSchema.parse(JSON.parse(deps.box.open(cookie, LOGIN_AAD)));
      } catch {
        throw new FirebreakError("OIDC_STATE_INVALID", "the sign-in cookie is not one this server issued");
      }
      assert(
        pending.expiresAt > deps.clock.now(),
        "OIDC_STATE_INVALID",
        "the sign-in took too long; start again",
      );
      assert(
        pending.issuer === oidc.issuer && pending.clientId === oidc.clientId,
        "OIDC_STATE_INVALID",
        "the sign-in was started for another identity provider; start again",
      );
      const currentUrl = new URL(redirectUrl);
      currentUrl.search = query;
      const state = currentUrl.searchParams.get("state");
      assert(
        state !== null && sameText(state, pending.state),
        "OIDC_STATE_INVALID",
        "the state does not match the sign-in this browser started",
      );
      const configuration = await provider(oidc);
      let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
      try {
        tokens = await client.authorizationCodeGrant(configuration, currentUrl, {
          pkceCodeVerifier: pending.verifier,
          expectedState: pending.state,
          expectedNonce: pending.nonce,
          idTokenExpected: true,
        });
      } catch (error) {
        throw providerFailure(error, "authorization code");
      }
      const claims = await claimsOf(configuration, tokens, oidc);
      return { identity: identityFromClaims(claims, oidc), returnTo: pending.returnTo };
    },

    /** Starts a device sign-in at the provider for a terminal. */
    async startDevice(): Promise<DeviceStart> {
      const { oidc } = settingsOrFail();
      const configuration = await provider(oidc);
      assert(
        configuration.serverMetadata().device_authorization_endpoint,
        "OIDC_NOT_CONFIGURED",
        "the identity provider does not offer device authorization; use 'firebreak login --token'",
      );
      let response: client.DeviceAuthorizationResponse;
      try {
        response = await client.initiateDeviceAuthorization(configuration, { scope: oidc.scopes.join(" ") });
      } catch (error) {
        throw providerFailure(error, "device authorization");
      }
      const interval = Math.max(1, Math.min(60, response.interval ?? 5));
      const expiresAt = deps.clock.now() + response.expires_in * 1000;
      const pending: z.infer<typeof pendingDeviceSchema> = {
        issuer: oidc.issuer,
        clientId: oidc.clientId,
        deviceCode: response.device_code,
        interval,
        expiresAt,
      };
      return {
        handle: deps.box.seal(JSON.stringify(pending), DEVICE_AAD),
        userCode: response.user_code,
        verificationUri: response.verification_uri,
        verificationUriComplete: response.verification_uri_complete ?? null,
        interval,
        expiresAt,
      };
    },

    /**
     * One poll of the provider's token endpoint for a device sign-in. The provider paces polling
     * (`slow_down`) and makes the device code single-use, so a handle signs in at most once.
     */
    async pollDevice(handle: string): Promise<DevicePoll> {
      const { oidc } = settingsOrFail();
      let pending: z.infer<typeof pendingDeviceSchema>;
      try {
        pending = pendingDeviceSchema.parse(JSON.parse(deps.box.open(handle, DEVICE_AAD)));
      } catch {
        throw new FirebreakError(
          "OIDC_STATE_INVALID",
          "the device sign-in handle is not one this server issued",
        );
      }
      assert(
        pending.issuer === oidc.issuer && pending.clientId === oidc.clientId,
        "OIDC_STATE_INVALID",
        "the device sign-in was started for another identity provider; start again",
      );
      assert(
        pending.expiresAt > deps.clock.now(),
        "DEVICE_FLOW_EXPIRED",
        "the device sign-in expired; run 'firebreak login' again",
      );
      const configuration = await provider(oidc);
      let tokens: Awaited<ReturnType<typeof client.genericGrantRequest>>;
      try {
        tokens = await client.genericGrantRequest(configuration, DEVICE_CODE_GRANT, {
          device_code: pending.deviceCode,
        });
      } catch (error) {
        if (error instanceof client.ResponseBodyError) {
          switch (error.error) {
            case "authorization_pending":
              return { status: "pending", interval: pending.interval };
            case "slow_down":
              return { status: "pending", interval: pending.interval + 5 };
            case "expired_token":
              throw new FirebreakError(
                "DEVICE_FLOW_EXPIRED",
                "the device sign-in expired; run 'firebreak login' again",
              );
            case "access_denied":
              throw new FirebreakError(
                "SIGN_IN_REFUSED",
                "the sign-in was declined at the identity provider",
              );
          }
        }
        throw providerFailure(error, "device code");
      }
      const claims = await claimsOf(configuration, tokens, oidc);
      return { status: "complete", identity: identityFromClaims(claims, oidc) };
    },
  };
}
export type OidcService = ReturnType<typeof createOidcService>;

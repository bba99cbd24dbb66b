import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Provider from "oidc-provider";

/** An account in the test provider's store; the login typed on its sign-in page is the subject. */
export interface TestAccount {
  preferred_username?: unknown;
  email?: string;
  groups?: unknown;
}

export interface TestProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Edit between sign-ins to change what the provider reports (groups, username). */
  accounts: Map<string, TestAccount>;
  close(): Promise<void>;
}

/**
 * A real OpenID Connect provider (panva's oidc-provider) on 127.0.0.1 with one confidential client
 * for Firebreak: code flow with PKCE required, device flow enabled, a `groups` scope whose claim
 * comes from the account store. Its own development sign-in pages (a login form taking any
 * password for a known account, then a consent form) are what the tests fill in.
 *
 * `groups` and `preferred_username` are scope claims, so for the code flow the provider puts them
 * in UserInfo, not in the ID token: Firebreak has to fetch them there.
 */
export async function startProvider(options: { redirectUri: string }): Promise<TestProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = "firebreak";
  const clientSecret = randomBytes(24).toString("base64url");
  const accounts = new Map<string, TestAccount>();
  const signingKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    claims: {
      openid: ["sub"],
      profile: ["preferred_username"],
      email: ["email"],
      groups: ["groups"],
    },
    features: { deviceFlow: { enabled: true }, devInteractions: { enabled: true } },
    pkce: { required: () => true },
    jwks: { keys: [{ ...signingKey, kid: "test-signing", use: "sig", alg: "RS256" }] },
    cookies: { keys: [randomBytes(32).toString("hex")] },
    ttl: { AccessToken: 600, DeviceCode: 600, Grant: 3600, IdToken: 600, Interaction: 600, Session: 3600 },
    async findAccount(_context: unknown, id: string) {
      const account = accounts.get(id);
      if (!account) return undefined;
      return { accountId: id, claims: () => ({ ...account, sub: id }) };
    },
  });
  server.on("request", provider.callback());

  return {
    issuer,
    clientId,
    clientSecret,
    accounts,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

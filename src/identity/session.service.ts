import type { FirebreakConfig } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import type { Clock } from "../shared/clock.js";
import {
  findUser,
  insertUser,
  revokeToken,
  revokeTokensOfUser,
  updateUserGroups,
} from "../users/user.repo.js";
import { type Principal, takenName, type UserService } from "../users/user.service.js";
import { type ProviderIdentity, signInRefusal } from "./claims.js";
import { findIdentity, insertIdentity, touchIdentity } from "./identity.repo.js";
import { identitySettings } from "./settings.js";

/** How the person signed in: the console's code flow or the CLI's device flow. */
export type SignInChannel = "browser" | "device";

export interface SignedIn {
  user: string;
  groups: string[];
  token: string;
  tokenId: string;
  expiresAt: number;
  /** True when this sign-in created the user. */
  created: boolean;
}

/** A refusal decided inside the transaction; recorded after it rolls back. */
class Refusal extends Error {}

/**
 * Sessions: the Firebreak tokens a sign-in issues, and their end (logout, revocation). A session is
 * an ordinary API token with an expiry, so every path that authenticates a bearer token also
 * authenticates a session, and revocation and expiry are enforced in one place (UserService).
 */
export function createSessionService(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  config: () => FirebreakConfig;
  users: Pick<UserService, "mintToken" | "verifyToken" | "resolve">;
  /** Told after each sign-in, so in-memory views of a user's groups follow the provider. */
  onSignedIn?: (user: string, groups: readonly string[]) => void;
}) {
  async function signInOnce(
    identity: ProviderIdentity,
    channel: SignInChannel,
    clientAddress: string | null,
  ): Promise<SignedIn> {
    const config = deps.config();
    const settings = identitySettings(config);
    const oidc = settings.oidc;
    assert(oidc, "OIDC_NOT_CONFIGURED", "OIDC sign-in is not configured on this server");
    return deps.inTransaction(async (unit) => {
      const bound = await findIdentity(unit.tx, identity.issuer, identity.subject);
      const refusal = signInRefusal(identity, oidc, bound !== null);
      if (refusal) throw new Refusal(refusal);
      let name: string;
      let created = false;
      if (bound) {
        name = bound.userName;
        // Groups are the provider's, as of now: a group removed there is gone here at next sign-in.
        if (await findUser(unit.tx, name)) await updateUserGroups(unit.tx, name, identity.groups);
        else await insertOidcUser(unit.tx, name, identity.groups, unit.now);
        await touchIdentity(unit.tx, identity.issuer, identity.subject, unit.now);
      } else {
        name = identity.username as string;
        // A provider account never takes over a name that is already someone's, whatever its case:
        // it is refused rather than mapped onto that user, who may be another person.
        const taken = await takenName(unit.tx, config, name);
        if (taken !== null) {
          throw new Refusal(
            taken === name
              ? `the user name '${name}' already belongs to a directory, local or other OIDC user; an administrator must resolve the conflict`
              : `the user name '${name}' differs only in case from the existing user '${taken}'; an administrator must resolve the conflict`,
          );
        }
        await insertOidcUser(unit.tx, name, identity.groups, unit.now);
        await insertIdentity(unit.tx, {
          issuer: identity.issuer,
          subject: identity.subject,
          userName: name,
          createdAt: unit.now,
          lastSignInAt: unit.now,
        });
        created = true;
        await unit.audit({
          type: "user.created",
          actor: name,
          context: {
            user: name,
            source: "oidc",
            issuer: identity.issuer,
            subject: identity.subject,
            groups: identity.groups,
          },
        });
      }
      const expiresAt = unit.now + settings.sessionLifetimeMs;
      const { tokenId, token } = await deps.users.mintToken(
        name,
        `oidc ${channel} session`,
        unit.now,
        unit.tx,
        expiresAt,
      );
      await unit.audit({
        type: "user.signed_in",
        actor: name,
        context: {
          user: name,
          issuer: identity.issuer,
          subject: identity.subject,
          groups: identity.groups,
          ...(identity.ignoredGroups.length > 0
            ? { ignoredGroups: identity.ignoredGroups.slice(0, 50) }
            : {}),
          channel,
          tokenId,
          expiresAt: new Date(expiresAt).toISOString(),
          clientAddress,
        },
      });
      return { user: name, groups: identity.groups, token, tokenId, expiresAt, created };
    });
  }

  async function insertOidcUser(
    tx: Parameters<typeof insertUser>[0],
    name: string,
    groups: string[],
    now: number,
  ) {
    await insertUser(tx, { name, groups, source: "oidc", isAdmin: false, createdAt: now });
  }

  return {
    /**
     * Signs in the person the provider vouched for: creates the user on first sign-in (bound to
     * issuer and subject), refreshes their groups, and issues a session token that expires.
     */
    async signIn(
      identity: ProviderIdentity,
      channel: SignInChannel,
      clientAddress: string | null,
    ): Promise<SignedIn> {
      for (let attempt = 0; ; attempt++) {
        try {
          const signedIn = await signInOnce(identity, channel, clientAddress);
          deps.onSignedIn?.(signedIn.user, signedIn.groups);
          return signedIn;
        } catch (error) {
          if (error instanceof Refusal) {
            await deps.inTransaction(async (unit) => {
              await unit.audit({
                type: "user.sign_in_refused",
                actor: "system:firebreak",
                context: {
                  issuer: identity.issuer,
                  subject: identity.subject,
                  username: identity.username,
                  groups: identity.groups,
                  channel,
                  reason: error.message,
                  clientAddress,
                },
              });
            });
            throw new FirebreakError("SIGN_IN_REFUSED", error.message);
          }
          // Two first sign-ins of one account at once: the loser's insert fails; the retry finds the binding.
          const racedFirstSignIn =
            attempt === 0 && (await findIdentity(deps.db, identity.issuer, identity.subject)) !== null;
          if (!racedFirstSignIn) throw error;
        }
      }
    },

    /** Who a credential belongs to and when it ends. */
    async describe(token: string | undefined) {
      return deps.users.verifyToken(token);
    },

    /** Ends the session (or revokes the API token) the caller presented. */
    async logout(token: string | undefined): Promise<{ user: string; tokenId: string }> {
      const { principal, tokenId, expiresAt } = await deps.users.verifyToken(token);
      await deps.inTransaction(async (unit) => {
        await revokeToken(unit.tx, tokenId, unit.now);
        await unit.audit({
          type: "user.signed_out",
          actor: principal.name,
          context: { user: principal.name, tokenId, session: expiresAt !== null },
        });
      });
      return { user: principal.name, tokenId };
    },

    /** Revokes every token and session of a user (an administrator's action). */
    async revokeAll(actor: Principal, name: string): Promise<{ user: string; revoked: number }> {
      assert(actor.isAdmin, "FORBIDDEN", "only an administrator can revoke another user's tokens");
      if ((await deps.users.resolve(name)) === null)
        throw new FirebreakError("NOT_FOUND", `no user '${name.slice(0, 128)}'`);
      return deps.inTransaction(async (unit) => {
        const tokenIds = await revokeTokensOfUser(unit.tx, name, unit.now);
        await unit.audit({
          type: "token.revoked",
          actor: actor.name,
          context: { user: name, tokenIds, count: tokenIds.length },
        });
        return { user: name, revoked: tokenIds.length };
      });
    },
  };
}
export type SessionService = ReturnType<typeof createSessionService>;

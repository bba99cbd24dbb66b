import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { FirebreakConfig } from "../config/schema.js";
import { NAME_PATTERN, USER_PATTERN } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db, Executor } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import { matchesPrincipal } from "../policy/approvals.js";
import type { Clock } from "../shared/clock.js";
import type { Principal } from "../shared/principal.js";
import {
  countAdmins,
  findToken,
  findUser,
  findUsersIgnoringCase,
  insertToken,
  insertUser,
  listUsers,
} from "./user.repo.js";

// The authenticated caller, declared in shared/ so the HTTP layer names it without importing this service.
export type { Principal };

const TOKEN_PATTERN = /^fbk_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

/**
 * The name someone already has that `name` is but for letter case (`alice` for `Alice`), from the
 * directory or the database, or null. Names that differ only in case would be two principals that
 * people read as one: `Alice` approving `alice`'s request is the requester approving their own.
 * So a name is taken whatever its case, and the first spelling is the only one.
 */
export async function takenName(db: Executor, config: FirebreakConfig, name: string): Promise<string | null> {
  const folded = name.toLowerCase();
  const inDirectory = Object.keys(config.directory?.users ?? {}).find(
    (user) => user.toLowerCase() === folded,
  );
  if (inDirectory !== undefined) return inDirectory;
  return (await findUsersIgnoringCase(db, name))[0]?.name ?? null;
}

/**
 * Directory users of `config` whose name a stored user (local, OIDC) already has in another
 * case; a configuration that brings in such a user is refused, as `firebreak validate` refuses two
 * spellings within one file.
 */
export async function directoryCaseConflicts(db: Executor, config: FirebreakConfig): Promise<string[]> {
  const conflicts: string[] = [];
  for (const name of Object.keys(config.directory?.users ?? {})) {
    for (const stored of await findUsersIgnoringCase(db, name)) {
      if (stored.name !== name)
        conflicts.push(
          `directory user '${name}' differs only in case from the existing ${stored.source} user '${stored.name}'; use that spelling or remove one of them`,
        );
    }
  }
  return conflicts;
}

function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export function createUserService(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  config: () => FirebreakConfig;
}) {
  /** Directory users come from the configuration; local users from the database; groups are merged. */
  async function resolve(name: string): Promise<Principal | null> {
    const config = deps.config();
    const fromDirectory = config.directory?.users[name];
    const stored = await findUser(deps.db, name);
    if (!fromDirectory && !stored) return null;
    const groups = [...new Set([...(fromDirectory?.groups ?? []), ...(stored?.groups ?? [])])].sort();
    return {
      name,
      groups,
      isAdmin: (stored?.isAdmin ?? false) || matchesPrincipal(config.administrators ?? [], name, groups),
      isAuditor: matchesPrincipal(config.auditors ?? [], name, groups),
    };
  }

  /** Mints a token inside the caller's transaction; sessions pass an expiry, API tokens none. */
  async function mintToken(
    userName: string,
    label: string,
    now: number,
    tx: Parameters<typeof insertToken>[0],
    expiresAt: number | null = null,
  ) {
    const id = randomBytes(8).toString("hex");
    const secret = randomBytes(32).toString("base64url");
    await insertToken(tx, {
      id,
      userName,
      secretHash: hashSecret(secret),
      label,
      createdAt: now,
      expiresAt,
      revokedAt: null,
    });
    return { tokenId: id, token: `fbk_${id}.${secret}` };
  }

  /** Checks a bearer token; the secret is compared by hash in constant time. */
  async function verifyToken(
    bearer: string | undefined,
  ): Promise<{ principal: Principal; tokenId: string; expiresAt: number | null }> {
    const match = bearer ? TOKEN_PATTERN.exec(bearer) : null;
    assert(match, "UNAUTHENTICATED", "a valid bearer token is required");
    const [, id, secret] = match as unknown as [string, string, string];
    const stored = await findToken(deps.db, id);
    const expected = Buffer.from(stored?.secretHash ?? "0".repeat(64), "hex");
    const presented = Buffer.from(hashSecret(secret), "hex");
    const same = timingSafeEqual(expected, presented);
    const now = deps.clock.now();
    assert(
      stored && same && stored.revokedAt === null && (stored.expiresAt === null || stored.expiresAt > now),
      "UNAUTHENTICATED",
      "the token is unknown, expired or revoked",
    );
    const principal = await resolve(stored.userName);
    assert(principal, "UNAUTHENTICATED", "the token's user no longer exists");
    return { principal, tokenId: stored.id, expiresAt: stored.expiresAt };
  }

  return {
    resolve,
    mintToken,
    verifyToken,

    /** Checks a bearer token; the secret is compared by hash in constant time. */
    async authenticate(bearer: string | undefined): Promise<Principal> {
      return (await verifyToken(bearer)).principal;
    },

    /**
     * On first start there is no administrator: create `admin` and return its token, once. Later
     * starts return null. Safe when several processes start at once (the insert races on the key).
     */
    async bootstrapAdmin(): Promise<{ user: string; token: string } | null> {
      if ((await countAdmins(deps.db)) > 0) return null;
      try {
        return await deps.inTransaction(async (unit) => {
          await insertUser(unit.tx, {
            name: "admin",
            groups: [],
            source: "bootstrap",
            isAdmin: true,
            createdAt: unit.now,
          });
          const { tokenId, token } = await mintToken("admin", "bootstrap", unit.now, unit.tx);
          await unit.audit({
            type: "user.created",
            actor: "system:firebreak",
            subject: null,
            context: { user: "admin", admin: true, tokenId },
          });
          return { user: "admin", token };
        });
      } catch (error) {
        if ((await countAdmins(deps.db)) > 0) return null;
        throw error;
      }
    },

    /** Creates a local user and returns its first token (shown once). */
    async addUser(actor: Principal, name: string, groups: string[]) {
      assert(actor.isAdmin, "FORBIDDEN", "only an administrator can add users");
      assert(
        USER_PATTERN.test(name),
        "VALIDATION_FAILED",
        "a user name of 1-128 letters, digits, '.', '_', '@' or '-'",
      );
      for (const group of groups) {
        assert(
          NAME_PATTERN.test(group),
          "VALIDATION_FAILED",
          `group '${group.slice(0, 80)}' is not a valid group name`,
        );
      }
      return deps.inTransaction(async (unit) => {
        const taken = await takenName(unit.tx, deps.config(), name);
        assert(
          taken === null,
          "CONFLICT",
          taken === name
            ? `user '${name}' already exists; use 'firebreak users token ${name}' for a new token`
            : `user '${name}' differs only in case from the existing user '${taken}'; names are the same whatever their case`,
        );
        await insertUser(unit.tx, {
          name,
          groups: [...new Set(groups)].sort(),
          source: "local",
          isAdmin: false,
          createdAt: unit.now,
        });
        const { tokenId, token } = await mintToken(name, "users add", unit.now, unit.tx);
        await unit.audit({
          type: "user.created",
          actor: actor.name,
          context: { user: name, groups, tokenId },
        });
        return { name, groups: [...new Set(groups)].sort(), token };
      });
    },

    /** Issues another token for an existing user (directory or local). */
    async issueToken(actor: Principal, name: string) {
      assert(actor.isAdmin, "FORBIDDEN", "only an administrator can issue tokens");
      const user = await resolve(name);
      if (!user) throw new FirebreakError("NOT_FOUND", `no user '${name.slice(0, 128)}'`);
      return deps.inTransaction(async (unit) => {
        if (!(await findUser(unit.tx, name))) {
          // Directory users get a row so their tokens have an owner that outlives config edits.
          await insertUser(unit.tx, {
            name,
            groups: [],
            source: "local",
            isAdmin: false,
            createdAt: unit.now,
          });
        }
        const { tokenId, token } = await mintToken(name, "users token", unit.now, unit.tx);
        await unit.audit({ type: "token.issued", actor: actor.name, context: { user: name, tokenId } });
        return { name, token };
      });
    },

    async list(actor: Principal) {
      assert(
        actor.isAdmin || actor.isAuditor,
        "FORBIDDEN",
        "only administrators and auditors can list users",
      );
      const stored = await listUsers(deps.db);
      const names = new Set([
        ...Object.keys(deps.config().directory?.users ?? {}),
        ...stored.map((u) => u.name),
      ]);
      const users: Principal[] = [];
      for (const name of [...names].sort()) {
        const user = await resolve(name);
        if (user) users.push(user);
      }
      return users;
    },
  };
}
export type UserService = ReturnType<typeof createUserService>;

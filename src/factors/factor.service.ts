import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import * as OTPAuth from "otpauth";
import QRCode from "qrcode";
import { FACTOR_KINDS } from "../config/schema.js";
import type { InTransaction } from "../db/transaction.js";
import type { Db, FactorAuthorization } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import type { SecretBox } from "../secrets/secret-box.js";
import type { Clock } from "../shared/clock.js";
import { newId } from "../shared/ids.js";
import type { Principal, UserService } from "../users/user.service.js";
import {
  advanceStep,
  consumeEnrolmentCode,
  deleteFactors,
  deleteUnconfirmed,
  findEnrolmentCode,
  insertFactor,
  listFactors,
  recentPresentations,
  recordPresentation,
  releaseAttempt,
  reserveAttempt,
  saveChallenge,
  saveEnrolmentCode,
  takeChallenge,
  updateCounter,
} from "./factor.repo.js";
import { type PresentedFactor, pickFreshFactor } from "./freshness.js";

export type { PresentedFactor } from "./freshness.js";

const TOTP_PERIOD_S = 30;
/** Failed factor attempts allowed per user in the window before further attempts are refused. */
const MAX_FAILURES = 5;
const FAILURE_WINDOW_MS = 5 * 60_000;
const CHALLENGE_TTL_MS = 5 * 60_000;
/** Adding a factor when one exists needs a use of an existing one this recent. */
const ENROLMENT_FRESHNESS_MS = 5 * 60_000;
/** A started TOTP enrolment must be confirmed this soon, while its authorization is still recent. */
const PENDING_ENROLMENT_MS = 10 * 60_000;
const ENROLMENT_CODE_TTL_MS = 24 * 3_600_000;
/** 16 characters of RFC 4648 base32 (80 random bits), shown in groups of four. */
const ENROLMENT_CODE_PATTERN = /^[A-Z2-7]{16}$/;
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export interface WebauthnSettings {
  rpId: string;
  rpName: string;
  origins: string[];
}

export interface EnrolmentSettings {
  /** How long a first factor enrolled with a sign-in alone waits before it counts. */
  settleMs: number;
  /** A first factor needs an administrator's enrolment code. */
  requireCode: boolean;
}

/** What a user offers to be allowed to add a factor. */
export interface EnrolmentProof {
  /** A code of a TOTP factor the user already has, presented as part of the enrolment. */
  totp?: string;
  /** The one-time code an administrator's reset issued. */
  enrolmentCode?: string;
}

const aad = (factorId: string) => `mfa_factors:${factorId}`;
const hashCode = (code: string) => createHash("sha256").update(code).digest("hex");
/** Codes are read aloud and typed: case, spaces and dashes do not matter. */
const normaliseCode = (code: string) => code.toUpperCase().replace(/[\s-]/g, "");

function newEnrolmentCode(): string {
  const bytes = randomBytes(10);
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)?.join("-") ?? out;
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Authentication factors: TOTP (RFC 6238) and WebAuthn. Each successful presentation is recorded
 * with its time; policies ask for one "fresh within N minutes". A TOTP code is accepted once
 * (its time step must be newer than the last accepted), failures are counted and rate-limited
 * atomically, and every attempt is audited. Adding a factor when one exists needs a fresh use of an
 * existing one or an administrator's enrolment code; a first factor vouched for by a sign-in alone
 * counts only once it has settled (NOTES.md).
 */
export function createFactorService(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  box: Pick<SecretBox, "seal" | "open">;
  webauthn: () => WebauthnSettings;
  enrolment: () => EnrolmentSettings;
  users: Pick<UserService, "resolve">;
}) {
  function totpFor(user: string, secret: OTPAuth.Secret) {
    return new OTPAuth.TOTP({
      issuer: "Firebreak",
      label: user,
      algorithm: "SHA1",
      digits: 6,
      period: TOTP_PERIOD_S,
      secret,
    });
  }

  async function failed(principal: Principal, kind: string, reason: string, factorId: string | null = null) {
    await deps.inTransaction(async (unit) => {
      await recordPresentation(unit.tx, {
        id: newId("evt", unit.now),
        user_name: principal.name,
        kind,
        factor_id: factorId,
        ok: 0,
        presented_at: unit.now,
      });
      await unit.audit({ type: "factor.failed", actor: principal.name, context: { kind, reason } });
    });
  }

  type Fail = (kind: string, reason: string, factorId?: string | null) => Promise<void>;

  /**
   * Runs one attempt at a secret within the user's failure allowance. The attempt is counted before
   * the secret is checked, so concurrent attempts cannot all pass a check made before any of them
   * failed; it is given back unless `run` reports a failure.
   */
  async function limited<T>(principal: Principal, run: (fail: Fail) => Promise<T>): Promise<T> {
    const window = await reserveAttempt(
      deps.db,
      principal.name,
      deps.clock.now(),
      FAILURE_WINDOW_MS,
      MAX_FAILURES,
    );
    if (window === null) {
      await deps.inTransaction((unit) =>
        unit.audit({
          type: "factor.rate_limited",
          actor: principal.name,
          context: { windowSeconds: FAILURE_WINDOW_MS / 1000, maxFailures: MAX_FAILURES },
        }),
      );
      throw new FirebreakError("RATE_LIMITED", `too many failed factor attempts; try again in a few minutes`);
    }
    let counted = false;
    const fail: Fail = async (kind, reason, factorId = null) => {
      counted = true;
      await failed(principal, kind, reason, factorId);
    };
    try {
      return await run(fail);
    } finally {
      if (!counted) await releaseAttempt(deps.db, principal.name, window);
    }
  }

  async function succeeded(
    principal: Principal,
    factor: {
      id: string;
      kind: string;
      confirmedAt: number;
      settlesAt: number;
      authorizedBy: FactorAuthorization;
    },
    purpose: string,
  ): Promise<PresentedFactor> {
    return deps.inTransaction(async (unit) => {
      await recordPresentation(unit.tx, {
        id: newId("evt", unit.now),
        user_name: principal.name,
        kind: factor.kind,
        factor_id: factor.id,
        ok: 1,
        presented_at: unit.now,
      });
      await unit.audit({
        type: "factor.verified",
        actor: principal.name,
        context: { kind: factor.kind, factor: factor.id, purpose },
      });
      return {
        kind: factor.kind,
        at: unit.now,
        factorId: factor.id,
        confirmedAt: factor.confirmedAt,
        settlesAt: factor.settlesAt,
        authorizedBy: factor.authorizedBy,
      };
    });
  }

  /** Recent successful presentations of the user's existing factors, newest first. */
  async function recent(user: string, lookbackMs: number): Promise<PresentedFactor[]> {
    const rows = await recentPresentations(deps.db, user, FACTOR_KINDS, deps.clock.now() - lookbackMs);
    return rows.map((row) => ({
      kind: row.kind,
      at: row.presented_at,
      factorId: row.factor_id,
      confirmedAt: row.confirmed_at as number,
      settlesAt: row.settles_at ?? (row.confirmed_at as number),
      authorizedBy: row.authorized_by,
    }));
  }

  /**
   * Decides whether the user may add a factor now, and on what authority: an administrator's
   * enrolment code, a fresh use of an existing factor, or (for a first factor only, unless codes
   * are required) the sign-in alone. A wrong code counts as a failed attempt.
   */
  async function authorizeEnrolment(
    principal: Principal,
    proof: EnrolmentProof,
  ): Promise<{ authorizedBy: FactorAuthorization; codeHash: string | null }> {
    if (proof.enrolmentCode !== undefined) {
      const code = normaliseCode(proof.enrolmentCode);
      assert(
        ENROLMENT_CODE_PATTERN.test(code),
        "VALIDATION_FAILED",
        "an enrolment code is 16 letters and digits, such as ABCD-EFGH-IJKL-MNOP",
      );
      return limited(principal, async (fail) => {
        const stored = await findEnrolmentCode(deps.db, principal.name);
        const presented = hashCode(code);
        const same = timingSafeEqual(
          Buffer.from(stored?.code_hash ?? "0".repeat(64), "hex"),
          Buffer.from(presented, "hex"),
        );
        if (!stored || !same || stored.expires_at <= deps.clock.now()) {
          await fail("enrolment-code", "wrong or expired enrolment code");
          throw new FirebreakError(
            "FACTOR_INVALID",
            "the enrolment code is not valid (or it expired, or it was used); ask an administrator for a new one",
          );
        }
        return { authorizedBy: "enrolment-code" as const, codeHash: presented };
      });
    }
    if (proof.totp !== undefined) await presentTotp(principal, proof.totp, "enrolment");
    const confirmed = (await listFactors(deps.db, principal.name)).filter((f) => f.confirmed_at !== null);
    if (confirmed.length === 0) {
      assert(
        !deps.enrolment().requireCode,
        "FACTOR_REQUIRED",
        "a first factor needs an enrolment code from an administrator ('firebreak mfa reset USER' issues one)",
        { factors: [], enrolmentCode: true },
      );
      return { authorizedBy: "sign-in", codeHash: null };
    }
    const now = deps.clock.now();
    if (
      pickFreshFactor(
        await recent(principal.name, ENROLMENT_FRESHNESS_MS),
        FACTOR_KINDS,
        ENROLMENT_FRESHNESS_MS,
        now,
      )
    )
      return { authorizedBy: "factor", codeHash: null };
    const kinds = [...new Set(confirmed.map((f) => f.kind))];
    const settling = confirmed
      .map((f) => f.settles_at ?? 0)
      .filter((at) => at > now)
      .sort((a, b) => a - b);
    throw new FirebreakError(
      "FACTOR_REQUIRED",
      `you already have a factor: adding another needs a fresh use of it (${kinds.join(" or ")}, within ${ENROLMENT_FRESHNESS_MS / 60_000}m), or an administrator's reset` +
        (settling.length === confirmed.length ? `; yours counts from ${iso(settling[0] as number)}` : ""),
      { factors: kinds, enrolmentCode: true },
    );
  }

  /** Refuses to finish a sign-in-only enrolment if another factor was confirmed since it began. */
  async function assertStillFirst(
    principal: Principal,
    authorizedBy: FactorAuthorization,
    except: string | null,
  ) {
    if (authorizedBy !== "sign-in") return;
    const others = (await listFactors(deps.db, principal.name)).filter(
      (f) => f.confirmed_at !== null && f.id !== except,
    );
    assert(
      others.length === 0,
      "FACTOR_REQUIRED",
      "another factor was confirmed since this enrolment began; start again, presenting that factor",
      { factors: [...new Set(others.map((f) => f.kind))], enrolmentCode: true },
    );
  }

  /** Uses up the enrolment code inside the enrolment's own transaction; a racing second use fails. */
  async function spendEnrolmentCode(
    tx: Parameters<typeof consumeEnrolmentCode>[0],
    principal: Principal,
    codeHash: string | null,
  ) {
    if (codeHash === null) return;
    assert(
      await consumeEnrolmentCode(tx, principal.name, codeHash),
      "FACTOR_INVALID",
      "the enrolment code was used meanwhile; ask an administrator for a new one",
    );
  }

  const settlesAt = (authorizedBy: FactorAuthorization, now: number) =>
    authorizedBy === "sign-in" ? now + deps.enrolment().settleMs : now;

  /**
   * Checks a TOTP code against the user's factors (a pending one is confirmed by it). A code
   * whose time step was already used is refused as a replay.
   */
  async function presentTotp(principal: Principal, code: string, purpose: string): Promise<PresentedFactor> {
    assert(/^[0-9]{6}$/.test(code), "VALIDATION_FAILED", "a TOTP code is 6 digits");
    return limited(principal, async (fail) => {
      const now = deps.clock.now();
      // A pending enrolment lapses: its authorization was judged when it began.
      const factors = (await listFactors(deps.db, principal.name, "totp")).filter(
        (f) => f.confirmed_at !== null || now - f.created_at <= PENDING_ENROLMENT_MS,
      );
      if (factors.length === 0)
        throw new FirebreakError(
          "FACTOR_NOT_ENROLLED",
          "no TOTP factor is enrolled; run 'firebreak mfa enroll totp'",
        );
      for (const factor of factors) {
        const secret = OTPAuth.Secret.fromBase32(deps.box.open(factor.secret_enc as string, aad(factor.id)));
        const delta = OTPAuth.TOTP.validate({
          token: code,
          secret,
          period: TOTP_PERIOD_S,
          timestamp: now,
          window: 1,
        });
        if (delta === null) continue;
        const step = Math.floor(now / 1000 / TOTP_PERIOD_S) + delta;
        const confirming = factor.confirmed_at === null;
        if (confirming) await assertStillFirst(principal, factor.authorized_by, factor.id);
        const settles = factor.settles_at ?? settlesAt(factor.authorized_by, now);
        const accepted = await deps.inTransaction(async (unit) => {
          if (!(await advanceStep(unit.tx, factor.id, step, now, settles))) return false;
          if (confirming) {
            await unit.audit({
              type: "factor.enrolled",
              actor: principal.name,
              context: {
                kind: "totp",
                factor: factor.id,
                authorizedBy: factor.authorized_by,
                settlesAt: iso(settles),
              },
            });
          }
          return true;
        });
        if (!accepted) {
          await fail("totp", "replayed code", factor.id);
          throw new FirebreakError("FACTOR_REPLAYED", "this code was already used; wait for the next one");
        }
        return succeeded(
          principal,
          {
            id: factor.id,
            kind: "totp",
            confirmedAt: factor.confirmed_at ?? now,
            settlesAt: settles,
            authorizedBy: factor.authorized_by,
          },
          purpose,
        );
      }
      await fail("totp", "wrong code");
      throw new FirebreakError("FACTOR_INVALID", "the code is not valid");
    });
  }

  return {
    async list(principal: Principal) {
      return (await listFactors(deps.db, principal.name)).map((f) => ({
        id: f.id,
        kind: f.kind,
        label: f.label,
        confirmed: f.confirmed_at !== null,
        createdAt: iso(f.created_at),
        confirmedAt: f.confirmed_at === null ? null : iso(f.confirmed_at),
        settlesAt: f.settles_at === null ? null : iso(f.settles_at),
        authorizedBy: f.authorized_by,
      }));
    },

    /**
     * Starts TOTP enrolment: a new secret, its otpauth URI and QR code. It is confirmed with a code;
     * when it counts depends on what allowed the enrolment (`authorizeEnrolment`).
     */
    async enrollTotp(principal: Principal, proof: EnrolmentProof = {}) {
      const authorization = await authorizeEnrolment(principal, proof);
      const secret = new OTPAuth.Secret({ size: 20 });
      const totp = totpFor(principal.name, secret);
      const uri = totp.toString();
      const id = newId("evt", deps.clock.now()).replace(/^evt_/, "mfa_");
      await deps.inTransaction(async (unit) => {
        await spendEnrolmentCode(unit.tx, principal, authorization.codeHash);
        await deleteUnconfirmed(unit.tx, principal.name, "totp");
        await insertFactor(unit.tx, {
          id,
          user_name: principal.name,
          kind: "totp",
          label: "authenticator app",
          secret_enc: deps.box.seal(secret.base32, aad(id)),
          credential_id: null,
          public_key: null,
          counter: 0,
          transports_json: "[]",
          last_step: 0,
          confirmed_at: null,
          created_at: unit.now,
          authorized_by: authorization.authorizedBy,
          settles_at: null,
        });
        await unit.audit({
          type: "factor.enrolment_started",
          actor: principal.name,
          context: { kind: "totp", factor: id, authorizedBy: authorization.authorizedBy },
        });
      });
      return {
        factorId: id,
        secret: secret.base32,
        uri,
        qrSvg: await QRCode.toString(uri, { type: "svg", margin: 1 }),
        qrTerminal: await QRCode.toString(uri, { type: "terminal", small: true }),
        authorizedBy: authorization.authorizedBy,
      };
    },

    presentTotp,

    /** Registration options; what allows the registration is decided here and kept with the challenge. */
    async webauthnRegistrationOptions(principal: Principal, proof: EnrolmentProof = {}) {
      const authorization = await authorizeEnrolment(principal, proof);
      const settings = deps.webauthn();
      const existing = await listFactors(deps.db, principal.name, "webauthn");
      const options = await generateRegistrationOptions({
        rpName: settings.rpName,
        rpID: settings.rpId,
        userName: principal.name,
        attestationType: "none",
        excludeCredentials: existing.map((f) => ({ id: f.credential_id as string })),
        authenticatorSelection: { residentKey: "preferred", userVerification: "preferred" },
      });
      await deps.inTransaction(async (unit) => {
        await spendEnrolmentCode(unit.tx, principal, authorization.codeHash);
        await saveChallenge(unit.tx, {
          id: newId("evt", unit.now),
          user_name: principal.name,
          purpose: "register",
          challenge: options.challenge,
          expires_at: unit.now + CHALLENGE_TTL_MS,
          authorized_by: authorization.authorizedBy,
        });
        await unit.audit({
          type: "factor.enrolment_started",
          actor: principal.name,
          context: { kind: "webauthn", authorizedBy: authorization.authorizedBy },
        });
      });
      return options;
    },

    async webauthnRegister(principal: Principal, response: unknown, label: string) {
      const settings = deps.webauthn();
      const pending = await takeChallenge(deps.db, principal.name, "register", deps.clock.now());
      assert(
        pending?.authorizedBy,
        "FACTOR_INVALID",
        "no registration is pending (or it expired); ask for new options",
      );
      const { challenge, authorizedBy } = pending;
      await assertStillFirst(principal, authorizedBy, null);
      let verification: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
      try {
        verification = await verifyRegistrationResponse({
          response: response as never,
          expectedChallenge: challenge,
          expectedOrigin: settings.origins,
          expectedRPID: settings.rpId,
        });
      } catch {
        await failed(principal, "webauthn", "registration did not verify");
        throw new FirebreakError("FACTOR_INVALID", "the WebAuthn registration did not verify");
      }
      assert(verification.verified, "FACTOR_INVALID", "the WebAuthn registration did not verify");
      const { credential } = verification.registrationInfo;
      const id = newId("evt", deps.clock.now()).replace(/^evt_/, "mfa_");
      await deps.inTransaction(async (unit) => {
        await insertFactor(unit.tx, {
          id,
          user_name: principal.name,
          kind: "webauthn",
          label: label.slice(0, 200) || "security key",
          secret_enc: null,
          credential_id: credential.id,
          public_key: Buffer.from(credential.publicKey).toString("base64url"),
          counter: credential.counter,
          transports_json: JSON.stringify(credential.transports ?? []),
          last_step: 0,
          confirmed_at: unit.now,
          created_at: unit.now,
          authorized_by: authorizedBy,
          settles_at: settlesAt(authorizedBy, unit.now),
        });
        await unit.audit({
          type: "factor.enrolled",
          actor: principal.name,
          context: {
            kind: "webauthn",
            factor: id,
            authorizedBy,
            settlesAt: iso(settlesAt(authorizedBy, unit.now)),
          },
        });
      });
      return { factorId: id };
    },

    async webauthnAssertionOptions(principal: Principal) {
      const settings = deps.webauthn();
      const factors = await listFactors(deps.db, principal.name, "webauthn");
      if (factors.length === 0)
        throw new FirebreakError("FACTOR_NOT_ENROLLED", "no WebAuthn credential is registered");
      const options = await generateAuthenticationOptions({
        rpID: settings.rpId,
        userVerification: "preferred",
        allowCredentials: factors.map((f) => ({
          id: f.credential_id as string,
          transports: JSON.parse(f.transports_json) as string[],
        })),
      });
      const now = deps.clock.now();
      await saveChallenge(deps.db, {
        id: newId("evt", now),
        user_name: principal.name,
        purpose: "assert",
        challenge: options.challenge,
        expires_at: now + CHALLENGE_TTL_MS,
        authorized_by: null,
      });
      return options;
    },

    async webauthnAssert(
      principal: Principal,
      response: { id?: unknown },
      purpose: string,
    ): Promise<PresentedFactor> {
      return limited(principal, async (fail) => {
        const settings = deps.webauthn();
        const pending = await takeChallenge(deps.db, principal.name, "assert", deps.clock.now());
        assert(pending, "FACTOR_INVALID", "no assertion is pending (or it expired); ask for new options");
        const { challenge } = pending;
        const factor = (await listFactors(deps.db, principal.name, "webauthn")).find(
          (f) => f.credential_id === response.id,
        );
        if (!factor) {
          await fail("webauthn", "unknown credential");
          throw new FirebreakError("FACTOR_INVALID", "that credential is not registered to you");
        }
        let result: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
        try {
          result = await verifyAuthenticationResponse({
            response: response as never,
            expectedChallenge: challenge,
            expectedOrigin: settings.origins,
            expectedRPID: settings.rpId,
            credential: {
              id: factor.credential_id as string,
              publicKey: new Uint8Array(Buffer.from(factor.public_key as string, "base64url")),
              counter: factor.counter,
            },
          });
        } catch {
          result = { verified: false } as never;
        }
        if (!result.verified) {
          await fail("webauthn", "assertion did not verify", factor.id);
          throw new FirebreakError("FACTOR_INVALID", "the WebAuthn assertion did not verify");
        }
        await updateCounter(deps.db, factor.id, result.authenticationInfo.newCounter);
        return succeeded(
          principal,
          {
            id: factor.id,
            kind: "webauthn",
            confirmedAt: factor.confirmed_at as number,
            settlesAt: factor.settles_at ?? (factor.confirmed_at as number),
            authorizedBy: factor.authorized_by,
          },
          purpose,
        );
      });
    },

    /**
     * The user's successful presentations within `lookbackMs`, newest first; activation and
     * approval pick one with `pickFreshFactor` under the policy's own freshness.
     */
    recent,

    /**
     * An administrator's reset: removes every factor of `user` (and with them every earlier
     * presentation) and issues a one-time enrolment code, shown once, to hand to the person through
     * another channel. A factor enrolled with it counts at once. Nobody resets their own factors.
     */
    async reset(actor: Principal, user: string, reason: string) {
      assert(actor.isAdmin, "FORBIDDEN", "only an administrator can reset factors");
      assert(actor.name !== user, "FORBIDDEN", "another administrator must reset your own factors");
      assert(reason.trim().length > 0, "VALIDATION_FAILED", "a reason is required");
      const target = await deps.users.resolve(user);
      if (!target) throw new FirebreakError("NOT_FOUND", `no user '${user.slice(0, 128)}'`);
      const code = newEnrolmentCode();
      return deps.inTransaction(async (unit) => {
        const removed = await deleteFactors(unit.tx, user);
        const expiresAt = unit.now + ENROLMENT_CODE_TTL_MS;
        await saveEnrolmentCode(unit.tx, {
          user_name: user,
          code_hash: hashCode(normaliseCode(code)),
          issued_by: actor.name,
          issued_at: unit.now,
          expires_at: expiresAt,
        });
        await unit.audit({
          type: "factor.reset",
          actor: actor.name,
          context: {
            user,
            reason,
            removed: removed.map((f) => ({ factor: f.id, kind: f.kind })),
            enrolmentCodeExpiresAt: iso(expiresAt),
          },
        });
        return { user, removed: removed.length, enrolmentCode: code, expiresAt: iso(expiresAt) };
      });
    },
  };
}
export type FactorService = ReturnType<typeof createFactorService>;

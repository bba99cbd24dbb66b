import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from "@simplewebauthn/server";
import * as OTPAuth from "otpauth";
import QRCode from "qrcode";
import type { Db } from "../db/types.js";
import { assert, FirebreakError } from "../errors.js";
import type { SecretBox } from "../secrets/secret-box.js";
import type { Clock } from "../shared/clock.js";
import { newId } from "../shared/ids.js";
import type { InTransaction } from "../shared/transaction.js";
import type { Principal } from "../users/user.service.js";
import {
  advanceStep,
  countFailures,
  deleteUnconfirmed,
  insertFactor,
  latestPresentation,
  listFactors,
  recordPresentation,
  saveChallenge,
  takeChallenge,
  updateCounter,
} from "./factor.repo.js";

const TOTP_PERIOD_S = 30;
/** Failed factor attempts allowed per user in the window before further attempts are refused. */
const MAX_FAILURES = 5;
const FAILURE_WINDOW_MS = 5 * 60_000;
const CHALLENGE_TTL_MS = 5 * 60_000;

export interface WebauthnSettings {
  rpId: string;
  rpName: string;
  origins: string[];
}

/** A factor the user presented: its kind and when. Activation and approval judge freshness on it. */
export interface PresentedFactor {
  kind: string;
  at: number;
}

const aad = (factorId: string) => `mfa_factors:${factorId}`;

/**
 * Authentication factors: TOTP (RFC 6238) and WebAuthn. Each successful presentation is recorded
 * with its time; policies ask for one "fresh within N minutes". A TOTP code is accepted once
 * (its time step must be newer than the last accepted), failures are counted and rate-limited,
 * and every attempt is audited.
 */
export function createFactorService(deps: {
  db: Db;
  clock: Clock;
  inTransaction: InTransaction;
  box: Pick<SecretBox, "seal" | "open">;
  webauthn: () => WebauthnSettings;
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

  async function guardRate(principal: Principal) {
    const now = deps.clock.now();
    if ((await countFailures(deps.db, principal.name, now - FAILURE_WINDOW_MS)) >= MAX_FAILURES) {
      await deps.inTransaction((unit) =>
        unit.audit({
          type: "factor.rate_limited",
          actor: principal.name,
          context: { windowSeconds: FAILURE_WINDOW_MS / 1000, maxFailures: MAX_FAILURES },
        }),
      );
      throw new FirebreakError("RATE_LIMITED", `too many failed factor attempts; try again in a few minutes`);
    }
  }

  async function succeeded(
    principal: Principal,
    kind: string,
    factorId: string,
    purpose: string,
  ): Promise<PresentedFactor> {
    return deps.inTransaction(async (unit) => {
      await recordPresentation(unit.tx, {
        id: newId("evt", unit.now),
        user_name: principal.name,
        kind,
        factor_id: factorId,
        ok: 1,
        presented_at: unit.now,
      });
      await unit.audit({
        type: "factor.verified",
        actor: principal.name,
        context: { kind, factor: factorId, purpose },
      });
      return { kind, at: unit.now };
    });
  }

  return {
    async list(principal: Principal) {
      return (await listFactors(deps.db, principal.name)).map((f) => ({
        id: f.id,
        kind: f.kind,
        label: f.label,
        confirmed: f.confirmed_at !== null,
        createdAt: new Date(f.created_at).toISOString(),
      }));
    },

    /** Starts TOTP enrolment: a new secret, its otpauth URI and QR code. It counts once confirmed with a code. */
    async enrollTotp(principal: Principal) {
      const secret = new OTPAuth.Secret({ size: 20 });
      const totp = totpFor(principal.name, secret);
      const uri = totp.toString();
      const id = newId("evt", deps.clock.now()).replace(/^evt_/, "mfa_");
      await deps.inTransaction(async (unit) => {
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
        });
        await unit.audit({
          type: "factor.enrolment_started",
          actor: principal.name,
          context: { kind: "totp", factor: id },
        });
      });
      return {
        factorId: id,
        secret: secret.base32,
        uri,
        qrSvg: await QRCode.toString(uri, { type: "svg", margin: 1 }),
        qrTerminal: await QRCode.toString(uri, { type: "terminal", small: true }),
      };
    },

    /**
     * Checks a TOTP code against the user's factors (an unconfirmed one is confirmed by it). A code
     * whose time step was already used is refused as a replay.
     */
    async presentTotp(principal: Principal, code: string, purpose: string): Promise<PresentedFactor> {
      assert(/^[0-9]{6}$/.test(code), "VALIDATION_FAILED", "a TOTP code is 6 digits");
      await guardRate(principal);
      const factors = await listFactors(deps.db, principal.name, "totp");
      if (factors.length === 0)
        throw new FirebreakError(
          "FACTOR_NOT_ENROLLED",
          "no TOTP factor is enrolled; run 'firebreak mfa enroll totp'",
        );
      const now = deps.clock.now();
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
        if (!(await advanceStep(deps.db, factor.id, step, now))) {
          await failed(principal, "totp", "replayed code", factor.id);
          throw new FirebreakError("FACTOR_REPLAYED", "this code was already used; wait for the next one");
        }
        if (factor.confirmed_at === null) {
          await deps.inTransaction((unit) =>
            unit.audit({
              type: "factor.enrolled",
              actor: principal.name,
              context: { kind: "totp", factor: factor.id },
            }),
          );
        }
        return succeeded(principal, "totp", factor.id, purpose);
      }
      await failed(principal, "totp", "wrong code");
      throw new FirebreakError("FACTOR_INVALID", "the code is not valid");
    },

    async webauthnRegistrationOptions(principal: Principal) {
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
      const now = deps.clock.now();
      await saveChallenge(deps.db, {
        id: newId("evt", now),
        user_name: principal.name,
        purpose: "register",
        challenge: options.challenge,
        expires_at: now + CHALLENGE_TTL_MS,
      });
      return options;
    },

    async webauthnRegister(principal: Principal, response: unknown, label: string) {
      const settings = deps.webauthn();
      const challenge = await takeChallenge(deps.db, principal.name, "register", deps.clock.now());
      assert(challenge, "FACTOR_INVALID", "no registration is pending (or it expired); ask for new options");
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
        });
        await unit.audit({
          type: "factor.enrolled",
          actor: principal.name,
          context: { kind: "webauthn", factor: id },
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
      });
      return options;
    },

    async webauthnAssert(
      principal: Principal,
      response: { id?: unknown },
      purpose: string,
    ): Promise<PresentedFactor> {
      await guardRate(principal);
      const settings = deps.webauthn();
      const challenge = await takeChallenge(deps.db, principal.name, "assert", deps.clock.now());
      assert(challenge, "FACTOR_INVALID", "no assertion is pending (or it expired); ask for new options");
      const factor = (await listFactors(deps.db, principal.name, "webauthn")).find(
        (f) => f.credential_id === response.id,
      );
      if (!factor) {
        await failed(principal, "webauthn", "unknown credential");
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
        await failed(principal, "webauthn", "assertion did not verify", factor.id);
        throw new FirebreakError("FACTOR_INVALID", "the WebAuthn assertion did not verify");
      }
      await updateCounter(deps.db, factor.id, result.authenticationInfo.newCounter);
      return succeeded(principal, "webauthn", factor.id, purpose);
    },

    /** The user's newest presentation of one of `kinds` within `freshnessMs`, or null. */
    async fresh(
      user: string,
      kinds: readonly string[],
      freshnessMs: number,
    ): Promise<PresentedFactor | null> {
      const row = await latestPresentation(deps.db, user, kinds, deps.clock.now() - freshnessMs);
      return row ? { kind: row.kind, at: row.presented_at } : null;
    },
  };
}
export type FactorService = ReturnType<typeof createFactorService>;

import { z } from "zod";
import { USER_PATTERN } from "../config/primitives.js";

/** Authentication factors: `/v1/mfa/*` (TOTP, WebAuthn, an administrator's reset). */

/** `sign-in`: a first factor vouched for by the sign-in alone, which has to settle. */
const authorizedBy = z.enum(["sign-in", "factor", "enrolment-code"]);

export const factorViewSchema = z.object({
  id: z.string(),
  kind: z.string(),
  label: z.string(),
  confirmed: z.boolean(),
  createdAt: z.string(),
  confirmedAt: z.string().nullable(),
  /** From when the factor counts toward a policy. */
  settlesAt: z.string().nullable(),
  authorizedBy,
});
export type FactorView = z.infer<typeof factorViewSchema>;

export const factorsReply = z.object({ factors: z.array(factorViewSchema) });

/** A factor just presented: its kind and when. */
export const presentedFactorReply = z.object({ kind: z.string(), at: z.string() });

/** WebAuthn responses are JSON objects shaped by the browser; the library validates them in depth. */
export const webauthnResponse = z
  .object({ id: z.string().min(1).max(1024), rawId: z.string().max(1024), type: z.string().max(32) })
  .passthrough();

/**
 * What allows adding a factor: a code of a TOTP factor you have (or a WebAuthn assertion made just
 * before), or the one-time code an administrator's reset issued.
 */
export const enrolmentProofBody = z
  .strictObject({
    totp: z
      .string()
      .regex(/^[0-9]{6}$/, "a 6-digit code")
      .optional(),
    enrolmentCode: z.string().min(1).max(64).optional(),
  })
  .optional();

export const totpEnrolmentReply = z.object({
  factorId: z.string(),
  secret: z.string(),
  uri: z.string(),
  qrSvg: z.string(),
  qrTerminal: z.string(),
  authorizedBy,
});

export const totpVerifyBody = z.strictObject({ code: z.string().regex(/^[0-9]{6}$/, "a 6-digit code") });

/** Options for navigator.credentials.create / .get, as the WebAuthn library builds them. */
export const webauthnOptionsReply = z.record(z.string(), z.unknown());

export const webauthnRegisterBody = z.strictObject({
  response: webauthnResponse,
  label: z.string().max(200).default("security key"),
});

export const webauthnRegisterReply = z.object({ factorId: z.string() });

export const webauthnAssertBody = z.strictObject({ response: webauthnResponse });

export const factorUserParams = z.object({ user: z.string().regex(USER_PATTERN, "a user name") });

export const factorResetBody = z.strictObject({ reason: z.string().min(1).max(2000) });

export const factorResetReply = z.object({
  user: z.string(),
  removed: z.number().int(),
  enrolmentCode: z.string(),
  expiresAt: z.string(),
});

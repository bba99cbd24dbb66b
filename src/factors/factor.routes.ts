import { z } from "zod";
import { USER_PATTERN } from "../config/schema.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { FactorService } from "./factor.service.js";

const presented = z.object({ kind: z.string(), at: z.string() });
const toPresented = (factor: { kind: string; at: number }) => ({
  kind: factor.kind,
  at: new Date(factor.at).toISOString(),
});
/** WebAuthn responses are JSON objects shaped by the browser; the library validates them in depth. */
const webauthnResponse = z
  .object({ id: z.string().min(1).max(1024), rawId: z.string().max(1024), type: z.string().max(32) })
  .passthrough();
/**
 * What allows adding a factor: a code of a TOTP factor you have (or a WebAuthn assertion made just
 * before), or the one-time code an administrator's reset issued.
 */
const enrolmentProof = z
  .strictObject({
    totp: z
      .string()
      .regex(/^[0-9]{6}$/, "a 6-digit code")
      .optional(),
    enrolmentCode: z.string().min(1).max(64).optional(),
  })
  .optional();

export function createFactorRoutes(deps: { factors: FactorService }): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/mfa/factors",
      summary: "Your enrolled factors",
      tag: "mfa",
      auth: "user",
      reply: z.object({
        factors: z.array(
          z.object({
            id: z.string(),
            kind: z.string(),
            label: z.string(),
            confirmed: z.boolean(),
            createdAt: z.string(),
            confirmedAt: z.string().nullable(),
            /** From when the factor counts toward a policy. */
            settlesAt: z.string().nullable(),
            authorizedBy: z.enum(["sign-in", "factor", "enrolment-code"]),
          }),
        ),
      }),
      handler: async ({ principal }) => ({ factors: await deps.factors.list(principal) }),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/mfa/totp/enroll",
      summary:
        "Start TOTP enrolment: a secret, its otpauth URI and QR code (confirm with a code). With a factor already enrolled, needs a fresh use of it or an enrolment code",
      tag: "mfa",
      auth: "user",
      body: enrolmentProof,
      reply: z.object({
        factorId: z.string(),
        secret: z.string(),
        uri: z.string(),
        qrSvg: z.string(),
        qrTerminal: z.string(),
        /** `sign-in`: a first factor vouched for by the sign-in alone, which has to settle. */
        authorizedBy: z.enum(["sign-in", "factor", "enrolment-code"]),
      }),
      status: 201,
      async handler({ principal, body, reply }) {
        reply.header("cache-control", "no-store");
        return deps.factors.enrollTotp(principal, body ?? {});
      },
    }),
    defineRoute({
      method: "POST",
      url: "/v1/mfa/totp/verify",
      summary: "Present a TOTP code (confirms a new enrolment; counts as a fresh factor)",
      tag: "mfa",
      auth: "user",
      body: z.strictObject({ code: z.string().regex(/^[0-9]{6}$/, "a 6-digit code") }),
      reply: presented,
      handler: async ({ principal, body }) =>
        toPresented(await deps.factors.presentTotp(principal, body.code, "verify")),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/mfa/webauthn/register/options",
      summary:
        "WebAuthn registration options for navigator.credentials.create. With a factor already enrolled, needs a fresh use of it or an enrolment code",
      tag: "mfa",
      auth: "user",
      body: enrolmentProof,
      reply: z.record(z.string(), z.unknown()),
      handler: async ({ principal, body }) =>
        (await deps.factors.webauthnRegistrationOptions(principal, body ?? {})) as unknown as Record<
          string,
          unknown
        >,
    }),
    defineRoute({
      method: "POST",
      url: "/v1/mfa/webauthn/register",
      summary: "Finish WebAuthn registration with the browser's response",
      tag: "mfa",
      auth: "user",
      body: z.strictObject({
        response: webauthnResponse,
        label: z.string().max(200).default("security key"),
      }),
      reply: z.object({ factorId: z.string() }),
      status: 201,
      handler: async ({ principal, body }) =>
        deps.factors.webauthnRegister(principal, body.response, body.label),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/mfa/webauthn/assert/options",
      summary: "WebAuthn assertion options for navigator.credentials.get",
      tag: "mfa",
      auth: "user",
      reply: z.record(z.string(), z.unknown()),
      handler: async ({ principal }) =>
        (await deps.factors.webauthnAssertionOptions(principal)) as unknown as Record<string, unknown>,
    }),
    defineRoute({
      method: "POST",
      url: "/v1/mfa/webauthn/assert",
      summary: "Present a WebAuthn assertion (counts as a fresh factor)",
      tag: "mfa",
      auth: "user",
      body: z.strictObject({ response: webauthnResponse }),
      reply: presented,
      handler: async ({ principal, body }) =>
        toPresented(await deps.factors.webauthnAssert(principal, body.response, "verify")),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/mfa/users/:user/reset",
      summary:
        "Administrators: remove a user's factors and issue a one-time enrolment code (shown once) to hand to them out of band",
      tag: "mfa",
      auth: "user",
      params: z.object({ user: z.string().regex(USER_PATTERN, "a user name") }),
      body: z.strictObject({ reason: z.string().min(1).max(2000) }),
      reply: z.object({
        user: z.string(),
        removed: z.number().int(),
        enrolmentCode: z.string(),
        expiresAt: z.string(),
      }),
      async handler({ principal, params, body, reply }) {
        reply.header("cache-control", "no-store");
        return deps.factors.reset(principal, params.user, body.reason);
      },
    }),
  ];
}

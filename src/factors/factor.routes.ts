import {
  enrolmentProofBody,
  factorResetBody,
  factorResetReply,
  factorsReply,
  factorUserParams,
  presentedFactorReply,
  totpEnrolmentReply,
  totpVerifyBody,
  webauthnAssertBody,
  webauthnOptionsReply,
  webauthnRegisterBody,
  webauthnRegisterReply,
} from "../api/factors.schema.js";
import { type AnyRoute, defineRoute } from "../http/route.js";
import type { FactorService } from "./factor.service.js";

const toPresented = (factor: { kind: string; at: number }) => ({
  kind: factor.kind,
  at: new Date(factor.at).toISOString(),
});
export function createFactorRoutes(deps: { factors: FactorService }): AnyRoute[] {
  return [
    defineRoute({
      method: "GET",
      url: "/v1/mfa/factors",
      summary: "Your enrolled factors",
      tag: "mfa",
      auth: "user",
      reply: factorsReply,
      handler: async ({ principal }) => ({ factors: await deps.factors.list(principal) }),
    }),
    defineRoute({
      method: "POST",
      url: "/v1/mfa/totp/enroll",
      summary:
        "Start TOTP enrolment: a secret, its otpauth URI and QR code (confirm with a code). With a factor already enrolled, needs a fresh use of it or an enrolment code",
      tag: "mfa",
      auth: "user",
      body: enrolmentProofBody,
      reply: totpEnrolmentReply,
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
      body: totpVerifyBody,
      reply: presentedFactorReply,
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
      body: enrolmentProofBody,
      reply: webauthnOptionsReply,
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
      body: webauthnRegisterBody,
      reply: webauthnRegisterReply,
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
      reply: webauthnOptionsReply,
      handler: async ({ principal }) =>
        (await deps.factors.webauthnAssertionOptions(principal)) as unknown as Record<string, unknown>,
    }),
    defineRoute({
      method: "POST",
      url: "/v1/mfa/webauthn/assert",
      summary: "Present a WebAuthn assertion (counts as a fresh factor)",
      tag: "mfa",
      auth: "user",
      body: webauthnAssertBody,
      reply: presentedFactorReply,
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
      params: factorUserParams,
      body: factorResetBody,
      reply: factorResetReply,
      async handler({ principal, params, body, reply }) {
        reply.header("cache-control", "no-store");
        return deps.factors.reset(principal, params.user, body.reason);
      },
    }),
  ];
}

import { type Command, CommanderError } from "commander";
import { CliFailure, type CommandContext } from "../context.js";
import { table } from "../format.js";

/** `mfa enroll|verify|list|reset`: authentication factors (TOTP here; WebAuthn in the console). */
export function registerFactorCommands(program: Command, context: CommandContext) {
  const { emit } = context;
  const mfa = program
    .command("mfa")
    .description("authentication factors (TOTP here; WebAuthn in the console)");
  mfa
    .command("enroll")
    .description(
      "start enrolling a factor: prints the otpauth URI and a QR code; confirm with 'firebreak mfa verify'",
    )
    .argument("<kind>", "totp or webauthn")
    .option("--totp <digits>", "a current code of a TOTP factor you already have (needed to add another)")
    .option("--enrolment-code <code>", "the one-time code an administrator's 'firebreak mfa reset' issued")
    .action(async (kind: string, options: { totp?: string; enrolmentCode?: string }) => {
      const { totpEnrolmentReply } = await import("../../api/factors.schema.js");
      if (kind === "webauthn")
        throw new CliFailure(
          "WebAuthn keys are registered in the console (a browser talks to the key)",
          "USAGE",
        );
      if (kind !== "totp") throw new CommanderError(2, "usage", "the factor kind is totp or webauthn");
      const result = await (await context.client()).post(
        "/v1/mfa/totp/enroll",
        {
          ...(options.totp ? { totp: options.totp } : {}),
          ...(options.enrolmentCode ? { enrolmentCode: options.enrolmentCode } : {}),
        },
        totpEnrolmentReply,
      );
      emit(
        {
          factorId: result.factorId,
          secret: result.secret,
          uri: result.uri,
          authorizedBy: result.authorizedBy,
        },
        () =>
          `${result.qrTerminal}\nScan this with an authenticator app, or enter the secret ${result.secret}\n${result.uri}\nThen confirm: firebreak mfa verify --code <6 digits>` +
          (result.authorizedBy === "sign-in"
            ? "\nThis first factor is added with only your sign-in: it counts once it has settled (24h by default; 'firebreak mfa list' shows when). An administrator's enrolment code makes it count at once."
            : ""),
      );
    });
  mfa
    .command("verify")
    .description("present a TOTP code: confirms an enrolment, and counts as a fresh factor for activation")
    .requiredOption("--code <digits>", "the current 6-digit code")
    .action(async (options: { code: string }) => {
      const { presentedFactorReply } = await import("../../api/factors.schema.js");
      const result = await (await context.client()).post(
        "/v1/mfa/totp/verify",
        { code: options.code },
        presentedFactorReply,
      );
      emit(result, () => `${result.kind} accepted at ${result.at}`);
    });
  mfa
    .command("list")
    .description("your enrolled factors")
    .action(async () => {
      const { factorsReply } = await import("../../api/factors.schema.js");
      const { factors } = await (await context.client()).get("/v1/mfa/factors", factorsReply);
      const now = Date.now();
      emit({ factors }, () =>
        table(
          factors.map((f) => [
            f.id,
            f.kind,
            f.label,
            !f.confirmed
              ? "pending"
              : f.settlesAt && Date.parse(f.settlesAt) > now
                ? `counts from ${f.settlesAt}`
                : "confirmed",
            f.authorizedBy,
          ]),
          ["ID", "KIND", "LABEL", "STATE", "ENROLLED WITH"],
        ),
      );
    });
  mfa
    .command("reset")
    .description(
      "administrators: remove a user's factors and issue a one-time enrolment code (hand it to them out of band)",
    )
    .argument("<user>", "whose factors")
    .requiredOption("--reason <text>", "why (recorded in the audit log)")
    .action(async (user: string, options: { reason: string }) => {
      const { factorResetReply } = await import("../../api/factors.schema.js");
      const result = await (await context.client()).post(
        `/v1/mfa/users/${encodeURIComponent(user)}/reset`,
        { reason: options.reason },
        factorResetReply,
      );
      emit(
        result,
        () =>
          `Removed ${result.removed} factor(s) of ${result.user}.\nEnrolment code (once, valid until ${result.expiresAt}): ${result.enrolmentCode}\nGive it to ${result.user} in person or by phone: firebreak mfa enroll totp --enrolment-code <code>`,
      );
    });
}

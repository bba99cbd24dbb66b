import { type Command, CommanderError } from "commander";
import type { CommandContext } from "../context.js";
import { table, timeLeft } from "../format.js";
import { describeCredentials, describeGrant } from "../render.js";

/** `credential` and `connect`: using what a grant issued. */
export function registerCredentialCommands(program: Command, context: CommandContext) {
  program
    .command("credential")
    .description("show your grant's credential, once (a second fetch is refused)")
    .argument("<grant-id>", "grant id")
    .action(async (id: string) => {
      const { credentialReply } = await import("../../api/grants.schema.js");
      const result = await (await context.client()).post(
        `/v1/grants/${encodeURIComponent(id)}/credential`,
        {},
        credentialReply,
      );
      context.emit(result, () => describeCredentials(result.credentials));
    });

  program
    .command("connect")
    .description("start psql, mysql or ssh with your grant's credential, without printing it")
    .argument("<grant-id>", "grant id")
    .option("--resource <name>", "which resource, when the grant has several")
    .option(
      "--identity <file>",
      "your SSH private key (for SSH grants)",
      `${process.env.HOME ?? "~"}/.ssh/id_ed25519`,
    )
    .option(
      "--login <user>",
      "the account to log in as on an SSH host (default: the certificate's first principal)",
    )
    .action(async (id: string, options: { resource?: string; identity: string; login?: string }) => {
      const { credentialReply } = await import("../../api/grants.schema.js");
      const result = await (await context.client()).post(
        `/v1/grants/${encodeURIComponent(id)}/credential`,
        {},
        credentialReply,
      );
      const { connectWith } = await import("../connect.js");
      const code = await connectWith(result.credentials, options);
      process.exitCode = code;
    });
}

/** `grants`, `revoke`, `reviews`, `review`: grants and the review of break-glass uses. */
export function registerGrantCommands(program: Command, context: CommandContext) {
  const { emit } = context;

  program
    .command("grants")
    .description("list grants you may see")
    .option("--active", "only active grants")
    .option("--mine", "only your own")
    .action(async (options: { active?: boolean; mine?: boolean }) => {
      const { grantsReply } = await import("../../api/grants.schema.js");
      const query = new URLSearchParams();
      if (options.active) query.set("active", "true");
      if (options.mine) query.set("mine", "true");
      const { grants } = await (await context.client()).get(`/v1/grants?${query}`, grantsReply);
      emit({ grants }, () =>
        table(
          grants.map((g) => [
            g.id,
            g.state,
            g.user,
            g.resource ?? g.zone,
            g.role,
            g.state === "active" ? timeLeft(g.secondsLeft) : "-",
            g.revocation.status,
            g.review.state,
          ]),
          ["ID", "STATE", "USER", "TARGET", "ROLE", "LEFT", "REVOCATION", "REVIEW"],
        ),
      );
    });

  program
    .command("revoke")
    .description("end an active grant now")
    .argument("<grant-id>", "grant id")
    .requiredOption("--reason <text>", "why")
    .action(async (id: string, options: { reason: string }) => {
      const { grantViewSchema } = await import("../../api/grants.schema.js");
      const g = await (await context.client()).post(
        `/v1/grants/${encodeURIComponent(id)}/revoke`,
        { reason: options.reason },
        grantViewSchema,
      );
      emit(g, () => describeGrant(g));
    });

  program
    .command("reviews")
    .description("list break-glass uses awaiting review")
    .option("--due", "all that are due (the default)")
    .option("--overdue", "only overdue ones")
    .action(async (options: { overdue?: boolean }) => {
      const { reviewsReply } = await import("../../api/grants.schema.js");
      const query = options.overdue ? "?overdue=true" : "";
      const { reviews } = await (await context.client()).get(`/v1/reviews${query}`, reviewsReply);
      emit({ reviews }, () =>
        table(
          reviews.map((g) => [
            g.id,
            g.user,
            g.resource ?? g.zone,
            g.role,
            g.state,
            g.review.dueAt ?? "-",
            g.review.overdue ? "OVERDUE" : "",
          ]),
          ["GRANT", "USER", "TARGET", "ROLE", "STATE", "REVIEW DUE", ""],
        ),
      );
    });

  program
    .command("review")
    .description("accept or flag a break-glass use")
    .argument("<grant-id>", "grant id")
    .option("--accept", "the use was appropriate")
    .option("--flag", "the use needs follow-up")
    .requiredOption("--notes <text>", "what you checked")
    .action(async (id: string, options: { accept?: boolean; flag?: boolean; notes: string }) => {
      const { grantViewSchema } = await import("../../api/grants.schema.js");
      if (options.accept === options.flag)
        throw new CommanderError(2, "usage", "give exactly one of --accept or --flag");
      const g = await (await context.client()).post(
        `/v1/grants/${encodeURIComponent(id)}/review`,
        {
          verdict: options.accept ? "accept" : "flag",
          notes: options.notes,
        },
        grantViewSchema,
      );
      emit(g, () => describeGrant(g));
    });
}

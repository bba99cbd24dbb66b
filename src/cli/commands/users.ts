import type { Command } from "commander";
import type { CommandContext } from "../context.js";
import { safeText, table } from "../format.js";

/** `users add|token|revoke-tokens|list`: local users and their tokens (administrators). */
export function registerUserCommands(program: Command, context: CommandContext) {
  const { emit } = context;
  const users = program.command("users").description("manage local users and tokens (administrators)");
  users
    .command("add")
    .description("create a local user and print its token, once")
    .argument("<name>", "user name")
    .option("--groups <list>", "comma-separated groups", "")
    .action(async (name: string, options: { groups: string }) => {
      const { createdUserReply } = await import("../../api/users.schema.js");
      const groups = options.groups
        .split(",")
        .map((g) => g.trim())
        .filter(Boolean);
      const created = await (await context.client()).post("/v1/users", { name, groups }, createdUserReply);
      emit(
        created,
        () =>
          `created ${safeText(created.name)} (groups: ${safeText(created.groups.join(", ")) || "-"})\ntoken (shown once): ${created.token}`,
      );
    });
  users
    .command("token")
    .description("issue a new token for an existing user and print it, once")
    .argument("<name>", "user name")
    .option("-q, --quiet", "print only the token (for NAME=$(firebreak users token NAME -q))")
    .action(async (name: string, options: { quiet?: boolean }) => {
      const { issuedTokenReply } = await import("../../api/users.schema.js");
      const issued = await (await context.client()).post(
        `/v1/users/${encodeURIComponent(name)}/tokens`,
        {},
        issuedTokenReply,
      );
      emit(issued, () =>
        options.quiet ? issued.token : `token for ${safeText(issued.name)} (shown once): ${issued.token}`,
      );
    });
  users
    .command("revoke-tokens")
    .description("revoke every token and session of a user")
    .argument("<name>", "user name")
    .action(async (name: string) => {
      const { revokedTokensReply } = await import("../../api/users.schema.js");
      const result = await (await context.client()).post(
        `/v1/users/${encodeURIComponent(name)}/tokens/revoke`,
        {},
        revokedTokensReply,
      );
      emit(result, () => `revoked ${result.revoked} token(s) of ${safeText(result.user)}`);
    });
  users
    .command("list")
    .description("list users and their groups")
    .action(async () => {
      const { usersReply } = await import("../../api/users.schema.js");
      const { users: list } = await (await context.client()).get("/v1/users", usersReply);
      emit({ users: list }, () =>
        table(
          list.map((u) => [u.name, u.groups.join(",") || "-", u.isAdmin ? "admin" : ""]),
          ["USER", "GROUPS", ""],
        ),
      );
    });
}

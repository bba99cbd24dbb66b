import type { Command } from "commander";
import { ApiError, createClient, deleteCredentials, writeCredentials } from "../client.js";
import type { CommandContext } from "../context.js";
import { safeText } from "../format.js";

/** `login`, `logout`, `whoami`: who the CLI speaks as. */
export function registerSessionCommands(program: Command, context: CommandContext) {
  program
    .command("login")
    .description(
      "sign in through the identity provider (device code in a browser), or save a token with --token",
    )
    .option("--token <token>", "an API token (from 'firebreak users add' or an administrator) instead")
    .action(async (options: { token?: string }) => {
      const { deviceLogin } = await import("../login.js");
      const { principalViewSchema } = await import("../../api/users.schema.js");
      if (options.token === undefined) {
        // No token of ours is sent while signing in: the old one may be the reason for it.
        const c = await createClient({ url: context.globals().server, token: "" });
        const session = await deviceLogin({
          client: c,
          instruct: (text) => process.stderr.write(`${text}\n`),
        });
        const path = await writeCredentials({ url: c.url, token: session.token });
        context.emit(
          {
            user: session.user,
            groups: session.groups,
            server: c.url,
            expiresAt: session.expiresAt,
            saved: path,
          },
          () =>
            `logged in to ${c.url} as ${safeText(session.user)} (groups: ${safeText(session.groups.join(", ")) || "-"}) until ${session.expiresAt}; saved to ${path}`,
        );
        return;
      }
      const c = await createClient({ url: context.globals().server, token: options.token });
      const me = await c.get("/v1/whoami", principalViewSchema);
      const path = await writeCredentials({ url: c.url, token: options.token });
      context.emit(
        { user: me.name, server: c.url, saved: path },
        () => `logged in to ${c.url} as ${safeText(me.name)}; saved to ${path}`,
      );
    });

  program
    .command("logout")
    .description("revoke the token in use on the server and forget the saved login")
    .action(async () => {
      const { logoutReply } = await import("../../api/auth.schema.js");
      const c = await context.client();
      let revoked = false;
      if (c.hasToken) {
        try {
          await c.post("/v1/auth/logout", {}, logoutReply);
          revoked = true;
        } catch (error) {
          // A token that no longer works is as good as revoked; anything else is worth saying.
          if (!(error instanceof ApiError && error.code === "UNAUTHENTICATED")) throw error;
        }
      }
      const forgotten = await deleteCredentials();
      context.emit({ server: c.url, revoked, forgotten }, () =>
        [
          revoked ? `revoked the token on ${c.url}` : "no working token to revoke",
          forgotten ? "forgot the saved login" : "no saved login",
        ].join("; "),
      );
    });

  program
    .command("whoami")
    .description("show who the server thinks you are")
    .action(async () => {
      const { principalViewSchema } = await import("../../api/users.schema.js");
      const me = await (await context.client()).get("/v1/whoami", principalViewSchema);
      context.emit(
        me,
        () =>
          `${safeText(me.name)}  groups: ${safeText(me.groups.join(", ")) || "-"}${me.isAdmin ? "  (administrator)" : ""}${me.isAuditor ? "  (auditor)" : ""}`,
      );
    });
}

import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import { type CommandContext, targetBody } from "../context.js";
import { safeText, table } from "../format.js";
import { describeGrant, describeRequest } from "../render.js";

/** `request`, `requests`, `show`, `approve`, `cancel`, `deny`, `activate`: a request's life. */
export function registerRequestCommands(program: Command, context: CommandContext) {
  const { emit } = context;

  program
    .command("request")
    .description("ask for elevated access to a zone or resource")
    .argument("<target>", "zone or resource name")
    .requiredOption("--role <role>", "the role to elevate to")
    .option("--for <duration>", "how long, e.g. 30m (default: the policy's default)")
    .requiredOption("--reason <text>", "why you need it")
    .option("--ticket <id>", "incident or change ticket")
    .option("--activate", "when the request is approved at once (auto-approved), activate it too")
    .action(
      async (
        target: string,
        options: { role: string; for?: string; reason: string; ticket?: string; activate?: boolean },
      ) => {
        const { requestViewSchema } = await import("../../api/requests.schema.js");
        const c = await context.client();
        const body = {
          ...(await targetBody(c, target)),
          role: options.role,
          duration: options.for,
          reason: options.reason,
          ticket: options.ticket,
        };
        const r = await c.post("/v1/requests", body, requestViewSchema);
        if (!options.activate) return emit(r, () => describeRequest(r));
        // One command from "I need in" to a grant: a responder's path saves a program start and
        // a copy-paste. A request still waiting for approvals is shown as it is, with no grant.
        if (r.state !== "approved")
          return emit({ request: r, grant: null }, () =>
            [describeRequest(r), `  not activated: the request is ${r.state}`].join("\n"),
          );
        const { grantViewSchema } = await import("../../api/grants.schema.js");
        const g = await c.post(`/v1/requests/${encodeURIComponent(r.id)}/activate`, {}, grantViewSchema);
        // The request is shown as created (approved); the grant is what activation returned.
        emit({ request: r, grant: g }, () =>
          [
            `${safeText(r.id)}  APPROVED${r.autoApproved ? " (auto-approved)" : ""} and activated`,
            describeGrant(g),
          ].join("\n"),
        );
      },
    );

  program
    .command("requests")
    .description("list requests you may see")
    .addOption(
      new Option("--state <state>", "only this state").choices([
        "pending",
        "approved",
        "active",
        "denied",
        "cancelled",
        "lapsed",
        "expired",
        "revoked",
      ]),
    )
    .option("--mine", "only your own")
    .action(async (options: { state?: string; mine?: boolean }) => {
      const { requestsReply } = await import("../../api/requests.schema.js");
      const query = new URLSearchParams();
      if (options.state) query.set("state", options.state);
      if (options.mine) query.set("mine", "true");
      const { requests } = await (await context.client()).get(`/v1/requests?${query}`, requestsReply);
      emit({ requests }, () =>
        table(
          requests.map((r) => [r.id, r.state, r.requester, r.resource ?? r.zone, r.role, r.duration, r.next]),
          ["ID", "STATE", "REQUESTER", "TARGET", "ROLE", "FOR", "NEXT"],
        ),
      );
    });

  program
    .command("show")
    .description("show one request or grant")
    .argument("<id>", "request id (req_…) or grant id (grt_…)")
    .action(async (id: string) => {
      const { requestViewSchema } = await import("../../api/requests.schema.js");
      const { grantViewSchema } = await import("../../api/grants.schema.js");
      const c = await context.client();
      if (id.startsWith("grt_")) {
        const g = await c.get(`/v1/grants/${encodeURIComponent(id)}`, grantViewSchema);
        emit(g, () => describeGrant(g));
      } else {
        const r = await c.get(`/v1/requests/${encodeURIComponent(id)}`, requestViewSchema);
        emit(r, () => describeRequest(r));
      }
    });

  for (const [name, description] of [
    ["approve", "approve a pending request"],
    ["cancel", "cancel your pending or approved request"],
  ] as const) {
    const command = program.command(name).description(description).argument("<id>", "request id");
    if (name === "approve") {
      command.option("--comment <text>", "a comment for the record");
      command.option("--totp <code>", "a current TOTP code, when the policy asks approvers for a factor");
    }
    command.action(async (id: string, options: { comment?: string; totp?: string }) => {
      const { requestViewSchema } = await import("../../api/requests.schema.js");
      const body =
        name === "approve"
          ? { comment: options.comment, ...(options.totp ? { totp: options.totp } : {}) }
          : {};
      const r = await (await context.client()).post(
        `/v1/requests/${encodeURIComponent(id)}/${name}`,
        body,
        requestViewSchema,
      );
      emit(r, () => describeRequest(r));
    });
  }

  program
    .command("deny")
    .description("deny a pending request (final)")
    .argument("<id>", "request id")
    .requiredOption("--reason <text>", "why")
    .action(async (id: string, options: { reason: string }) => {
      const { requestViewSchema } = await import("../../api/requests.schema.js");
      const r = await (await context.client()).post(
        `/v1/requests/${encodeURIComponent(id)}/deny`,
        { reason: options.reason },
        requestViewSchema,
      );
      emit(r, () => describeRequest(r));
    });

  program
    .command("activate")
    .description("activate your approved request: the grant starts now")
    .argument("<id>", "request id")
    .option("--totp <code>", "a current TOTP code, when the policy asks for a factor")
    .option("--ssh-key <file>", "your SSH public key, for resources that issue SSH certificates")
    .action(async (id: string, options: { totp?: string; sshKey?: string }) => {
      const { grantViewSchema } = await import("../../api/grants.schema.js");
      const body: Record<string, string> = {};
      if (options.totp) body.totp = options.totp;
      if (options.sshKey) body.publicKey = (await readFile(options.sshKey, "utf8")).trim();
      const g = await (await context.client()).post(
        `/v1/requests/${encodeURIComponent(id)}/activate`,
        body,
        grantViewSchema,
      );
      emit(g, () => describeGrant(g));
    });
}

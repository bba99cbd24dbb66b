#!/usr/bin/env node
import { readFile } from "node:fs/promises";
import { Command, CommanderError, Option } from "commander";
import { registerAgentCommand } from "../agent/agent.cli.js";
import { isFirebreakError } from "../errors.js";
import {
  blastRadiusFor,
  describeBlastRadius,
  registerSegmentationCommands,
} from "../segmentation/segmentation.cli.js";
import { VERSION } from "../version.js";
import { registerAuditStreamCommands } from "./audit-stream.js";
import { ApiError, createClient, deleteCredentials, writeCredentials } from "./client.js";
import { safeLines, safeText, table, timeLeft } from "./format.js";
import { deviceLogin } from "./login.js";

/** A refusal or failure: exit code 1 with a clear message (and the error shape under --json). */
class CliFailure extends Error {
  constructor(
    message: string,
    readonly code = "FAILED",
    readonly details?: unknown,
  ) {
    super(message);
  }
}

interface Globals {
  json?: boolean;
  server?: string;
}

function out(value: unknown) {
  process.stdout.write(`${typeof value === "string" ? value : JSON.stringify(value, null, 2)}\n`);
}

type RequestView = {
  id: string;
  state: string;
  requester: string;
  zone: string;
  resource: string | null;
  role: string;
  duration: string;
  reason: string;
  ticket: string | null;
  policy: string | null;
  createdAt: string;
  next: string;
  grantId: string | null;
  approvals: { approver: string; decision: string; comment: string | null }[];
  autoApproved: boolean;
  sourceZone: string | null;
};
type GrantView = {
  id: string;
  requestId: string;
  user: string;
  zone: string;
  resource: string | null;
  role: string;
  state: string;
  endsAt: string;
  secondsLeft: number;
  closeReason: string | null;
  revocation: { status: string; attempts: number };
  review: {
    state: string;
    dueAt: string | null;
    overdue: boolean;
    reviewer: string | null;
    notes: string | null;
  };
  effects: { resource: string; connector: string; state: string; address?: string | null }[];
};

function targetOf(view: { zone: string; resource: string | null }): string {
  return view.resource
    ? `${safeText(view.resource)} (zone ${safeText(view.zone)})`
    : `zone ${safeText(view.zone)}`;
}

// Every value from the server that a person chose (names, reasons, tickets, comments, notes) goes
// through safeText, so none can end a line or reorder one and forge what follows it.
function describeRequest(r: RequestView): string {
  const lines = [
    `${safeText(r.id)}  ${safeText(r.state.toUpperCase())}`,
    `  ${safeText(r.requester)} asks for role '${safeText(r.role)}' on ${targetOf(r)} for ${safeText(r.duration)}`,
    `  reason: ${safeText(r.reason)}${r.ticket ? `   ticket: ${safeText(r.ticket)}` : ""}`,
    `  policy: ${safeText(r.policy ?? "-")}${r.autoApproved ? " (auto-approved)" : ""}${r.sourceZone ? `   from zone: ${safeText(r.sourceZone)}` : ""}`,
  ];
  for (const a of r.approvals)
    lines.push(
      `  ${a.decision === "approve" ? "approved" : "denied"} by ${safeText(a.approver)}${a.comment ? `: ${safeText(a.comment)}` : ""}`,
    );
  if (r.grantId) lines.push(`  grant: ${safeText(r.grantId)}`);
  lines.push(`  next: ${safeText(r.next)}`);
  return lines.join("\n");
}

function describeGrant(g: GrantView): string {
  const active = g.state === "active";
  const lines = [
    `${safeText(g.id)}  ${safeText(g.state.toUpperCase())}${active ? `  ${timeLeft(g.secondsLeft)} left (until ${safeText(g.endsAt)})` : ""}`,
    `  ${safeText(g.user)} ${active ? "holds" : "held"} role '${safeText(g.role)}' on ${targetOf(g)}   request: ${safeText(g.requestId)}`,
  ];
  if (!active)
    lines.push(`  closed: ${safeText(g.closeReason)}   revocation: ${safeText(g.revocation.status)}`);
  for (const e of g.effects)
    lines.push(
      `  ${safeText(e.resource)} (${safeText(e.connector)}): ${safeText(e.state)}${e.address ? ` -> ${safeText(e.address)}` : ""}`,
    );
  // How to use what was granted: the credential (shown once when it holds a secret) and connect.
  const logins = g.effects.filter((e) => !e.connector.startsWith("path:"));
  if (active && logins.length > 0)
    lines.push(
      `  use: firebreak connect ${safeText(g.id)}   (or: firebreak credential ${safeText(g.id)}, which shows a secret once)`,
    );
  if (g.review.state !== "none") {
    lines.push(
      `  review: ${safeText(g.review.state)}${g.review.dueAt && g.review.state === "due" ? ` by ${safeText(g.review.dueAt)}${g.review.overdue ? " (OVERDUE)" : ""}` : ""}${g.review.reviewer ? ` by ${safeText(g.review.reviewer)}: ${safeText(g.review.notes)}` : ""}`,
    );
  }
  return lines.join("\n");
}

async function client(globals: Globals) {
  return createClient({ url: globals.server });
}

/** Resolves `<zone|resource>` into the field the API expects, using the server's zone list. */
async function targetBody(c: Awaited<ReturnType<typeof client>>, target: string) {
  const { zones } = await c.get<{ zones: { name: string; resources: { name: string }[] }[] }>("/v1/zones");
  if (zones.some((z) => z.name === target)) return { zone: target };
  if (zones.some((z) => z.resources.some((r) => r.name === target))) return { resource: target };
  throw new CliFailure(
    `'${safeText(target.slice(0, 100))}' is neither a zone nor a resource (see 'firebreak zones')`,
    "NOT_FOUND",
  );
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name("firebreak")
    .description("Break-glass access for micro-segmented infrastructure")
    .version(VERSION)
    .option("--json", "print machine-readable JSON")
    .option(
      "--server <url>",
      "the Firebreak server (default: $FIREBREAK_URL, the login file, or http://127.0.0.1:8080)",
    )
    .exitOverride() // before any .command(): subcommands copy it when created, so their usage errors exit 2
    .showHelpAfterError("(add --help for usage and examples)")
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const globals = () => program.opts<Globals>();
  const emit = (json: unknown, human: () => string) => out(globals().json ? json : human());
  const segmentationContext = {
    emit,
    client: () => client(globals()),
    fail: (message: string, code: string) => new CliFailure(message, code),
  };

  program
    .command("serve")
    .description("run the Firebreak server")
    .option("--config <file>", "configuration file", "firebreak.yaml")
    .option("--db <url>", "database: sqlite:PATH or postgres://…", "sqlite:./data/firebreak.db")
    .option("--listen <address>", "host:port or :port to listen on", ":8080")
    .option(
      "--master-key-file <file>",
      "the key that encrypts stored secrets (or set FIREBREAK_MASTER_KEY)",
      "./data/master.key",
    )
    .option("--production", "refuse to start without a provided master key (no key file is generated)")
    .addOption(
      new Option(
        "--enforcer <kind>",
        "network paths: recorded only (log), by agents, or by this host's nftables",
      )
        .choices(["log", "agent", "nftables"])
        .default("log"),
    )
    .option("--netns <name>", "with --enforcer nftables: enforce inside this network namespace")
    .action(
      async (options: {
        config: string;
        db: string;
        listen: string;
        masterKeyFile: string;
        production?: boolean;
        enforcer: "log" | "agent" | "nftables";
        netns?: string;
      }) => {
        const { runServe } = await import("./serve.js");
        await runServe({ ...options, json: globals().json === true });
      },
    );

  program
    .command("validate")
    .description("check a configuration file and report every error with file, line and column")
    .argument("[file]", "configuration file", "firebreak.yaml")
    .action(async (file: string) => {
      const { formatIssue, loadConfigFile } = await import("../config/load.js");
      const result = await loadConfigFile(file);
      if (!result.ok) {
        if (globals().json) out({ ok: false, errors: result.errors });
        else
          process.stderr.write(
            `${result.errors.map((issue) => safeText(formatIssue(issue))).join("\n")}\n${result.errors.length} error(s) in ${safeText(file)}\n`,
          );
        process.exitCode = 1;
        return;
      }
      emit({ ok: true, digest: result.digest, warnings: result.warnings }, () =>
        [...result.warnings.map((w) => `warning: ${safeText(formatIssue(w))}`), `${safeText(file)}: OK`].join(
          "\n",
        ),
      );
    });

  program
    .command("schema")
    .description("print the JSON Schema of firebreak.yaml")
    .action(async () => out((await import("../config/json-schema.js")).configJsonSchema()));

  program
    .command("login")
    .description(
      "sign in through the identity provider (device code in a browser), or save a token with --token",
    )
    .option("--token <token>", "an API token (from 'firebreak users add' or an administrator) instead")
    .action(async (options: { token?: string }) => {
      if (options.token === undefined) {
        // No token of ours is sent while signing in: the old one may be the reason for it.
        const c = await createClient({ url: globals().server, token: "" });
        const session = await deviceLogin({
          client: c,
          instruct: (text) => process.stderr.write(`${text}\n`),
        });
        const path = await writeCredentials({ url: c.url, token: session.token });
        emit(
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
      const c = await createClient({ url: globals().server, token: options.token });
      const me = await c.get<{ name: string; groups: string[] }>("/v1/whoami");
      const path = await writeCredentials({ url: c.url, token: options.token });
      emit(
        { user: me.name, server: c.url, saved: path },
        () => `logged in to ${c.url} as ${safeText(me.name)}; saved to ${path}`,
      );
    });

  program
    .command("logout")
    .description("revoke the token in use on the server and forget the saved login")
    .action(async () => {
      const c = await client(globals());
      let revoked = false;
      if (c.hasToken) {
        try {
          await c.post("/v1/auth/logout", {});
          revoked = true;
        } catch (error) {
          // A token that no longer works is as good as revoked; anything else is worth saying.
          if (!(error instanceof ApiError && error.code === "UNAUTHENTICATED")) throw error;
        }
      }
      const forgotten = await deleteCredentials();
      emit({ server: c.url, revoked, forgotten }, () =>
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
      const me = await (await client(globals())).get<{
        name: string;
        groups: string[];
        isAdmin: boolean;
        isAuditor: boolean;
      }>("/v1/whoami");
      emit(
        me,
        () =>
          `${safeText(me.name)}  groups: ${safeText(me.groups.join(", ")) || "-"}${me.isAdmin ? "  (administrator)" : ""}${me.isAuditor ? "  (auditor)" : ""}`,
      );
    });

  program
    .command("request")
    .description("ask for elevated access to a zone or resource")
    .argument("<target>", "zone or resource name")
    .requiredOption("--role <role>", "the role to elevate to")
    .option("--for <duration>", "how long, e.g. 30m (default: the policy's default)")
    .requiredOption("--reason <text>", "why you need it")
    .option("--ticket <id>", "incident or change ticket")
    .action(
      async (target: string, options: { role: string; for?: string; reason: string; ticket?: string }) => {
        const c = await client(globals());
        const body = {
          ...(await targetBody(c, target)),
          role: options.role,
          duration: options.for,
          reason: options.reason,
          ticket: options.ticket,
        };
        const r = await c.post<RequestView>("/v1/requests", body);
        emit(r, () => describeRequest(r));
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
      const query = new URLSearchParams();
      if (options.state) query.set("state", options.state);
      if (options.mine) query.set("mine", "true");
      const { requests } = await (await client(globals())).get<{ requests: RequestView[] }>(
        `/v1/requests?${query}`,
      );
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
      const c = await client(globals());
      if (id.startsWith("grt_")) {
        const g = await c.get<GrantView>(`/v1/grants/${encodeURIComponent(id)}`);
        emit(g, () => describeGrant(g));
      } else {
        const r = await c.get<RequestView>(`/v1/requests/${encodeURIComponent(id)}`);
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
      const body =
        name === "approve"
          ? { comment: options.comment, ...(options.totp ? { totp: options.totp } : {}) }
          : {};
      const r = await (await client(globals())).post<RequestView>(
        `/v1/requests/${encodeURIComponent(id)}/${name}`,
        body,
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
      const r = await (await client(globals())).post<RequestView>(
        `/v1/requests/${encodeURIComponent(id)}/deny`,
        { reason: options.reason },
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
      const body: Record<string, string> = {};
      if (options.totp) body.totp = options.totp;
      if (options.sshKey) body.publicKey = (await readFile(options.sshKey, "utf8")).trim();
      const g = await (await client(globals())).post<GrantView>(
        `/v1/requests/${encodeURIComponent(id)}/activate`,
        body,
      );
      emit(g, () => describeGrant(g));
    });

  program
    .command("credential")
    .description("show your grant's credential, once (a second fetch is refused)")
    .argument("<grant-id>", "grant id")
    .action(async (id: string) => {
      const result = await (await client(globals())).post<CredentialReply>(
        `/v1/grants/${encodeURIComponent(id)}/credential`,
        {},
      );
      emit(
        result,
        () =>
          result.credentials
            .map((c) =>
              [
                `${safeText(c.resource)} (${safeText(c.connector)})`,
                ...Object.entries(c.detail).map(
                  ([k, v]) => `  ${safeText(k)}: ${safeText(typeof v === "string" ? v : JSON.stringify(v))}`,
                ),
                c.secret === null
                  ? "  (no secret: this part can be shown again)"
                  : `  secret (shown once): ${c.secret}`,
              ].join("\n"),
            )
            .join("\n") || "(this grant issued no credentials)",
      );
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
      const result = await (await client(globals())).post<CredentialReply>(
        `/v1/grants/${encodeURIComponent(id)}/credential`,
        {},
      );
      const { connectWith } = await import("./connect.js");
      const code = await connectWith(result.credentials, options);
      process.exitCode = code;
    });

  program
    .command("rotate-master-key")
    .description("re-encrypt every stored secret under a new master key (run on the server host)")
    .option("--db <url>", "database: sqlite:PATH or postgres://…", "sqlite:./data/firebreak.db")
    .option(
      "--master-key-file <file>",
      "the key file (ignored when FIREBREAK_MASTER_KEY is set)",
      "./data/master.key",
    )
    .action(async (options: { db: string; masterKeyFile: string }) => {
      const { rotateMasterKey } = await import("../secrets/rotate.js");
      const result = await rotateMasterKey({
        databaseUrl: options.db,
        keyFile: options.masterKeyFile,
        env: process.env,
      });
      emit(result, () =>
        result.newKey
          ? `re-encrypted ${result.resealed} secrets under key ${result.keyId}.\nSet FIREBREAK_MASTER_KEY to this new key (shown once) and the old one in FIREBREAK_MASTER_KEY_PREVIOUS until restarted:\n${result.newKey}`
          : `re-encrypted ${result.resealed} secrets under key ${result.keyId}; ${options.masterKeyFile} now holds it`,
      );
    });

  program
    .command("grants")
    .description("list grants you may see")
    .option("--active", "only active grants")
    .option("--mine", "only your own")
    .action(async (options: { active?: boolean; mine?: boolean }) => {
      const query = new URLSearchParams();
      if (options.active) query.set("active", "true");
      if (options.mine) query.set("mine", "true");
      const { grants } = await (await client(globals())).get<{ grants: GrantView[] }>(`/v1/grants?${query}`);
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
      const g = await (await client(globals())).post<GrantView>(
        `/v1/grants/${encodeURIComponent(id)}/revoke`,
        { reason: options.reason },
      );
      emit(g, () => describeGrant(g));
    });

  program
    .command("reviews")
    .description("list break-glass uses awaiting review")
    .option("--due", "all that are due (the default)")
    .option("--overdue", "only overdue ones")
    .action(async (options: { overdue?: boolean }) => {
      const query = options.overdue ? "?overdue=true" : "";
      const { reviews } = await (await client(globals())).get<{ reviews: GrantView[] }>(
        `/v1/reviews${query}`,
      );
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
      if (options.accept === options.flag)
        throw new CommanderError(2, "usage", "give exactly one of --accept or --flag");
      const g = await (await client(globals())).post<GrantView>(
        `/v1/grants/${encodeURIComponent(id)}/review`,
        {
          verdict: options.accept ? "accept" : "flag",
          notes: options.notes,
        },
      );
      emit(g, () => describeGrant(g));
    });

  program
    .command("explain")
    .description("why a user may or may not take a role, and what it would take")
    .argument("<user>", "user name")
    .argument("<target>", "zone or resource name")
    .requiredOption("--role <role>", "the role")
    .option("--for <duration>", "requested duration")
    .option("--reason <text>", "justification to test", "")
    .option("--ticket <id>", "ticket to test")
    .option("--source-zone <zone>", "the zone the request would come from")
    .option(
      "--incident <severity>",
      "with --config: assume an incident of this severity (1 worst to 5) is open in the zone",
    )
    .option("--config <file>", "explain offline from this configuration file (no server)")
    .option("--blast-radius", "also show how the grant would change what its source zone reaches")
    .action(
      async (
        user: string,
        target: string,
        options: {
          role: string;
          for?: string;
          reason: string;
          ticket?: string;
          sourceZone?: string;
          incident?: string;
          config?: string;
          blastRadius?: boolean;
        },
      ) => {
        let result: { user: string; explanation: ExplanationShape };
        const severity = options.incident === undefined ? undefined : Number(options.incident);
        if (severity !== undefined && !(Number.isInteger(severity) && severity >= 1 && severity <= 5))
          throw new CommanderError(2, "usage", "--incident takes a severity from 1 (worst) to 5");
        if (severity !== undefined && !options.config)
          throw new CommanderError(
            2,
            "usage",
            "--incident simulates a signal offline: give --config FILE (a server uses its real incidents)",
          );
        if (options.config) {
          const { formatIssue, loadConfigFile } = await import("../config/load.js");
          const { compilePolicy, explain } = await import("../policy/engine.js");
          const { NO_INCIDENT } = await import("../signals/signal.service.js");
          const loaded = await loadConfigFile(options.config);
          if (!loaded.ok) throw new CliFailure(loaded.errors.map(formatIssue).join("\n"), "CONFIG_INVALID");
          const policy = compilePolicy(loaded.config);
          const groups = loaded.config.directory?.users[user]?.groups ?? [];
          const isResource = Object.hasOwn(loaded.config.resources ?? {}, target);
          const { parseDuration } = await import("../config/duration.js");
          const explanation = explain(policy, {
            principal: { name: user, groups },
            target: isResource ? { resource: target } : { zone: target },
            role: options.role,
            durationMs: options.for ? parseDuration(options.for) : undefined,
            reason: options.reason,
            ticket: options.ticket ?? null,
            sourceZone: options.sourceZone ?? null,
            signals: {
              incident:
                severity === undefined
                  ? NO_INCIDENT
                  : {
                      open: true,
                      severity,
                      id: "SIMULATED",
                      title: "simulated by --incident",
                      ageSeconds: 0,
                    },
              sourceZone: options.sourceZone ?? null,
            },
            blockingOverdueReviews: 0,
            now: Date.now(),
          });
          result = { user, explanation: explanation as unknown as ExplanationShape };
        } else {
          const c = await client(globals());
          result = await c.post("/v1/decisions", {
            user,
            ...(await targetBody(c, target)),
            role: options.role,
            duration: options.for,
            reason: options.reason,
            ticket: options.ticket,
            ...(options.sourceZone ? { sourceZone: options.sourceZone } : {}),
          });
        }
        const blast = options.blastRadius
          ? await blastRadiusFor(segmentationContext, { ...options, target })
          : undefined;
        emit(blast ? { ...result, blastRadius: blast } : result, () =>
          [
            describeExplanation(result.user, target, options.role, result.explanation),
            ...(blast ? [describeBlastRadius(blast)] : []),
          ].join("\n"),
        );
        // A gate in CI: a decision that refuses exits 1 (ALLOW and NEEDS APPROVAL exit 0).
        if (result.explanation.decision.outcome === "deny") process.exitCode = 1;
      },
    );

  program
    .command("zones")
    .description("list zones with their resources, policies and open incidents")
    .action(async () => {
      const { zones } = await (await client(globals())).get<{
        zones: {
          name: string;
          enforcement: string;
          resources: { name: string; type: string }[];
          policies: { name: string }[];
          openIncidents: { severity: number; title: string }[];
        }[];
      }>("/v1/zones");
      emit({ zones }, () =>
        table(
          zones.map((z) => [
            z.name,
            z.enforcement,
            z.resources.map((r) => `${r.name}(${r.type})`).join(", ") || "-",
            z.policies.map((p) => p.name).join(", ") || "-",
            z.openIncidents.map((i) => `sev${i.severity}: ${i.title}`).join("; ") || "-",
          ]),
          ["ZONE", "MODE", "RESOURCES", "BREAK-GLASS POLICIES", "OPEN INCIDENTS"],
        ),
      );
    });

  const users = program.command("users").description("manage local users and tokens (administrators)");
  users
    .command("add")
    .description("create a local user and print its token, once")
    .argument("<name>", "user name")
    .option("--groups <list>", "comma-separated groups", "")
    .action(async (name: string, options: { groups: string }) => {
      const groups = options.groups
        .split(",")
        .map((g) => g.trim())
        .filter(Boolean);
      const created = await (await client(globals())).post<{ name: string; groups: string[]; token: string }>(
        "/v1/users",
        { name, groups },
      );
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
      const issued = await (await client(globals())).post<{ name: string; token: string }>(
        `/v1/users/${encodeURIComponent(name)}/tokens`,
        {},
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
      const result = await (await client(globals())).post<{ user: string; revoked: number }>(
        `/v1/users/${encodeURIComponent(name)}/tokens/revoke`,
        {},
      );
      emit(result, () => `revoked ${result.revoked} token(s) of ${safeText(result.user)}`);
    });
  users
    .command("list")
    .description("list users and their groups")
    .action(async () => {
      const { users: list } = await (await client(globals())).get<{
        users: { name: string; groups: string[]; isAdmin: boolean }[];
      }>("/v1/users");
      emit({ users: list }, () =>
        table(
          list.map((u) => [u.name, u.groups.join(",") || "-", u.isAdmin ? "admin" : ""]),
          ["USER", "GROUPS", ""],
        ),
      );
    });

  const audit = program.command("audit").description("read and verify the audit chain");
  registerAuditStreamCommands(audit, segmentationContext);
  audit
    .command("tail")
    .description("show the newest events")
    .option("-n, --lines <n>", "how many", "20")
    .option("-f, --follow", "keep printing new events as they are committed")
    .action(async (options: { lines: string; follow?: boolean }) => {
      const c = await client(globals());
      const n = Math.min(Math.max(Number.parseInt(options.lines, 10) || 20, 1), 1000);
      const { events } = await c.get<{ events: AuditEventShape[] }>(`/v1/audit?order=desc&limit=${n}`);
      const ordered = events.reverse();
      printEventHeader(globals().json === true);
      for (const event of ordered) printEvent(event, globals().json === true);
      if (!options.follow) return;
      const after = ordered.at(-1)?.seq ?? 0;
      const stream = await c.stream(`/v1/events?afterSeq=${after}`);
      const decoder = new TextDecoder();
      let buffer = "";
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let split = buffer.indexOf("\n\n");
        while (split >= 0) {
          const frame = buffer.slice(0, split);
          buffer = buffer.slice(split + 2);
          const data = frame.split("\n").find((line) => line.startsWith("data: "));
          if (data) printEvent(JSON.parse(data.slice(6)) as AuditEventShape, globals().json === true);
          split = buffer.indexOf("\n\n");
        }
      }
    });
  audit
    .command("export")
    .description("write every event as JSON lines to standard output")
    .action(async () => {
      const stream = await (await client(globals())).stream("/v1/audit/export");
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
    });

  const config = program.command("config").description("the running configuration");
  config
    .command("reload")
    .description("ask the server to re-read its configuration file (administrators)")
    .action(async () => {
      const result = await (await client(globals())).post<{
        changed: boolean;
        digest: string;
        summary: ConfigChangeShape;
      }>("/v1/config/reload", {});
      emit(result, () =>
        result.changed
          ? [
              `applied configuration ${safeText(result.digest.slice(0, 12))}`,
              ...describeConfigChange(result.summary),
            ].join("\n")
          : `unchanged: configuration ${safeText(result.digest.slice(0, 12))} is already running`,
      );
    });

  program
    .command("ssh-ca")
    .description("print a zone's SSH user CA public key and the sshd_config lines its hosts need")
    .argument("<zone>", "the zone")
    .action(async (zone: string) => {
      const result = await (await client(globals())).get<{
        zone: string;
        publicKey: string;
        krlUrl: string;
        sshdConfig: string[];
      }>(`/v1/zones/${encodeURIComponent(zone)}/ssh-ca`);
      emit(result, () =>
        [
          result.publicKey,
          "",
          ...result.sshdConfig,
          "",
          `# Revocation list: ${result.krlUrl || `/v1/zones/${result.zone}/ssh-krl`} (fetch it to the RevokedKeys path every minute)`,
        ].join("\n"),
      );
    });

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
      if (kind === "webauthn")
        throw new CliFailure(
          "WebAuthn keys are registered in the console (a browser talks to the key)",
          "USAGE",
        );
      if (kind !== "totp") throw new CommanderError(2, "usage", "the factor kind is totp or webauthn");
      const result = await (await client(globals())).post<{
        factorId: string;
        secret: string;
        uri: string;
        qrTerminal: string;
        authorizedBy: string;
      }>("/v1/mfa/totp/enroll", {
        ...(options.totp ? { totp: options.totp } : {}),
        ...(options.enrolmentCode ? { enrolmentCode: options.enrolmentCode } : {}),
      });
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
      const result = await (await client(globals())).post<{ kind: string; at: string }>(
        "/v1/mfa/totp/verify",
        { code: options.code },
      );
      emit(result, () => `${result.kind} accepted at ${result.at}`);
    });
  mfa
    .command("list")
    .description("your enrolled factors")
    .action(async () => {
      const { factors } = await (await client(globals())).get<{
        factors: {
          id: string;
          kind: string;
          label: string;
          confirmed: boolean;
          settlesAt: string | null;
          authorizedBy: string;
        }[];
      }>("/v1/mfa/factors");
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
      const result = await (await client(globals())).post<{
        user: string;
        removed: number;
        enrolmentCode: string;
        expiresAt: string;
      }>(`/v1/mfa/users/${encodeURIComponent(user)}/reset`, { reason: options.reason });
      emit(
        result,
        () =>
          `Removed ${result.removed} factor(s) of ${result.user}.\nEnrolment code (once, valid until ${result.expiresAt}): ${result.enrolmentCode}\nGive it to ${result.user} in person or by phone: firebreak mfa enroll totp --enrolment-code <code>`,
      );
    });

  const incident = program
    .command("incident")
    .description("declare or resolve an incident by hand (administrators)");
  incident
    .command("open")
    .argument("<zone>", "the zone affected")
    .requiredOption("--id <id>", "an identifier for the incident, e.g. INC-4711")
    .option("--severity <n>", "1 (worst) to 5", "3")
    .option("--title <text>", "what is happening", "")
    .action(async (zone: string, options: { id: string; severity: string; title: string }) => {
      const result = await (await client(globals())).post("/v1/incidents", {
        id: options.id,
        zone,
        severity: Number(options.severity),
        title: options.title,
        status: "open",
      });
      emit(
        result,
        () =>
          `incident ${safeText(options.id)} open in ${safeText(zone)} (severity ${safeText(options.severity)})`,
      );
    });
  incident
    .command("resolve")
    .argument("<zone>", "the zone affected")
    .requiredOption("--id <id>", "the incident's identifier")
    .action(async (zone: string, options: { id: string }) => {
      const result = await (await client(globals())).post("/v1/incidents", {
        id: options.id,
        zone,
        status: "resolved",
      });
      emit(result, () => `incident ${safeText(options.id)} resolved in ${safeText(zone)}`);
    });

  program
    .command("demo")
    .description("play the 2 a.m. story against a running server (needs an administrator token)")
    .option("--step-delay <ms>", "pause between steps", "700")
    .action(async (options: { stepDelay: string }) => {
      const { runDemo } = await import("./demo.js");
      await runDemo({
        client: await client(globals()),
        json: globals().json === true,
        stepDelayMs: Number(options.stepDelay) || 0,
      });
    });

  registerSegmentationCommands(program, segmentationContext);
  registerAgentCommand(program, { server: () => globals().server, fail: segmentationContext.fail });

  program.addHelpText("after", HELP_EXAMPLES);
  checkRequiredOptionsAfterUnknownOnes(program);
  return program;
}

const HELP_EXAMPLES = `
Examples:
  firebreak request payments-db --role admin --for 30m --reason "payments-db refuses writes" --ticket INC-4711
  firebreak requests --state pending            what waits for your approval
  firebreak approve req_... --comment "go"
  firebreak activate req_...                    the grant starts now
  firebreak connect grt_...                     psql / mysql / ssh with the credential, never printed
  firebreak explain alice payments-db --role admin --config firebreak.yaml --incident 2

Environment: FIREBREAK_URL (the server), FIREBREAK_TOKEN (your token; or 'firebreak login').
Exit codes: 0 success, 1 refused or failed (explain: DENY), 2 usage error.`;

/**
 * Commander checks required options before unknown ones, so a typo (\`--rol admin\`) was reported
 * as a missing \`--role\`. Required options are checked here instead, after commander has refused
 * unknown options (its preAction hooks run after that check).
 */
function checkRequiredOptionsAfterUnknownOnes(root: Command) {
  const required = new WeakMap<Command, Option[]>();
  const walk = (command: Command) => {
    const mandatory = command.options.filter((option) => option.mandatory);
    for (const option of mandatory) option.mandatory = false;
    if (mandatory.length) required.set(command, mandatory);
    for (const sub of command.commands) walk(sub);
  };
  walk(root);
  root.hook("preAction", (_root, action) => {
    for (const option of required.get(action) ?? []) {
      if (action.getOptionValue(option.attributeName()) === undefined)
        action.error(`error: required option '${option.flags}' not specified`, {
          code: "commander.missingMandatoryOptionValue",
          exitCode: 2,
        });
    }
  });
}

/** The flag a server field comes from, so a refusal speaks of what the user typed. */
const FLAG_FOR_FIELD: Record<string, string> = {
  duration: "--for",
  reason: "--reason",
  ticket: "--ticket",
  role: "--role",
  comment: "--comment",
  notes: "--notes",
  publicKey: "--ssh-key",
  totp: "--totp",
  code: "--code",
  severity: "--severity",
  title: "--title",
  groups: "--groups",
  sourceZone: "--source-zone",
  zone: "<target>",
  resource: "<target>",
  user: "<user>",
  id: "<id>",
  name: "<name>",
};

/** A server's validation refusal in the words of the command line: flags, not body fields. */
function inCommandLineTerms(message: string, details: unknown): { message: string; details: unknown } {
  const where = /^the (body|path|query) is not valid$/.exec(message)?.[1];
  const issues = (details as { issues?: { path: string; message: string }[] } | undefined)?.issues;
  if (!where || !issues) return { message, details };
  return {
    message: where === "path" ? "an argument is not valid" : "an option's value is not valid",
    details: {
      ...(details as object),
      issues: issues.map((issue) => {
        const [field] = issue.path.split(".");
        return { ...issue, path: (field && FLAG_FOR_FIELD[field]) ?? issue.path };
      }),
    },
  };
}

type CredentialReply = {
  credentials: {
    resource: string;
    connector: string;
    detail: Record<string, unknown>;
    secret: string | null;
  }[];
};

type AuditEventShape = {
  seq: number;
  time: string;
  type: string;
  actor: string;
  zone: string | null;
  subject: string | null;
  context: Record<string, unknown>;
};
type ExplanationShape = {
  decision: {
    outcome: string;
    via?: string;
    policy?: string;
    reasons?: { code: string; message: string; policy?: string }[];
    approvals?: { from: string[]; count: number }[];
  };
  policies: {
    policy: string;
    applies: boolean;
    unmet: { code: string; message: string }[];
    requires: { approvals: { from: string[]; count: number }[]; factors: string[] };
  }[];
};

type NamedChangeShape = { added: string[]; removed: string[]; changed: string[] };
type ConfigChangeShape = {
  zones: NamedChangeShape;
  resources: NamedChangeShape;
  policies: NamedChangeShape;
  users: NamedChangeShape;
  flows: { added: number; removed: number };
  standing: { added: number; removed: number };
  otherSections: string[];
};

/** One line per kind of thing that changed: `zones: added a, b; removed c`. */
function describeConfigChange(summary: ConfigChangeShape): string[] {
  const lines: string[] = [];
  const named = (label: string, change: NamedChangeShape | undefined) => {
    if (!change) return;
    const parts = (["added", "removed", "changed"] as const)
      .filter((kind) => change[kind].length > 0)
      .map((kind) => `${kind} ${change[kind].map(safeText).join(", ")}`);
    if (parts.length) lines.push(`  ${label}: ${parts.join("; ")}`);
  };
  const counted = (label: string, change: { added: number; removed: number } | undefined) => {
    if (change && (change.added || change.removed))
      lines.push(`  ${label}: ${change.added} added, ${change.removed} removed`);
  };
  named("zones", summary.zones);
  named("resources", summary.resources);
  named("break-glass policies", summary.policies);
  named("users", summary.users);
  counted("flows", summary.flows);
  counted("standing bindings", summary.standing);
  if (summary.otherSections?.length)
    lines.push(`  other sections: ${summary.otherSections.map(safeText).join(", ")}`);
  return lines;
}

// Fixed widths, so `--follow` lines that arrive later stay under the header; a longer value
// pushes its own line only.
const EVENT_COLUMNS = [6, 24, 27, 16] as const;

function eventRow(cells: readonly [string, string, string, string, string]): string {
  const [seq, time, type, actor, about] = cells;
  return [
    seq.padStart(EVENT_COLUMNS[0]),
    time.padEnd(EVENT_COLUMNS[1]),
    type.padEnd(EVENT_COLUMNS[2]),
    actor.padEnd(EVENT_COLUMNS[3]),
    about,
  ]
    .join("  ")
    .trimEnd();
}

function printEventHeader(json: boolean) {
  if (!json) out(eventRow(["SEQ", "TIME", "TYPE", "ACTOR", "ABOUT"]));
}

function printEvent(event: AuditEventShape, json: boolean) {
  if (json) return out(JSON.stringify(event));
  // Whom an event concerns, when it is a person rather than a zone or a subject (token.issued).
  const user = typeof event.context.user === "string" ? `user ${event.context.user}` : null;
  const about = [event.zone ? `zone ${event.zone}` : null, event.subject, user].filter(Boolean).join("  ");
  out(
    eventRow([
      String(event.seq),
      safeText(event.time),
      safeText(event.type),
      safeText(event.actor),
      safeText(about),
    ]),
  );
}

function describeExplanation(
  user: string,
  target: string,
  role: string,
  explanation: ExplanationShape,
): string {
  const d = explanation.decision;
  const lines: string[] = [];
  if (d.outcome === "allow")
    lines.push(
      `ALLOW: ${user} may take role '${role}' on ${target} (${d.via}${d.policy ? `, policy ${d.policy}` : ""})`,
    );
  else if (d.outcome === "needs-approval")
    lines.push(
      `NEEDS APPROVAL under policy ${d.policy}: ${(d.approvals ?? []).map((a) => `${a.count} from ${a.from.join(" or ")}`).join(", then ")}`,
    );
  else {
    lines.push(`DENY: ${user} may not take role '${role}' on ${target}`);
    for (const reason of d.reasons ?? [])
      lines.push(`  - [${reason.code}]${reason.policy ? ` ${reason.policy}:` : ""} ${reason.message}`);
  }
  // A reason the decision already gave is not repeated under its policy.
  const given = new Set((d.reasons ?? []).map((r) => `${r.policy ?? ""}\u0000${r.code}\u0000${r.message}`));
  for (const p of explanation.policies) {
    const unmet = p.unmet.filter((u) => !given.has(`${p.policy}\u0000${u.code}\u0000${u.message}`));
    lines.push(
      `policy ${p.policy}: ${p.applies ? (p.unmet.length ? `unmet conditions${unmet.length === 0 ? " (above)" : ""}` : "all conditions hold") : "does not apply"}`,
    );
    for (const u of unmet) lines.push(`  - [${u.code}] ${u.message}`);
    if (p.requires.approvals.length)
      lines.push(
        `  requires approvals: ${p.requires.approvals.map((a) => `${a.count} from ${a.from.join(" or ")}`).join(", then ")}`,
      );
    if (p.requires.factors.length) lines.push(`  requires a factor: ${p.requires.factors.join(" or ")}`);
  }
  // Each line is built as one line; a message or name holding a line break stays inside it.
  return lines.map(safeText).join("\n");
}

/** Runs the program; exit codes: 0 success, 1 refused or failed, 2 usage error. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  const json = argv.includes("--json");
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (
        error.code === "commander.helpDisplayed" ||
        error.code === "commander.version" ||
        error.code === "commander.help"
      )
        return 0;
      // Commander has already printed its own usage message to stderr; ours is printed here.
      if (error.code === "usage") process.stderr.write(`error: ${error.message}\n`);
      if (json) out({ error: { code: "USAGE", message: error.message.replace(/^error: /, "") } });
      return 2;
    }
    let code = "FAILED";
    let message = error instanceof Error ? error.message : String(error);
    let details: unknown;
    let requestId: string | null = null;
    if (error instanceof ApiError) {
      code = error.code;
      details = error.details;
      requestId = error.requestId;
      if (error.code === "VALIDATION_FAILED" || error.code === "BAD_REQUEST") {
        ({ message, details } = inCommandLineTerms(message, details));
        if (json) out({ error: { code, message, details, ...(requestId ? { requestId } : {}) } });
        else process.stderr.write(`error: ${safeLines(message)} [${code}]${formatDetails(details)}\n`);
        return 2;
      }
    } else if (error instanceof CliFailure) {
      code = error.code;
      details = error.details;
    } else if (isFirebreakError(error)) {
      code = error.code;
      details = error.details;
    } else if (!(error instanceof Error)) message = String(error);
    if (json) out({ error: { code, message, details, ...(requestId ? { requestId } : {}) } });
    else process.stderr.write(`error: ${safeLines(message)} [${code}]${formatDetails(details)}\n`);
    return 1;
  }
}

function formatDetails(details: unknown): string {
  if (!details || typeof details !== "object") return "";
  const d = details as {
    reasons?: { code: string; message: string; policy?: string }[];
    issues?: { path: string; message: string }[];
  };
  const lines = [
    ...(d.reasons ?? []).map((r) => `  - [${r.code}]${r.policy ? ` ${r.policy}:` : ""} ${r.message}`),
    ...(d.issues ?? []).map((i) => `  - ${i.path || "(body)"}: ${i.message}`),
  ].map(safeText);
  return lines.length ? `\n${lines.join("\n")}` : "";
}

const invokedDirectly =
  process.argv[1] && (await import("node:url")).pathToFileURL(process.argv[1]).href === import.meta.url;
const invokedAsBin = process.argv[1]?.endsWith("/firebreak") ?? false;
if (invokedDirectly || invokedAsBin) {
  main(process.argv).then((code) => {
    process.exitCode = code;
  });
}

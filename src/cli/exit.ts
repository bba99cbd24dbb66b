import { CommanderError } from "commander";
import { isFirebreakError } from "../errors.js";
import { ApiError } from "./client.js";
import { CliFailure, out } from "./context.js";
import { safeLines, safeText } from "./format.js";

/**
 * What a failed command prints and the exit code it ends with: 2 for a usage error (commander's,
 * or a server refusing a value as invalid), 1 for anything refused or failed. Under --json the
 * error shape `{ error: { code, message, details?, requestId? } }` goes to standard output.
 */
export function reportFailure(error: unknown, json: boolean): number {
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

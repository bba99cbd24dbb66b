import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { loadVerifyKey } from "../audit/checkpoint.js";
import { type ExportVerifyResult, type VerifyKey, verifyExportFiles } from "../audit/offline-verify.js";
import type { Client } from "./client.js";
import { safeText, table } from "./format.js";

interface Context {
  emit(json: unknown, human: () => string): void;
  client(): Promise<Client>;
  fail(message: string, code: string): Error;
}

type SinkView = {
  name: string;
  type: string;
  format: string;
  target: string | null;
  state: string;
  deliveredSeq: number;
  headSeq: number;
  lagEvents: number;
  lagSeconds: number;
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveredTotal: number;
  errorTotal: number;
  deadLetters: { dead: number; queued: number; replayed: number };
};

function describeExport(result: ExportVerifyResult, files: readonly string[]): string {
  if (!result.ok) {
    const where = result.line === null ? "" : ` (line ${result.line})`;
    return `BROKEN: ${result.problem} at seq ${result.firstBadSeq}${where}: ${safeText(result.reason)}\n${result.events} event(s) verified before it`;
  }
  const lines = [
    `OK: ${result.events} events in ${files.join(", ")}, chain intact through seq ${result.lastSeq}`,
  ];
  if (result.checkpoints > 0)
    lines.push(
      `  ${result.checkpoints} signed checkpoint(s) verified; the last signs seq ${result.lastSignedSeq}`,
    );
  if (result.uncheckedCheckpoints > 0)
    lines.push(
      `  ${result.uncheckedCheckpoints} checkpoint(s) not checked: give --public-key to verify signatures`,
    );
  if (result.unsignedTail > 0 && result.checkpoints > 0)
    lines.push(
      `  ${result.unsignedTail} event(s) after the last checkpoint are not vouched for by a signature yet`,
    );
  if (result.duplicates > 0)
    lines.push(`  ${result.duplicates} duplicate line(s) skipped (at-least-once delivery)`);
  return lines.join("\n");
}

/**
 * `audit verify` (online, or offline with --file), `audit sinks` (status, dead letters, replay),
 * `audit checkpoint` and `audit public-key`.
 */
export function registerAuditStreamCommands(audit: Command, context: Context): void {
  audit
    .command("verify")
    .description(
      "recompute the hash chain: on the server, or offline on exported files (--file) with signed checkpoints (--public-key)",
    )
    .option("--file <path...>", "verify these exported JSON-lines files, in order, without a server")
    .option("--public-key <pem...>", "Ed25519 public key(s) whose checkpoints to trust (PEM files)")
    .option("--require-signed-end", "fail when events follow the last checkpoint")
    .action(async (options: { file?: string[]; publicKey?: string[]; requireSignedEnd?: boolean }) => {
      if (options.file === undefined) {
        if (options.publicKey !== undefined)
          throw context.fail("--public-key verifies exported files: give them with --file", "USAGE");
        const result = await (await context.client()).get<{
          ok: boolean;
          count: number;
          firstBadSeq: number | null;
          reason: string | null;
        }>("/v1/audit/verify");
        context.emit(result, () =>
          result.ok
            ? `OK: ${result.count} events, chain intact`
            : `BROKEN at seq ${result.firstBadSeq}: ${result.reason}`,
        );
        if (!result.ok) process.exitCode = 1;
        return;
      }
      const keys: VerifyKey[] = [];
      for (const path of options.publicKey ?? []) {
        let pem: string;
        try {
          pem = await readFile(path, "utf8");
        } catch {
          throw context.fail(`cannot read the public key file ${path}`, "NOT_FOUND");
        }
        try {
          keys.push(loadVerifyKey(pem));
        } catch (error) {
          throw context.fail(`${path} is ${(error as Error).message}`, "VALIDATION_FAILED");
        }
      }
      let result: ExportVerifyResult;
      try {
        result = await verifyExportFiles(options.file, {
          keys,
          requireSignedEnd: options.requireSignedEnd === true,
        });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw context.fail(
          code === "ENOENT" ? "an export file does not exist" : "an export file cannot be read",
          "NOT_FOUND",
        );
      }
      context.emit(result, () => describeExport(result, options.file ?? []));
      if (!result.ok) process.exitCode = 1;
    });

  audit
    .command("sinks")
    .description(
      "each audit sink's lag, failures and dead letters; --replay delivers a sink's dead letters again",
    )
    .option("--replay <sink>", "deliver this sink's dead letters again")
    .option("--from-seq <n>", "with --replay: also deliver everything again from this sequence number")
    .option("--dead-letters <sink>", "list this sink's dead letters")
    .action(async (options: { replay?: string; fromSeq?: string; deadLetters?: string }) => {
      const client = await context.client();
      if (options.fromSeq !== undefined && options.replay === undefined)
        throw context.fail("--from-seq goes with --replay <sink>", "USAGE");
      if (options.replay !== undefined) {
        const fromSeq = options.fromSeq === undefined ? undefined : Number(options.fromSeq);
        if (fromSeq !== undefined && (!Number.isSafeInteger(fromSeq) || fromSeq < 1))
          throw context.fail("--from-seq takes a sequence number of 1 or more", "USAGE");
        const result = await client.post<{ sink: string; queued: number; rewoundTo: number | null }>(
          `/v1/audit/sinks/${encodeURIComponent(options.replay)}/replay`,
          fromSeq === undefined ? {} : { fromSeq },
        );
        context.emit(result, () =>
          [
            `${result.sink}: ${result.queued} dead letter(s) queued for delivery`,
            ...(result.rewoundTo === null
              ? []
              : [`  and everything after seq ${result.rewoundTo} will be delivered again`]),
          ].join("\n"),
        );
        return;
      }
      if (options.deadLetters !== undefined) {
        const { deadLetters } = await client.get<{
          deadLetters: {
            seq: number;
            eventId: string;
            attempts: number;
            lastError: string;
            state: string;
            deadAt: string;
          }[];
        }>(`/v1/audit/sinks/${encodeURIComponent(options.deadLetters)}/dead-letters`);
        context.emit({ deadLetters }, () =>
          table(
            deadLetters.map((letter) => [
              String(letter.seq),
              letter.eventId,
              letter.state,
              String(letter.attempts),
              letter.deadAt,
              letter.lastError,
            ]),
            ["SEQ", "EVENT", "STATE", "ATTEMPTS", "SINCE", "LAST ERROR"],
          ),
        );
        return;
      }
      const { sinks } = await client.get<{ sinks: SinkView[] }>("/v1/audit/sinks");
      context.emit({ sinks }, () =>
        table(
          sinks.map((sink) => [
            sink.name,
            sink.type,
            sink.target ?? "-",
            sink.state,
            `${sink.deliveredSeq}/${sink.headSeq}`,
            sink.lagEvents === 0 ? "0" : `${sink.lagEvents} (${sink.lagSeconds.toFixed(1)}s)`,
            `${sink.errorTotal}${sink.attempts > 0 ? ` (retry ${sink.attempts}${sink.nextAttemptAt ? ` at ${sink.nextAttemptAt}` : ""})` : ""}`,
            String(sink.deadLetters.dead + sink.deadLetters.queued),
            sink.lastError ?? "-",
          ]),
          ["SINK", "TYPE", "TARGET", "STATE", "DELIVERED", "LAG", "FAILURES", "DEAD", "LAST ERROR"],
        ),
      );
    });

  audit
    .command("checkpoint")
    .description("sign the chain's head now (for example just before an export)")
    .action(async () => {
      const result = await (await context.client()).post<{
        signed: boolean;
        seq: number | null;
        keyId: string | null;
      }>("/v1/audit/checkpoints", {});
      context.emit(result, () =>
        result.signed
          ? `signed the head at seq ${result.seq} with ${result.keyId}`
          : "the head is already signed (its newest event is a checkpoint)",
      );
    });

  audit
    .command("public-key")
    .description("print the public key that verifies checkpoints (PEM), for 'audit verify --public-key'")
    .action(async () => {
      const key = await (await context.client()).get<{ keyId: string; publicKey: string }>(
        "/v1/audit/checkpoint-key",
      );
      context.emit(key, () => key.publicKey.trimEnd());
    });
}

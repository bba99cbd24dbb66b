import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import type { AnchorPoint, ChainView } from "../audit/anchor.js";
import type { ExportVerifyResult, VerifyKey } from "../audit/offline-verify.js";
import type { Client } from "./client.js";
import { safeText, table } from "./format.js";

interface Context {
  emit(json: unknown, human: () => string): void;
  client(): Promise<Client>;
  fail(message: string, code: string): Error;
}

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
  if (result.anchors > 0)
    lines.push(`  holds every anchored event (${result.anchors}), the newest at seq ${result.anchoredSeq}`);
  return lines.join("\n");
}

/** The online verify reply, extended by the client-side anchor check. */
interface OnlineVerifyResult {
  ok: boolean;
  count: number;
  firstBadSeq: number | null;
  reason: string | null;
  headHash?: string | null;
  problem?: string | null;
  /** The newest anchored seq the chain was found to hold (the server's anchor, or --anchor). */
  anchoredSeq?: number | null;
  /** Events from --anchor files compared with the chain. */
  anchors?: number;
  /** Gateway transcripts the server checked with the chain. */
  transcripts?: { ok: boolean; sessions: number; records: number } | null;
}

function describeOnline(result: OnlineVerifyResult): string {
  if (!result.ok && result.problem?.startsWith("TRANSCRIPT_"))
    return `BROKEN: ${result.problem}: ${safeText(result.reason)}`;
  if (!result.ok)
    return `BROKEN${result.problem ? `: ${result.problem}` : ""} at seq ${result.firstBadSeq}: ${safeText(result.reason)}`;
  const anchored =
    typeof result.anchoredSeq === "number"
      ? `; it holds the anchored event at seq ${result.anchoredSeq}${result.anchors ? ` (${result.anchors} anchored event(s) compared)` : ""}`
      : "";
  const transcripts = result.transcripts
    ? `; ${result.transcripts.sessions} gateway session transcript(s), ${result.transcripts.records} record(s) intact`
    : "";
  return `OK: ${result.count} events, chain intact${anchored}${transcripts}`;
}

/** Reads --anchor files, turning file errors into the CLI's error codes. */
async function readAnchors(paths: readonly string[], context: Context): Promise<AnchorPoint[]> {
  const { readAnchorPoints } = await import("../audit/anchor.js");
  try {
    return await readAnchorPoints(paths);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EACCES" || code === "EISDIR")
      throw context.fail("an anchor file does not exist or cannot be read", "NOT_FOUND");
    throw context.fail((error as Error).message, "VALIDATION_FAILED");
  }
}

/**
 * Reads the server's export (JSON lines, in seq order) down to what the anchor check needs: where
 * the chain ends and the hashes, recomputed from each event, at the seqs the anchors name.
 */
async function exportedChainView(
  chunks: AsyncIterable<Uint8Array>,
  wanted: ReadonlySet<number>,
  context: Context,
): Promise<ChainView> {
  const { hashEvent, parseEventLine } = await import("../audit/chain.js");
  const decoder = new TextDecoder();
  const hashes = new Map<number, string>();
  let lastSeq = 0;
  let buffer = "";
  const take = (line: string) => {
    if (line.trim() === "") return;
    const event = parseEventLine(line);
    if (typeof event === "string")
      throw context.fail(`the server's export holds a line that is not an event (${event})`, "INTERNAL");
    lastSeq = Math.max(lastSeq, event.seq);
    if (wanted.has(event.seq)) hashes.set(event.seq, hashEvent(event.prevHash, event));
  };
  for await (const chunk of chunks) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      take(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
    }
  }
  take(buffer + decoder.decode());
  return { lastSeq, hashAt: (seq) => hashes.get(seq) };
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
    .option(
      "--anchor <file...>",
      "fail unless the chain still holds the events in these files, kept outside the database: audit.anchor.file, or a json file sink's files (oldest first)",
    )
    .action(
      async (options: {
        file?: string[];
        publicKey?: string[];
        requireSignedEnd?: boolean;
        anchor?: string[];
      }) => {
        const anchors = options.anchor === undefined ? [] : await readAnchors(options.anchor, context);
        if (options.file === undefined) {
          if (options.publicKey !== undefined)
            throw context.fail("--public-key verifies exported files: give them with --file", "USAGE");
          const { verifyReply } = await import("../api/audit.schema.js");
          const { judgeAnchors } = await import("../audit/anchor.js");
          const client = await context.client();
          let result: OnlineVerifyResult = await client.get("/v1/audit/verify", verifyReply);
          if (result.ok && anchors.length > 0) {
            // The server checked the chain and its own anchor; these anchors are checked here, on
            // the chain as the server exports it, so the server's word is not needed for them.
            const wanted = new Set(anchors.flatMap((point) => [point.seq - 1, point.seq]));
            const chain = await exportedChainView(
              (await client.stream("/v1/audit/export")) as unknown as AsyncIterable<Uint8Array>,
              wanted,
              context,
            );
            const lost = judgeAnchors(anchors, chain);
            const anchoredSeq = anchors.reduce((newest, point) => Math.max(newest, point.seq), 0);
            result = lost
              ? { ...result, ok: false, ...lost, anchoredSeq, anchors: anchors.length }
              : {
                  ...result,
                  anchoredSeq: Math.max(anchoredSeq, result.anchoredSeq ?? 0),
                  anchors: anchors.length,
                };
          }
          context.emit(result, () => describeOnline(result));
          if (!result.ok) process.exitCode = 1;
          return;
        }
        const { loadVerifyKey } = await import("../audit/checkpoint.js");
        const { verifyExportFiles } = await import("../audit/offline-verify.js");
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
            anchors,
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
      },
    );

  audit
    .command("sinks")
    .description(
      "each audit sink's lag, failures and dead letters; --replay delivers a sink's dead letters again",
    )
    .option("--replay <sink>", "deliver this sink's dead letters again")
    .option("--from-seq <n>", "with --replay: also deliver everything again from this sequence number")
    .option("--dead-letters <sink>", "list this sink's dead letters")
    .action(async (options: { replay?: string; fromSeq?: string; deadLetters?: string }) => {
      const { deadLettersReply, replayReply, sinksReply } = await import("../api/sinks.schema.js");
      const client = await context.client();
      if (options.fromSeq !== undefined && options.replay === undefined)
        throw context.fail("--from-seq goes with --replay <sink>", "USAGE");
      if (options.replay !== undefined) {
        const fromSeq = options.fromSeq === undefined ? undefined : Number(options.fromSeq);
        if (fromSeq !== undefined && (!Number.isSafeInteger(fromSeq) || fromSeq < 1))
          throw context.fail("--from-seq takes a sequence number of 1 or more", "USAGE");
        const result = await client.post(
          `/v1/audit/sinks/${encodeURIComponent(options.replay)}/replay`,
          fromSeq === undefined ? {} : { fromSeq },
          replayReply,
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
        const { deadLetters } = await client.get(
          `/v1/audit/sinks/${encodeURIComponent(options.deadLetters)}/dead-letters`,
          deadLettersReply,
        );
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
      const { sinks } = await client.get("/v1/audit/sinks", sinksReply);
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
      const { checkpointReply } = await import("../api/sinks.schema.js");
      const result = await (await context.client()).post("/v1/audit/checkpoints", {}, checkpointReply);
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
      const { checkpointKeyReply } = await import("../api/sinks.schema.js");
      const key = await (await context.client()).get("/v1/audit/checkpoint-key", checkpointKeyReply);
      context.emit(key, () => key.publicKey.trimEnd());
    });
}

import type { Command } from "commander";
import type { TranscriptRecordView } from "../../api/sessions.schema.js";
import type { CommandContext } from "../context.js";
import { safeText } from "../format.js";

/** One transcript record as a line: time, kind, and for statements what ran and how it ended. */
function describeRecord(record: {
  seq: number;
  time: string;
  kind: string;
  payload: Record<string, unknown>;
}) {
  const p = record.payload;
  if (record.kind === "statement") {
    const refused = p.refused as { rule?: string; message?: string } | undefined;
    const outcome = refused
      ? `REFUSED (${safeText(String(refused.rule ?? ""))}): ${safeText(String(refused.message ?? ""))}`
      : p.sqlstate
        ? `ERROR ${safeText(String(p.sqlstate))}`
        : `${safeText(String(p.tag ?? ""))} rows=${safeText(String(p.rows ?? 0))}`;
    return `  ${record.seq} ${record.time} ${safeText(String(p.text ?? ""))}\n      → ${outcome}${
      typeof p.durationMs === "number" ? ` (${p.durationMs} ms)` : ""
    }`;
  }
  // SSH (src/gateway/ssh/NOTES.md): commands with their exits, transfers, forwards, terminal text.
  if (record.kind === "exec") return `  ${record.seq} ${record.time} $ ${safeText(String(p.command ?? ""))}`;
  if (record.kind === "exit")
    return `  ${record.seq} ${record.time} exit ${safeText(String(p.exitCode ?? p.signal ?? "?"))}`;
  if (record.kind === "output" || record.kind === "input")
    return `  ${record.seq} ${record.time} ${record.kind === "input" ? "<" : ">"} ${safeText(String(p.data ?? ""))}`;
  if (record.kind === "sftp")
    return `  ${record.seq} ${record.time} sftp ${safeText(String(p.op))} ${safeText(String(p.path ?? ""))}${
      p.op === "file" ? ` read=${Number(p.bytesRead)} written=${Number(p.bytesWritten)}` : ""
    }${p.to ? ` -> ${safeText(String(p.to))}` : ""}`;
  return `  ${record.seq} ${record.time} [${safeText(record.kind)}] ${safeText(JSON.stringify(p))}`;
}

/** `sessions <grant-id>`: a grant's gateway sessions, and with --transcript their records. */
export function registerSessionCommands(program: Command, context: CommandContext) {
  program
    .command("sessions")
    .description("list a grant's gateway sessions (PostgreSQL, SSH) and print their transcripts")
    .argument("<grant-id>", "the grant, grt_…")
    .option("--transcript [session-id]", "print the transcript of every session, or of this one")
    .option(
      "--cast <file>",
      "write the terminal recording (asciicast v2) of an SSH shell to FILE (with --transcript ID: that session's)",
    )
    .action(async (grantId: string, options: { transcript?: string | boolean; cast?: string }) => {
      if (options.cast !== undefined && options.transcript === undefined) options.transcript = true;
      const { sessionsReply, transcriptReply } = await import("../../api/sessions.schema.js");
      const client = await context.client();
      const { sessions } = await client.get(
        `/v1/grants/${encodeURIComponent(grantId)}/sessions`,
        sessionsReply,
      );
      const wanted =
        options.transcript === undefined
          ? []
          : sessions.filter((s) => options.transcript === true || s.id === options.transcript);
      if (typeof options.transcript === "string" && wanted.length === 0)
        throw context.fail(`grant ${grantId} has no session ${options.transcript}`, "NOT_FOUND");
      const transcripts: { session: string; records: TranscriptRecordView[] }[] = [];
      for (const session of wanted) {
        const records: TranscriptRecordView[] = [];
        let afterSeq = 0;
        for (;;) {
          const page = await client.get(
            `/v1/sessions/${encodeURIComponent(session.id)}/transcript?afterSeq=${afterSeq}&limit=1000`,
            transcriptReply,
          );
          records.push(...page.records);
          if (page.nextAfterSeq === null) break;
          afterSeq = page.nextAfterSeq;
        }
        transcripts.push({ session: session.id, records });
      }
      let cast: { session: string; file: string } | null = null;
      if (options.cast !== undefined) {
        const { toAsciicast } = await import("../../gateway/ssh/cast.js");
        for (const transcript of transcripts) {
          const text = toAsciicast(transcript.records.map((r) => ({ ...r, time: Date.parse(r.time) })));
          if (text === null) continue;
          const { writeFile } = await import("node:fs/promises");
          await writeFile(options.cast, text, { mode: 0o600 });
          cast = { session: transcript.session, file: options.cast };
          break;
        }
        if (!cast)
          throw context.fail(
            `grant ${grantId} has no SSH shell session to write as a .cast file`,
            "NOT_FOUND",
          );
      }
      const result =
        options.transcript === undefined
          ? { sessions }
          : cast
            ? { sessions, transcripts, cast }
            : { sessions, transcripts };
      context.emit(result, () => {
        if (sessions.length === 0) return `grant ${safeText(grantId)} has no gateway sessions`;
        const lines: string[] = [];
        for (const s of sessions) {
          lines.push(
            `${safeText(s.id)}  ${safeText(s.protocol)}  ${safeText(s.resource)}  from ${safeText(s.clientAddress ?? "?")}  ${safeText(s.startedAt)} → ${safeText(s.endedAt ?? "open")}  ${s.records} record(s)${s.endReason ? `  (${safeText(s.endReason)})` : ""}`,
          );
          const transcript = transcripts.find((t) => t.session === s.id);
          if (transcript) for (const record of transcript.records) lines.push(describeRecord(record));
        }
        if (cast)
          lines.push(
            `wrote the recording of ${safeText(cast.session)} to ${safeText(cast.file)} (asciinema play ${safeText(cast.file)})`,
          );
        return lines.join("\n");
      });
    });
}

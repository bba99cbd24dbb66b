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
  return `  ${record.seq} ${record.time} [${safeText(record.kind)}] ${safeText(JSON.stringify(p))}`;
}

/** `sessions <grant-id>`: a grant's gateway sessions, and with --transcript their records. */
export function registerSessionCommands(program: Command, context: CommandContext) {
  program
    .command("sessions")
    .description("list a grant's gateway sessions (PostgreSQL, SSH) and print their transcripts")
    .argument("<grant-id>", "the grant, grt_…")
    .option("--transcript [session-id]", "print the transcript of every session, or of this one")
    .action(async (grantId: string, options: { transcript?: string | boolean }) => {
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
      const result = options.transcript === undefined ? { sessions } : { sessions, transcripts };
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
        return lines.join("\n");
      });
    });
}

/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/) from an SSH session's transcript
 * records: the `shell` record gives the header, each `output`/`input` record one event line. Pure
 * (layer policy), so the CLI and the console build the same file from the records the API returns.
 */
export interface CastSource {
  kind: string;
  time: number;
  payload: Record<string, unknown>;
}

/** The shells of a session: their channel numbers, in order. */
export function shellChannels(records: Iterable<CastSource>): number[] {
  const channels: number[] = [];
  for (const record of records)
    if (record.kind === "shell" && typeof record.payload.channel === "number")
      channels.push(record.payload.channel);
  return channels;
}

/** The `.cast` text of one shell channel (the first when not named); null when the session had none. */
export function toAsciicast(records: readonly CastSource[], channel?: number): string | null {
  const shell = records.find(
    (r) => r.kind === "shell" && (channel === undefined || r.payload.channel === channel),
  );
  if (!shell) return null;
  const which = shell.payload.channel;
  const header: Record<string, unknown> = {
    version: 2,
    width: Number(shell.payload.width) || 80,
    height: Number(shell.payload.height) || 24,
    timestamp: Math.floor(shell.time / 1000),
    env: { TERM: String(shell.payload.term ?? "xterm"), SHELL: "/bin/sh" },
  };
  if (typeof shell.payload.command === "string") header.command = shell.payload.command;
  const lines = [JSON.stringify(header)];
  for (const record of records) {
    if (record.payload.channel !== which) continue;
    const t = Number(record.payload.t);
    if (record.kind === "output") lines.push(JSON.stringify([t, "o", String(record.payload.data)]));
    else if (record.kind === "input") lines.push(JSON.stringify([t, "i", String(record.payload.data)]));
    else if (record.kind === "resize")
      lines.push(JSON.stringify([t, "r", `${record.payload.width}x${record.payload.height}`]));
  }
  return `${lines.join("\n")}\n`;
}

/** An exec's transcript as text: its command line, what it printed, its exit. */
export function execTranscript(records: readonly CastSource[]): string {
  const lines: string[] = [];
  for (const record of records) {
    const p = record.payload;
    const at = new Date(record.time).toISOString();
    if (record.kind === "exec") lines.push(`${at} $ ${String(p.command)}`);
    else if (record.kind === "exit")
      lines.push(
        `${at} exit ${p.exitCode ?? "-"}${p.signal ? ` (signal ${p.signal})` : ""} [channel ${p.channel}]`,
      );
    else if (record.kind === "sftp") {
      const { op, path, bytesRead, bytesWritten, to } = p as Record<string, unknown>;
      lines.push(
        `${at} sftp ${op} ${String(path ?? "")}${to ? ` -> ${String(to)}` : ""}${
          op === "file" ? ` read=${bytesRead} written=${bytesWritten}` : ""
        }`,
      );
    } else if (record.kind === "forward" || record.kind === "refused")
      lines.push(`${at} ${record.kind} ${JSON.stringify(p)}`);
  }
  return `${lines.join("\n")}\n`;
}

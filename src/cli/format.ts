/** Small helpers for human output: aligned tables and relative times. */

export function table(rows: string[][], header: string[]): string {
  if (rows.length === 0) return "(none)";
  const all = [header, ...rows];
  const widths = header.map((_, column) => Math.max(...all.map((row) => (row[column] ?? "").length)));
  return all
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function timeLeft(seconds: number): string {
  if (seconds <= 0) return "0s";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return h > 0
    ? `${h}h${String(m).padStart(2, "0")}m`
    : m > 0
      ? `${m}m${String(s).padStart(2, "0")}s`
      : `${s}s`;
}

/** Removes terminal control characters from text that came from elsewhere (reasons, titles). */
export function printable(text: string | null | undefined): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  return (text ?? "").replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "?");
}

/** Small helpers for human output: aligned tables, relative times and text from elsewhere made safe to print. */

/** Every cell is shown through `safeText`: table rows hold names and text from the server. */
export function table(rows: string[][], header: string[]): string {
  if (rows.length === 0) return "(none)";
  const all = [header, ...rows].map((row) => row.map(safeText));
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

/**
 * Characters that change how a terminal shows text instead of being shown: C0 and C1 controls
 * (TAB, LF, CR, ESC among them) and DEL, the Unicode line and paragraph separators, every format
 * character (bidirectional embeddings, overrides and isolates, zero-width characters, the BOM,
 * tag characters) and lone surrogates. A requester's reason holding an LF or a right-to-left
 * override could otherwise draw a line that looks like Firebreak's own ("approved by carol").
 * The backslash is escaped too, so an escape Firebreak prints cannot be confused with one typed.
 */
const UNSAFE = /[\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;

const NAMED: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };

function escapeCharacter(character: string): string {
  const named = NAMED[character];
  if (named !== undefined) return named;
  const code = character.codePointAt(0) ?? 0;
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, "0")}`;
  if (code <= 0xffff) return `\\u${code.toString(16).padStart(4, "0")}`;
  return `\\u{${code.toString(16)}}`;
}

/**
 * Text that came from someone else (reasons, tickets, comments, notes, titles, names, messages),
 * made safe to print in a terminal: always one line, with every control, bidirectional or other
 * invisible character shown as a visible escape (`\n`, `\x1b`, `\u202e`). Human output only;
 * JSON output carries the text as it is, escaped by JSON itself.
 */
export function safeText(text: string | null | undefined): string {
  return (text ?? "").replace(UNSAFE, escapeCharacter);
}

/**
 * Like `safeText`, but keeps the line breaks of a multi-line message the program itself composed
 * (a list of configuration errors): each line is made safe on its own.
 */
export function safeLines(text: string | null | undefined): string {
  return (text ?? "").split("\n").map(safeText).join("\n");
}

/**
 * Text that came from someone else (reasons, tickets, comments, notes, incident titles), split
 * into what the page may show as it is and the characters it must show as visible escapes: C0
 * and C1 controls (TAB, LF, CR, ESC), DEL, the Unicode line and paragraph separators, every
 * format character (bidirectional embeddings, overrides and isolates, zero-width characters, the
 * BOM, tag characters) and lone surrogates. React already escapes HTML; these are what it leaves
 * alone, and a right-to-left override in a reason would otherwise show the words that follow it
 * backwards. The same characters as the CLI's `safeText` (src/cli/format.ts), shown the same way.
 */
export type TextPart = { kind: "text"; text: string } | { kind: "escape"; text: string; codePoint: number };

// Unlike the CLI, a backslash stays as it is: an escape is drawn as a marked box here, so a typed
// "\n" never passes for an escaped line break.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const NAMED: Record<string, string> = { "\t": "\\t", "\n": "\\n", "\r": "\\r" };

/** `\n`, `\x1b`, `\u202e`, `\u{e0041}`: how one unsafe character is shown. */
export function escapeOf(character: string): string {
  const named = NAMED[character];
  if (named !== undefined) return named;
  const code = character.codePointAt(0) ?? 0;
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, "0")}`;
  if (code <= 0xffff) return `\\u${code.toString(16).padStart(4, "0")}`;
  return `\\u{${code.toString(16)}}`;
}

/**
 * The parts of `text`, in order. With `keepLineBreaks` an LF stays a line break (for text the
 * console itself laid out over lines, such as pretty-printed JSON); everything else is escaped.
 */
export function partsOf(text: string, options: { keepLineBreaks?: boolean } = {}): TextPart[] {
  const parts: TextPart[] = [];
  let last = 0;
  for (const match of text.matchAll(UNSAFE)) {
    const character = match[0];
    if (options.keepLineBreaks && character === "\n") continue;
    const start = match.index;
    if (start > last) parts.push({ kind: "text", text: text.slice(last, start) });
    parts.push({ kind: "escape", text: escapeOf(character), codePoint: character.codePointAt(0) ?? 0 });
    last = start + character.length;
  }
  if (last < text.length) parts.push({ kind: "text", text: text.slice(last) });
  return parts;
}

/** The whole text with every unsafe character replaced by its escape, for attributes and titles. */
export function escapedText(text: string): string {
  return text.replace(UNSAFE, escapeOf);
}

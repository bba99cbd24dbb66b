import { partsOf } from "../lib/text";

/**
 * Someone else's text (a reason, ticket, comment, note, incident title), shown so that it can
 * neither reorder what is around it nor hide what it holds: it is isolated for bidirectional
 * layout (`<bdi>`, and `unicode-bidi: isolate` in the stylesheet), and every control, bidi or
 * invisible character is drawn as a marked escape (`\n`, `\u202e`) with its code point in a
 * tooltip. Use it for every user-supplied string the console shows.
 */
export function UserText({
  text,
  multiline = false,
}: {
  text: string | null | undefined;
  multiline?: boolean;
}) {
  if (text === null || text === undefined || text === "") return null;
  return (
    <bdi className="user-text">
      {partsOf(text, { keepLineBreaks: multiline }).map((part, index) =>
        part.kind === "text" ? (
          // biome-ignore lint/suspicious/noArrayIndexKey: the parts of one text never move
          <span key={index}>{part.text}</span>
        ) : (
          <span
            // biome-ignore lint/suspicious/noArrayIndexKey: the parts of one text never move
            key={index}
            className="text-escape"
            title={`U+${part.codePoint.toString(16).toUpperCase().padStart(4, "0")}: an invisible or control character`}
          >
            {part.text}
          </span>
        ),
      )}
    </bdi>
  );
}

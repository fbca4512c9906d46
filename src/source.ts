// Positions in a migration file's text, for messages that point at file:line:column.

export interface SourcePosition {
  line: number;
  /** 1-based, in characters (code points), as an editor counts them. */
  column: number;
}

/** 1-based line and column of a 0-based offset (in UTF-16 units, as JavaScript indexes strings). */
export function locate(text: string, offset: number): SourcePosition {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: codePoints(before.slice(lineStart)) + 1 };
}

/**
 * The offset `characters` characters after `from`. PostgreSQL reports an error position in characters,
 * where a character outside the Basic Multilingual Plane (an emoji) is one; in a JavaScript string it
 * is two units, so adding the position to an offset directly lands before the error.
 */
export function offsetAfterCharacters(text: string, from: number, characters: number): number {
  let offset = from;
  for (let n = 0; n < characters && offset < text.length; n++) {
    const code = text.charCodeAt(offset);
    offset += code >= 0xd800 && code <= 0xdbff && offset + 1 < text.length ? 2 : 1;
  }
  return offset;
}

/** The line at a position, with a caret under the column: what a person needs to see the mistake. */
export function sourceExcerpt(text: string, at: SourcePosition): string[] {
  const source = text.split('\n')[at.line - 1] ?? '';
  const gutter = `${at.line} | `;
  const caretPad = Array.from(source)
    .slice(0, at.column - 1)
    .join('')
    .replace(/[^\t]/gu, ' ');
  return [`${gutter}${source}`, `${' '.repeat(gutter.length - 2)}| ${caretPad}^`];
}

function codePoints(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (
      !(
        code >= 0xdc00 &&
        code <= 0xdfff &&
        i > 0 &&
        text.charCodeAt(i - 1) >= 0xd800 &&
        text.charCodeAt(i - 1) <= 0xdbff
      )
    )
      count++;
  }
  return count;
}

// Positions in a migration file's text, for messages that point at file:line:column.

export interface SourcePosition {
  line: number;
  column: number;
}

/** 1-based line and column of a 0-based character offset. */
export function locate(text: string, offset: number): SourcePosition {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lineStart = before.lastIndexOf('\n') + 1;
  return { line: before.split('\n').length, column: before.length - lineStart + 1 };
}

/** The line at a position, with a caret under the column: what a person needs to see the mistake. */
export function sourceExcerpt(text: string, at: SourcePosition): string[] {
  const source = text.split('\n')[at.line - 1] ?? '';
  const gutter = `${at.line} | `;
  const caretPad = source.slice(0, at.column - 1).replace(/[^\t]/g, ' ');
  return [`${gutter}${source}`, `${' '.repeat(gutter.length - 2)}| ${caretPad}^`];
}

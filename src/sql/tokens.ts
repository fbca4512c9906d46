// What both lexers share: the tokens they produce, the quoted runs both dialects write alike, and
// a line index that turns offsets into file:line:column without rescanning the text.

/** A token of a migration file. Whitespace is not kept; comments are, so statements can skip them. */
export interface Token {
  kind: 'word' | 'quoted' | 'comment' | 'semicolon' | 'meta' | 'other';
  /** 0-based offsets in the text, end exclusive. */
  start: number;
  end: number;
  /** For words: the word upper-cased, as keywords are compared. */
  upper?: string;
}

/** A quote or comment that never closes: the servers would read the rest of the file into it. */
export class UnclosedError extends Error {
  constructor(
    /** What is open: `string`, `quoted identifier`, `block comment`, ... */
    readonly what: string,
    /** Where it opens. */
    readonly offset: number,
    /** What closes it, for the message. */
    readonly closer: string,
  ) {
    super(`unclosed ${what}`);
  }
}

/** Letters, digits, `_`, `$` and everything beyond ASCII continue a name in both dialects. */
export function isWordChar(code: number): boolean {
  return isWordStart(code) || (code >= 48 && code <= 57) || code === 36;
}

export function isWordStart(code: number): boolean {
  return (code >= 65 && code <= 90) || (code >= 97 && code <= 122) || code === 95 || code >= 128;
}

export function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13);
}

/** The end of a word (or number) starting at `from`. */
export function endOfWord(text: string, from: number): number {
  let i = from + 1;
  while (i < text.length && isWordChar(text.charCodeAt(i))) i++;
  return i;
}

/** The end of a `-- ...` comment: the newline stays outside it. */
export function endOfLineComment(text: string, from: number): number {
  const newline = text.indexOf('\n', from);
  return newline < 0 ? text.length : newline;
}

/**
 * The end of a run quoted with `quote`, where a doubled quote stands for itself (and, with
 * backslashEscapes, a backslash escapes the next character, as in PostgreSQL's E'' strings).
 */
export function endOfQuoted(text: string, from: number, quote: string, what: string, backslashEscapes = false): number {
  let i = from + 1;
  while (i < text.length) {
    const c = text[i];
    if (backslashEscapes && c === '\\') i += 2;
    else if (c === quote) {
      if (text[i + 1] !== quote) return i + 1;
      i += 2;
    } else i++;
  }
  throw new UnclosedError(what, from, quote);
}

/**
 * A psql meta-command (`\set`, `\i`): a backslash that starts a line (after blanks), outside any
 * quote or comment. It runs to the end of the line. Returns the line's end, or -1 when it is none.
 */
export function endOfMetaCommand(text: string, from: number): number {
  if (text[from] !== '\\') return -1;
  for (let j = from - 1; j >= 0 && text[j] !== '\n'; j--) if (!isSpace(text.charCodeAt(j))) return -1;
  return endOfLineComment(text, from);
}

/** Offsets to 1-based line and column (in characters, as an editor counts them), by a binary search of line starts. */
export class Locator {
  private readonly lineStarts: number[] = [0];

  constructor(private readonly text: string) {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) this.lineStarts.push(i + 1);
  }

  at(offset: number): { line: number; column: number } {
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) low = mid;
      else high = mid - 1;
    }
    const before = this.text.slice(this.lineStarts[low], offset);
    return { line: low + 1, column: Array.from(before).length + 1 };
  }
}

/** Replaces ranges with spaces, keeping newlines, so every offset and line number stays where it was. */
export function blankOut(text: string, ranges: { offset: number; length: number }[]): string {
  let out = text;
  for (const { offset, length } of ranges) {
    const end = Math.min(text.length, offset + length);
    out = out.slice(0, offset) + out.slice(offset, end).replace(/[^\n]/g, ' ') + out.slice(end);
  }
  return out;
}

/** Splits text into tokens with a dialect's `next` (which reads one token at a non-space); spaces are skipped. */
export function tokenize(text: string, next: (text: string, start: number, code: number) => Token): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (isSpace(code)) {
      i++;
      continue;
    }
    const token = next(text, i, code);
    tokens.push(token);
    i = token.end;
  }
  return tokens;
}

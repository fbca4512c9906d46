// A small lexer for migration files: where statements start and end, and which lines are psql
// meta-commands. It knows quotes ('', "", E'', $tag$, [] and ``), both comment styles (PostgreSQL
// block comments nest) and BEGIN ... END blocks inside CREATE statements (SQLite triggers,
// PostgreSQL BEGIN ATOMIC), so a semicolon inside any of them never splits anything.

export interface Statement {
  /** The statement's text without its terminating semicolon. */
  text: string;
  /** 0-based offset of the statement's first token in the file. */
  offset: number;
  /** 1-based line of the first token. */
  line: number;
  /** The first keyword, upper-cased ('' when the statement starts with something else). */
  keyword: string;
}

export interface MetaCommand {
  /** The whole line, as written. */
  text: string;
  /** `set`, `timing`, `i`, ... */
  name: string;
  line: number;
  offset: number;
}

export interface LexedSql {
  statements: Statement[];
  metaCommands: MetaCommand[];
}

const WORD = /[A-Za-z_][A-Za-z0-9_$]*/y;
const DOLLAR_TAG = /\$([A-Za-z_][A-Za-z0-9_]*)?\$/y;

export function lexSql(text: string): LexedSql {
  const statements: Statement[] = [];
  const metaCommands: MetaCommand[] = [];
  let line = 1;
  let atLineStart = true;
  let start = -1; // offset of the current statement's first token
  let startLine = 0;
  let words: string[] = []; // the statement's leading keywords, upper-cased (only a few are kept)
  let blockDepth = 0; // BEGIN ... END inside CREATE
  let caseDepth = 0;

  const finish = (end: number) => {
    if (start >= 0) statements.push({ text: text.slice(start, end), offset: start, line: startLine, keyword: words[0] ?? '' });
    start = -1;
    words = [];
    blockDepth = 0;
    caseDepth = 0;
  };
  const begin = (at: number) => {
    if (start < 0) {
      start = at;
      startLine = line;
    }
  };
  /** Moves past text[from, to), counting the lines it spans. */
  const skip = (from: number, to: number) => {
    for (let j = from; j < to; j++) if (text.charCodeAt(j) === 10) line++;
    return to;
  };

  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      atLineStart = true;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f') {
      i++;
      continue;
    }
    const lineStart = atLineStart;
    atLineStart = false;
    if (c === '\\' && lineStart) {
      const end = text.indexOf('\n', i);
      const whole = text.slice(i, end < 0 ? text.length : end);
      metaCommands.push({ text: whole, name: /^\\([A-Za-z!?]*)/.exec(whole)?.[1] ?? '', line, offset: i });
      i = end < 0 ? text.length : end;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      i = skip(i, endOfBlockComment(text, i));
      continue;
    }
    if (c === ';') {
      if (blockDepth > 0) {
        i++;
        continue;
      }
      finish(i);
      i++;
      continue;
    }
    begin(i);
    if (c === "'" || c === '"' || c === '`') {
      const escapes = c === "'" && /[eE]$/.test(text.slice(Math.max(0, i - 1), i)) && !/[A-Za-z0-9_]/.test(text[i - 2] ?? '');
      i = skip(i, endOfQuoted(text, i, c, escapes));
      continue;
    }
    if (c === '[' && words.length > 0) {
      const end = text.indexOf(']', i + 1);
      i = skip(i, end < 0 ? text.length : end + 1);
      continue;
    }
    if (c === '$') {
      DOLLAR_TAG.lastIndex = i;
      const tag = DOLLAR_TAG.exec(text);
      if (tag) {
        const close = text.indexOf(tag[0], i + tag[0].length);
        i = skip(i, close < 0 ? text.length : close + tag[0].length);
        continue;
      }
    }
    WORD.lastIndex = i;
    const word = WORD.exec(text);
    if (word) {
      const upper = word[0].toUpperCase();
      if (words.length < 3) words.push(upper);
      if (words[0] === 'CREATE' && words.length > 1) {
        if (upper === 'BEGIN') blockDepth++;
        else if (upper === 'CASE' && blockDepth > 0) caseDepth++;
        else if (upper === 'END' && blockDepth > 0) {
          if (caseDepth > 0) caseDepth--;
          else blockDepth--;
        }
      }
      i += word[0].length;
      continue;
    }
    if (words.length < 3) words.push(c);
    i++;
  }
  finish(text.length);
  return { statements: statements.filter((s) => s.text.trim() !== ''), metaCommands };
}

function endOfBlockComment(text: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    if (text.startsWith('/*', i)) {
      depth++;
      i += 2;
    } else if (text.startsWith('*/', i)) {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return text.length;
}

/** End of a quoted string or identifier; a doubled quote escapes it, and backslash too in E'' strings. */
function endOfQuoted(text: string, from: number, quote: string, backslashEscapes: boolean): number {
  let i = from + 1;
  while (i < text.length) {
    const c = text[i];
    if (backslashEscapes && c === '\\') i += 2;
    else if (c === quote) {
      if (text[i + 1] === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return text.length;
}

/** BEGIN, COMMIT, ROLLBACK and friends: transaction control that tidemark does itself. */
export function isTransactionControl(statement: Statement): boolean {
  const words = statement.text.trim().split(/\s+/, 3).map((w) => w.toUpperCase().replace(/;$/, ''));
  const [first, second] = words;
  if (first === 'BEGIN' || first === 'COMMIT' || first === 'END' || first === 'ABORT') return true;
  if (first === 'START' && second === 'TRANSACTION') return true;
  // ROLLBACK TO SAVEPOINT stays inside the transaction and is fine.
  return first === 'ROLLBACK' && second !== 'TO';
}

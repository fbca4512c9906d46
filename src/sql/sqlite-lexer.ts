// SQLite's lexical rules (its tokenize.c): /* */ comments do not nest, strings are '' with no
// backslash escapes, identifiers may be quoted with "", [] or ``, and $name, :name, @name, #name
// are parameters, never quotes. Statements end at semicolons except inside CREATE TRIGGER ...
// BEGIN ... END, recognised from the statement's leading keywords as sqlite3_complete() does.
import { metaCommandsOf, statementsOf, type LexedSql, type StatementKind, type TokenGroup } from './statements.js';
import {
  endOfLineComment,
  endOfMetaCommand,
  endOfQuoted,
  endOfWord,
  isSpace,
  isWordChar,
  isWordStart,
  tokenize,
  UnclosedError,
  type Token,
} from './tokens.js';

export function tokenizeSqlite(text: string): Token[] {
  return tokenize(text, nextToken);
}

function nextToken(text: string, start: number, code: number): Token {
  const c = text[start]!;
  const token = (kind: Token['kind'], end: number): Token => ({ kind, start, end });
  // Not SQL to SQLite either; a portable file may carry psql's, and tidemark skips or refuses them alike.
  const meta = endOfMetaCommand(text, start);
  if (meta >= 0) return token('meta', meta);
  if (c === '-' && text[start + 1] === '-') return token('comment', endOfLineComment(text, start));
  if (c === '/' && text[start + 1] === '*') {
    const close = text.indexOf('*/', start + 2);
    // SQLite itself lets an unclosed comment run to the end; tidemark refuses it like the other unclosed runs.
    if (close < 0) throw new UnclosedError('block comment', start, '*/');
    return token('comment', close + 2);
  }
  if (c === "'") return token('quoted', endOfQuoted(text, start, "'", 'string'));
  if (c === '"') return token('quoted', endOfQuoted(text, start, '"', 'quoted identifier'));
  if (c === '`') return token('quoted', endOfQuoted(text, start, '`', 'quoted identifier'));
  if (c === '[') {
    const close = text.indexOf(']', start + 1);
    if (close < 0) throw new UnclosedError('[bracketed] identifier', start, ']');
    return token('quoted', close + 1);
  }
  if (c === ';') return token('semicolon', start + 1);
  if (c === '$' || c === '@' || c === ':' || c === '#') return token('other', endOfParameter(text, start));
  if (isWordStart(code)) {
    const end = endOfWord(text, start);
    return { kind: 'word', start, end, upper: text.slice(start, end).toUpperCase() };
  }
  if (code >= 48 && code <= 57) return token('other', endOfWord(text, start));
  return token('other', start + 1);
}

/** `$name`, with TCL's `::` and a `(...)` suffix that may hold anything but blanks (a semicolon too). */
function endOfParameter(text: string, from: number): number {
  let i = from + 1;
  let named = false;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (isWordChar(code)) {
      named = true;
      i++;
    } else if (text[i] === '(' && named) {
      i++;
      while (i < text.length && !isSpace(text.charCodeAt(i)) && text[i] !== ')') i++;
      return text[i] === ')' ? i + 1 : i;
    } else if (text[i] === ':' && text[i + 1] === ':') i += 2;
    else break;
  }
  return i;
}

// sqlite3_complete()'s states and the tokens that move between them (see SQLite's complete.c).
enum State {
  Invalid,
  Start,
  Normal,
  Explain,
  Create,
  Trigger,
  Semi,
  End,
}
enum Input {
  Semi,
  Space,
  Other,
  Explain,
  Create,
  Temp,
  Trigger,
  End,
}
const [INVALID, START, NORMAL, EXPLAIN, CREATE, TRIGGER, SEMI, END] = [
  State.Invalid,
  State.Start,
  State.Normal,
  State.Explain,
  State.Create,
  State.Trigger,
  State.Semi,
  State.End,
];
/** TRANSITIONS[state][input]: the inputs in Input's order, Semi to End. */
const TRANSITIONS: State[][] = [
  /* Invalid */ [START, INVALID, NORMAL, EXPLAIN, CREATE, NORMAL, NORMAL, NORMAL],
  /* Start */ [START, START, NORMAL, EXPLAIN, CREATE, NORMAL, NORMAL, NORMAL],
  /* Normal */ [START, NORMAL, NORMAL, NORMAL, NORMAL, NORMAL, NORMAL, NORMAL],
  /* Explain */ [START, EXPLAIN, EXPLAIN, NORMAL, CREATE, NORMAL, NORMAL, NORMAL],
  /* Create */ [START, CREATE, NORMAL, NORMAL, NORMAL, CREATE, TRIGGER, NORMAL],
  /* Trigger */ [SEMI, TRIGGER, TRIGGER, TRIGGER, TRIGGER, TRIGGER, TRIGGER, TRIGGER],
  /* Semi */ [SEMI, SEMI, TRIGGER, TRIGGER, TRIGGER, TRIGGER, TRIGGER, END],
  /* End */ [START, END, TRIGGER, TRIGGER, TRIGGER, TRIGGER, TRIGGER, TRIGGER],
];
const KEYWORD_INPUTS: Record<string, Input> = {
  EXPLAIN: Input.Explain,
  CREATE: Input.Create,
  TEMP: Input.Temp,
  TEMPORARY: Input.Temp,
  TRIGGER: Input.Trigger,
  END: Input.End,
};

function inputOf(token: Token): Input {
  if (token.kind === 'semicolon') return Input.Semi;
  if (token.kind === 'comment' || token.kind === 'meta') return Input.Space;
  return (token.upper !== undefined ? KEYWORD_INPUTS[token.upper] : undefined) ?? Input.Other;
}

/** A semicolon ends a statement when it brings sqlite3_complete() back to its start state. */
export function groupSqlite(tokens: Token[], text: string): TokenGroup[] {
  const groups: TokenGroup[] = [];
  let current: Token[] = [];
  let state = State.Start;
  for (const token of tokens) {
    state = TRANSITIONS[state]![inputOf(token)]!;
    if (token.kind === 'semicolon' && state === State.Start) {
      groups.push({ tokens: current, end: token.start });
      current = [];
    } else current.push(token);
  }
  groups.push({ tokens: current, end: text.length });
  return groups;
}

/** SQLite statements by their leading keywords (its grammar's cmd rules). */
export function classifySqlite(words: string[]): StatementKind {
  const [first, second, third] = words;
  switch (first) {
    case 'BEGIN':
      return 'transaction-start';
    case 'COMMIT':
    case 'END':
      return 'transaction-end';
    case 'ROLLBACK':
      return second === 'TO' || third === 'TO' ? 'savepoint' : 'transaction-end';
    case 'SAVEPOINT':
    case 'RELEASE':
      return 'savepoint';
    case 'VACUUM':
      return 'no-transaction';
    case 'COPY': // psql's, not SQLite's; a portable file may hold one
      return words.includes('STDIN') ? 'copy-from-stdin' : 'other';
  }
  return 'other';
}

export function lexSqlite(text: string): LexedSql {
  const tokens = tokenizeSqlite(text);
  const statements = statementsOf(text, groupSqlite(tokens, text), classifySqlite);
  return { tokens, statements, metaCommands: metaCommandsOf(text, tokens) };
}

// PostgreSQL's lexical rules, as the server (with standard_conforming_strings = on, which tidemark's
// session pins) and psql read a file: nested /* */ comments, '' strings where a backslash is an
// ordinary character, E'' strings where it escapes, "" identifiers, $tag$ quotes, and psql
// meta-commands on lines of their own. It finds statement boundaries and meta-commands for every
// file, and classifies statements when the real parser (postgres-parser.ts) rejects a file.
import {
  leadingWords,
  metaCommandsOf,
  statementsOf,
  type LexedSql,
  type StatementKind,
  type TokenGroup,
} from './statements.js';
import {
  endOfLineComment,
  endOfMetaCommand,
  endOfQuoted,
  endOfWord,
  isWordStart,
  tokenize,
  UnclosedError,
  type Token,
} from './tokens.js';

const DOLLAR_TAG = /\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/y;

export function tokenizePostgres(text: string): Token[] {
  return tokenize(text, nextToken);
}

function nextToken(text: string, start: number, code: number): Token {
  const c = text[start]!;
  const token = (kind: Token['kind'], end: number): Token => ({ kind, start, end });
  const meta = endOfMetaCommand(text, start);
  if (meta >= 0) return token('meta', meta);
  if (c === '-' && text[start + 1] === '-') return token('comment', endOfLineComment(text, start));
  if (c === '/' && text[start + 1] === '*') return token('comment', endOfNestedComment(text, start));
  if (c === "'") return token('quoted', endOfQuoted(text, start, "'", 'string'));
  if (c === '"') return token('quoted', endOfQuoted(text, start, '"', 'quoted identifier'));
  if (c === ';') return token('semicolon', start + 1);
  if (c === '$') {
    DOLLAR_TAG.lastIndex = start;
    const tag = DOLLAR_TAG.exec(text)?.[0];
    if (tag) {
      const close = text.indexOf(tag, start + tag.length);
      if (close < 0) throw new UnclosedError(`dollar-quoted string ${tag}`, start, tag);
      return token('quoted', close + tag.length);
    }
  }
  if (isWordStart(code)) {
    // E'...' is one token only where the E starts it: in `some'x'` the quote follows a longer word.
    if ((c === 'E' || c === 'e') && text[start + 1] === "'") {
      return token('quoted', endOfQuoted(text, start + 1, "'", 'string', true));
    }
    const end = endOfWord(text, start);
    return { kind: 'word', start, end, upper: text.slice(start, end).toUpperCase() };
  }
  // Digits and dots only: in `1e'x'` the server reads 1 and then an E'' string.
  if (code >= 48 && code <= 57) return token('other', endOfNumber(text, start));
  return token('other', start + 1);
}

function endOfNumber(text: string, from: number): number {
  let i = from;
  while (i < text.length && /[0-9.]/.test(text[i]!)) i++;
  return i;
}

/** PostgreSQL's block comments nest: `/* a /* b *\/ c *\/` is one comment. */
function endOfNestedComment(text: string, from: number): number {
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
  throw new UnclosedError('block comment', from, '*/');
}

/**
 * Statements end at a semicolon, except inside the BEGIN ... END body of CREATE [OR REPLACE]
 * FUNCTION/PROCEDURE (BEGIN ATOMIC), tracked as psql does: BEGIN and CASE open, END closes, only
 * outside parentheses and only in a statement that starts with those keywords.
 */
export function groupPostgres(tokens: Token[], text: string): TokenGroup[] {
  const groups: TokenGroup[] = [];
  let current: Token[] = [];
  let depth = 0;
  let parens = 0;
  for (const token of tokens) {
    if (token.kind === 'semicolon' && depth === 0) {
      groups.push({ tokens: current, end: token.start });
      current = [];
      parens = 0;
      continue;
    }
    current.push(token);
    const c = text[token.start];
    if (token.kind === 'other' && (c === '(' || c === ')')) parens += c === '(' ? 1 : -1;
    if (token.kind !== 'word' || parens !== 0 || !isRoutineBody(leadingWords(text, current, 4))) continue;
    if (token.upper === 'BEGIN' || (token.upper === 'CASE' && depth > 0)) depth++;
    else if (token.upper === 'END' && depth > 0) depth--;
  }
  groups.push({ tokens: current, end: text.length });
  return groups;
}

function isRoutineBody(words: string[]): boolean {
  const [create, second, third, fourth] = words;
  if (create !== 'CREATE') return false;
  if (second === 'FUNCTION' || second === 'PROCEDURE') return true;
  return second === 'OR' && third === 'REPLACE' && (fourth === 'FUNCTION' || fourth === 'PROCEDURE');
}

const NO_TRANSACTION_STARTS = [
  'VACUUM',
  'CREATE DATABASE',
  'DROP DATABASE',
  'ALTER SYSTEM',
  'CREATE TABLESPACE',
  'DROP TABLESPACE',
  'CREATE INDEX CONCURRENTLY',
  'CREATE UNIQUE INDEX CONCURRENTLY',
  'DROP INDEX CONCURRENTLY',
  'REINDEX',
];

/** PostgreSQL statements by their leading keywords: the fallback when the parser cannot read a file. */
export function classifyPostgres(words: string[]): StatementKind {
  const [first, second, third] = words;
  switch (first) {
    case 'BEGIN':
      return 'transaction-start';
    case 'START':
      return second === 'TRANSACTION' ? 'transaction-start' : 'other';
    case 'COMMIT':
    case 'END':
    case 'ABORT':
      return 'transaction-end';
    case 'ROLLBACK':
      return second === 'TO' || third === 'TO' ? 'savepoint' : 'transaction-end';
    case 'PREPARE':
      return second === 'TRANSACTION' ? 'transaction-end' : 'other';
    case 'SAVEPOINT':
    case 'RELEASE':
      return 'savepoint';
    case 'COPY':
      return words.includes('STDIN') ? 'copy-from-stdin' : 'other';
    case 'SET':
      return words.slice(1, 3).includes('STANDARD_CONFORMING_STRINGS') ? 'string-syntax' : 'other';
  }
  const phrase = words.join(' ');
  // REINDEX ... CONCURRENTLY only; a plain REINDEX may run in a transaction (REINDEX SYSTEM/DATABASE aside).
  const noTransaction = NO_TRANSACTION_STARTS.some(
    (start) => phrase.startsWith(start) && (start !== 'REINDEX' || words.includes('CONCURRENTLY')),
  );
  return noTransaction ? 'no-transaction' : 'other';
}

/** Statements (classified by their leading keywords) and psql meta-commands of a PostgreSQL file. */
export function lexPostgres(text: string): LexedSql {
  const tokens = tokenizePostgres(text);
  const statements = statementsOf(text, groupPostgres(tokens, text), classifyPostgres);
  return { tokens, statements, metaCommands: metaCommandsOf(text, tokens) };
}

// The statements of a migration file as the drivers and the file checks use them: where each one
// starts and ends, and what kind of statement it is, decided by the dialect's own rules.
import { Locator, type Token } from './tokens.js';

export type SqlDialect = 'postgres' | 'sqlite';

/**
 * What a statement does to the transaction around it, from its leading keywords (or, on
 * PostgreSQL, from its parse tree):
 * - `transaction-start`: BEGIN, START TRANSACTION;
 * - `transaction-end`: COMMIT, END, ROLLBACK, ABORT, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED;
 * - `savepoint`: SAVEPOINT, RELEASE, ROLLBACK TO (they stay inside the transaction);
 * - `no-transaction`: refused inside a transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...);
 * - `copy-from-stdin`: COPY ... FROM STDIN, whose rows only psql can send;
 * - `string-syntax`: SET standard_conforming_strings, which would make the server read the strings
 *   of later statements otherwise than tidemark's session (pinned to on) and its lexers do.
 */
export type StatementKind =
  | 'transaction-start'
  | 'transaction-end'
  | 'savepoint'
  | 'no-transaction'
  | 'copy-from-stdin'
  | 'string-syntax'
  | 'other';

export interface Statement {
  /** From the first token (comments before it excluded) up to the terminating semicolon, without it. */
  text: string;
  /** 0-based offset of the first token in the file. */
  offset: number;
  /** 1-based line and column of the first token. */
  line: number;
  column: number;
  /** The first word as written, upper-cased ('' when the statement starts with something else). */
  keyword: string;
  kind: StatementKind;
}

export interface MetaCommand {
  /** The whole line from the backslash, as written. */
  text: string;
  line: number;
  column: number;
  offset: number;
}

export interface LexedSql {
  tokens: Token[];
  statements: Statement[];
  metaCommands: MetaCommand[];
}

/** A statement's tokens as a lexer split them, and where it ends: its semicolon, or the end of the text. */
export interface TokenGroup {
  tokens: Token[];
  end: number;
}

/** Upper-cased words, other tokens as written: what classification rules compare. */
export function leadingWords(text: string, tokens: Token[], count: number): string[] {
  const words: string[] = [];
  for (const token of tokens) {
    if (words.length >= count) break;
    if (token.kind === 'comment' || token.kind === 'meta') continue;
    words.push(token.upper ?? text.slice(token.start, token.end));
  }
  return words;
}

/** A dialect's rules: a statement's kind from its words (upper-cased) and other tokens, in order. */
export type Classifier = (words: string[]) => StatementKind;

/** The groups that hold a token besides comments and meta-commands, as statements classified by `classify`. */
export function statementsOf(text: string, groups: TokenGroup[], classify: Classifier): Statement[] {
  const locator = new Locator(text);
  const statements: Statement[] = [];
  for (const { tokens, end } of groups) {
    const first = tokens.find((t) => t.kind !== 'comment' && t.kind !== 'meta');
    if (!first) continue;
    const words = leadingWords(text, tokens, Infinity);
    statements.push(statementAt(text, locator, first.start, end, classify(words)));
  }
  return statements;
}

export function statementAt(text: string, at: Locator, offset: number, end: number, kind: StatementKind): Statement {
  const { line, column } = at.at(offset);
  const keyword = /^[A-Za-z_]+/.exec(text.slice(offset, offset + 40))?.[0].toUpperCase() ?? '';
  return { text: text.slice(offset, end), offset, line, column, keyword, kind };
}

/** The kinds a transactional migration may not contain: they would end or start tidemark's transaction. */
export function controlsTransaction(statement: Statement): boolean {
  return statement.kind === 'transaction-start' || statement.kind === 'transaction-end';
}

/** The psql meta-commands among a text's tokens. */
export function metaCommandsOf(text: string, tokens: Token[]): MetaCommand[] {
  const metas = tokens.filter((t) => t.kind === 'meta');
  if (metas.length === 0) return [];
  const locator = new Locator(text);
  return metas.map((t) => ({ text: text.slice(t.start, t.end), ...locator.at(t.start), offset: t.start }));
}

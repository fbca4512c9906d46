// Where in a migration file a PostgreSQL error happened, and the MigrationError that says so.
import type postgres from 'postgres';
import { MigrationError } from '../errors.js';
import type { Script } from '../script.js';
import { locate, offsetAfterCharacters, sourceExcerpt } from '../source.js';

/** The error as the server sent it, or null for anything else (a lost connection, a bug). */
export function serverError(error: unknown): postgres.PostgresError | null {
  return error instanceof Error && 'severity' in error ? (error as postgres.PostgresError) : null;
}

/**
 * Errors that say something about the SQL, so that running the statements again reproduces them.
 * Not those about the moment: a lost connection (08), a deadlock or serialization failure (40), lack of
 * resources (53), a lock not available (55), a timeout or shutdown (57), the system (58, XX).
 */
export function repeatable(e: postgres.PostgresError): boolean {
  return !/^(08|40|53|55|57|58|XX)/.test(e.code ?? 'XX');
}

/** The same failure, met again when its statement ran alone. */
export function sameError(a: postgres.PostgresError, b: postgres.PostgresError): boolean {
  return a.code === b.code && a.message === b.message;
}

/**
 * The 0-based offset in `script.text` where the error is, or null when it cannot be told. In order:
 * the server's position; the position inside a function body or DO block (internal_position in
 * internal_query), found in the file; the line of a DO block the PL/pgSQL context names; the start of
 * the failing statement, when known. `pieceOffset` is where the text that was sent starts in the
 * file; a negative one is the length of tidemark's own (ASCII) text sent before the file.
 */
export function errorOffset(
  e: postgres.PostgresError,
  script: Script,
  pieceOffset: number,
  statementStart?: number,
): number | null {
  const { text } = script;
  if (e.position) {
    // The server counts characters; positions before the file's text are in tidemark's own statements.
    const characters = Number(e.position) - 1 + Math.min(pieceOffset, 0);
    return characters < 0 ? null : inFile(text, offsetAfterCharacters(text, Math.max(pieceOffset, 0), characters));
  }
  const range = statementRange(script, statementStart);
  return internalOffset(text, e, range) ?? blockLineOffset(text, e, range) ?? statementStart ?? null;
}

function inFile(text: string, offset: number): number | null {
  return offset >= 0 && offset < text.length ? offset : null;
}

/** The failing statement's [start, end) in the file; the whole file when it is not known. */
function statementRange(script: Script, start: number | undefined): [number, number] {
  if (start === undefined) return [0, script.text.length];
  const next = script.statements.find((s) => s.offset > start);
  return [start, next?.offset ?? script.text.length];
}

/**
 * internal_query is the SQL of a statement inside PL/pgSQL (PERFORM x becomes SELECT x): the rest of
 * it from internal_position on is looked for in the file, and used when it is found exactly once.
 */
function internalOffset(text: string, e: postgres.PostgresError, [from, to]: [number, number]): number | null {
  if (!e.internal_query || !e.internal_position) return null;
  const query = e.internal_query;
  const rest = query.slice(offsetAfterCharacters(query, 0, Number(e.internal_position) - 1)).trimEnd();
  if (rest.trim() === '') return null;
  const found = text.indexOf(rest, from);
  if (found < 0 || found + rest.length > to) return null;
  const again = text.indexOf(rest, found + 1);
  return again >= 0 && again + rest.length <= to ? null : found;
}

/**
 * A DO block's PL/pgSQL error names a line of the block ("inline_code_block line 3"), counted from the
 * line its dollar quote opens on: that line's first token in the file.
 */
function blockLineOffset(text: string, e: postgres.PostgresError, [from, to]: [number, number]): number | null {
  const line = /PL\/pgSQL function inline_code_block line (\d+)/.exec(e.where ?? '')?.[1];
  if (!line || (from === 0 && to === text.length)) return null;
  const quote = /\$([A-Za-z_][A-Za-z_0-9]*)?\$/g;
  quote.lastIndex = from;
  const open = quote.exec(text);
  if (!open || open.index >= to) return null;
  let start = open.index;
  for (let n = 1; n < Number(line); n++) {
    start = text.indexOf('\n', start) + 1;
    if (start === 0 || start >= to) return null;
  }
  if (Number(line) > 1) start += /^[ \t]*/.exec(text.slice(start))![0].length;
  return start;
}

/** Fixes for server errors that are about how the file runs rather than what it says. */
const SERVER_HINTS: Record<string, string> = {
  '25001':
    'this statement cannot run inside a transaction: make the first line of the file -- tidemark:no-transaction ' +
    '(and keep such statements in a file of their own)',
  '57014':
    'the migration ran longer than --statement-timeout allows; raise it, or split the work into smaller migrations',
  '55P03':
    'a table it needs stayed locked by other sessions for longer than --pg-lock-timeout, at every retry; ' +
    'end the sessions named above, or run again when they are done (--lock-retries, --pg-lock-timeout)',
};

/** The server's error as file:line:column with the source line, a caret, and the server's detail and hint. */
export function scriptError(e: postgres.PostgresError, script: Script, at: number | null): MigrationError {
  const where = at === null ? null : locate(script.text, at);
  const context = where ? sourceExcerpt(script.text, where) : [];
  if (e.detail) context.push(`detail: ${e.detail}`);
  if (e.where) context.push(`where: ${e.where}`);
  const path = script.file.path;
  const location = where ? `${path}:${where.line}:${where.column}` : path;
  return new MigrationError(`${location}: ${e.message}`, {
    file: path,
    line: where?.line,
    column: where?.column,
    context,
    hint: e.hint ?? SERVER_HINTS[e.code] ?? `fix the SQL in ${path} and run again`,
    code: e.code,
  });
}

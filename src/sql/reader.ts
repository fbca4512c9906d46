// Reading a migration's text into statements. Up front, before anything reaches a database, it
// refuses what the servers would read otherwise than tidemark does: NUL (SQLite stops reading at it,
// PostgreSQL cannot take it) and a quote or comment that never closes. Each refusal is exit 2 naming
// file:line:column. (Bytes that are not UTF-8 are refused when the file is read: text.ts.)
import { UsageError } from '../errors.js';
import { parsePostgres } from './postgres-parser.js';
import { lexPostgres } from './postgres-lexer.js';
import { lexSqlite } from './sqlite-lexer.js';
import type { LexedSql, SqlDialect, Statement } from './statements.js';
import { Locator, UnclosedError } from './tokens.js';

/** Tokens, statements and meta-commands on the dialect's rules; NUL and unclosed quotes or comments are refused. */
export function lexSql(path: string, text: string, dialect: SqlDialect): LexedSql {
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    const why = 'SQLite stops reading a file at a NUL byte and PostgreSQL refuses one';
    const escapes = "X'00' (SQLite), '\\x00'::bytea (PostgreSQL)";
    throw refusal(path, text, nul, 'a NUL byte', `remove it (${why}); write such data as an escape: ${escapes}`);
  }
  try {
    return dialect === 'postgres' ? lexPostgres(text) : lexSqlite(text);
  } catch (error) {
    if (!(error instanceof UnclosedError)) throw error;
    const rules = dialect === 'postgres' ? 'PostgreSQL' : 'SQLite';
    const hint =
      `close it with ${error.closer} (read on ${rules}'s rules), or look for a quote before it that is missing ` +
      'its pair; the database would read the rest of the file into it';
    throw refusal(path, text, error.offset, `an unclosed ${error.what}`, hint);
  }
}

/**
 * The statements of a text already checked by lexSql, as the server will run them: on PostgreSQL
 * from its own parser, with the lexer's reading where the parser rejects the text.
 */
export async function statementsToRun(text: string, dialect: SqlDialect): Promise<Statement[]> {
  const lexed = dialect === 'postgres' ? lexPostgres(text) : lexSqlite(text);
  if (dialect === 'sqlite') return lexed.statements;
  return (await parsePostgres(text, lexed.tokens)) ?? lexed.statements;
}

function refusal(path: string, text: string, offset: number, what: string, hint: string): UsageError {
  const { line, column } = new Locator(text).at(offset);
  return new UsageError(`${path}:${line}:${column}: ${what}; nothing was run`, { file: path, line, column, hint });
}

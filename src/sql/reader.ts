// Reading a migration file to run it. Up front, before anything reaches a database, it refuses what
// the servers would read otherwise than tidemark does: bytes that are not UTF-8, NUL (SQLite stops
// reading at it, PostgreSQL cannot take it), and a quote or comment that never closes. Each refusal
// is exit 2 naming file:line:column.
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { parsePostgres } from './postgres-parser.js';
import { lexPostgres } from './postgres-lexer.js';
import { lexSqlite } from './sqlite-lexer.js';
import type { LexedSql, SqlDialect, Statement } from './statements.js';
import { Locator, UnclosedError } from './tokens.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A file's text as checksummed and run: UTF-8 (or an error naming the bad byte), no BOM, LF line ends. */
export function readSqlFile(path: string, fullPath: string): string {
  const bytes = readFileSync(fullPath);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    const at = firstInvalidUtf8(bytes);
    const byte = `0x${at.byte.toString(16).toUpperCase().padStart(2, '0')}`;
    throw new UsageError(`${path}:${at.line}:${at.column}: not valid UTF-8 text (byte ${byte})`, {
      file: path,
      line: at.line,
      column: at.column,
      hint: `save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 ${path}); tidemark and psql read files as UTF-8`,
    });
  }
  return normalizeText(text);
}

export function normalizeText(text: string): string {
  return (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).replace(/\r\n/g, '\n');
}

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

/** Line, column (in characters) and value of the first byte that is not valid UTF-8. */
function firstInvalidUtf8(bytes: Uint8Array): { line: number; column: number; byte: number } {
  let lineStart = 0;
  let line = 1;
  while (lineStart <= bytes.length) {
    const newline = bytes.indexOf(10, lineStart);
    const end = newline < 0 ? bytes.length : newline;
    try {
      utf8.decode(bytes.subarray(lineStart, end));
    } catch {
      // Byte by byte: the decoder throws at the first byte that cannot start or continue a character.
      // The offending character starts where an unfinished multi-byte sequence began, if one is open.
      const decoder = new TextDecoder('utf-8', { fatal: true });
      let chars = 0;
      let sequenceStart = -1;
      for (let i = lineStart; i < end; i++) {
        let decoded: string;
        try {
          decoded = decoder.decode(bytes.subarray(i, i + 1), { stream: true });
        } catch {
          return { line, column: chars + 1, byte: bytes[sequenceStart >= 0 ? sequenceStart : i]! };
        }
        chars += Array.from(decoded).length;
        if (decoded.length > 0) sequenceStart = -1;
        else if (sequenceStart < 0) sequenceStart = i;
      }
      return { line, column: chars + 1, byte: bytes[sequenceStart >= 0 ? sequenceStart : end - 1]! };
    }
    if (newline < 0) break;
    lineStart = newline + 1;
    line++;
  }
  return { line: 1, column: 1, byte: bytes[0] ?? 0 };
}

// A migration file read as its dialect runs it: directives, psql's harmless meta-commands and a
// BEGIN/COMMIT wrapper taken out, and what no migrator can run (other meta-commands, COPY FROM stdin,
// transaction control in a transactional file) refused with file:line:column. Loaded only when a file
// must run or be checked: a no-op migrate hashes files (files.ts) and never lexes them.
import { UsageError } from './errors.js';
import {
  ALLOW_COMMENT,
  checksumOf,
  DIRECTIVE_LINE,
  parseDirectives,
  readMigrationText,
  type Dialect,
  type SqlFile,
} from './files.js';
import { lexSql, statementsToRun } from './sql/reader.js';
import { controlsTransaction, type Statement } from './sql/statements.js';
import { blankOut } from './sql/tokens.js';

/** A file's text, ready to run, with what tidemark records about it. */
export interface Script {
  file: SqlFile;
  /** The SQL to run: the file's text with skipped psql lines blanked out (offsets and lines unchanged). */
  text: string;
  /** The statements of `text`, for drivers that run one statement at a time. */
  statements: Statement[];
  /** Checksum of the file as written (BOM and CRLF aside). */
  checksum: string;
  /** `-- tidemark:no-transaction`: run outside a transaction, guarded by a dirty ledger row. */
  noTransaction: boolean;
  /** `-- tidemark:foreign-keys-off` (SQLite): foreign keys off around the transaction, checked before commit. */
  foreignKeysOff: boolean;
  /** What was skipped and why, for a notice when the script runs. */
  skipped: string[];
}

/** Reads a file as `dialect` runs it and tidemark records it: BOM removed, CRLF turned into LF, directives parsed. */
export function loadScript(file: SqlFile, dialect: Dialect): Promise<Script> {
  return scriptFromText(file, readMigrationText(file), dialect);
}

/**
 * A script from text already read and normalized: a file's, or a rollback stored in the ledger when
 * its migration was applied (then `file` names where it came from). Read on the dialect's rules.
 */
export async function scriptFromText(file: SqlFile, text: string, dialect: Dialect): Promise<Script> {
  const directives = parseDirectives(file.path, text);
  const noTransaction = directives.has('no-transaction');
  const foreignKeysOff = directives.has('foreign-keys-off');
  if (foreignKeysOff) checkForeignKeysOff(file.path, noTransaction, dialect);
  if (directives.has('irreversible') && file.kind === 'forward') throw irreversibleInForward(file, text);
  checkMisplacedDirectives(file.path, text);
  const runnable = await runnableText(file.path, text, noTransaction, dialect);
  return { file, checksum: checksumOf(text), noTransaction, foreignKeysOff, ...runnable };
}

/**
 * The directive is SQLite's table-rebuild tool: it needs the transaction it wraps, and PostgreSQL has no such switch.
 */
function checkForeignKeysOff(path: string, noTransaction: boolean, dialect: Dialect): void {
  if (dialect === 'postgres') {
    throw new UsageError(
      `${path}: -- tidemark:foreign-keys-off is for SQLite table rebuilds; PostgreSQL has no such setting`,
      {
        file: path,
        hint:
          `rename the file to ${path.replace(/(\.postgres)?\.sql$/, '.sqlite.sql')} (a SQLite variant), and on ` +
          `PostgreSQL change the table with ALTER TABLE`,
      },
    );
  }
  if (noTransaction) {
    throw new UsageError(
      `${path}: -- tidemark:foreign-keys-off needs the transaction that -- tidemark:no-transaction takes away`,
      {
        file: path,
        hint:
          'remove one of the two directives: foreign-keys-off runs the file in a transaction and checks the keys ' +
          'before commit',
      },
    );
  }
}

function irreversibleInForward(file: SqlFile, text: string): UsageError {
  const line = text.split('\n').findIndex((l) => /^--\s*tidemark\s*:\s*irreversible\b/i.test(l.trim())) + 1;
  const message = `${file.path}:${line}: -- tidemark:irreversible belongs in the rollback file, not in the migration`;
  return new UsageError(message, {
    file: file.path,
    line,
    hint: `move the line to the top of ${file.versionText}_${file.name}_rollback.sql (it says: do not undo this)`,
  });
}

const SKIPPED_META_COMMANDS = /^\\(set\s+ON_ERROR_STOP\s+(on|1|true)\s*|timing(\s+\w+)?\s*|echo\b.*)$/i;

/**
 * What of a file tidemark runs. psql's harmless meta-commands and a BEGIN/COMMIT wrapper around the
 * whole file (tidemark's own transaction takes its place) are blanked out; any other meta-command,
 * COPY FROM stdin, or transaction control inside a transactional migration is an error naming
 * file:line:column. Statements are read on the dialect's own rules.
 */
async function runnableText(
  path: string,
  text: string,
  noTransaction: boolean,
  dialect: Dialect,
): Promise<Pick<Script, 'text' | 'statements' | 'skipped'>> {
  const { metaCommands, statements } = lexSql(path, text, dialect);
  // Before the meta-commands: the rows after COPY FROM stdin end with psql's \. line.
  refuseCopyFromStdin(path, statements);
  const skipped: string[] = [];
  const blank: { offset: number; length: number }[] = [];
  for (const meta of metaCommands) {
    if (!SKIPPED_META_COMMANDS.test(meta.text)) {
      const name = meta.text.split(/\s/)[0];
      throw new UsageError(
        `${path}:${meta.line}:${meta.column}: psql meta-command ${name} is not SQL; tidemark cannot run it`,
        {
          file: path,
          line: meta.line,
          column: meta.column,
          hint:
            'remove the line (inline what it does as SQL); only \\set ON_ERROR_STOP on, \\timing and \\echo are ' +
            'skipped',
        },
      );
    }
    skipped.push(`${path}:${meta.line}: skipped psql meta-command ${meta.text.trim()}`);
    blank.push({ offset: meta.offset, length: meta.text.length });
  }
  let runnable = blankOut(text, blank);
  let body = await statementsToRun(runnable, dialect);
  refuseCopyFromStdin(path, body);
  refuseStringSyntax(path, body);
  if (!noTransaction) {
    const wrapper = fileWrapper(body);
    if (wrapper) {
      const [first, last] = wrapper;
      const wrapperName = `${first.keyword} ... ${last.keyword}`;
      skipped.push(
        `${path}:${first.line}: the file's own ${wrapperName} wrapper is replaced by tidemark's transaction`,
      );
      runnable = blankOut(
        runnable,
        [first, last].map((st) => ({ offset: st.offset, length: st.text.length + 1 })),
      );
      body = body.slice(1, -1);
    }
    checkTransactional(path, body);
  }
  return { text: runnable, statements: body, skipped };
}

function refuseCopyFromStdin(path: string, statements: Statement[]): void {
  const copy = statements.find((st) => st.kind === 'copy-from-stdin');
  if (copy) {
    throw new UsageError(`${where(path, copy)}: COPY ... FROM stdin needs data from psql; tidemark cannot feed it`, {
      ...at(path, copy),
      hint: 'load the rows with INSERT statements instead (or COPY from a server-side file)',
    });
  }
}

function refuseStringSyntax(path: string, statements: Statement[]): void {
  const set = statements.find((st) => st.kind === 'string-syntax');
  if (set) {
    const message = 'SET standard_conforming_strings would change how the server reads later strings';
    throw new UsageError(`${where(path, set)}: ${message}`, {
      ...at(path, set),
      hint:
        "remove it: tidemark runs every file with standard_conforming_strings = on; write E'...' for backslash " +
        'escapes',
    });
  }
}

/** A file that starts with BEGIN (or START TRANSACTION) and ends with COMMIT (or END), as psql -f users write it. */
export function fileWrapper(statements: Statement[]): [Statement, Statement] | null {
  const [first] = statements;
  const last = statements.at(-1);
  if (statements.length < 2 || first?.kind !== 'transaction-start' || last?.kind !== 'transaction-end') return null;
  return /^(COMMIT|END)$/.test(last.keyword) ? [first, last] : null;
}

/** A transactional file may not end or start transactions, nor hold statements the server refuses inside one. */
function checkTransactional(path: string, statements: Statement[]): void {
  const control = statements.find(controlsTransaction);
  if (control) {
    const message = `${control.keyword} inside a migration; tidemark runs each migration in its own transaction`;
    throw new UsageError(`${where(path, control)}: ${message}`, {
      ...at(path, control),
      hint:
        'remove the transaction statements (run the file by hand with psql -1 for the same effect), ' +
        'or make the first line -- tidemark:no-transaction if it must manage transactions itself',
    });
  }
  const outside = statements.find((st) => st.kind === 'no-transaction');
  if (outside) {
    const message = `${opening(outside)} cannot run inside a transaction block, and this migration runs in one`;
    throw new UsageError(`${where(path, outside)}: ${message}`, {
      ...at(path, outside),
      hint:
        'make the first line of the file -- tidemark:no-transaction (best with this statement alone in its ' +
        'migration)',
    });
  }
}

function where(path: string, statement: Statement): string {
  return `${path}:${statement.line}:${statement.column}`;
}

function at(path: string, statement: Statement): { file: string; line: number; column: number } {
  return { file: path, line: statement.line, column: statement.column };
}

/** The statement's first line, shortened, for a message: `CREATE INDEX CONCURRENTLY trades_symbol_idx ON ...`. */
function opening(statement: Statement): string {
  const line = statement.text.split('\n', 1)[0]!.trim();
  return line.length > 60 ? `${line.slice(0, 57)}...` : line;
}

/**
 * A `-- tidemark:` comment below the leading comment block is not a directive: psql and tidemark would
 * both ignore it, and the file would run in a transaction although its author meant otherwise.
 */
function checkMisplacedDirectives(path: string, text: string): void {
  const lines = text.split('\n');
  let leading = true;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (leading && (line === '' || line.startsWith('--'))) continue;
    leading = false;
    const directive = DIRECTIVE_LINE.exec(line);
    if (directive && directive[1]!.toLowerCase() !== ALLOW_COMMENT) {
      throw new UsageError(
        `${path}:${i + 1}: "-- tidemark:${directive[1]}" is not at the top of the file, so it is not a directive`,
        {
          file: path,
          line: i + 1,
          hint: 'move the directive to the comment lines at the very top of the file, before any SQL or /* */ comment',
        },
      );
    }
  }
}

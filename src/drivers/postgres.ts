import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import type { TableName } from '../config.js';
import { ConnectionError, MigrationError } from '../errors.js';
import type { Script } from '../files.js';
import type { LedgerRow } from '../plan.js';
import {
  ADDED_COLUMNS,
  LEDGER_INSERT_COLUMNS,
  rollbackValues,
  historyQuery,
  ledgerQuery,
  rowChangeColumns,
  stepRecords,
  toHistoryRow,
  toLedgerRow,
  assertLedgerLayout,
  type Driver,
  type HistoryEntry,
  type HistoryRow,
  type LedgerEntry,
  type LockOptions,
  type RowChange,
  type ShellSql,
  type Step,
} from './driver.js';
import { locate, offsetAfterCharacters, sourceExcerpt } from '../source.js';
import type { Snapshot } from '../schema.js';
import { takeRunLock, type RunLock } from './postgres-lock.js';
import { readPostgresSnapshot, tidemarkTables } from './postgres-schema.js';

export interface PostgresOptions {
  url: string;
  description: string;
  table: TableName;
  onNotice: (message: string) => void;
  timeouts: { statementTimeout: string | null; pgLockTimeout: string | null };
}

const quote = (identifier: string) => `"${identifier}"`;

/** Connects one reserved session (the one a later lock will live on) and checks it answers. */
export async function connectPostgres(options: PostgresOptions): Promise<Driver> {
  const pool = postgres(options.url, {
    max: 1,
    // 25P01: tidemark's own ROLLBACK after a file that failed to parse, so no transaction had begun.
    onnotice: (notice) => notice.code !== '25P01' && options.onNotice(String(notice.message)),
    connection: { application_name: 'tidemark' },
    // Migration files are run as text; no result needs type conversion beyond what we cast in SQL.
    fetch_types: false,
  });
  let session: postgres.ReservedSql;
  let user: string;
  try {
    // Query before reserve(): postgres.js 3.4 never resolves reserve() on a fresh pool when fetch_types is off.
    // PostgreSQL 14+ also checks the client socket while a statement runs, so a runner killed mid-migration
    // (kill -9) has its statement cancelled, its transaction rolled back and its lock freed within a second.
    [{ user }] = (await pool`
      select current_user as user,
             case when current_setting('server_version_num')::int >= 140000
                  then set_config('client_connection_check_interval', '1000', false) end as checking`) as unknown as [{ user: string }];
    session = await pool.reserve();
  } catch (error) {
    await pool.end({ timeout: 0 }).catch(() => {});
    throw connectionError(error, options.description);
  }
  return new PostgresDriver(pool, session, options, `${user}@${hostname()}`);
}

/** Errors meaning the server is not there (yet), as opposed to one that answered and said no. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'CONNECT_TIMEOUT', 'CONNECTION_CLOSED', '57P03']);

function connectionError(error: unknown, description: string): ConnectionError {
  const e = error as { code?: string; message?: string };
  const reason = e.code === 'ECONNREFUSED' ? 'connection refused (is the server running, and on this port?)' : (e.message ?? String(error));
  return new ConnectionError(`could not connect to ${description}: ${reason}`, {
    unreachable: UNREACHABLE.has(e.code ?? ''),
    hint:
      e.code === '28P01' || e.code === '28000'
        ? 'check the user name and password in DATABASE_URL'
        : e.code === '3D000'
          ? 'create the database first (createdb), or fix its name in DATABASE_URL'
          : 'check DATABASE_URL (host, port, database) and that the server accepts connections from here',
  });
}

class PostgresDriver implements Driver {
  readonly dialect = 'postgres' as const;
  readonly description: string;
  private readonly ledger: string;
  private readonly history: string;
  private runLock: RunLock | undefined;

  constructor(
    private readonly pool: postgres.Sql,
    private readonly session: postgres.ReservedSql,
    private readonly options: PostgresOptions,
    readonly appliedBy: string,
  ) {
    this.description = options.description;
    ({ ledger: this.ledger, history: this.history } = tidemarkTables(options.table));
  }

  /** The run lock (--lock), in postgres-lock.ts; none until lock() is called. */
  async lock(options: LockOptions): Promise<boolean> {
    this.runLock = await takeRunLock(options, { ...this.options, session: this.session });
    return true;
  }

  assertLocked(): void {
    this.runLock?.assertHeld();
  }

  async hasVersion(version: number): Promise<boolean> {
    return (await this.session.unsafe(`select 1 from ${this.ledger} where version = $1`, [version])).length > 0;
  }

  /** Column names of the ledger table, or null when it does not exist. */
  private async ledgerColumns(): Promise<Set<string> | null> {
    const rows = await this.session`
      select a.attname as name from pg_attribute a
      where a.attrelid = to_regclass(${this.ledger}) and a.attnum > 0 and not a.attisdropped`;
    const columns = rows.length === 0 ? null : new Set(rows.map((r) => r.name as string));
    assertLedgerLayout(this.ledger, columns);
    return columns;
  }

  async storedRollback(version: number): Promise<string | null> {
    const columns = await this.ledgerColumns();
    if (!columns?.has('rollback_sql')) return null;
    const [row] = await this.session.unsafe(`select rollback_sql from ${this.ledger} where version = $1`, [version]);
    return (row?.rollback_sql as string | null) ?? null;
  }

  async readLedger(): Promise<LedgerRow[]> {
    const columns = await this.ledgerColumns();
    if (!columns) return [];
    const rows = await this.session.unsafe(
      ledgerQuery(this.ledger, columns, { version: 'version::text', applied_at: `to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS')` }),
    );
    return rows.map((row) => toLedgerRow(row, this.ledger));
  }

  async prepareLedger(): Promise<void> {
    const statements = await this.ledgerDdl();
    if (statements.length > 0) await this.session.unsafe(statements.join(';\n'));
  }

  async ledgerDdl(): Promise<string[]> {
    const columns = await this.ledgerColumns();
    const statements: string[] = [];
    if (!columns) {
      if (this.options.table.schema) statements.push(`create schema if not exists ${quote(this.options.table.schema)}`);
      statements.push(`create table if not exists ${this.ledger} (
        id serial primary key,
        version bigint not null unique,
        migration_name varchar(255) not null,
        applied_at timestamp default now(),
        checksum char(64),
        execution_ms integer,
        applied_by text,
        dirty boolean not null default false,
        rollback_checksum char(64),
        rollback_sql text)`);
    } else {
      const definitions: Record<(typeof ADDED_COLUMNS)[number], string> = {
        checksum: 'char(64)',
        execution_ms: 'integer',
        applied_by: 'text',
        dirty: 'boolean not null default false',
        rollback_checksum: 'char(64)',
        rollback_sql: 'text',
      };
      const missing = ADDED_COLUMNS.filter((c) => !columns.has(c));
      if (missing.length > 0) statements.push(`alter table ${this.ledger} ${missing.map((c) => `add column ${c} ${definitions[c]}`).join(', ')}`);
    }
    const [{ exists }] = await this.session`select to_regclass(${this.history}) is not null as exists`;
    if (!exists) statements.push(`create table if not exists ${this.history} (
      id serial primary key,
      action text not null,
      version bigint not null,
      migration_name text,
      checksum char(64),
      outcome text not null,
      execution_ms integer,
      applied_by text,
      at timestamp not null default now(),
      error text)`);
    return statements;
  }

  /** Every transaction gets the configured limits, so a migration cannot block production traffic forever. */
  async begin(): Promise<void> {
    await this.session.unsafe(['begin', ...this.limits('set local')].join('; '));
  }

  /** `set local statement_timeout = '30s'` and the like, for the limits that are configured. */
  private limits(set: 'set' | 'set local'): string[] {
    const { statementTimeout, pgLockTimeout } = this.options.timeouts;
    return [
      statementTimeout === null ? '' : `${set} statement_timeout = '${statementTimeout}'`,
      pgLockTimeout === null ? '' : `${set} lock_timeout = '${pgLockTimeout}'`,
    ].filter(Boolean);
  }

  async commit(): Promise<void> {
    await this.session.unsafe('commit');
  }

  async rollback(): Promise<void> {
    await this.session.unsafe('rollback');
  }

  /**
   * The whole file in one simple-protocol query: the server parses $$ bodies, comments and strings.
   * A no-transaction file goes one statement at a time, because the server wraps a multi-statement
   * query in an implicit transaction, which CREATE INDEX CONCURRENTLY refuses.
   */
  async runScript(script: Script): Promise<void> {
    if (!script.noTransaction) return this.runPiece(script, { text: script.text, offset: 0 });
    // No transaction for SET LOCAL to live in: the limits hold for the session while the file runs.
    const limits = this.limits('set');
    if (limits.length > 0) await this.session.unsafe(limits.join('; '));
    try {
      for (const statement of script.statements) await this.runPiece(script, statement);
    } finally {
      if (limits.length > 0) await this.session.unsafe('reset statement_timeout; reset lock_timeout');
    }
  }

  private async runPiece(script: Script, piece: { text: string; offset: number }): Promise<void> {
    try {
      await this.session.unsafe(piece.text);
    } catch (error) {
      throw scriptError(error, script, piece.offset);
    }
  }

  /**
   * Two round trips: BEGIN, the limits, the file and its ledger and history rows go as one
   * simple-protocol query, and COMMIT alone after it. COMMIT must not ride in the same query: a
   * runner killed meanwhile would leave a server that still finishes the query and commits it.
   * The server measures the time, so no extra trip is needed to record it.
   */
  async runStep(step: Step): Promise<number | null> {
    const { entry, history } = stepRecords(step, null);
    const ledgerWrite = step.action === 'up' ? this.insertRowSql(entry, SERVER_ELAPSED_MS) : this.deleteRowSql(entry.version);
    const head = step.ownTransaction ? `${['begin', ...this.limits('set local')].join('; ')};\n` : '';
    // The file may end in a comment or without a semicolon: the records start on a line of their own.
    const tail = `\n;\n${ledgerWrite};\n${this.historySql(history, SERVER_ELAPSED_MS)}`;
    const started = performance.now();
    await this.runPiece(step.script, { text: head + step.script.text + tail, offset: -head.length });
    if (step.ownTransaction) await this.commit();
    return Math.round(performance.now() - started);
  }

  /** Hand runs with psql record who ran them as the database user, marked as psql's. */
  readonly shell: ShellSql = {
    stopOnError: '\\set ON_ERROR_STOP on',
    begin: 'BEGIN',
    commit: 'COMMIT',
    insertRow: (entry) => this.insertRowSql(entry, undefined, PSQL_APPLIED_BY),
    deleteRow: (version) => this.deleteRowSql(version),
    updateRow: (version, change) => this.updateRowSql(version, change),
    appendHistory: (entry) => this.historySql(entry, undefined, PSQL_APPLIED_BY),
  };

  private insertRowSql(entry: LedgerEntry, executionMs = literal(entry.executionMs), appliedBy = literal(this.appliedBy)): string {
    const values = [literal(entry.version), literal(entry.name), literal(entry.checksum), executionMs, appliedBy, literal(entry.dirty), ...rollbackValues(entry).map(literal)];
    return `insert into ${this.ledger} (${LEDGER_INSERT_COLUMNS}) values (${values.join(', ')})`;
  }

  private deleteRowSql(version: number): string {
    return `delete from ${this.ledger} where version = ${literal(version)}`;
  }

  private updateRowSql(version: number, change: RowChange): string {
    const [columns, values] = rowChangeColumns(change);
    const assignments = columns.map((c, i) => `${c} = ${literal(values[i]!)}`).join(', ');
    return `update ${this.ledger} set ${assignments} where version = ${literal(version)}`;
  }

  private historySql(entry: HistoryEntry, executionMs = literal(entry.executionMs), appliedBy = literal(this.appliedBy)): string {
    const values = [entry.action, entry.version, entry.name, entry.checksum, entry.outcome].map(literal);
    return `insert into ${this.history} (action, version, migration_name, checksum, outcome, execution_ms, applied_by, error)
       values (${values.join(', ')}, ${executionMs}, ${appliedBy}, ${literal(entry.error)})`;
  }

  async insertRow(entry: LedgerEntry): Promise<void> {
    await this.session.unsafe(this.insertRowSql(entry));
  }

  async deleteRow(version: number): Promise<void> {
    await this.session.unsafe(this.deleteRowSql(version));
  }

  async updateRow(version: number, change: RowChange): Promise<void> {
    await this.session.unsafe(this.updateRowSql(version, change));
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    await this.session.unsafe(this.historySql(entry));
  }

  async readHistory(): Promise<HistoryRow[]> {
    const [{ exists }] = await this.session`select to_regclass(${this.history}) is not null as exists`;
    if (!exists) return [];
    return (await this.session.unsafe(historyQuery(this.history, `to_char(at, 'YYYY-MM-DD HH24:MI:SS')`))).map(toHistoryRow);
  }

  snapshot(): Promise<Snapshot> {
    return readPostgresSnapshot(this.session, this.options.table);
  }

  explain(error: unknown): unknown {
    const e = error as postgres.PostgresError;
    if (e?.code !== '42501') return error;
    return new ConnectionError(`${this.description}: ${e.message}`, {
      hint: `the database user lacks a privilege tidemark needs; have the owner grant it (e.g. grant all on ${this.ledger}, ${this.history} to <user>, and create on the schema), or connect as the schema's owner`,
    });
  }

  async close(): Promise<void> {
    await this.runLock?.release();
    this.session.release();
    await this.pool.end({ timeout: 5 });
  }
}

/** applied_by of a row written by a hand run of a `tidemark sql` script: e.g. `postgres@psql`. */
const PSQL_APPLIED_BY = `current_user || '@psql'`;

/** Milliseconds since the server received the current query: a step's own duration, measured where it ran. */
const SERVER_ELAPSED_MS = `round(extract(epoch from clock_timestamp() - statement_timestamp()) * 1000)::int`;

/** A SQL literal. Ledger values are mostly tidemark's own, but error texts and host names are not. */
function literal(value: string | number | boolean | null): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
    return String(value);
  }
  const quoted = `'${value.replace(/'/g, "''")}'`;
  // E'' keeps a backslash a backslash whatever standard_conforming_strings says.
  return value.includes('\\') ? `E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}

/** Fixes for server errors that are about how the file runs rather than what it says. */
const SERVER_HINTS: Record<string, string> = {
  '25001':
    'this statement cannot run inside a transaction: make the first line of the file -- tidemark:no-transaction (and keep such statements in a file of their own)',
  '57014': 'the migration ran longer than --statement-timeout allows; raise it, or split the work into smaller migrations',
  '55P03': 'a table it needs was locked by other sessions for longer than --pg-lock-timeout; run again when traffic is lower, or raise it',
};

/** Turns a server error into file:line:column with the source line, a caret, and the server's detail and hint. */
function scriptError(error: unknown, script: Script, offset: number): Error {
  const e = error as postgres.PostgresError;
  if (!(e instanceof Error) || !('severity' in e)) return error as Error;
  // Without a position (a timeout, a runtime error) a statement run on its own is still known by its start.
  // The server counts characters; a negative offset is tidemark's own (ASCII) prefix before the file.
  const characters = e.position ? Number(e.position) - 1 + Math.min(offset, 0) : 0;
  const at = e.position ? (characters < 0 ? null : offsetAfterCharacters(script.text, Math.max(offset, 0), characters)) : script.noTransaction ? offset : null;
  // A position outside the file's text is in the statements tidemark wrapped around it.
  const where = at === null || at < 0 || at >= script.text.length ? null : locate(script.text, at);
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
  });
}

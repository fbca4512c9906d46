import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import type { TableName } from '../config.js';
import { ConnectionError, connectionLostError, lockTakenOverError, UsageError } from '../errors.js';
import type { InterruptedError } from '../errors.js';
import type { Script } from '../script.js';
import type { LedgerRow } from '../plan.js';
import type { ForeignRow, ForeignTable } from '../import/ledgers.js';
import {
  ADDED_COLUMNS,
  LEDGER_INSERT_COLUMNS,
  trailingValues,
  historyQuery,
  FINGERPRINT_COLUMNS,
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
  versionTakenError,
} from './driver.js';
import type { Snapshot } from '../schema.js';
import type { Version } from '../version.js';
import { errorOffset, repeatable, sameError, scriptError, serverError } from './postgres-errors.js';
import { LOCK_LOST_CODE, runLockHolder, takeRunLock, type RunLock } from './postgres-lock.js';
import { retryOnLockTimeout } from './postgres-retry.js';
import { closedGuard } from './postgres-session.js';
import { tidemarkTables } from './postgres-tables.js';

const quoteIdentifier = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

export interface PostgresOptions {
  url: string;
  description: string;
  table: TableName;
  onNotice: (message: string) => void;
  timeouts: { statementTimeout: string | null; pgLockTimeout: string | null; lockRetries: number };
}

/** Who the session is at connection, and its current schema. */
interface SessionStart {
  user: string;
  schema: string | null;
}

/** Connects one reserved session (the one a later lock will live on) and checks it answers. */
export async function connectPostgres(options: PostgresOptions): Promise<Driver> {
  // The driver hears of a close at once, so that nothing more is sent on the session (postgres-session.ts).
  const closed = { notify: () => {} };
  const pool = postgres(options.url, {
    max: 1,
    onclose: () => closed.notify(),
    // 25P01: tidemark's own ROLLBACK after a file that failed to parse, so no transaction had begun.
    onnotice: (notice) => notice.code !== '25P01' && options.onNotice(String(notice.message)),
    // The server reads strings as tidemark's lexer does ('a\' is a whole string), whatever the database's default.
    connection: { application_name: 'tidemark', standard_conforming_strings: 'on' },
    // Migration files are run as text; no result needs type conversion beyond what we cast in SQL.
    fetch_types: false,
  });
  let session: postgres.ReservedSql;
  let start: SessionStart;
  try {
    // Query before reserve(): postgres.js 3.4 never resolves reserve() on a fresh pool when fetch_types is off.
    const query = `select current_user as user, current_schema() as schema, ${CHECK_CONNECTION}`;
    [start] = (await pool.unsafe(query)) as unknown as [SessionStart];
    session = await pool.reserve();
  } catch (error) {
    await pool.end({ timeout: 0 }).catch(() => {});
    throw connectionError(error, options.description);
  }
  try {
    const table = await pinLedgerSchema(session, options.table, start.schema, options.description);
    const driver = new PostgresDriver(pool, session, { ...options, table }, `${start.user}@${hostname()}`);
    closed.notify = () => driver.connectionClosed();
    return driver;
  } catch (error) {
    session.release();
    await pool.end({ timeout: 0 }).catch(() => {});
    throw error;
  }
}

/**
 * PostgreSQL 14+ checks the client socket while a statement runs, so a runner killed mid-migration
 * (kill -9) has its statement cancelled, its transaction rolled back and its lock freed within a second.
 */
const CHECK_CONNECTION = `case when current_setting('server_version_num')::int >= 140000
  then set_config('client_connection_check_interval', '1000', false) end as checking`;

/**
 * Back to the settings the session started with (the role too: RESET ALL leaves it), after each
 * migration: a SET search_path, SET ROLE or SET statement_timeout in one file must not reach the next
 * file or tidemark's own statements. Not DISCARD ALL: it cannot run in a transaction, and would
 * release the run's advisory lock.
 */
const RESET_SESSION = `set session authorization default; reset all; discard temp; select ${CHECK_CONNECTION}`;

/** Schemas of the system: the server refuses new tables in them, or they are not the application's. */
const SYSTEM_SCHEMA = /^(pg_|information_schema$)/;

/**
 * The ledger's schema, resolved once at connection and pinned: every statement tidemark runs names
 * it, so that no search_path (a migration's SET included) can move the ledger. Without a schema in
 * --table, the session's current schema. A schema that does not exist is refused, never created: a
 * typo would otherwise start an empty ledger and run every migration again.
 */
async function pinLedgerSchema(
  session: postgres.ReservedSql,
  table: TableName,
  current: string | null,
  description: string,
): Promise<TableName> {
  const schema = table.schema ?? current;
  if (schema === null) {
    const [{ path }] = await session`select current_setting('search_path') as path`;
    const setting = `the search_path of ${description} (${path})`;
    throw new UsageError(`${setting} names no schema that exists, so the ledger has no schema`, {
      hint:
        `name the ledger's schema: --table <schema>.${table.name} (or MIGRATIONS_TABLE), ` +
        'or fix the search_path (alter role <user> set search_path = public)',
    });
  }
  if (SYSTEM_SCHEMA.test(schema)) {
    throw new UsageError(`the ledger cannot live in the system schema "${schema}"`, {
      hint: `name the application's schema, e.g. --table public.${table.name}`,
    });
  }
  if (table.schema && (await session`select 1 from pg_namespace where nspname = ${schema}`).length === 0) {
    const ledger = `${schema}.${table.name}`;
    throw new UsageError(`the schema "${schema}" (of the ledger table ${ledger}) does not exist in ${description}`, {
      hint:
        'check the spelling in --table (or MIGRATIONS_TABLE); ' +
        `to keep the ledger in a new schema, create it first: create schema ${schema};`,
    });
  }
  return { schema, name: table.name };
}

/** Errors meaning the server is not there (yet), as opposed to one that answered and said no. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  '57P03',
]);

const NO_CONNECTION_LEFT =
  'the server has no connection left for this user or database (tidemark needs one, and one more with --lock table): ' +
  "close idle sessions, or raise max_connections or the role's or database's connection limit";

/**
 * A connection that failed or was refused, as opposed to a statement the server rejected: postgres.js's
 * own codes, socket errors, SQLSTATE class 08 (connection), 53300 (too many clients) and 57P01-57P03
 * (the server is shutting down or starting).
 */
function isConnectionFailure(e: { code?: string } | null | undefined): boolean {
  const code = e?.code ?? '';
  return UNREACHABLE.has(code) || /^(08|53300|57P0[1-3])|^CONNECTION_/.test(code);
}

function connectionError(error: unknown, description: string): ConnectionError {
  const e = error as { code?: string; message?: string };
  const reason =
    e.code === 'ECONNREFUSED'
      ? 'connection refused (is the server running, and on this port?)'
      : (e.message ?? String(error));
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
  /** A step's transaction costs one round trip already (begin, file, records and commit in one query). */
  readonly commitGroup = null;
  readonly description: string;
  private readonly ledger: string;
  private readonly history: string;
  private runLock: RunLock | undefined;
  /** Set when the session's connection broke; nothing is sent on it afterwards. */
  private lost: InterruptedError | null = null;
  private running: { cancel(): void } | null = null;

  /** The reserved session every statement of the run goes through; nothing is sent on it once it closed. */
  private readonly session: postgres.ReservedSql;

  constructor(
    private readonly pool: postgres.Sql,
    session: postgres.ReservedSql,
    private readonly options: PostgresOptions,
    readonly appliedBy: string,
  ) {
    this.session = closedGuard(session, () => this.lost);
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

  async hasVersion(version: Version): Promise<boolean> {
    return (await this.query(`select 1 from ${this.ledger} where version = $1`, [String(version)])).length > 0;
  }

  /** Column names of the ledger table, or null when it does not exist. */
  private async ledgerColumns(): Promise<Set<string> | null> {
    const rows = await this.query(
      `select a.attname as name from pg_attribute a
       where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped`,
      [this.ledger],
    );
    const columns = rows.length === 0 ? null : new Set(rows.map((r) => r.name as string));
    assertLedgerLayout(this.ledger, columns);
    return columns;
  }

  async readForeignTable(spec: ForeignTable): Promise<ForeignRow[] | null> {
    const [table] = await this.session`select to_regclass(${spec.table}) is not null as found`;
    if (!table?.found) return null;
    const columns = spec.columns.map((c) => `${quoteIdentifier(c)}::text as ${quoteIdentifier(c)}`).join(', ');
    const query = `select ${columns} from ${quoteIdentifier(spec.table)} order by ${quoteIdentifier(spec.orderBy)}`;
    return (await this.session.unsafe(query)) as unknown as ForeignRow[];
  }

  async storedRollback(version: Version): Promise<string | null> {
    const columns = await this.ledgerColumns();
    if (!columns?.has('rollback_sql')) return null;
    const [row] = await this.query(`select rollback_sql from ${this.ledger} where version = $1`, [String(version)]);
    return (row?.rollback_sql as string | null) ?? null;
  }

  async readLedger(): Promise<LedgerRow[]> {
    const columns = await this.ledgerColumns();
    if (!columns) return [];
    const rows = await this.query(
      ledgerQuery(this.ledger, columns, {
        applied_at: `to_char(applied_at, 'YYYY-MM-DD HH24:MI:SS')`,
      }),
    );
    return rows.map((row) => toLedgerRow(row, this.ledger));
  }

  async ledgerFingerprint(): Promise<string | null> {
    const columns = await this.ledgerColumns();
    if (!FINGERPRINT_COLUMNS.every((c) => columns?.has(c))) return null;
    // The server hashes: one short row comes back, not one row per applied version.
    const line = `version::text || ' ' || checksum || ' ' || coalesce(rollback_checksum, '')`;
    const query = `select encode(sha256(convert_to(string_agg(${line}, E'\\n' order by version), 'UTF8')), 'hex')
        as fingerprint, bool_or(dirty or checksum is null) as unsure
      from ${this.ledger}`;
    // A ledger whose columns have other types (or a server without sha256) cannot say: the full read will.
    const rows = await this.query(query).catch((error) => {
      if (serverError(error)?.code?.startsWith('42')) return null;
      throw error;
    });
    const row = rows?.[0];
    return row?.fingerprint == null || row.unsure !== false ? null : String(row.fingerprint);
  }

  async prepareLedger(): Promise<void> {
    const statements = await this.ledgerDdl();
    if (statements.length > 0) await this.query(statements.join(';\n'));
  }

  async ledgerDdl(): Promise<string[]> {
    const columns = await this.ledgerColumns();
    const statements: string[] = [];
    if (!columns) {
      statements.push(`create table if not exists ${this.ledger} (
        id serial primary key,
        version bigint not null unique,
        migration_name varchar(255) not null,
        applied_at timestamp default now(),
        checksum char(64),
        execution_ms integer,
        applied_by text,
        dirty boolean not null default false,
        dirty_action text,
        rollback_checksum char(64),
        rollback_sql text,
        version_text text)`);
    } else {
      const definitions: Record<(typeof ADDED_COLUMNS)[number], string> = {
        checksum: 'char(64)',
        execution_ms: 'integer',
        applied_by: 'text',
        dirty: 'boolean not null default false',
        dirty_action: 'text',
        rollback_checksum: 'char(64)',
        rollback_sql: 'text',
        version_text: 'text',
      };
      const missing = ADDED_COLUMNS.filter((c) => !columns.has(c));
      if (missing.length > 0)
        statements.push(
          `alter table ${this.ledger} ${missing.map((c) => `add column ${c} ${definitions[c]}`).join(', ')}`,
        );
    }
    const [{ exists }] = await this.query(`select to_regclass($1) is not null as exists`, [this.history]);
    if (!exists)
      statements.push(`create table if not exists ${this.history} (
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
    await this.query(['begin', ...this.limits('set local')].join('; '));
  }

  /** `set local statement_timeout = '30s'` and the like, for the limits that are configured. */
  private limits(set: 'set' | 'set local'): string[] {
    const { statementTimeout, pgLockTimeout } = this.options.timeouts;
    return [
      statementTimeout === null ? '' : `${set} statement_timeout = '${statementTimeout}'`,
      pgLockTimeout === null ? '' : `${set} lock_timeout = '${pgLockTimeout}'`,
    ].filter(Boolean);
  }

  // A transaction's end also ends what its file SET for the session, so the next file starts alike.
  async commit(): Promise<void> {
    await this.query(`commit; ${RESET_SESSION}`);
  }

  async rollback(): Promise<void> {
    await this.query(`rollback; ${RESET_SESSION}`);
  }

  /**
   * The whole file in one simple-protocol query: the server parses $$ bodies, comments and strings.
   * A no-transaction file goes one statement at a time, because the server wraps a multi-statement
   * query in an implicit transaction, which CREATE INDEX CONCURRENTLY refuses.
   */
  async runScript(script: Script): Promise<void> {
    if (!script.noTransaction) return this.runPiece(script, { text: script.text, offset: 0 }, true);
    // No transaction for SET LOCAL to live in: the limits hold for the session while the file runs.
    const limits = this.limits('set');
    if (limits.length > 0) await this.query(limits.join('; '));
    let ran = false;
    try {
      for (const statement of script.statements) await this.runPiece(script, statement, false);
      ran = true;
    } finally {
      // The limits go too. After a failure, its error is the one to report, whatever happens here.
      await this.query(RESET_SESSION).catch((error) => {
        if (ran) throw error;
      });
    }
  }

  /**
   * Runs one piece of a file: the whole file (with tidemark's statements around it), or one statement.
   * A server error becomes file:line:column; when the server gives no position for an error in a
   * whole file, the failing statement is found by running the statements again (failingStatement).
   */
  private async runPiece(script: Script, piece: { text: string; offset: number }, whole: boolean): Promise<void> {
    try {
      // Rows a migration returns (a SELECT of millions) are dropped one by one as they arrive, not kept.
      await this.query(piece.text, [], 'discard');
    } catch (error) {
      const e = serverError(error);
      if (!e) throw error;
      if (e.code === LOCK_LOST_CODE) throw lockTakenOverError(this.description);
      const { schema, name } = this.options.table;
      if (e.code === '23505' && e.schema_name === schema && e.table_name === name) {
        throw versionTakenError(this.description, script.file.versionText);
      }
      let at = errorOffset(e, script, piece.offset, whole ? undefined : piece.offset);
      // A position outside the file is in tidemark's own statements around it: no statement of the file failed.
      if (at === null && whole && !e.position) {
        at = errorOffset(e, script, piece.offset, await this.failingStatement(script, e));
      }
      throw scriptError(e, script, at);
    }
  }

  /**
   * The start of the statement of a file that fails with `error`, when the server did not say where:
   * as SQLite's driver does, the statements run again one at a time, in a transaction that is rolled
   * back, and the first to fail with the same error is it. The failed transaction is rolled back
   * first; errors about the moment (a timeout, a lock) are not repeated.
   */
  private async failingStatement(script: Script, error: postgres.PostgresError): Promise<number | undefined> {
    const { statements } = script;
    if (statements.length <= 1) return statements[0]?.offset;
    if (!repeatable(error)) return undefined;
    try {
      await this.rollback();
      await this.begin();
      try {
        for (const statement of statements) {
          const again = await this.query(statement.text, [], 'discard').then(() => null, serverError);
          if (again) return sameError(again, error) ? statement.offset : undefined;
        }
        return undefined;
      } finally {
        await this.rollback();
      }
    } catch {
      // The search is a courtesy: the original error is reported whatever happens to it.
      return undefined;
    }
  }

  /**
   * One round trip: BEGIN, the limits, the file, its ledger and history rows and COMMIT go as one
   * simple-protocol query. A runner killed meanwhile leaves a server that finishes the query: the
   * migration and its ledger row commit together or not at all, and a statement still running is
   * cancelled within a second (client_connection_check_interval). The server measures the time.
   */
  async runStep(step: Step): Promise<number | null> {
    const { pgLockTimeout, lockRetries } = this.options.timeouts;
    // Inside --single-transaction a retry would have to redo the migrations before it too.
    if (!step.ownTransaction || pgLockTimeout === null || lockRetries === 0) return this.runStepOnce(step);
    return retryOnLockTimeout(() => this.runStepOnce(step), {
      retries: lockRetries,
      lockTimeout: pgLockTimeout,
      rollback: () => this.rollback(),
      onNotice: this.options.onNotice,
      session: this.session,
    });
  }

  private async runStepOnce(step: Step): Promise<number | null> {
    const { entry, history } = stepRecords(step, null);
    const ledgerWrite =
      step.action === 'up' ? this.insertRowSql(entry, SERVER_ELAPSED_MS) : this.deleteRowSql(entry.version);
    const head = step.ownTransaction ? `${['begin', ...this.limits('set local')].join('; ')};\n` : '';
    // The file may end in a comment or without a semicolon: the records start on a line of their own.
    // The session's settings are restored before them, so the next file starts as this one did.
    const historyWrite = this.historySql(history, SERVER_ELAPSED_MS);
    // The COMMIT goes in the same query: one round trip per migration. Whatever fails before it (the
    // file, the records) leaves the transaction aborted for the caller's rollback, as a separate
    // COMMIT would; the session was reset inside the transaction, so the reset outlives the commit.
    const commit = step.ownTransaction ? 'commit' : '';
    const records = [RESET_SESSION, ledgerWrite, historyWrite, this.runLock?.checkBeforeCommit, commit];
    const tail = `\n;\n${records.filter(Boolean).join(';\n')}`;
    const started = performance.now();
    await this.runPiece(step.script, { text: head + step.script.text + tail, offset: -head.length }, true);
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

  private insertRowSql(
    entry: LedgerEntry,
    executionMs = literal(entry.executionMs),
    appliedBy = literal(this.appliedBy),
  ): string {
    const { version, name, checksum, dirty } = entry;
    const trailing = trailingValues(entry).map(literal);
    const head = [literal(version), literal(name), literal(checksum), executionMs, appliedBy, literal(dirty)];
    const values = [...head, ...trailing];
    return `insert into ${this.ledger} (${LEDGER_INSERT_COLUMNS}) values (${values.join(', ')})`;
  }

  private deleteRowSql(version: Version): string {
    return `delete from ${this.ledger} where version = ${literal(version)}`;
  }

  private updateRowSql(version: Version, change: RowChange): string {
    const [columns, values] = rowChangeColumns(change);
    const assignments = columns.map((c, i) => `${c} = ${literal(values[i]!)}`).join(', ');
    return `update ${this.ledger} set ${assignments} where version = ${literal(version)}`;
  }

  private historySql(
    entry: HistoryEntry,
    executionMs = literal(entry.executionMs),
    appliedBy = literal(this.appliedBy),
  ): string {
    const values = [entry.action, entry.version, entry.name, entry.checksum, entry.outcome].map(literal);
    return (
      `insert into ${this.history} (action, version, migration_name, checksum, outcome, execution_ms, ` +
      `applied_by, error)
       values (${values.join(', ')}, ${executionMs}, ${appliedBy}, ${literal(entry.error)})`
    );
  }

  async insertRow(entry: LedgerEntry): Promise<void> {
    await this.query(this.insertRowSql(entry));
  }

  async deleteRow(version: Version): Promise<void> {
    await this.query(this.deleteRowSql(version));
  }

  async updateRow(version: Version, change: RowChange): Promise<void> {
    await this.query(this.updateRowSql(version, change));
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    await this.query(this.historySql(entry));
  }

  /** After a failure the session may be gone (a restart): then the row goes through a new connection, once. */
  async recordFailure(entry: HistoryEntry): Promise<void> {
    try {
      if (!this.lost) return await this.appendHistory(entry);
      const connection = { application_name: 'tidemark' };
      const settings = { max: 1, onnotice: () => {}, fetch_types: false, connect_timeout: 5, connection };
      const once = postgres(this.options.url, settings);
      try {
        await once.unsafe(this.historySql(entry));
      } finally {
        await once.end({ timeout: 1 });
      }
    } catch {
      // The database is out of reach: the error line and the log still say what happened.
    }
  }

  cancel(): void {
    this.running?.cancel();
  }

  async otherRun(): Promise<string | null> {
    return this.lost ? null : runLockHolder(this.session, this.options.table);
  }

  /**
   * Every statement on the run's session goes through here. Once the connection is lost nothing more is
   * written to it (postgres.js throws a TypeError from a timer when it writes to a closed socket), and
   * the loss is every later statement's error. The running statement is kept for cancel().
   */
  private query(text: string, params: (string | number)[] = [], rows: 'keep' | 'discard' = 'keep'): Promise<Rows> {
    if (this.lost) return Promise.reject(this.lost);
    const pending = this.session.unsafe(text, params);
    this.running = pending;
    const result: Promise<unknown> = rows === 'discard' ? pending.forEach(discardRow) : pending;
    return result.then(
      () => pending as unknown as Rows,
      (error: unknown) => {
        throw this.noteLoss(error);
      },
    );
  }

  /** The session's connection closed, perhaps while idle: the run's error from now on. */
  connectionClosed(): void {
    this.lost ??= connectionLostError(this.description, lossReason({ code: 'CONNECTION_CLOSED' }));
  }

  /** A connection-class error on the session means it is gone: the run's error from now on. */
  private noteLoss(error: unknown): unknown {
    const e = error as { code?: string; message?: string };
    if (this.lost || !isConnectionFailure(e) || e.code === '53300') return this.lost ?? error;
    this.lost = connectionLostError(this.description, lossReason(e));
    return this.lost;
  }

  async readHistory(): Promise<HistoryRow[]> {
    const [{ exists }] = await this.query(`select to_regclass($1) is not null as exists`, [this.history]);
    if (!exists) return [];
    return (await this.query(historyQuery(this.history, `to_char(at, 'YYYY-MM-DD HH24:MI:SS')`))).map(toHistoryRow);
  }

  /** The catalog queries load only here: migrate never needs them. */
  async snapshot(): Promise<Snapshot> {
    const { readPostgresSnapshot } = await import('./postgres-schema.js');
    return readPostgresSnapshot(this.session, this.options.table);
  }

  explain(error: unknown): unknown {
    const e = error as postgres.PostgresError;
    if (e?.code === '42501') {
      return new ConnectionError(`${this.description}: ${e.message}`, {
        hint:
          'the database user lacks a privilege tidemark needs; have the owner grant it ' +
          `(e.g. grant all on ${this.ledger}, ${this.history} to <user>, and create on the schema), ` +
          "or connect as the schema's owner",
      });
    }
    // Class 53, insufficient resources (out of memory or shared memory, disk full): the server's
    // state, not the command's; exit 4 like a refused connection. 53300 is handled below.
    if (/^53(?!300)/.test(e?.code ?? '')) {
      return new ConnectionError(`${this.description}: the server ran out of a resource: ${e.message}`, {
        hint: 'run again when the server is less busy; its administrator can raise the limit it names',
      });
    }
    if (!isConnectionFailure(e)) return error;
    // After the connection was made, any other connection failure is its loss (exit 5).
    if (e.code !== '53300') return connectionLostError(this.description, lossReason(e));
    return new ConnectionError(`${this.description}: ${e.message}`, { hint: NO_CONNECTION_LEFT });
  }

  async close(): Promise<void> {
    await this.runLock?.release();
    if (!this.lost) this.session.release();
    await this.pool.end({ timeout: this.lost ? 0 : 5 });
  }
}

function discardRow(): void {}

type Rows = postgres.Row[];

/** postgres.js names a closed socket `write CONNECTION_CLOSED host:port`: in words, with the code. */
function lossReason(e: { code?: string; message?: string }): string {
  const words: Record<string, string> = {
    CONNECTION_CLOSED: 'the server closed the connection',
    ECONNRESET: 'the connection was reset',
  };
  return `${words[e.code ?? ''] ?? e.message} (${e.code})`;
}

/** applied_by of a row written by a hand run of a `tidemark sql` script: e.g. `postgres@psql`. */
const PSQL_APPLIED_BY = `current_user || '@psql'`;

/** Milliseconds since the server received the current query: a step's own duration, measured where it ran. */
const SERVER_ELAPSED_MS = `round(extract(epoch from clock_timestamp() - statement_timestamp()) * 1000)::int`;

/** A SQL literal. Ledger values are mostly tidemark's own, but error texts and host names are not. */
function literal(value: string | number | bigint | boolean | null): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
    return String(value);
  }
  const quoted = `'${value.replace(/'/g, "''")}'`;
  // E'' keeps a backslash a backslash whatever standard_conforming_strings says.
  return value.includes('\\') ? `E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}

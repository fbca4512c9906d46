import { existsSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import sqlite3 from 'sqlite3';
import type { TableName } from '../config.js';
import { ConnectionError, MigrationError, UsageError } from '../errors.js';
import { makeFolders } from '../folders.js';
import type { Script } from '../script.js';
import type { LedgerRow } from '../plan.js';
import type { ForeignRow, ForeignTable } from '../import/ledgers.js';
import { locate, sourceExcerpt } from '../source.js';
import type { Snapshot } from '../schema.js';
import type { Version } from '../version.js';
import { SqliteRunLock, sqliteLockHolder } from './sqlite-lock.js';
import {
  ADDED_COLUMNS,
  LEDGER_INSERT_COLUMNS,
  trailingValues,
  FINGERPRINT_COLUMNS,
  fingerprintOf,
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

export interface SqliteOptions {
  file: string;
  description: string;
  table: TableName;
  /** Create a missing file (and its folder); otherwise a missing file reads as an empty database. */
  create: boolean;
  busyTimeoutMs: number;
}

type Params = readonly (string | number | null)[];

const quote = (identifier: string) => `"${identifier}"`;

export async function connectSqlite(options: SqliteOptions): Promise<Driver> {
  if (options.table.schema) {
    throw new UsageError(
      `SQLite has no schemas: the ledger table cannot be "${options.table.schema}.${options.table.name}"`,
      {
        hint: `use --table ${options.table.name}`,
      },
    );
  }
  const missing = !existsSync(options.file);
  const path = missing && !options.create ? ':memory:' : options.file;
  const mode = sqlite3.OPEN_READWRITE | (options.create ? sqlite3.OPEN_CREATE : 0);
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    if (missing && options.create) makeFolders(dirname(options.file));
    const opened: sqlite3.Database = new sqlite3.Database(path, mode, (error) =>
      error ? reject(error) : resolve(opened),
    );
  }).catch((error: Error) => {
    throw new ConnectionError(`could not open ${options.description}: ${error.message}`, {
      hint:
        'check that the path in DATABASE_URL names a file this user can read and write, in a folder that exists ' +
        'or can be created',
    });
  });
  db.configure('busyTimeout', options.busyTimeoutMs);
  // SQLite opens lazily: a file that is not a database only shows it at the first read.
  await new Promise<void>((resolve, reject) =>
    db.get('select count(*) from sqlite_schema', (error) => (error ? reject(error) : resolve())),
  ).catch(async (error: Error & { code?: string }) => {
    await new Promise((resolve) => db.close(resolve));
    if (error.code === 'SQLITE_BUSY') throw busyError(options);
    throw new ConnectionError(`could not open ${options.description}: ${error.message}`, {
      hint:
        'DATABASE_URL must name a SQLite database file (or a path where one can be created), not another kind of ' +
        'file',
    });
  });
  return new SqliteDriver(db, options);
}

/** Errors about the database file, not the statement that met them. */
const STORAGE_ERRORS = new Set(['SQLITE_READONLY', 'SQLITE_PERM', 'SQLITE_CANTOPEN', 'SQLITE_FULL', 'SQLITE_IOERR']);

function storageError(error: unknown): boolean {
  return STORAGE_ERRORS.has((error as { code?: string } | null)?.code ?? '');
}

/** Another connection held the database's lock for longer than the busy timeout. */
function busyError(options: SqliteOptions): ConnectionError {
  return new ConnectionError(
    `could not get the lock on ${options.description} within ${options.busyTimeoutMs / 1000} s: another connection ` +
      `holds its write lock`,
    {
      hint: 'wait for the other run (or the application transaction) to finish and try again, or raise --lock-timeout',
    },
  );
}

class SqliteDriver implements Driver {
  readonly dialect = 'sqlite' as const;
  readonly description: string;
  readonly appliedBy = `${userInfo().username}@${hostname()}`;
  private readonly ledger: string;
  private readonly history: string;
  private runLock: SqliteRunLock | null = null;
  /** A signal cancelled the run: a failed file is not run again statement by statement. */
  private cancelled = false;
  /** Its commit group cut the running step short: the same, for this step only. */
  private stepCut = false;

  constructor(
    private readonly db: sqlite3.Database,
    private readonly options: SqliteOptions,
  ) {
    this.description = options.description;
    this.ledger = quote(options.table.name);
    this.history = quote(`${options.table.name}_history`);
  }

  private run(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.run(sql, (error) => (error ? reject(error) : resolve())));
  }

  private all<Row>(sql: string, params: Params = []): Promise<Row[]> {
    return new Promise((resolve, reject) =>
      this.db.all(sql, params, (error, rows) => (error ? reject(error) : resolve(rows as Row[]))),
    );
  }

  private exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => this.db.exec(sql, (error) => (error ? reject(error) : resolve())));
  }

  /**
   * A whole run holds the lock file (sqlite-lock.ts), so that a migrate and a rollback cannot
   * interleave; with --lock none only each step's BEGIN IMMEDIATE serializes writers, and each step
   * re-checks the ledger.
   */
  async lock(options: LockOptions): Promise<boolean> {
    if (options.mode === 'none') return false;
    this.runLock = await SqliteRunLock.take(this, this.options.file, this.description, options);
    return true;
  }

  assertLocked(): void {
    this.runLock?.assertHeld();
  }

  async otherRun(): Promise<string | null> {
    return sqliteLockHolder(this.options.file);
  }

  cancel(): void {
    this.cancelled = true;
    this.db.interrupt();
  }

  async recordFailure(entry: HistoryEntry): Promise<void> {
    await this.appendHistory(entry).catch(() => {});
  }

  /** Called only once prepareLedger() has made sure the table exists. */
  async hasVersion(version: Version): Promise<boolean> {
    return (await this.all(`select 1 from ${this.ledger} where version = ${literal(version)}`)).length > 0;
  }

  private async ledgerColumns(): Promise<Set<string> | null> {
    const rows = await this.all<{ name: string }>(`select name from pragma_table_info(?)`, [this.options.table.name]);
    const columns = rows.length === 0 ? null : new Set(rows.map((r) => r.name));
    assertLedgerLayout(this.ledger, columns);
    return columns;
  }

  async readForeignTable(spec: ForeignTable): Promise<ForeignRow[] | null> {
    const found = await this.all(`select 1 from sqlite_master where type = 'table' and name = ?`, [spec.table]);
    if (found.length === 0) return null;
    const columns = spec.columns.map((c) => `cast(${quote(c)} as text) as ${quote(c)}`).join(', ');
    return this.all<ForeignRow>(`select ${columns} from ${quote(spec.table)} order by ${quote(spec.orderBy)}`);
  }

  async storedRollback(version: Version): Promise<string | null> {
    const columns = await this.ledgerColumns();
    if (!columns?.has('rollback_sql')) return null;
    const [row] = await this.all<{ rollback_sql: string | null }>(
      `select rollback_sql from ${this.ledger} where version = ${literal(version)}`,
    );
    return row?.rollback_sql ?? null;
  }

  async readLedger(): Promise<LedgerRow[]> {
    const columns = await this.ledgerColumns();
    if (!columns) return [];
    return (await this.all<Record<string, unknown>>(ledgerQuery(this.ledger, columns))).map((row) =>
      toLedgerRow(row, this.ledger),
    );
  }

  async ledgerFingerprint(): Promise<string | null> {
    const columns = await this.ledgerColumns();
    if (!FINGERPRINT_COLUMNS.every((c) => columns?.has(c))) return null;
    // A row without a checksum has no line (its line is null): `unsure` says so.
    const [row] = await this.all<{ lines: string | null; unsure: number | null }>(
      `select group_concat(line, char(10)) as lines, max(unsure) as unsure from (
         select version || ' ' || checksum || ' ' || coalesce(rollback_checksum, '') as line,
                (dirty <> 0 or checksum is null) as unsure
         from ${this.ledger} order by version)`,
    );
    return row?.lines == null || row.unsure !== 0 ? null : fingerprintOf(row.lines);
  }

  /** Under BEGIN IMMEDIATE, so two runners starting at once cannot both create the tables. */
  async prepareLedger(): Promise<void> {
    await this.begin();
    try {
      const statements = await this.ledgerDdl();
      if (statements.length > 0) await this.exec(statements.join(';\n'));
      await this.commit();
    } catch (error) {
      await this.rollback().catch(() => {});
      throw error;
    }
  }

  async ledgerDdl(): Promise<string[]> {
    const columns = await this.ledgerColumns();
    const statements: string[] = [];
    if (!columns) {
      statements.push(`create table if not exists ${this.ledger} (
        id integer primary key autoincrement,
        version integer not null unique,
        migration_name text not null,
        applied_at text default CURRENT_TIMESTAMP,
        checksum text,
        execution_ms integer,
        applied_by text,
        dirty integer not null default 0,
        dirty_action text,
        rollback_checksum text,
        rollback_sql text,
        version_text text)`);
    } else {
      const definitions: Record<(typeof ADDED_COLUMNS)[number], string> = {
        checksum: 'text',
        execution_ms: 'integer',
        applied_by: 'text',
        dirty: 'integer not null default 0',
        dirty_action: 'text',
        rollback_checksum: 'text',
        rollback_sql: 'text',
        version_text: 'text',
      };
      // SQLite adds one column per statement.
      for (const c of ADDED_COLUMNS.filter((c) => !columns.has(c)))
        statements.push(`alter table ${this.ledger} add column ${c} ${definitions[c]}`);
    }
    const history = await this.all(`select 1 from sqlite_schema where type = 'table' and name = ?`, [
      `${this.options.table.name}_history`,
    ]);
    if (history.length === 0)
      statements.push(`create table if not exists ${this.history} (
      id integer primary key autoincrement,
      action text not null,
      version integer not null,
      migration_name text,
      checksum text,
      outcome text not null,
      execution_ms integer,
      applied_by text,
      at text not null default CURRENT_TIMESTAMP,
      error text)`);
    return statements;
  }

  /** IMMEDIATE takes the write lock up front, so two runners never both read "pending" and then race. */
  async begin(): Promise<void> {
    try {
      await this.exec('begin immediate');
    } catch (error) {
      if ((error as { code?: string }).code !== 'SQLITE_BUSY') throw error;
      throw busyError(this.options);
    }
  }

  async commit(): Promise<void> {
    await this.exec('commit');
  }

  async rollback(): Promise<void> {
    await this.exec('rollback');
  }

  /**
   * A commit costs several fsyncs, a savepoint none: steps share a transaction for up to 100 ms, so the
   * write lock is held at most that much longer than the slowest step needs it.
   */
  readonly commitGroup = {
    ms: 100,
    undoStep: () => this.exec('rollback to tidemark_file; release tidemark_file'),
    cut: () => {
      this.stepCut = true;
      this.db.interrupt();
    },
  };

  /** One statement at a time, so a failure names the statement's line (SQLite gives no position). */
  async runScript(script: Script): Promise<void> {
    for (const statement of script.statements) {
      try {
        await this.exec(statement.text);
      } catch (error) {
        if (storageError(error)) throw this.explain(error);
        if (this.cancelled) throw error;
        const path = script.file.path;
        const at = locate(script.text, statement.offset);
        throw new MigrationError(`${path}:${at.line}: ${(error as Error).message}`, {
          file: path,
          line: at.line,
          column: at.column,
          context: sourceExcerpt(script.text, at),
          hint: `fix the statement at ${path}:${at.line} and run again`,
        });
      }
    }
  }

  /**
   * Inside a transaction the whole file goes to SQLite in one call, after a savepoint. Only when it
   * fails is it run again from the savepoint, statement by statement, to name the failing line;
   * nothing of the first attempt survives the rollback to the savepoint. The caller releases it.
   */
  private async runWhole(script: Script): Promise<void> {
    try {
      await this.exec(`savepoint tidemark_file;\n${script.text}`);
    } catch (error) {
      if (this.cancelled || this.stepCut || storageError(error)) throw this.explain(error);
      await this.exec('rollback to tidemark_file');
      await this.runScript(script);
      throw error;
    }
  }

  /** In-process, so round trips cost nothing: the step is plain calls inside BEGIN IMMEDIATE. */
  async runStep(step: Step): Promise<number | null> {
    this.stepCut = false;
    return step.script.foreignKeysOff ? this.withForeignKeysOff(step) : this.runStepInTransaction(step);
  }

  /**
   * `-- tidemark:foreign-keys-off` (a table rebuild): PRAGMA foreign_keys is a no-op inside a
   * transaction, so it is turned off before BEGIN, the keys are checked with foreign_key_check before
   * COMMIT (a violation rolls everything back), and the setting is restored after the transaction.
   */
  private async withForeignKeysOff(step: Step): Promise<number | null> {
    const [{ foreign_keys: before }] = await this.all<{ foreign_keys: number }>('pragma foreign_keys');
    await this.exec('pragma foreign_keys = off');
    try {
      return await this.runStepInTransaction(step, () => this.assertForeignKeys(step.script.file.path));
    } catch (error) {
      await this.rollback().catch(() => {});
      throw error;
    } finally {
      await this.exec(`pragma foreign_keys = ${before ? 'on' : 'off'}`);
    }
  }

  /** Every row that references a missing row, after the file ran and before its commit. */
  private async assertForeignKeys(path: string): Promise<void> {
    const rows = await this.all<{ table: string; rowid: number | null; parent: string }>('pragma foreign_key_check');
    if (rows.length === 0) return;
    const shown = rows.slice(0, 10).map((r) => `${r.table} rowid ${r.rowid ?? '(without rowid)'} -> ${r.parent}`);
    const more = rows.length > shown.length ? ` and ${rows.length - shown.length} more` : '';
    throw new MigrationError(
      `${path}: ${rows.length} row(s) reference a missing row: ${shown.join('; ')}${more}; rolled back, nothing was ` +
        `changed`,
      {
        file: path,
        hint:
          `fix the rebuild so every reference still holds (run PRAGMA foreign_key_check in the sqlite3 shell to ` +
          `list them), then run again`,
      },
    );
  }

  private async runStepInTransaction(step: Step, beforeCommit?: () => Promise<void>): Promise<number | null> {
    const { version } = step.script.file;
    if (step.ownTransaction) await this.begin();
    if (step.recheck && (await this.hasVersion(version)) === (step.action === 'up')) {
      if (step.ownTransaction) await this.rollback();
      return null;
    }
    const started = performance.now();
    await this.runWhole(step.script);
    await beforeCommit?.();
    this.runLock?.checkBeforeCommit();
    const { entry, history } = stepRecords(step, Math.round(performance.now() - started));
    // The records, the savepoint's release and the commit in one call into SQLite's worker thread; the
    // records come first, so that a failure among them is still undone by the savepoint.
    const ledgerWrite = step.action === 'up' ? this.insertRowSql(entry) : this.deleteRowSql(version);
    await this.exec(
      [ledgerWrite, this.historySql(history), 'release tidemark_file', ...(step.ownTransaction ? ['commit'] : [])].join(
        ';\n',
      ),
    );
    return history.executionMs;
  }

  /** The sqlite3 shell has no user to record: a hand run's rows say where they came from. */
  readonly shell: ShellSql = {
    stopOnError: '.bail on',
    begin: 'BEGIN IMMEDIATE',
    commit: 'COMMIT',
    insertRow: (entry) => this.insertRowSql(entry, SHELL_APPLIED_BY),
    deleteRow: (version) => this.deleteRowSql(version),
    updateRow: (version, change) => this.updateRowSql(version, change),
    appendHistory: (entry) => this.historySql(entry, SHELL_APPLIED_BY),
  };

  private insertRowSql(entry: LedgerEntry, appliedBy = this.appliedBy): string {
    const { version, name, checksum, executionMs, dirty } = entry;
    const values = [version, name, checksum, executionMs, appliedBy, dirty, ...trailingValues(entry)].map(literal);
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

  private historySql(entry: HistoryEntry, appliedBy = this.appliedBy): string {
    const values = [
      entry.action,
      entry.version,
      entry.name,
      entry.checksum,
      entry.outcome,
      entry.executionMs,
      appliedBy,
      entry.error,
    ].map(literal);
    return (
      `insert into ${this.history} (action, version, migration_name, checksum, outcome, execution_ms, ` +
      `applied_by, error) values (${values.join(', ')})`
    );
  }

  async insertRow(entry: LedgerEntry): Promise<void> {
    await this.run(this.insertRowSql(entry));
  }

  async deleteRow(version: Version): Promise<void> {
    await this.run(this.deleteRowSql(version));
  }

  async updateRow(version: Version, change: RowChange): Promise<void> {
    await this.run(this.updateRowSql(version, change));
  }

  async appendHistory(entry: HistoryEntry): Promise<void> {
    await this.run(this.historySql(entry));
  }

  async readHistory(): Promise<HistoryRow[]> {
    const exists = await this.all(`select 1 from sqlite_schema where type = 'table' and name = ?`, [
      `${this.options.table.name}_history`,
    ]);
    return exists.length === 0
      ? []
      : (await this.all<Record<string, unknown>>(historyQuery(this.history))).map(toHistoryRow);
  }

  /** The catalog queries load only here: migrate never needs them. */
  async snapshot(): Promise<Snapshot> {
    const { readSqliteSnapshot } = await import('./sqlite-schema.js');
    return readSqliteSnapshot((sql, params) => this.all(sql, params), this.options.table);
  }

  /** The database file cannot be written (a read-only file or file system, no permission): exit 4, no file to blame. */
  explain(error: unknown): unknown {
    if (!storageError(error)) return error;
    if ((error as { code?: string }).code === 'SQLITE_FULL') {
      const message = `could not write ${this.description}: the disk is full (${(error as Error).message})`;
      return new ConnectionError(message, {
        hint:
          'the running migration was rolled back; ' +
          'free space on the file system that holds the database file and its journal, then run again',
      });
    }
    return new ConnectionError(`could not write ${this.description}: ${(error as Error).message}`, {
      hint:
        'tidemark needs to write the database file and create files beside it (the journal): check the permissions ' +
        'of the file and its folder, and that its file system is not mounted read-only',
    });
  }

  async close(): Promise<void> {
    this.runLock?.release();
    return new Promise((resolve, reject) => this.db.close((error) => (error ? reject(error) : resolve())));
  }
}

/** applied_by of a row written by a hand run of a `tidemark sql` script. */
const SHELL_APPLIED_BY = 'sqlite3 shell';

/** A SQL literal: the same statement text serves the driver and a script for the sqlite3 shell. */
function literal(value: string | number | bigint | boolean | null): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? '1' : '0';
  if (typeof value === 'bigint') return String(value);
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new Error(`not an integer: ${value}`);
    return String(value);
  }
  return `'${value.replace(/'/g, "''")}'`;
}

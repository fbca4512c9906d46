// The one interface both databases implement. Everything dialect-specific lives behind it.
import { hash } from 'node:crypto';
import type { LockMode } from '../config.js';
import { ExitCode, InterruptedError, UsageError } from '../errors.js';
import type { Checksums, Dialect, Migration, SourceText } from '../files.js';
import type { Script } from '../script.js';
import type { ForeignRow, ForeignTable } from '../import/ledgers.js';
import type { DirtyAction, LedgerRow } from '../plan.js';
import type { Snapshot } from '../schema.js';
import { MAX_VERSION, versionOf, type Version } from '../version.js';

/** A ledger row as tidemark writes it. */
export interface LedgerEntry {
  version: Version;
  /** The version as the file names it (`003`): stored, so it prints alike once the file is gone. */
  versionText: string;
  name: string;
  checksum: string;
  executionMs: number | null;
  dirty: boolean;
  /** The rollback file's text and checksum when the version was applied: a reverted release can still undo it. */
  rollback: SourceText | null;
}

export interface RowChange {
  checksum?: string;
  dirty?: boolean;
  /** Which step left the row dirty; null once it is clean. */
  dirtyAction?: DirtyAction | null;
  executionMs?: number;
  rollback?: SourceText;
}

/** The ledger columns and values a RowChange sets, in a fixed order. */
export function rowChangeColumns(change: RowChange): [string[], (string | number | boolean | null)[]] {
  const pairs: [string, string | number | boolean | null | undefined][] = [
    ['checksum', change.checksum],
    ['dirty', change.dirty],
    ['dirty_action', change.dirtyAction],
    ['execution_ms', change.executionMs],
    ['rollback_sql', change.rollback?.text],
    ['rollback_checksum', change.rollback?.checksum],
  ];
  const set = pairs.filter((pair): pair is [string, string | number | boolean | null] => pair[1] !== undefined);
  return [set.map(([c]) => c), set.map(([, v]) => v)];
}

/** `up-out-of-order`: a version below the applied one, applied with --allow-out-of-order. */
export type HistoryAction = 'up' | 'up-out-of-order' | 'down' | 'force' | 'baseline' | 'import' | 'resolve';

/** A transactional migration or rollback: its SQL plus the ledger and history rows that record it. */
export interface Step {
  action: 'up' | 'down';
  script: Script;
  /** up: the rollback file's text, recorded with the ledger row; null for down or when there is no rollback file. */
  rollback: SourceText | null;
  /** up: applied below the current version by --allow-out-of-order, which its history row records. */
  outOfOrder: boolean;
  /** Wrap it in its own transaction (false inside --single-transaction's one transaction). */
  ownTransaction: boolean;
  /**
   * No run-wide lock: inside the transaction, first check that the ledger still lacks (up) or has
   * (down) the version, and do nothing if another runner got there first.
   */
  recheck: boolean;
}

/** How a database lets steps share a transaction; see {@link Driver.commitGroup}. */
export interface CommitGroup {
  /** How long a group stays open before it commits. */
  ms: number;
  /** After a step failed inside a group: undoes it back to its savepoint, keeping the group's earlier steps. */
  undoStep(): Promise<void>;
  /**
   * Stops the running step early and makes it fail, so that the group's earlier steps can be committed
   * (and reported) without waiting for a long one; the step then runs again in a new group.
   */
  cut(): void;
}

/** What a step runs and records, without how: migrate's pending migrations, `tidemark sql`'s script steps. */
export type StepSource = Pick<Step, 'script' | 'rollback' | 'outOfOrder'>;

/** One line of the append-only history table. */
export interface HistoryEntry {
  action: HistoryAction;
  version: Version;
  name: string;
  checksum: string | null;
  /** interrupted: stopped from outside (a signal, a lost connection or lock), with nothing wrong in its SQL. */
  outcome: 'ok' | 'failed' | 'interrupted';
  executionMs: number | null;
  error: string | null;
}

/** A history line as read back: the entry plus who and when. */
export interface HistoryRow extends HistoryEntry {
  /** The version as printed: its file's name for it when known, else the ledger's stored text, else the number. */
  versionText: string;
  appliedBy: string | null;
  at: string;
}

/** How a run keeps concurrent runners apart (config.ts LockMode), and how long it waits. */
export interface LockOptions {
  mode: LockMode;
  timeoutSeconds: number;
  /** Table mode: how long the lock row lives unless renewed. */
  ttlSeconds: number;
  /** Aborted by a signal: the wait for the lock ends at once. */
  signal?: AbortSignal;
}

export interface Driver {
  readonly dialect: Dialect;
  /** Where the driver is connected, safe to print: never holds a password. */
  readonly description: string;
  /** `user@host` recorded in applied_by. */
  readonly appliedBy: string;

  /**
   * Takes the lock that keeps concurrent runners apart, waiting at most timeoutSeconds (then a
   * ConnectionError, exit 4). Returns true when it holds for the whole run; false when the database
   * only serializes single write transactions, so each step must re-check with hasVersion().
   */
  lock(options: LockOptions): Promise<boolean>;
  /**
   * Throws a ConnectionError (exit 4) when the run's lock is known to be lost; called before each step so none starts
   * without it.
   */
  assertLocked(): void;
  /** Whether the ledger (already prepared) has a row for the version, read inside the current transaction. */
  hasVersion(version: Version): Promise<boolean>;
  /** The ledger, ordered by version; [] when the table does not exist yet. */
  readLedger(): Promise<LedgerRow[]>;
  /**
   * The ledger in one value, for a no-op run that need not read 10,000 rows: {@link fingerprintOf} of
   * its rows' `version checksum rollback_checksum` lines in version order. null when the rows alone
   * cannot say the run is a no-op: no ledger yet, a layout without those columns, a dirty row or one
   * without a checksum.
   */
  ledgerFingerprint(): Promise<string | null>;
  /** Another migrator's ledger as text, in its order (`tidemark import --url`); null when the table does not exist. */
  readForeignTable(spec: ForeignTable): Promise<ForeignRow[] | null>;
  /** The rollback text stored with an applied version's row, or null when none was stored. */
  storedRollback(version: Version): Promise<string | null>;
  /** Creates the ledger and history tables, or adds tidemark's columns to a legacy ledger. */
  prepareLedger(): Promise<void>;
  /**
   * The DDL prepareLedger() would run now (CREATE TABLE IF NOT EXISTS, or ALTER TABLE); [] when the tables are ready.
   */
  ledgerDdl(): Promise<string[]>;
  /** tidemark's ledger statements as a script for the database's own shell (`tidemark sql`). */
  readonly shell: ShellSql;

  begin(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /**
   * Where a commit costs much more than a savepoint (SQLite's fsyncs): consecutive transactional steps
   * may share one transaction, each in its own savepoint, for this long. null: a transaction each.
   */
  readonly commitGroup: CommitGroup | null;

  /** Runs a migration file's SQL; a failure is a MigrationError naming file:line where known. */
  runScript(script: Script): Promise<void>;
  /**
   * Runs a transactional step and writes its ledger row (inserted for up, deleted for down) and an
   * `ok` history row, in as few round trips as the database allows. Returns the milliseconds the
   * step took, or null when the recheck found it already done. On failure the caller rolls back.
   */
  runStep(step: Step): Promise<number | null>;

  insertRow(entry: LedgerEntry): Promise<void>;
  deleteRow(version: Version): Promise<void>;
  /** Changes an applied version's row: a new checksum, the dirty flag, the measured time. */
  updateRow(version: Version, change: RowChange): Promise<void>;
  appendHistory(entry: HistoryEntry): Promise<void>;
  /** The history table, oldest first; [] when it does not exist yet. */
  readHistory(): Promise<HistoryRow[]>;

  /** The application's schema from the catalogs, normalized; tidemark's own tables left out. */
  snapshot(): Promise<Snapshot>;

  /**
   * Writes a history row after a failure or interruption, through a new connection (once) when the
   * run's connection was lost; never throws: an unreachable database only loses the row.
   */
  recordFailure(entry: HistoryEntry): Promise<void>;
  /** Cancels the statement running now (a signal arrived); its promise rejects. */
  cancel(): void;
  /** Who holds the run lock (a run in progress), or null: tells a dirty row in progress from a crashed one. */
  otherRun(): Promise<string | null>;

  close(): Promise<void>;
  /**
   * The database's own errors that mean "you may not" (privileges, read-only files) as a TidemarkError with the fix;
   * others unchanged.
   */
  explain(error: unknown): unknown;
}

/**
 * tidemark's statements with literal values, for a script a person runs in psql or the sqlite3 shell:
 * the same SQL the driver runs, except that applied_by names the shell's user (see docs/running.md).
 */
export interface ShellSql {
  /** The shell command that makes the script stop at the first error: its first line. */
  stopOnError: string;
  begin: string;
  commit: string;
  insertRow(entry: LedgerEntry): string;
  deleteRow(version: Version): string;
  updateRow(version: Version, change: RowChange): string;
  appendHistory(entry: HistoryEntry): string;
}

/** The ledger row and history entry that record a finished step. */
export function stepRecords(step: Step, executionMs: number | null): { entry: LedgerEntry; history: HistoryEntry } {
  const { file } = step.script;
  const action = step.outOfOrder ? 'up-out-of-order' : step.action;
  return {
    entry: {
      version: file.version,
      versionText: file.versionText,
      name: file.name,
      checksum: step.script.checksum,
      executionMs,
      dirty: false,
      rollback: step.rollback,
    },
    history: {
      action,
      version: file.version,
      name: file.name,
      checksum: step.script.checksum,
      outcome: 'ok',
      executionMs,
      error: null,
    },
  };
}

/**
 * tidemark's own ledger insert met the version's row: another runner recorded it meanwhile (runners
 * not kept apart: --lock none, or a lock lost). Not the migration's fault, and nothing to fix in it.
 */
export function versionTakenError(description: string, version: string): InterruptedError {
  const message = `version ${version} was recorded in ${description} by another runner while this one ran it`;
  return new InterruptedError(message, ExitCode.connection, {
    hint:
      'this run rolled its copy back, so the version ran once; nothing is wrong with its SQL. Runners overlapped: ' +
      'give every runner of this database a --lock mode other than none; run again to go on',
  });
}

/**
 * A table that merely shares the ledger's name (another tool's, an application's) must never be
 * adopted and altered: it needs at least the legacy columns version and migration_name.
 */
export function assertLedgerLayout(table: string, columns: Set<string> | null): void {
  const missing = ['version', 'migration_name'].filter((c) => columns && !columns.has(c));
  if (missing.length === 0) return;
  throw new UsageError(`the table ${table} is not a migration ledger: it has no ${missing.join(' or ')} column`, {
    hint:
      'if another tool owns that table, give tidemark its own with --table (e.g. --table tidemark_versions); ' +
      'nothing was changed',
  });
}

/** The ledger columns tidemark writes when it records a version, in the order of their values. */
export const LEDGER_INSERT_COLUMNS =
  'version, migration_name, checksum, execution_ms, applied_by, dirty, dirty_action, rollback_sql, ' +
  'rollback_checksum, version_text';

/**
 * dirty_action, rollback_sql, rollback_checksum and version_text of a new row: a row is only ever
 * inserted dirty by a no-transaction migration on its way up; null when no rollback file was there to store.
 */
export function trailingValues(entry: LedgerEntry): [DirtyAction | null, string | null, string | null, string] {
  const { rollback } = entry;
  return [entry.dirty ? 'up' : null, rollback?.text ?? null, rollback?.checksum ?? null, entry.versionText];
}

/** Columns tidemark adds to a legacy ledger. */
export const ADDED_COLUMNS = [
  'checksum',
  'execution_ms',
  'applied_by',
  'dirty',
  'dirty_action',
  'rollback_checksum',
  'rollback_sql',
  'version_text',
] as const;

/**
 * The query that reads the ledger, with null (or not-dirty) for columns a legacy table lacks.
 * `expressions` overrides how a column is read (PostgreSQL formats its timestamp). The version is
 * read as text: SQLite's client turns integers into JavaScript numbers, which round above 2^53.
 */
export function ledgerQuery(
  table: string,
  columns: Set<string>,
  expressions: Partial<Record<string, string>> = {},
): string {
  const read = (column: string, missing = 'null') =>
    `${columns.has(column) ? (expressions[column] ?? column) : missing} as ${column}`;
  // rollback_sql stays unread: only a rollback that needs it fetches it (storedRollback).
  const list = [
    read('id'),
    `cast(version as text) as version`,
    read('migration_name'),
    read('applied_at'),
    read('checksum'),
    read('execution_ms'),
    read('applied_by'),
    read('dirty', '0'),
    read('dirty_action'),
    read('rollback_checksum'),
    read('version_text'),
  ];
  // Qualified: the bare name would order by the text of the output column (10 before 9).
  return `select ${list.join(', ')} from ${table} order by ${table}.version`;
}

/** The columns a ledger needs for ledgerFingerprint(). */
export const FINGERPRINT_COLUMNS = ['version', 'checksum', 'rollback_checksum', 'dirty'] as const;

/** SHA-256 of the lines (`version checksum rollback_checksum`, one per line, in version order) as UTF-8. */
export function fingerprintOf(lines: string): string {
  return hash('sha256', lines, 'hex');
}

/**
 * What ledgerFingerprint() gives for a ledger that records exactly these migrations with these files'
 * checksums (a migration without a rollback file: an empty rollback checksum). Equal fingerprints mean
 * nothing is pending, no applied file was edited and the ledger has no other version.
 */
export function manifestFingerprint(migrations: Migration[], checksums: Checksums): string {
  const line = (m: Migration) =>
    `${m.version} ${checksums.forward.get(m.version)} ${checksums.rollback.get(m.version) ?? ''}`;
  return fingerprintOf(migrations.map(line).join('\n'));
}

/** A row of ledgerQuery() as tidemark works with it. */
export function toLedgerRow(r: Record<string, unknown>, table: string): LedgerRow {
  const text = typeof r.version === 'string' ? r.version : '';
  const version = /^\d+$/.test(text) ? versionOf(text) : null;
  if (version === null) {
    throw new UsageError(
      `the ledger table ${table} holds a version that is not a whole number from 0 to ${MAX_VERSION}: ` +
        JSON.stringify(r.version),
      {
        hint:
          `fix or delete that row by hand (versions are the numbers at the start of the migration file names), ` +
          `or point --table at tidemark's ledger`,
      },
    );
  }
  return {
    id: r.id == null ? null : Number(r.id),
    version,
    versionText: (r.version_text as string | null) ?? null,
    name: String(r.migration_name),
    appliedAt: r.applied_at == null ? null : String(r.applied_at),
    checksum: (r.checksum as string | null) ?? null,
    executionMs: r.execution_ms == null ? null : Number(r.execution_ms),
    appliedBy: (r.applied_by as string | null) ?? null,
    dirty: Boolean(r.dirty),
    dirtyAction: r.dirty_action === 'up' || r.dirty_action === 'down' ? r.dirty_action : null,
    rollbackChecksum: (r.rollback_checksum as string | null) ?? null,
  };
}

/** The query that reads the history table; `at` is an expression giving its time as text. */
export function historyQuery(table: string, at = 'at'): string {
  return (
    `select action, cast(version as text) as version, migration_name, checksum, outcome, execution_ms, ` +
    `applied_by, ${at} as at, error from ${table} order by id`
  );
}

/** A row of historyQuery(). */
export function toHistoryRow(r: Record<string, unknown>): HistoryRow {
  // Only tidemark writes the history, into a bigint (integer) column.
  const version = BigInt(String(r.version));
  return {
    action: r.action as HistoryAction,
    version,
    versionText: String(version),
    name: String(r.migration_name ?? ''),
    checksum: (r.checksum as string | null) ?? null,
    outcome: r.outcome as HistoryRow['outcome'],
    executionMs: r.execution_ms == null ? null : Number(r.execution_ms),
    appliedBy: (r.applied_by as string | null) ?? null,
    at: String(r.at),
    error: (r.error as string | null) ?? null,
  };
}

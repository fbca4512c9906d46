// The public API class: one method per command, each a short delegation to the module that does it
// (src/migrate/, src/rollback/, src/ledger/, …). A command's module is loaded when it runs
// (`await import`), so the common deploy, a no-op migrate, loads none of the others.
import { EventEmitter } from 'node:events';
import type { Config } from './config.js';
import type { StopSignal } from './errors.js';
import type { EventListener, MigratorEvents } from './events.js';
import { createMigration } from './create.js';
import { migrate, type MigrateOptions } from './migrate/migrate.js';
import { Session } from './run/session.js';
import { optionalVersion, versionInput, type Version, type VersionInput } from './version.js';
// Only their types: the modules themselves are imported when their command runs.
import type { BackupOptions, BackupResult } from './backup.js';
import type { VerifyReport } from './findings.js';
import type { ImportOptions, ImportResult } from './import/command.js';
import type { SourceFormat } from './import/convert.js';
import type { InitOptions, InitStep } from './init.js';
import type { ForceOptions } from './ledger/force.js';
import type { HistoryReport, StatusReport } from './ledger/status.js';
import type { LintOptions } from './lint/command.js';
import type { LintResult } from './linting.js';
import type { RollbackOptions } from './rollback/rollback.js';
import type { Snapshot } from './schema.js';
import type { SqlOptions } from './sqlscript.js';
import type { VerifyOptions } from './verify.js';

export type { MigrateOptions } from './migrate/migrate.js';
export type { RollbackOptions } from './rollback/rollback.js';
export type { LintOptions } from './lint/command.js';
export type { ImportOptions, ImportResult } from './import/command.js';
export type { SqlOptions } from './sqlscript.js';
export type { StatusReport, HistoryReport } from './ledger/status.js';
export type { ForceOptions } from './ledger/force.js';

/**
 * Runs migrations for one database, as the CLI does. Every method reads the files first and refuses
 * bad ones before connecting; every failure is a {@link TidemarkError} with an exit code and a hint.
 */
export class Migrator {
  /** Progress for an application: `migrator.events.on('applied', (e) => log(e.name, e.ms))`. */
  readonly events = new EventEmitter<MigratorEvents>();
  /** The configuration, the events, the database being worked on and the stop signal, for the commands. */
  private readonly session: Session;

  /** @param listener - called with every event before the emitter gets it (the CLI's printer). */
  constructor(
    private readonly config: Config,
    listener?: EventListener,
  ) {
    const emitter = this.events as EventEmitter;
    this.session = new Session(config, (event) => {
      listener?.(event);
      emitter.emit('event', event);
      emitter.emit(event.type, event);
    });
  }

  /**
   * Stops the run cleanly (SIGINT, SIGTERM): the running statement is cancelled, its migration rolled
   * back and recorded as interrupted, the lock released, and the run fails with the signal's exit code.
   * @returns false when no database work is under way (nothing to clean up: the caller may just exit).
   */
  interrupt(signal: StopSignal): boolean {
    return this.session.interrupt(signal);
  }

  /**
   * Applies the pending migrations in order (up to `options.target`), each in its own transaction
   * with its ledger row. Refuses (UsageError) on a dirty row, an edited applied file or an
   * out-of-order version; a failing migration is a MigrationError naming file:line.
   * @returns how many this run applied and the version the database is at now.
   */
  async migrate(given: MigrateOptions = {}): Promise<{ applied: number; version: Version }> {
    return migrate(this.session, { ...given, target: optionalVersion(given.target, 'target') });
  }

  /**
   * Undoes the last migration, the last `steps`, every one above `to`, or `all`, newest first, each
   * with its rollback file in one transaction with the deletion of its ledger row.
   * @returns how many this run rolled back and the version the database is at now.
   */
  async rollback(given: RollbackOptions = {}): Promise<{ reverted: number; version: Version }> {
    const { rollback } = await import('./rollback/rollback.js');
    return rollback(this.session, { ...given, to: optionalVersion(given.to, 'version') });
  }

  /**
   * Lints migration files for lock hazards: the given files, every file (`all`), or by default the
   * files pending on the configured database (every file when none is configured). Changes nothing.
   */
  async lint(options: LintOptions = {}): Promise<LintResult> {
    const { lint } = await import('./lint/command.js');
    return lint(this.session, options);
  }

  /**
   * Every version with a file or a ledger row and its state (applied, pending, not in this release, changed, …).
   * Read-only.
   */
  async status(): Promise<StatusReport> {
    const { status } = await import('./ledger/status.js');
    return status(this.session);
  }

  /**
   * The history table, oldest first: every up, down, force and failed attempt; each version shown as
   * its file names it, else as the ledger stored it.
   */
  async history(): Promise<HistoryReport> {
    const { history } = await import('./ledger/status.js');
    return history(this.session);
  }

  /** The highest applied version, 0 when none. Read-only; does not read the files. */
  async version(): Promise<Version> {
    const { version } = await import('./ledger/status.js');
    return version(this.session);
  }

  /**
   * Checks that the database is exactly what the files say: nothing pending, files unchanged, no
   * dirty row, rollback files present, no schema drift from the applied files run on a scratch
   * database; with `rollbacks`, proves every rollback there too. Read-only for this database; the
   * findings are data (the CLI exits 3 on any).
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const { migrations, target } = this.session.migrations();
    const { verify } = await import('./verify.js');
    const { emit } = this.session;
    return this.session.withDriver(target, { create: false, lock: false }, ({ driver }) =>
      verify(
        { driver, target, config: this.config, migrations, emit, migratorFor: (config) => new Migrator(config) },
        options,
      ),
    );
  }

  /** The live schema, normalized (tidemark's own tables left out). Read-only. */
  async schema(): Promise<Snapshot> {
    const access = { create: false, lock: false };
    return this.session.withDriver(this.session.target(), access, ({ driver }) => driver.snapshot());
  }

  /**
   * Makes the ledger say `version` without running any migration SQL. With `confirm`, what it would
   * change is read first (without the lock or creating anything) and confirmed; the change is then
   * made only if the ledger still calls for exactly that.
   */
  async force(version: VersionInput, options: ForceOptions = {}): Promise<void> {
    const { force } = await import('./ledger/force.js');
    return force(this.session, versionInput(version, 'version'), options);
  }

  /**
   * Settles a dirty version: `applied` says the interrupted step (the migration, or its rollback)
   * took effect. Changes only that version's row (cleared, or deleted) and runs no migration SQL.
   */
  async resolve(version: VersionInput, applied: boolean, options: { dryRun?: boolean } = {}): Promise<void> {
    const { resolve } = await import('./ledger/resolve.js');
    return resolve(this.session, versionInput(version, 'version'), applied, options);
  }

  /**
   * Records the versions <= `version` as applied, running no migration SQL, on a database whose
   * schema was built up to there by hand or by another tool. Refuses when the ledger has rows.
   */
  async baseline(version: VersionInput, options: { dryRun?: boolean } = {}): Promise<void> {
    const { baseline } = await import('./ledger/baseline.js');
    return baseline(this.session, versionInput(version, 'version'), options);
  }

  /**
   * `tidemark import`: writes another migrator's folder as tidemark files into the migrations folder
   * and, with `adopt`, records in tidemark's ledger the versions that tool applied. Everything is
   * checked before anything is written (no file overwritten, the other ledger consistent, tidemark's
   * empty); the files are removed again when recording fails. The other tool's table is only read.
   */
  async import(format: SourceFormat, source: string, options: ImportOptions = {}): Promise<ImportResult> {
    const { importFolder } = await import('./import/command.js');
    return importFolder(this.session, format, source, options);
  }

  /**
   * The script `migrate` (or with `rollback`, `rollback`) would run now, for psql or the sqlite3
   * shell, with the ledger and history rows tidemark would write. Reads the ledger and nothing else.
   */
  async sql(given: SqlOptions = {}): Promise<string> {
    const { sql } = await import('./sqlscript.js');
    const options = {
      ...given,
      target: optionalVersion(given.target, 'target'),
      to: optionalVersion(given.to, 'version'),
    };
    return sql(this.session, options);
  }

  /**
   * Writes the next version's migration and rollback files; needs no database. With `timestamp`,
   * the version is the UTC time as YYYYMMDDhhmmss (branches merged in any order do not collide).
   */
  create(name: string, options: { timestamp?: boolean } = {}): string[] {
    return createMigration(this.config, name, options);
  }

  /**
   * Writes a backup of the whole database into the backup folder (`backups/`): SQLite with VACUUM
   * INTO, PostgreSQL with pg_dump -Fc; both consistent while the application keeps writing.
   */
  async backup(options: BackupOptions = {}): Promise<BackupResult> {
    const { backup } = await import('./backup.js');
    return backup(this.session, options);
  }

  /**
   * Replaces the database's contents with a backup, under the run lock. The backup is read through
   * first; `confirm` is asked with the version it brings back, and nothing changes unless it says yes.
   */
  async restore(file: string, confirm: (version: Version) => Promise<boolean>): Promise<{ version: Version }> {
    const { restore } = await import('./backup.js');
    return restore(this.session, file, confirm);
  }

  /** Adds tidemark to the app in the working folder: npm scripts, DATABASE_URL in .env, a first migration pair. */
  async init(options: InitOptions = {}): Promise<InitStep[]> {
    const { init } = await import('./init.js');
    return init(this.config.cwd, this.config.dir, options, () => this.create('first_migration'));
  }
}

// Runs plans through a Driver: transactions, ledger rows, history, events. No dialect knowledge here.
import { writeFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseTarget, type Config, type Target } from './config.js';
import { connect } from './drivers/connect.js';
import {
  stepRecords,
  type Driver,
  type HistoryEntry,
  type HistoryRow,
  type LedgerEntry,
  type RowChange,
  type Step,
  type StepSource,
} from './drivers/driver.js';
import { ConnectionError, InterruptedError, MigrationError, signalError, TidemarkError, UsageError } from './errors.js';
import type { StopSignal } from './errors.js';
import { makeFolders } from './folders.js';
import {
  discover,
  fileChecksums,
  loadScript,
  readSourceText,
  rollbackChecksums,
  scriptFromText,
  storedRollbackFile,
  validateMigrationName,
  type Checksums,
  type Dialect,
  type Migration,
  type Script,
} from './files.js';
import {
  assertNotDirty,
  assertReversible,
  assertSerialLedger,
  currentVersion,
  dirtyResolution,
  ledgerAnomalies,
  notInReleaseWarning,
  planAdopt,
  planBaseline,
  planForce,
  planMigrate,
  planResolve,
  planRollback,
  planSync,
  planStatus,
  rowsToRollBack,
  versionAfterRollback,
  writesLedger,
  type DirtyAction,
  type ForcePlan,
  type LedgerRow,
  type Backfill,
  type MigratePlan,
  type RollbackStep,
  type StatusEntry,
  versionLabel,
} from './plan.js';
import type { EventListener, ForceChanges, MigratorEvents } from './events.js';
import { irreversibleRollback, sourceFile } from './reversibility.js';
import { forwardTemplate, isUntouchedTemplate, rollbackTemplate } from './templates.js';
// The modules of the other commands are imported when their command runs (`await import`), so the
// common deploy, a no-op migrate, loads none of them; only their types are named here.
import type { BackupOptions, BackupResult } from './backup.js';
import type { InitOptions, InitStep } from './init.js';
import type { ShellScriptPlan } from './sqlscript.js';
import type { VerifyReport } from './findings.js';
import type { Snapshot } from './schema.js';
import type { VerifyOptions } from './verify.js';
import type { LintResult } from './linting.js';
import type { Conversion, ConvertedFile, SourceFormat } from './import/convert.js';
import { optionalVersion, versionInput, type Version, type VersionInput } from './version.js';

export interface MigrateOptions {
  /** The highest version to apply: a bigint, a safe integer or a string of digits (a version above 2^53). */
  target?: VersionInput;
  dryRun?: boolean;
  allowChanged?: boolean;
  /** Apply pending versions below the applied version instead of refusing (exit 2). */
  allowOutOfOrder?: boolean;
  singleTransaction?: boolean;
  /** Back up the database first when something is pending (a no-op run takes none). */
  backup?: BackupOptions | boolean;
  /** First undo the applied versions this release has no files for (newest first, from their stored rollbacks). */
  sync?: boolean;
  /**
   * Refuse (exit 2, nothing run) when the lint finds a lock hazard in a pending file; default: the config's `strict`.
   */
  strict?: boolean;
}

/** `tidemark lint`: which files to lint (default: the pending ones, or every file when no database is configured). */
export interface LintOptions {
  /** Paths of migration files, as given on the command line (relative to the working folder). */
  files?: string[];
  all?: boolean;
}

export interface ImportOptions {
  /** Only convert the files, even when a database URL is configured (else its ledger is adopted too). */
  filesOnly?: boolean;
  /** The other tool's ledger table, when the project renamed it (dbmate --migrations-table, goose -table). */
  table?: string;
  dryRun?: boolean;
}

/** What `import` converted, wrote and recorded, and every source file it did not convert, with why. */
export interface ImportResult extends Conversion {
  /** The migrations folder written into. */
  dir: string;
  /** Paths written ([] on a dry run). */
  written: string[];
  /** Paths that existed already with the same bytes (a second database adopted from the committed folder). */
  kept: string[];
  /** The versions recorded (with --dry-run: that would be) from the other tool's ledger; null without adopt. */
  adopted: { database: string; table: string; versions: Version[] } | null;
  dryRun: boolean;
}

export interface RollbackOptions {
  steps?: number;
  to?: VersionInput;
  all?: boolean;
  /** Run the rollback stored in the ledger even where the rollback file exists and differs. */
  useStored?: boolean;
  dryRun?: boolean;
}

/** `tidemark sql`: migrate's script up to `target`, or with `rollback` the rollback script for steps, to or all. */
export interface SqlOptions {
  target?: VersionInput;
  rollback?: boolean;
  steps?: number;
  to?: VersionInput;
  all?: boolean;
  allowOutOfOrder?: boolean;
  useStored?: boolean;
}

interface Run {
  driver: Driver;
  /** The lock covers the whole run: no other runner can change the ledger meanwhile. */
  exclusive: boolean;
  /** This run holds a run lock (not --lock none): a dirty row it finds was left by a run that ended. */
  locked: boolean;
}

export interface StatusReport {
  database: string;
  version: Version;
  entries: StatusEntry[];
  /** What no serial run could have written into the ledger (a version twice, ...); [] normally. */
  anomalies: string[];
  /** For a dirty version: the `resolve` commands that settle it; null when none is dirty. */
  resolution: string | null;
}

export interface HistoryReport {
  database: string;
  entries: HistoryRow[];
}

/** Each event under its own type name ('applied', 'failed', …), and every event under 'event'. */

/**
 * Runs migrations for one database, as the CLI does. Every method reads the files first and refuses
 * bad ones before connecting; every failure is a {@link TidemarkError} with an exit code and a hint.
 */
export class Migrator {
  /** Progress for an application: `migrator.events.on('applied', (e) => log(e.name, e.ms))`. */
  readonly events = new EventEmitter<MigratorEvents>();
  private readonly emit: EventListener;

  /** @param listener - called with every event before the emitter gets it (the CLI's printer). */
  constructor(
    private readonly config: Config,
    listener?: EventListener,
  ) {
    const emitter = this.events as EventEmitter;
    this.emit = (event) => {
      listener?.(event);
      emitter.emit('event', event);
      emitter.emit(event.type, event);
    };
  }

  /** The database the run is working on now, and why it must stop (a signal), once one arrived. */
  private active: Driver | null = null;
  private interruption: InterruptedError | null = null;
  private readonly stopping = new AbortController();

  /**
   * Stops the run cleanly (SIGINT, SIGTERM): the running statement is cancelled, its migration rolled
   * back and recorded as interrupted, the lock released, and the run fails with the signal's exit code.
   * @returns false when no database work is under way (nothing to clean up: the caller may just exit).
   */
  interrupt(signal: StopSignal): boolean {
    this.interruption ??= signalError(signal);
    this.stopping.abort(this.interruption);
    this.active?.cancel();
    return this.active !== null;
  }

  private get dir(): string {
    return this.config.dir;
  }

  /** Files are read and checked before any connection is made: bad files never touch the database. */
  private migrations(): { migrations: Migration[]; target: Target } {
    const target = parseTarget(this.config.url, this.config.cwd);
    return { migrations: discover(this.dir, this.config.cwd).migrationsFor(target.dialect), target };
  }

  /**
   * Connects, and for commands that write takes the run lock first. `exclusive` says whether that lock
   * covers the whole run (PostgreSQL); if not (SQLite), each step re-checks the ledger inside its own
   * write transaction.
   */
  private async withDriver<T>(
    target: Target,
    access: { create: boolean; lock: boolean },
    work: (run: Run) => Promise<T>,
  ): Promise<T> {
    const driver = await connect(target, this.config, {
      create: access.create,
      onNotice: (message) => this.emit({ type: 'notice', message }),
    });
    this.active = driver;
    try {
      const { lock: mode, lockTimeoutSeconds: timeoutSeconds, lockTtlSeconds: ttlSeconds } = this.config;
      const signal = this.stopping.signal;
      const exclusive = access.lock ? await driver.lock({ mode, timeoutSeconds, ttlSeconds, signal }) : false;
      return await work({ driver, exclusive, locked: access.lock && mode !== 'none' });
    } catch (error) {
      // After a signal, whatever failed (the cancelled statement) failed because of it.
      throw error instanceof TidemarkError ? error : (this.interruption ?? driver.explain(error));
    } finally {
      this.active = null;
      await driver.close();
    }
  }

  /**
   * Applies the pending migrations in order (up to `options.target`), each in its own transaction
   * with its ledger row. Refuses (UsageError) on a dirty row, an edited applied file or an
   * out-of-order version; a failing migration is a MigrationError naming file:line.
   * @returns how many this run applied and the version the database is at now.
   */
  async migrate(given: MigrateOptions = {}): Promise<{ applied: number; version: Version }> {
    const options = { ...given, target: optionalVersion(given.target, 'target') };
    const { migrations, target } = this.migrations();
    // Every file is hashed (an edited applied file must be caught); only pending ones are parsed.
    const checksums = fileChecksums(migrations);
    const dryRun = Boolean(options.dryRun);
    return this.withDriver(target, { create: !dryRun, lock: !dryRun }, async (run) => {
      const { driver } = run;
      const ledger = await driver.readLedger();
      await assertNoRunInProgress(run, ledger);
      // Everything is planned (and refused) before anything changes, the --sync rollback included.
      const back = options.sync ? planSync(migrations, ledger) : [];
      const afterBack = ledger.filter((r) => !back.some((step) => step.row === r));
      const plan = await this.planMigration(driver.dialect, migrations, checksums, afterBack, options);
      if (options.singleTransaction) assertAllTransactional(plan.runs.map((p) => p.script));
      const changes = back.length > 0 || plan.pending.length > 0;
      if (options.backup && changes && !dryRun) await this.backupAt(target, driver, ledger, options.backup);
      if (back.length > 0) await this.runRollback(run, ledger, back, { dryRun, migrations });
      const started = performance.now();
      this.emit({
        type: 'start',
        command: 'migrate',
        database: driver.description,
        count: plan.pending.length,
        dryRun,
      });
      let applied = 0;
      if (dryRun) {
        for (const m of plan.pending)
          this.emit({ type: 'applied', version: m.version, versionText: m.versionText, name: m.name, ms: 0, dryRun });
        applied = plan.pending.length;
      } else {
        // A no-op run (the common deploy) writes nothing, not even the ledger's DDL.
        if (writesLedger(plan)) await driver.prepareLedger();
        for (const b of plan.backfill) await driver.updateRow(b.migration.version, backfillChange(b, checksums));
        await this.inOptionalTransaction(driver, Boolean(options.singleTransaction), async () => {
          for (const pending of plan.runs) if (await this.apply(run, pending, !options.singleTransaction)) applied++;
        });
      }
      // Every pending version is applied now (by this run or, on SQLite, a concurrent one): no re-read needed.
      const { version } = plan;
      this.emit({
        type: 'summary',
        command: 'migrate',
        database: driver.description,
        count: applied,
        ms: performance.now() - started,
        version,
        dryRun,
      });
      return { applied, version };
    });
  }

  /**
   * migrate's plan with the loaded files it runs; warns about migrations that could not be undone
   * and about applied versions this release does not have (the database is ahead of the code).
   */
  private async planMigration(
    dialect: Dialect,
    migrations: Migration[],
    checksums: Checksums,
    ledger: LedgerRow[],
    options: Omit<MigrateOptions, 'target'> & { target?: Version },
  ): Promise<MigratePlan & { runs: StepSource[] }> {
    const plan = planMigrate(migrations, ledger, checksums, options);
    const ahead = notInReleaseWarning(plan.notInRelease, migrations);
    if (ahead) this.emit({ type: 'warning', message: ahead });
    for (const m of plan.pending.filter((m) => !m.rollback)) {
      this.emit({
        type: 'warning',
        message: `${m.forward.path} has no rollback file; write ${rollbackName(m)} so it can be undone`,
      });
    }
    for (const m of plan.pending.filter((m) => plan.outOfOrder.has(m.version))) {
      this.emit({
        type: 'warning',
        message: `${m.forward.path} runs out of order, below the applied version ${plan.current} ${OUT_OF_ORDER_FLAG}`,
      });
    }
    const runs: StepSource[] = [];
    for (const m of plan.pending) {
      const script = await loadScript(m.forward, dialect);
      const rollback = m.rollback ? readSourceText(m.rollback) : null;
      const run = { script, rollback, outOfOrder: plan.outOfOrder.has(m.version) };
      this.checkWritten(m, run);
      runs.push(run);
    }
    if (runs.length > 0)
      await this.checkLint(
        await this.lintOf(
          runs.map((r) => r.script),
          dialect,
        ),
        options.strict ?? this.config.strict,
      );
    return { ...plan, runs };
  }

  /**
   * A pending migration that is still create's template is refused; one with no statement runs with
   * a warning, and so does one whose rollback was never written.
   */
  private checkWritten(m: Migration, run: StepSource): void {
    const { script } = run;
    if (isUntouchedTemplate(m.forward, script.text)) {
      const { path } = m.forward;
      const message = `${path} is still the template \`tidemark create\` wrote: write the migration or delete the file`;
      throw new UsageError(`${message}; nothing was run`, {
        file: path,
        hint: `write the change in ${path} (its undoing in the rollback file), or delete both files`,
      });
    }
    if (script.statements.length === 0) {
      const message = `${m.forward.path} has no statement: it will be recorded as applied and changes nothing`;
      this.emit({ type: 'warning', message });
    } else if (run.rollback && m.rollback && isUntouchedTemplate(m.rollback, run.rollback.text)) {
      const fix = 'write the rollback, or make its first line -- tidemark:irreversible';
      const message = `${m.rollback.path} is still the template \`tidemark create\` wrote: ${fix}`;
      this.emit({ type: 'warning', message });
    }
  }

  /** With --single-transaction the whole run is one transaction; otherwise each migration has its own. */
  private async inOptionalTransaction(driver: Driver, enabled: boolean, work: () => Promise<void>): Promise<void> {
    if (!enabled) return work();
    this.failure = null;
    try {
      await inTransaction(driver, work);
    } catch (error) {
      // The failure's history row was rolled back with everything else: write it again, outside.
      if (this.failure) await driver.recordFailure(this.failure);
      throw error;
    }
  }

  private failure: HistoryEntry | null = null;

  private apply(run: Run, pending: StepSource, ownTransaction: boolean): Promise<boolean> {
    const { driver } = run;
    const { file } = pending.script;
    const step: Step = { action: 'up', ...pending, ownTransaction, recheck: !run.exclusive };
    return this.step(run, step, {
      before: () => driver.insertRow({ ...stepRecords(step, null).entry, dirty: true }),
      after: (ms) => driver.updateRow(file.version, { dirty: false, dirtyAction: null, executionMs: ms }),
    });
  }

  private revert(run: Run, script: Script, recorded: LedgerRow): Promise<boolean> {
    const { driver } = run;
    const step: Step = {
      action: 'down',
      script,
      rollback: null,
      outOfOrder: false,
      ownTransaction: true,
      recheck: !run.exclusive,
    };
    return this.step(run, step, {
      before: () => driver.updateRow(recorded.version, { dirty: true, dirtyAction: 'down' }),
      after: () => driver.deleteRow(recorded.version),
    });
  }

  /**
   * One migration or rollback; false when another runner already did it. Transactional: the SQL and
   * the ledger change commit together or not at all. no-transaction: the ledger row is marked dirty
   * first and cleared after, so a crash stays visible.
   */
  private async step(
    run: Run,
    step: Step,
    dirtyRow: { before: () => Promise<void>; after: (ms: number) => Promise<void> },
  ): Promise<boolean> {
    const { driver } = run;
    const { action, script, ownTransaction } = step;
    const { file } = script;
    // A run that lost its lock (table mode: another runner took it over) must not start another step.
    driver.assertLocked();
    if (this.interruption) throw this.interruption;
    const { history } = stepRecords(step, null);
    for (const line of script.skipped) this.emit({ type: 'notice', message: line });
    this.emit({ type: 'running', action, version: file.version, versionText: file.versionText, name: file.name });
    const started = performance.now();
    try {
      if (script.noTransaction) {
        // Without a run-wide lock, the ledger is re-read first (the dirty row then claims the version).
        if (!run.exclusive && (await driver.hasVersion(file.version)) === (action === 'up')) return false;
        await dirtyRow.before();
        await driver.runScript(script);
        await dirtyRow.after(elapsed(started));
        await driver.appendHistory({ ...history, outcome: 'ok', executionMs: elapsed(started), error: null });
      } else if ((await driver.runStep(step)) === null) {
        return false;
      }
    } catch (caught) {
      if (!script.noTransaction && ownTransaction) await driver.rollback().catch(() => {});
      const error = stepError(this.interruption ?? caught, script, driver, action);
      const { versionText, name } = file;
      this.emit({ type: 'failed', action, version: file.version, versionText, name, error: error.message });
      // Only the migration's own failure is `failed`: a signal, a lost connection or lock interrupted a fine one.
      const outcome = error instanceof MigrationError ? 'failed' : 'interrupted';
      const entry = { ...history, outcome, executionMs: elapsed(started), error: error.message } as const;
      if (ownTransaction) await driver.recordFailure(entry);
      else this.failure = entry;
      throw error;
    }
    this.emit({
      type: action === 'up' ? 'applied' : 'reverted',
      version: file.version,
      versionText: file.versionText,
      name: file.name,
      ms: elapsed(started),
      dryRun: false,
    });
    return true;
  }

  /**
   * Undoes the last migration, the last `steps`, every one above `to`, or `all`, newest first, each
   * with its rollback file in one transaction with the deletion of its ledger row.
   * @returns how many this run rolled back and the version the database is at now.
   */
  async rollback(given: RollbackOptions = {}): Promise<{ reverted: number; version: Version }> {
    const options = { ...given, to: optionalVersion(given.to, 'version') };
    const { migrations, target } = this.migrations();
    const dryRun = Boolean(options.dryRun);
    return this.withDriver(target, { create: false, lock: !dryRun }, async (run) => {
      const ledger = await run.driver.readLedger();
      await assertNoRunInProgress(run, ledger);
      const steps = planRollback(migrations, ledger, options, undoneRollbackChecksums(migrations, ledger, options));
      const reverted = await this.runRollback(run, ledger, steps, { dryRun, migrations });
      return { reverted, version: versionAfterRollback(ledger, steps) };
    });
  }

  /** Runs planned rollback steps in order with their events; returns how many this run undid. */
  private async runRollback(
    run: Run,
    ledger: LedgerRow[],
    steps: RollbackStep[],
    { dryRun, migrations }: { dryRun: boolean; migrations: Migration[] },
  ): Promise<number> {
    const { driver } = run;
    const scripts = await this.rollbackScripts(driver, steps, migrations);
    // A ledger from an older tidemark gets the dirty_action column a no-transaction rollback writes.
    if (!dryRun && steps.length > 0) await driver.prepareLedger();
    const started = performance.now();
    this.emit({ type: 'start', command: 'rollback', database: driver.description, count: steps.length, dryRun });
    let reverted = 0;
    for (const [i, step] of steps.entries()) {
      if (step.note) this.emit({ type: step.note.level, message: step.note.message });
      if (dryRun)
        this.emit({
          type: 'reverted',
          version: step.version,
          versionText: step.versionText,
          name: step.name,
          ms: 0,
          dryRun,
        });
      if (dryRun || (await this.revert(run, scripts[i]!, step.row))) reverted++;
    }
    const version = versionAfterRollback(ledger, steps);
    this.emit({
      type: 'summary',
      command: 'rollback',
      database: driver.description,
      count: reverted,
      ms: performance.now() - started,
      version,
      dryRun,
    });
    return reverted;
  }

  /**
   * Each step's script: its rollback file, or the rollback stored in the ledger when the file is not
   * in this release. Read (and checked) before anything runs, so a bad one changes nothing.
   */
  private async rollbackScripts(driver: Driver, steps: RollbackStep[], migrations: Migration[]): Promise<Script[]> {
    const scripts: Script[] = [];
    for (const step of steps) {
      if (step.file) {
        scripts.push(await loadScript(step.file, driver.dialect));
        continue;
      }
      const text = await driver.storedRollback(step.version);
      if (text === null)
        throw new UsageError(
          `the rollback stored for version ${step.versionText} (${step.name}) is gone from the ledger; nothing was ` +
            'changed',
        );
      const stored = storedRollbackFile(step.version, step.name, step.versionText);
      scripts.push(await scriptFromText(stored, text, driver.dialect));
    }
    const files = new Map(migrations.map((m) => [m.version, m]));
    const irreversible = new Map<Version, string>();
    for (const [i, step] of steps.entries()) {
      const forward = files.get(step.version)?.forward;
      const rollback = { file: scripts[i]!.file, text: scripts[i]!.text };
      const found = irreversibleRollback(step, rollback, () => (forward ? sourceFile(forward) : null), driver.dialect);
      if (found) irreversible.set(step.version, found.reason);
    }
    assertReversible(steps, irreversible);
    return scripts;
  }

  /** Each finding as a warning; with `strict`, any finding refuses the run before anything changes. */
  private async checkLint(result: LintResult, strict: boolean): Promise<void> {
    const { findingLines } = await import('./linting.js');
    for (const finding of result.findings) this.emit({ type: 'warning', message: findingLines(finding).join('\n') });
    if (!strict || result.findings.length === 0) return;
    const count = result.findings.length;
    throw new UsageError(
      `lint found ${count} lock hazard${count === 1 ? '' : 's'} in the pending files (strict); nothing was run`,
      {
        file: result.findings[0]!.file,
        hint:
          'apply the safe pattern shown with each finding, or suppress one with -- tidemark:allow <rule> ' +
          '<reason> on its statement',
      },
    );
  }

  private async lintOf(scripts: Script[], dialect: Dialect): Promise<LintResult> {
    const { lintScripts } = await import('./linting.js');
    return lintScripts(scripts, dialect, {
      lockTimeoutConfigured: Boolean(this.config.pgLockTimeout) && this.config.pgLockTimeout !== '0',
    });
  }

  /**
   * Lints migration files for lock hazards: the given files, every file (`all`), or by default the
   * files pending on the configured database (every file when none is configured). Changes nothing.
   */
  async lint(options: LintOptions = {}): Promise<LintResult> {
    const started = performance.now();
    const catalog = discover(this.dir, this.config.cwd);
    const dialects: Dialect[] = this.config.url
      ? [parseTarget(this.config.url, this.config.cwd).dialect]
      : ['postgres', 'sqlite'];
    const chosen = options.files?.length ? this.namedFiles(options.files, catalog) : null;
    const results: LintResult[] = [];
    for (const dialect of dialects) {
      let migrations = catalog.migrationsFor(dialect);
      if (chosen) migrations = migrations.filter((m) => chosen.has(m.forward.fullPath));
      else if (!options.all && this.config.url) migrations = await this.pendingOf(migrations);
      const scripts = await Promise.all(migrations.map((m) => loadScript(m.forward, dialect)));
      results.push(await this.lintOf(scripts, dialect));
    }
    const files = [...new Set(results.flatMap((r) => r.files))];
    const { distinctFindings } = await import('./linting.js');
    return { findings: distinctFindings(results.flatMap((r) => r.findings)), files, ms: performance.now() - started };
  }

  /** The full paths of files named on the command line; each must be a migration file of the folder. */
  private namedFiles(paths: string[], catalog: ReturnType<typeof discover>): Set<string> {
    const known = new Set(catalog.files.filter((f) => f.kind === 'forward').map((f) => f.fullPath));
    for (const path of paths) {
      if (!known.has(resolve(this.config.cwd, path))) {
        throw new UsageError(`${path} is not a forward migration file in ${this.dir}/`, {
          file: path,
          hint:
            `name files of the migrations folder (e.g. ${this.dir}/001_create_users.sql), or point --dir at the ` +
            `folder that holds it`,
        });
      }
    }
    return new Set(paths.map((p) => resolve(this.config.cwd, p)));
  }

  /** The migrations not applied on the configured database (read-only; a missing SQLite file has none applied). */
  private async pendingOf(migrations: Migration[]): Promise<Migration[]> {
    const target = parseTarget(this.config.url, this.config.cwd);
    const ledger = await this.withDriver(target, { create: false, lock: false }, ({ driver }) => driver.readLedger());
    const applied = new Set(ledger.map((r) => r.version));
    return migrations.filter((m) => !applied.has(m.version));
  }

  /**
   * Every version with a file or a ledger row and its state (applied, pending, not in this release, changed, …).
   * Read-only.
   */
  async status(): Promise<StatusReport> {
    const { migrations, target } = this.migrations();
    return this.withDriver(target, { create: false, lock: false }, async ({ driver }) => {
      const ledger = await driver.readLedger();
      const anomalies = ledgerAnomalies(ledger);
      for (const anomaly of anomalies) {
        this.emit({ type: 'warning', message: `the ledger is not one a serial run could have written: ${anomaly}` });
      }
      const applied = new Set(ledger.map((r) => r.version));
      const checksums = fileChecksums(migrations, applied);
      const entries = planStatus(migrations, ledger, checksums);
      const dirty = ledger.find((r) => r.dirty);
      let resolution: string | null = null;
      const label = dirty && versionLabel(dirty.version, null, dirty);
      if (dirty) resolution = `version ${label} is dirty: ${dirtyResolution(label!, dirty.dirtyAction)}`;
      return { database: driver.description, version: currentVersion(ledger), entries, anomalies, resolution };
    });
  }

  /**
   * The history table, oldest first: every up, down, force and failed attempt; each version shown as
   * its file names it, else as the ledger stored it.
   */
  async history(): Promise<HistoryReport> {
    const { migrations, target } = this.migrations();
    return this.withDriver(target, { create: false, lock: false }, async ({ driver }) => {
      const files = new Map(migrations.map((m) => [m.version, m]));
      const rows = new Map((await driver.readLedger()).map((r) => [r.version, r]));
      const entries = (await driver.readHistory()).map((e) => ({
        ...e,
        versionText: versionLabel(e.version, files.get(e.version), rows.get(e.version)),
      }));
      return { database: driver.description, entries };
    });
  }

  /** The highest applied version, 0 when none. Read-only; does not read the files. */
  async version(): Promise<Version> {
    const target = parseTarget(this.config.url, this.config.cwd);
    return this.withDriver(target, { create: false, lock: false }, async (run) => {
      const ledger = await run.driver.readLedger();
      await assertNoRunInProgress(run, ledger);
      assertSerialLedger(ledger);
      assertNotDirty(ledger);
      return currentVersion(ledger);
    });
  }

  /**
   * Checks that the database is exactly what the files say: nothing pending, files unchanged, no
   * dirty row, rollback files present, no schema drift from the applied files run on a scratch
   * database; with `rollbacks`, proves every rollback there too. Read-only for this database; the
   * findings are data (the CLI exits 3 on any).
   */
  async verify(options: VerifyOptions = {}): Promise<VerifyReport> {
    const { migrations, target } = this.migrations();
    const { verify } = await import('./verify.js');
    return this.withDriver(target, { create: false, lock: false }, ({ driver }) =>
      verify(
        {
          driver,
          target,
          config: this.config,
          migrations,
          emit: this.emit,
          migratorFor: (config) => new Migrator(config),
        },
        options,
      ),
    );
  }

  /** The live schema, normalized (tidemark's own tables left out). Read-only. */
  async schema(): Promise<Snapshot> {
    const target = parseTarget(this.config.url, this.config.cwd);
    return this.withDriver(target, { create: false, lock: false }, ({ driver }) => driver.snapshot());
  }

  /**
   * Makes the ledger say `version` without running any migration SQL. With `confirm`, what it would
   * change is read first (without the lock or creating anything) and confirmed; the change is then
   * made only if the ledger still calls for exactly that.
   */
  async force(given: VersionInput, options: ForceOptions = {}): Promise<void> {
    const version = versionInput(given, 'version');
    const { migrations, target } = this.migrations();
    const dryRun = Boolean(options.dryRun);
    let confirmed: ForceChanges | null = null;
    if (options.confirm && !dryRun) {
      const read = async ({ driver }: Run) => forceChanges(planForce(migrations, await driver.readLedger(), version));
      const preview = await this.withDriver(target, { create: false, lock: false }, read);
      if (hasChanges(preview)) await options.confirm(preview);
      confirmed = preview;
    }
    await this.withDriver(target, { create: !dryRun, lock: !dryRun }, async (run) => {
      const { driver } = run;
      const ledger = await driver.readLedger();
      await assertNoRunInProgress(run, ledger);
      const plan = planForce(migrations, ledger, version);
      const changes = forceChanges(plan);
      if (confirmed && changesKey(confirmed) !== changesKey(changes)) {
        const hint = `run \`tidemark force ${version}\` again`;
        throw new UsageError('the ledger changed while force waited for confirmation; nothing was changed', { hint });
      }
      if (!dryRun) {
        const added = await recordedRows(plan.add, driver.dialect);
        await driver.prepareLedger();
        await inTransaction(driver, async () => {
          for (const row of plan.remove) await driver.deleteRow(row.version);
          for (const row of plan.clean) await driver.updateRow(row.version, { dirty: false, dirtyAction: null });
          for (const entry of added) await driver.insertRow(entry);
          const name = migrations.find((m) => m.version === version)?.name ?? '';
          await driver.appendHistory({
            action: 'force',
            version,
            name,
            checksum: null,
            outcome: 'ok',
            executionMs: null,
            error: null,
          });
        });
      }
      this.emit({ type: 'forced', database: driver.description, version, ...changes, dryRun });
    });
  }

  /**
   * Settles a dirty version: `applied` says the interrupted step (the migration, or its rollback)
   * took effect. Changes only that version's row (cleared, or deleted) and runs no migration SQL.
   */
  async resolve(given: VersionInput, applied: boolean, options: { dryRun?: boolean } = {}): Promise<void> {
    const version = versionInput(given, 'version');
    const target = parseTarget(this.config.url, this.config.cwd);
    const dryRun = Boolean(options.dryRun);
    await this.withDriver(target, { create: false, lock: !dryRun }, async ({ driver }) => {
      let plan = planResolve(await driver.readLedger(), version, applied);
      if (!dryRun) {
        await driver.prepareLedger();
        await inTransaction(driver, async () => {
          // SQLite has no run-wide lock: plan again inside the write lock.
          plan = planResolve(await driver.readLedger(), version, applied);
          if (plan.change === 'delete') await driver.deleteRow(version);
          else await driver.updateRow(version, { dirty: false, dirtyAction: null });
          await driver.appendHistory({
            action: 'resolve',
            version,
            name: plan.name,
            checksum: null,
            outcome: 'ok',
            executionMs: null,
            error: null,
          });
        });
      }
      this.emit({ type: 'resolved', database: driver.description, version, change: plan.change, dryRun });
    });
  }

  /**
   * Records the versions <= `version` as applied, running no migration SQL, on a database whose
   * schema was built up to there by hand or by another tool. Refuses when the ledger has rows.
   */
  async baseline(given: VersionInput, options: { dryRun?: boolean } = {}): Promise<void> {
    const version = versionInput(given, 'version');
    const { migrations, target } = this.migrations();
    await this.withDriver(target, { create: !options.dryRun, lock: !options.dryRun }, async ({ driver }) => {
      const plan = (ledger: LedgerRow[]) => planBaseline(migrations, ledger, version);
      const dryRun = Boolean(options.dryRun);
      const recorded = dryRun
        ? plan(await driver.readLedger()).map((m) => m.version)
        : await recordApplied(driver, plan, 'baseline', version);
      this.emit({ type: 'baselined', database: driver.description, version, recorded, dryRun });
    });
  }

  /**
   * `tidemark import`: writes another migrator's folder as tidemark files into the migrations folder
   * and, with `adopt`, records in tidemark's ledger the versions that tool applied. Everything is
   * checked before anything is written (no file overwritten, the other ledger consistent, tidemark's
   * empty); the files are removed again when recording fails. The other tool's table is only read.
   */
  async import(format: SourceFormat, source: string, options: ImportOptions = {}): Promise<ImportResult> {
    const { cwd } = this.config;
    const dryRun = Boolean(options.dryRun);
    const { convert, SOURCE_FORMATS } = await import('./import/convert.js');
    const { filesToWrite, readSourceFolder, removeWritten } = await import('./import/folder.js');
    const { appliedByTool, FOREIGN_LEDGERS, foreignTableName, versionsToAdopt } = await import('./import/ledgers.js');
    const conversion = convert(format, readSourceFolder(source, cwd));
    if (conversion.files.length === 0) {
      throw new UsageError(`found no ${format} migration to convert in ${source}`, {
        context: conversion.skipped.slice(0, 10).map((s) => `${s.path}: ${s.reason}`),
        hint: `check the folder and --from (one of ${SOURCE_FORMATS.join(', ')})`,
      });
    }
    const toWrite = filesToWrite(conversion.files, this.dir, cwd);
    const kept = conversion.files.filter((f) => !toWrite.includes(f)).map((f) => join(this.dir, f.fileName));
    const result: ImportResult = { ...conversion, dir: this.dir, written: [], kept, adopted: null, dryRun };
    if (options.filesOnly || !this.config.url)
      return { ...result, written: dryRun ? [] : await this.writeImported(toWrite) };
    const target = parseTarget(this.config.url, cwd);
    // The other tool's ledger must be there already: a missing database is an error, not created empty.
    return this.withDriver(target, { create: false, lock: !dryRun }, async ({ driver }) => {
      const defaults = FOREIGN_LEDGERS[format];
      const spec = { ...defaults, table: foreignTableName(options.table ?? defaults.table) };
      const rows = await driver.readForeignTable(spec);
      if (!rows) {
        const what = `${driver.description} has no ${spec.table} table, so there is no ${format} ledger to adopt`;
        throw new UsageError(`${what}; nothing was written`, {
          hint: 'check --url; to convert the files without adopting a ledger, run the same command with --files-only',
        });
      }
      const versions = versionsToAdopt(appliedByTool(format, rows, spec.table), conversion, target.dialect, spec.table);
      planAdopt([], await driver.readLedger(), versions);
      const adopted = { database: driver.description, table: spec.table, versions };
      if (dryRun) return { ...result, adopted };
      const written = await this.writeImported(toWrite);
      try {
        const { migrations } = this.migrations();
        const plan = (ledger: LedgerRow[]) => planAdopt(migrations, ledger, versions);
        if (versions.length > 0) await recordApplied(driver, plan, 'import', versions.at(-1)!);
      } catch (error) {
        removeWritten(written, cwd);
        throw error;
      }
      return { ...result, written, adopted };
    });
  }

  /** Writes the converted files; if the folder as a whole is not a valid migrations folder then, removes them again. */
  private async writeImported(files: ConvertedFile[]): Promise<string[]> {
    const { removeWritten, writeConverted } = await import('./import/folder.js');
    const written = writeConverted(files, this.dir, this.config.cwd);
    try {
      discover(this.dir, this.config.cwd);
    } catch (error) {
      removeWritten(written, this.config.cwd);
      throw error;
    }
    return written;
  }

  /**
   * The script `migrate` (or with `rollback`, `rollback`) would run now, for psql or the sqlite3
   * shell, with the ledger and history rows tidemark would write. Reads the ledger and nothing else.
   */
  async sql(given: SqlOptions = {}): Promise<string> {
    const options = {
      ...given,
      target: optionalVersion(given.target, 'target'),
      to: optionalVersion(given.to, 'version'),
    };
    const { migrations, target } = this.migrations();
    return this.withDriver(target, { create: false, lock: false }, async ({ driver }) => {
      const ledger = await driver.readLedger();
      const base = { database: driver.description, from: currentVersion(ledger), generatedAt: new Date() };
      let plan: ShellScriptPlan;
      if (options.rollback) {
        const steps = planRollback(migrations, ledger, options, undoneRollbackChecksums(migrations, ledger, options));
        for (const step of steps) if (step.note) this.emit({ type: step.note.level, message: step.note.message });
        const scripts = await this.rollbackScripts(driver, steps, migrations);
        const setup = steps.length > 0 ? await driver.ledgerDdl() : [];
        const sources = scripts.map((script) => ({ script, rollback: null, outOfOrder: false }));
        plan = { ...base, command: 'rollback', to: versionAfterRollback(ledger, steps), setup, steps: sources };
      } else {
        const checksums = fileChecksums(migrations);
        const migration = await this.planMigration(driver.dialect, migrations, checksums, ledger, options);
        const backfill = migration.backfill.map((b) =>
          driver.shell.updateRow(b.migration.version, backfillChange(b, checksums)),
        );
        const setup = writesLedger(migration) ? [...(await driver.ledgerDdl()), ...backfill] : [];
        plan = { ...base, command: 'migrate', to: migration.version, setup, steps: migration.runs };
      }
      for (const { script } of plan.steps)
        for (const line of script.skipped) this.emit({ type: 'notice', message: line });
      const { shellScript } = await import('./sqlscript.js');
      return shellScript(driver.shell, plan);
    });
  }

  /**
   * Writes the next version's migration and rollback files; needs no database. With `timestamp`,
   * the version is the UTC time as YYYYMMDDhhmmss (branches merged in any order do not collide).
   */
  create(name: string, options: { timestamp?: boolean } = {}): string[] {
    validateMigrationName(name);
    const folder = resolve(this.config.cwd, this.dir);
    makeFolders(folder);
    const next = discover(this.dir, this.config.cwd).nextVersionText(new Date(), Boolean(options.timestamp));
    const id = `${next}_${name}`;
    const files: [string, string][] = [
      [`${id}.sql`, forwardTemplate(id)],
      [`${id}_rollback.sql`, rollbackTemplate(id)],
    ];
    for (const [fileName, text] of files) writeFileSync(join(folder, fileName), text, { flag: 'wx' });
    return files.map(([fileName]) => join(this.dir, fileName));
  }

  /**
   * Writes a backup of the whole database into the backup folder (`backups/`): SQLite with VACUUM
   * INTO, PostgreSQL with pg_dump -Fc; both consistent while the application keeps writing.
   */
  async backup(options: BackupOptions = {}): Promise<BackupResult> {
    const target = parseTarget(this.config.url, this.config.cwd);
    return this.withDriver(target, { create: false, lock: false }, async ({ driver }) => {
      return this.backupAt(target, driver, await driver.readLedger(), options);
    });
  }

  private async backupAt(
    target: Target,
    driver: Driver,
    ledger: LedgerRow[],
    options: BackupOptions | true,
  ): Promise<BackupResult> {
    const { takeBackup } = await import('./backup.js');
    const result = await takeBackup(this.config, target, currentVersion(ledger), options === true ? {} : options);
    this.emit({ type: 'backup', database: driver.description, ...result });
    return result;
  }

  /**
   * Replaces the database's contents with a backup, under the run lock. The backup is read through
   * first; `confirm` is asked with the version it brings back, and nothing changes unless it says yes.
   */
  async restore(file: string, confirm: (version: Version) => Promise<boolean>): Promise<{ version: Version }> {
    const target = parseTarget(this.config.url, this.config.cwd);
    const { checkBackup } = await import('./backup.js');
    const { tool, path, version } = await checkBackup(this.config, target, file);
    if (!(await confirm(version))) throw new UsageError('restore cancelled; nothing was changed');
    return this.withDriver(target, { create: false, lock: true }, async ({ driver }) => {
      const started = performance.now();
      await tool.restore(path);
      this.emit({ type: 'restored', database: driver.description, file, version, ms: elapsed(started) });
      return { version };
    });
  }

  /** Adds tidemark to the app in the working folder: npm scripts, DATABASE_URL in .env, a first migration pair. */
  async init(options: InitOptions = {}): Promise<InitStep[]> {
    const { init } = await import('./init.js');
    return init(this.config.cwd, this.dir, options, () => this.create('first_migration'));
  }
}

/** Runs work in one transaction: all of it commits, or none of it. */
async function inTransaction(driver: Driver, work: () => Promise<void>): Promise<void> {
  await driver.begin();
  try {
    await work();
    await driver.commit();
  } catch (error) {
    await driver.rollback().catch(() => {});
    throw error;
  }
}

/**
 * Records migrations as applied without running them (baseline, import), in one transaction with one
 * history row. `plan` runs again inside the transaction: SQLite has no run-wide lock, so a ledger
 * written meanwhile is refused there.
 * @returns the versions recorded
 */
async function recordApplied(
  driver: Driver,
  plan: (ledger: LedgerRow[]) => Migration[],
  action: 'baseline' | 'import',
  version: Version,
): Promise<Version[]> {
  const recorded = await recordedRows(plan(await driver.readLedger()), driver.dialect);
  await driver.prepareLedger();
  await inTransaction(driver, async () => {
    plan(await driver.readLedger());
    for (const entry of recorded) await driver.insertRow(entry);
    const name = recorded.at(-1)!.name;
    const history = { action, version, name, checksum: null, outcome: 'ok', executionMs: null, error: null } as const;
    await driver.appendHistory(history);
  });
  return recorded.map((entry) => entry.version);
}

export interface ForceOptions {
  dryRun?: boolean;
  /** Asked with what force would change (when it changes something); throws to cancel. */
  confirm?: (changes: ForceChanges) => Promise<void>;
}

const OUT_OF_ORDER_FLAG = '(--allow-out-of-order)';

function rollbackName(m: Migration): string {
  return `${m.versionText}_${m.name}_rollback.sql`;
}

function forceChanges(plan: ForcePlan): ForceChanges {
  const versions = (rows: { version: Version }[]) => rows.map((r) => r.version);
  return { removed: versions(plan.remove), added: versions(plan.add), cleaned: versions(plan.clean) };
}

/** Force's changes as one comparable string. */
function changesKey(changes: ForceChanges): string {
  return [changes.removed, changes.added, changes.cleaned].map((list) => list.join(',')).join('|');
}

function hasChanges(changes: ForceChanges): boolean {
  return changes.removed.length + changes.added.length + changes.cleaned.length > 0;
}

/** The ledger rows of migrations recorded as applied without running them (force, baseline), with rollback texts. */
async function recordedRows(migrations: Migration[], dialect: Dialect): Promise<LedgerEntry[]> {
  const rows: LedgerEntry[] = [];
  for (const m of migrations) rows.push(recordedRow(m, await loadScript(m.forward, dialect)));
  return rows;
}

function recordedRow(m: Migration, script: Script): LedgerEntry {
  return {
    version: m.version,
    versionText: m.versionText,
    name: m.name,
    checksum: script.checksum,
    executionMs: null,
    dirty: false,
    rollback: m.rollback ? readSourceText(m.rollback) : null,
  };
}

/**
 * The checksums of the rollback files of the versions a rollback undoes: what their stored copies are compared with.
 */
function undoneRollbackChecksums(
  migrations: Migration[],
  ledger: LedgerRow[],
  options: Omit<RollbackOptions, 'to'> & { to?: Version },
): Map<Version, string> {
  return rollbackChecksums(migrations, new Set(rowsToRollBack(ledger, options).map((r) => r.version)));
}

/** The ledger change a backfill makes: the forward checksum, the rollback file's text, or both. */
function backfillChange(b: Backfill, checksums: Checksums): RowChange {
  return {
    checksum: b.checksum ? checksums.forward.get(b.migration.version) : undefined,
    rollback: b.rollback ? readSourceText(b.migration.rollback!) : undefined,
  };
}

function elapsed(since: number): number {
  return Math.round(performance.now() - since);
}

/**
 * A dirty row while another run holds the lock is a no-transaction migration still running, not a
 * crash: say so (exit 4, wait) rather than "did not finish". A run that holds the lock itself knows
 * the row's writer has ended.
 */
async function assertNoRunInProgress(run: Run, ledger: LedgerRow[]): Promise<void> {
  const dirty = ledger.find((r) => r.dirty);
  if (!dirty || run.locked) return;
  const holder = await run.driver.otherRun();
  if (!holder) return;
  const message =
    `version ${versionLabel(dirty.version, null, dirty)} (${dirty.name}) is being applied by a run in progress ` +
    `(${holder}); ` +
    'it has not crashed';
  throw new ConnectionError(message, {
    hint: 'wait for that run to finish, then run again',
  });
}

/** What a failed step reports: the migration's own error (file:line), or what stopped it (exit 4, 5, 130, 143). */
function stepError(error: unknown, script: Script, driver: Driver, action: DirtyAction): TidemarkError {
  const reported = asTidemarkError(error, script, driver);
  if (!script.noTransaction) return reported;
  const details = {
    ...reported.details,
    hint:
      `${script.file.path} runs outside a transaction, so it may have partly run; ` +
      `version ${script.file.versionText} is now marked dirty. ${dirtyResolution(script.file.versionText, action)}`,
  };
  if (reported instanceof MigrationError) return new MigrationError(reported.message, details);
  return new InterruptedError(reported.message, reported.exitCode, details);
}

function asTidemarkError(error: unknown, script: Script, driver: Driver): TidemarkError {
  if (error instanceof TidemarkError) return error;
  // The database, not the file, failed (it is read-only, or the server went away): the driver says so.
  const explained = driver.explain(error);
  if (explained instanceof TidemarkError) return explained;
  const message = error instanceof Error ? error.message : String(error);
  return new MigrationError(`${script.file.path}: ${message}`, { file: script.file.path });
}

function assertAllTransactional(scripts: Script[]): void {
  const outside = scripts.find((s) => s.noTransaction || s.foreignKeysOff);
  if (outside) {
    const directive = outside.noTransaction ? 'no-transaction' : 'foreign-keys-off';
    throw new UsageError(
      `${outside.file.path} is marked -- tidemark:${directive} and cannot run inside --single-transaction`,
      {
        file: outside.file.path,
        hint: 'run without --single-transaction, or migrate up to the version before it first',
      },
    );
  }
}

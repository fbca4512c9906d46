// `tidemark migrate`: applies the pending migrations, each in its own transaction with its ledger
// row (or all in one with --single-transaction). No dialect knowledge here.
import { performance } from 'node:perf_hooks';
import type { Target } from '../config.js';
import { manifestFingerprint, stepRecords, type Driver, type Step, type StepSource } from '../drivers/driver.js';
import { UsageError } from '../errors.js';
import { fileChecksums, type Checksums, type Migration } from '../files.js';
import type { Script } from '../script.js';
import { planSync, writesLedger, type LedgerRow, type MigratePlan } from '../plan.js';
import { assertNoRunInProgress, inTransaction, type Run, type Session } from '../run/session.js';
import { CommitGroups } from '../run/group.js';
import { runStep, type DirtyRow, type SharedTransaction } from '../run/step.js';
// Only their types: backup and rollback are loaded when a run needs them (--backup, --sync), and
// planning (pending.ts, with the SQL lexers and parser) when the ledger is not up to date.
import type { BackupOptions } from '../backup.js';
import type { Version, VersionInput } from '../version.js';

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

type PlannedMigration = MigratePlan & { runs: StepSource[] };

/** Migrate's options once the target is an exact version (the public API takes any {@link VersionInput}). */
export type CheckedMigrateOptions = Omit<MigrateOptions, 'target'> & { target?: Version };

/** Applies the pending migrations (after the --sync rollback); see {@link Migrator.migrate}. */
export async function migrate(
  session: Session,
  options: CheckedMigrateOptions,
): Promise<{ applied: number; version: Version }> {
  const { migrations, target } = session.migrations();
  // Every file is hashed (an edited applied file must be caught); only pending ones are parsed.
  const checksums = fileChecksums(migrations);
  const dryRun = Boolean(options.dryRun);
  return session.withDriver(target, { create: !dryRun, lock: !dryRun }, async (run) => {
    const { driver } = run;
    if (await upToDate(driver, migrations, checksums, options)) return noOp(session, driver, migrations, dryRun);
    const ledger = await driver.readLedger();
    await assertNoRunInProgress(run, ledger);
    // Everything is planned (and refused) before anything changes, the --sync rollback included.
    const back = options.sync ? planSync(migrations, ledger) : [];
    const afterBack = ledger.filter((r) => !back.some((step) => step.row === r));
    const { planMigration } = await import('./pending.js');
    const plan = await planMigration(session, driver.dialect, { migrations, checksums, ledger: afterBack }, options);
    if (options.singleTransaction) assertAllTransactional(plan.runs.map((p) => p.script));
    const changes = back.length > 0 || plan.pending.length > 0;
    if (options.backup && changes && !dryRun) await backupFirst(session, target, run, ledger, options.backup);
    if (back.length > 0) {
      const { runRollback } = await import('../rollback/rollback.js');
      await runRollback(session, run, ledger, back, { dryRun, migrations });
    }
    return applyPlan(session, run, plan, { checksums, options });
  });
}

/**
 * Whether the ledger records exactly these files, checksums included, with no dirty row: then migrate
 * has nothing to do, and reading every ledger row to plan that (10,000 rows at 10,000 migrations) is
 * skipped. A target or --sync always takes the full plan.
 */
async function upToDate(
  driver: Driver,
  migrations: Migration[],
  checksums: Checksums,
  options: MigrateOptions,
): Promise<boolean> {
  if (migrations.length === 0 || options.target !== undefined || options.sync) return false;
  return (await driver.ledgerFingerprint()) === manifestFingerprint(migrations, checksums);
}

/** A no-op run's events, as the full plan would give them: nothing pending, the last file's version. */
function noOp(
  session: Session,
  driver: Driver,
  migrations: Migration[],
  dryRun: boolean,
): { applied: number; version: Version } {
  const database = driver.description;
  const version = migrations[migrations.length - 1]!.version;
  const started = performance.now();
  session.emit({ type: 'start', command: 'migrate', database, count: 0, dryRun });
  const ms = performance.now() - started;
  session.emit({ type: 'summary', command: 'migrate', database, count: 0, ms, version, dryRun });
  return { applied: 0, version };
}

async function backupFirst(
  session: Session,
  target: Target,
  run: Run,
  ledger: LedgerRow[],
  options: BackupOptions | true,
): Promise<void> {
  const { backupAt } = await import('../backup.js');
  await backupAt(session, target, run.driver, ledger, options);
}

/** Runs the plan with its start and summary events; a dry run only reports what it would apply. */
async function applyPlan(
  session: Session,
  run: Run,
  plan: PlannedMigration,
  { checksums, options }: { checksums: Checksums; options: MigrateOptions },
): Promise<{ applied: number; version: Version }> {
  const { driver } = run;
  const dryRun = Boolean(options.dryRun);
  const database = driver.description;
  const started = performance.now();
  session.emit({ type: 'start', command: 'migrate', database, count: plan.pending.length, dryRun });
  let applied = 0;
  if (dryRun) {
    for (const m of plan.pending)
      session.emit({ type: 'applied', version: m.version, versionText: m.versionText, name: m.name, ms: 0, dryRun });
    applied = plan.pending.length;
  } else {
    // A no-op run (the common deploy) writes nothing, not even the ledger's DDL.
    if (writesLedger(plan)) await driver.prepareLedger();
    const { backfillChange } = await import('./pending.js');
    for (const b of plan.backfill) await driver.updateRow(b.migration.version, backfillChange(b, checksums));
    applied = await applyAll(session, run, plan.runs, Boolean(options.singleTransaction));
  }
  // Every pending version is applied now (by this run or, on SQLite, a concurrent one): no re-read needed.
  const { version } = plan;
  const ms = performance.now() - started;
  session.emit({ type: 'summary', command: 'migrate', database, count: applied, ms, version, dryRun });
  return { applied, version };
}

/**
 * Applies each migration in its own transaction, or with `single` all in one transaction; returns
 * how many this run applied (on SQLite a concurrent runner may have applied some first).
 */
async function applyAll(session: Session, run: Run, runs: StepSource[], single: boolean): Promise<number> {
  let applied = 0;
  if (!single) {
    const groups = new CommitGroups(session, run);
    for (const pending of runs) {
      const step = upStep(run, pending, true);
      if (await groups.step(step, dirtyUp(run.driver, step))) applied++;
    }
    await groups.commit();
    return applied;
  }
  const shared: SharedTransaction = { failure: null, held: null };
  try {
    await inTransaction(run.driver, async () => {
      for (const pending of runs) {
        const step = upStep(run, pending, false);
        if (await runStep(session, run, step, dirtyUp(run.driver, step), { shared })) applied++;
      }
    });
  } catch (error) {
    // The failure's history row was rolled back with everything else: write it again, outside.
    if (shared.failure) await run.driver.recordFailure(shared.failure);
    throw error;
  }
  return applied;
}

function upStep(run: Run, pending: StepSource, ownTransaction: boolean): Step {
  return { action: 'up', ...pending, ownTransaction, recheck: !run.exclusive };
}

/** How a no-transaction migration marks its ledger row dirty while it runs. */
function dirtyUp(driver: Driver, step: Step): DirtyRow {
  const { version } = step.script.file;
  return {
    before: () => driver.insertRow({ ...stepRecords(step, null).entry, dirty: true }),
    after: (ms) => driver.updateRow(version, { dirty: false, dirtyAction: null, executionMs: ms }),
  };
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

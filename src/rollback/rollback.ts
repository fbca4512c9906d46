// `tidemark rollback` (and migrate --sync): undoes applied migrations newest first, each in one
// transaction with the deletion of its ledger row. No dialect knowledge here.
import { performance } from 'node:perf_hooks';
import type { Step } from '../drivers/driver.js';
import type { Migration } from '../files.js';
import type { Script } from '../script.js';
import { planRollback, versionAfterRollback, type LedgerRow, type RollbackStep } from '../plan.js';
import { assertNoRunInProgress, type Run, type Session } from '../run/session.js';
import { CommitGroups } from '../run/group.js';
import { rollbackScripts, undoneRollbackChecksums, type RollbackRange } from './scripts.js';
import type { Version, VersionInput } from '../version.js';

export interface RollbackOptions extends Omit<RollbackRange, 'to'> {
  /** Undo every version above this one: a bigint, a safe integer or a string of digits. */
  to?: VersionInput;
  /** Run the rollback stored in the ledger even where the rollback file exists and differs. */
  useStored?: boolean;
  dryRun?: boolean;
}

/** Rollback's options once `to` is an exact version. */
export type CheckedRollbackOptions = Omit<RollbackOptions, 'to'> & { to?: Version };

/** Plans and runs a rollback; see {@link Migrator.rollback}. */
export async function rollback(
  session: Session,
  options: CheckedRollbackOptions,
): Promise<{ reverted: number; version: Version }> {
  const { migrations, target } = session.migrations();
  const dryRun = Boolean(options.dryRun);
  return session.withDriver(target, { create: false, lock: !dryRun }, async (run) => {
    const ledger = await run.driver.readLedger();
    await assertNoRunInProgress(run, ledger);
    const steps = planRollback(migrations, ledger, options, undoneRollbackChecksums(migrations, ledger, options));
    const reverted = await runRollback(session, run, ledger, steps, { dryRun, migrations });
    return { reverted, version: versionAfterRollback(ledger, steps) };
  });
}

/** Runs planned rollback steps in order with their events; returns how many this run undid. */
export async function runRollback(
  session: Session,
  run: Run,
  ledger: LedgerRow[],
  steps: RollbackStep[],
  { dryRun, migrations }: { dryRun: boolean; migrations: Migration[] },
): Promise<number> {
  const { driver } = run;
  const database = driver.description;
  const scripts = await rollbackScripts(driver, steps, migrations);
  // A ledger from an older tidemark gets the dirty_action column a no-transaction rollback writes.
  if (!dryRun && steps.length > 0) await driver.prepareLedger();
  const started = performance.now();
  session.emit({ type: 'start', command: 'rollback', database, count: steps.length, dryRun });
  let reverted = 0;
  const groups = new CommitGroups(session, run);
  for (const [i, step] of steps.entries()) {
    if (step.note) session.emit({ type: step.note.level, message: step.note.message });
    if (dryRun) {
      const { version, versionText, name } = step;
      session.emit({ type: 'reverted', version, versionText, name, ms: 0, dryRun });
    }
    if (dryRun || (await revert(groups, run, scripts[i]!, step.row))) reverted++;
  }
  await groups.commit();
  const version = versionAfterRollback(ledger, steps);
  const ms = performance.now() - started;
  session.emit({ type: 'summary', command: 'rollback', database, count: reverted, ms, version, dryRun });
  return reverted;
}

/** One rollback: the script with the deletion of the version's ledger row. */
function revert(groups: CommitGroups, run: Run, script: Script, recorded: LedgerRow): Promise<boolean> {
  const { driver } = run;
  const step: Step = {
    action: 'down',
    script,
    rollback: null,
    outOfOrder: false,
    ownTransaction: true,
    recheck: !run.exclusive,
  };
  return groups.step(step, {
    before: () => driver.updateRow(recorded.version, { dirty: true, dirtyAction: 'down' }),
    after: () => driver.deleteRow(recorded.version),
  });
}

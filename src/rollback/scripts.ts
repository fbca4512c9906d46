// What a rollback runs, read and checked before anything changes: each step's rollback file or the
// rollback stored in the ledger, refused when one cannot undo its migration. Shared with `sql`.
import type { Driver } from '../drivers/driver.js';
import { UsageError } from '../errors.js';
import { rollbackChecksums, storedRollbackFile, type Migration } from '../files.js';
import { loadScript, scriptFromText, type Script } from '../script.js';
import { assertReversible, rowsToRollBack, type LedgerRow, type RollbackStep } from '../plan.js';
import { irreversibleRollback, sourceFile } from '../reversibility.js';
import type { Version } from '../version.js';

/** Which versions a rollback undoes: the last one, the last `steps`, every one above `to`, or `all`. */
export interface RollbackRange {
  steps?: number;
  to?: Version;
  all?: boolean;
}

/**
 * Each step's script: its rollback file, or the rollback stored in the ledger when the file is not
 * in this release. Read (and checked) before anything runs, so a bad one changes nothing.
 */
export async function rollbackScripts(
  driver: Driver,
  steps: RollbackStep[],
  migrations: Migration[],
): Promise<Script[]> {
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
  assertReversible(steps, irreversibleSteps(driver, steps, scripts, migrations));
  return scripts;
}

/** The steps whose rollback cannot undo its migration, with why. */
function irreversibleSteps(
  driver: Driver,
  steps: RollbackStep[],
  scripts: Script[],
  migrations: Migration[],
): Map<Version, string> {
  const files = new Map(migrations.map((m) => [m.version, m]));
  const irreversible = new Map<Version, string>();
  for (const [i, step] of steps.entries()) {
    const forward = files.get(step.version)?.forward;
    const rollback = { file: scripts[i]!.file, text: scripts[i]!.text };
    const found = irreversibleRollback(step, rollback, () => (forward ? sourceFile(forward) : null), driver.dialect);
    if (found) irreversible.set(step.version, found.reason);
  }
  return irreversible;
}

/**
 * The checksums of the rollback files of the versions a rollback undoes: what their stored copies are compared with.
 */
export function undoneRollbackChecksums(
  migrations: Migration[],
  ledger: LedgerRow[],
  options: RollbackRange,
): Map<Version, string> {
  return rollbackChecksums(migrations, new Set(rowsToRollBack(ledger, options).map((r) => r.version)));
}

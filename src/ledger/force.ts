// `tidemark force`: makes the ledger say a version without running any migration SQL.
import type { Driver } from '../drivers/driver.js';
import { UsageError } from '../errors.js';
import type { ForceChanges } from '../events.js';
import type { Migration } from '../files.js';
import { planForce, type ForcePlan } from '../plan.js';
import { assertNoRunInProgress, inTransaction, type Run, type Session } from '../run/session.js';
import { recordedRows } from './record.js';
import type { Version } from '../version.js';

export interface ForceOptions {
  dryRun?: boolean;
  /** Asked with what force would change (when it changes something); throws to cancel. */
  confirm?: (changes: ForceChanges) => Promise<void>;
}

/** Confirms (when asked to) and makes the change; see {@link Migrator.force}. */
export async function force(session: Session, version: Version, options: ForceOptions): Promise<void> {
  const { migrations, target } = session.migrations();
  const dryRun = Boolean(options.dryRun);
  let confirmed: ForceChanges | null = null;
  if (options.confirm && !dryRun) {
    const read = async ({ driver }: Run) => forceChanges(planForce(migrations, await driver.readLedger(), version));
    const preview = await session.withDriver(target, { create: false, lock: false }, read);
    if (hasChanges(preview)) await options.confirm(preview);
    confirmed = preview;
  }
  await session.withDriver(target, { create: !dryRun, lock: !dryRun }, async (run) => {
    const { driver } = run;
    const ledger = await driver.readLedger();
    await assertNoRunInProgress(run, ledger);
    const plan = planForce(migrations, ledger, version);
    const changes = forceChanges(plan);
    if (confirmed && changesKey(confirmed) !== changesKey(changes)) {
      const hint = `run \`tidemark force ${version}\` again`;
      throw new UsageError('the ledger changed while force waited for confirmation; nothing was changed', { hint });
    }
    if (!dryRun) await writeForce(driver, plan, { version, migrations });
    session.emit({ type: 'forced', database: driver.description, version, ...changes, dryRun });
  });
}

/** Removes, cleans and adds the planned rows with force's history row, in one transaction. */
async function writeForce(
  driver: Driver,
  plan: ForcePlan,
  { version, migrations }: { version: Version; migrations: Migration[] },
): Promise<void> {
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

function forceChanges(plan: ForcePlan): ForceChanges {
  const versions = (rows: { version: Version }[]) => rows.map((r) => r.version);
  return { removed: versions(plan.remove), added: versions(plan.add), cleaned: versions(plan.clean) };
}

/** Force's changes as one comparable string (JSON.stringify cannot take a bigint). */
function changesKey(changes: ForceChanges): string {
  return [changes.removed, changes.added, changes.cleaned].map((list) => list.join(',')).join('|');
}

function hasChanges(changes: ForceChanges): boolean {
  return changes.removed.length + changes.added.length + changes.cleaned.length > 0;
}

// `tidemark resolve`: settles a dirty version by changing only its ledger row.
import { planResolve } from '../plan.js';
import { inTransaction, type Session } from '../run/session.js';
import type { Version } from '../version.js';

/** Clears or deletes the dirty version's row; see {@link Migrator.resolve}. */
export async function resolve(
  session: Session,
  version: Version,
  applied: boolean,
  options: { dryRun?: boolean },
): Promise<void> {
  const dryRun = Boolean(options.dryRun);
  await session.withDriver(session.target(), { create: false, lock: !dryRun }, async ({ driver }) => {
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
    session.emit({ type: 'resolved', database: driver.description, version, change: plan.change, dryRun });
  });
}

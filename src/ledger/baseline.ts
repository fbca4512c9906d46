// `tidemark baseline`: records the versions up to one as applied on a database built without tidemark.
import { planBaseline, type LedgerRow } from '../plan.js';
import type { Session } from '../run/session.js';
import { recordApplied } from './record.js';
import type { Version } from '../version.js';

/** Records the versions <= `version`, refusing a ledger with rows; see {@link Migrator.baseline}. */
export async function baseline(session: Session, version: Version, options: { dryRun?: boolean }): Promise<void> {
  const { migrations, target } = session.migrations();
  await session.withDriver(target, { create: !options.dryRun, lock: !options.dryRun }, async ({ driver }) => {
    const plan = (ledger: LedgerRow[]) => planBaseline(migrations, ledger, version);
    const dryRun = Boolean(options.dryRun);
    const recorded = dryRun
      ? plan(await driver.readLedger()).map((m) => m.version)
      : await recordApplied(driver, plan, 'baseline', version);
    session.emit({ type: 'baselined', database: driver.description, version, recorded, dryRun });
  });
}

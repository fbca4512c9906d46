// Ledger rows of migrations recorded as applied without running them (force, baseline, import).
import type { Driver, LedgerEntry } from '../drivers/driver.js';
import { readSourceText, type Dialect, type Migration } from '../files.js';
import { loadScript, type Script } from '../script.js';
import type { LedgerRow } from '../plan.js';
import { inTransaction } from '../run/session.js';
import type { Version } from '../version.js';

/**
 * Records migrations as applied without running them (baseline, import), in one transaction with one
 * history row. `plan` runs again inside the transaction: SQLite has no run-wide lock, so a ledger
 * written meanwhile is refused there.
 * @returns the versions recorded
 */
export async function recordApplied(
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

/** The ledger rows of migrations recorded as applied without running them (force, baseline), with rollback texts. */
export async function recordedRows(migrations: Migration[], dialect: Dialect): Promise<LedgerEntry[]> {
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

// The read-only ledger commands: status, history and version. They change nothing.
import type { HistoryRow } from '../drivers/driver.js';
import { fileChecksums } from '../files.js';
import {
  assertNotDirty,
  assertSerialLedger,
  currentVersion,
  dirtyResolution,
  ledgerAnomalies,
  planStatus,
  versionLabel,
  type StatusEntry,
} from '../plan.js';
import { assertNoRunInProgress, type Session } from '../run/session.js';
import type { Version } from '../version.js';

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

const READ_ONLY = { create: false, lock: false };

/** Every version's state; see {@link Migrator.status}. */
export async function status(session: Session): Promise<StatusReport> {
  const { migrations, target } = session.migrations();
  return session.withDriver(target, READ_ONLY, async ({ driver }) => {
    const ledger = await driver.readLedger();
    const anomalies = ledgerAnomalies(ledger);
    for (const anomaly of anomalies) {
      session.emit({ type: 'warning', message: `the ledger is not one a serial run could have written: ${anomaly}` });
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

/** The history table, oldest first; each version shown as its file names it, else as the ledger stored it. */
export async function history(session: Session): Promise<HistoryReport> {
  const { migrations, target } = session.migrations();
  return session.withDriver(target, READ_ONLY, async ({ driver }) => {
    const files = new Map(migrations.map((m) => [m.version, m]));
    const rows = new Map((await driver.readLedger()).map((r) => [r.version, r]));
    const entries = (await driver.readHistory()).map((e) => ({
      ...e,
      versionText: versionLabel(e.version, files.get(e.version), rows.get(e.version)),
    }));
    return { database: driver.description, entries };
  });
}

/** The highest applied version, refused while the ledger is dirty or not one a serial run wrote. */
export async function version(session: Session): Promise<Version> {
  return session.withDriver(session.target(), READ_ONLY, async (run) => {
    const ledger = await run.driver.readLedger();
    await assertNoRunInProgress(run, ledger);
    assertSerialLedger(ledger);
    assertNotDirty(ledger);
    return currentVersion(ledger);
  });
}

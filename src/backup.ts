// Backups before a migration and restores after a rollback that cannot bring data back: naming,
// retention and checks. The copying itself is the database's own tool (src/drivers/backup.ts).
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Config, Target } from './config.js';
import type { BackupTool } from './drivers/backup.js';
import { backupTool } from './drivers/connect.js';
import type { Driver } from './drivers/driver.js';
import { UsageError } from './errors.js';
import type { BackupResult } from './events.js';
import { makeFolders } from './folders.js';
import { currentVersion, type LedgerRow } from './plan.js';
import type { Session } from './run/session.js';
import { elapsed } from './run/step.js';

export type { BackupResult } from './events.js';
import type { Version } from './version.js';

export interface BackupOptions {
  /** Keep only the newest N backups of this database in the folder (the one just taken included). */
  keep?: number;
}

/** `<database>-v<version>-<UTC time>.<ext>`: sorted by name is sorted by time, per database. */
export function backupFileName(tool: BackupTool, version: Version, at: Date): string {
  // Milliseconds too: two backups in one second must not overwrite each other.
  const stamp = at.toISOString().replace(/[-:.]/g, '');
  return `${tool.name}-v${version}-${stamp}${tool.extension}`;
}

export async function takeBackup(
  config: Config,
  target: Target,
  version: Version,
  options: BackupOptions = {},
): Promise<BackupResult> {
  const tool = await backupTool(target, config.table, config.secrets);
  const folder = resolve(config.cwd, config.backupDir);
  makeFolders(folder);
  const path = join(folder, backupFileName(tool, version, new Date()));
  const started = performance.now();
  await tool.backup(path);
  const ms = performance.now() - started;
  const removed = options.keep === undefined ? [] : pruneBackups(folder, tool, options.keep);
  const shown = (p: string) => (relative(config.cwd, p).startsWith('..') ? p : relative(config.cwd, p));
  return { file: shown(path), bytes: statSync(path).size, version, ms, removed: removed.map(shown) };
}

/** Removes all but the newest `keep` backups of this database; returns their paths. */
function pruneBackups(folder: string, tool: BackupTool, keep: number): string[] {
  const mine = readdirSync(folder)
    .filter((f) => f.startsWith(`${tool.name}-v`) && f.endsWith(tool.extension))
    .sort((a, b) => timeOf(a).localeCompare(timeOf(b)));
  const old = mine.slice(0, Math.max(0, mine.length - keep)).map((f) => join(folder, f));
  for (const path of old) rmSync(path, { force: true });
  return old;
}

/** The time part of a backup's name (names also differ by version, which must not decide the order). */
const timeOf = (file: string) => /-(\d{8}T\d{9}Z)\.\w+$/.exec(file)?.[1] ?? '';

/** Reads a backup through before anything is replaced; returns the version it brings back. */
export async function checkBackup(
  config: Config,
  target: Target,
  file: string,
): Promise<{ tool: BackupTool; path: string; version: Version }> {
  const tool = await backupTool(target, config.table, config.secrets);
  const path = resolve(config.cwd, file);
  try {
    statSync(path);
  } catch {
    throw new UsageError(`backup file ${file} does not exist`, {
      hint: `list the backups with \`ls ${config.backupDir}\``,
    });
  }
  if (!path.endsWith(tool.extension)) {
    throw new UsageError(`${file} is not a backup of this kind of database (its backups end in ${tool.extension})`);
  }
  try {
    return { tool, path, version: await tool.check(path, config.table) };
  } catch (error) {
    // A missing tool says so itself; anything else that stops the read-through is the file's fault.
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${file} is not a usable backup: ${(error as Error).message}`, {
      hint: `nothing was changed; choose another backup (\`ls ${config.backupDir}\`)`,
    });
  }
}

/** `tidemark backup`: a backup of the configured database at its current version. */
export async function backup(session: Session, options: BackupOptions): Promise<BackupResult> {
  const target = session.target();
  return session.withDriver(target, { create: false, lock: false }, async ({ driver }) => {
    return backupAt(session, target, driver, await driver.readLedger(), options);
  });
}

/** Takes the backup (`backup`, migrate --backup) and reports it. */
export async function backupAt(
  session: Session,
  target: Target,
  driver: Driver,
  ledger: LedgerRow[],
  options: BackupOptions | true,
): Promise<BackupResult> {
  const result = await takeBackup(session.config, target, currentVersion(ledger), options === true ? {} : options);
  session.emit({ type: 'backup', database: driver.description, ...result });
  return result;
}

/** `tidemark restore`: the backup is read through and confirmed before the database is replaced, under the run lock. */
export async function restore(
  session: Session,
  file: string,
  confirm: (version: Version) => Promise<boolean>,
): Promise<{ version: Version }> {
  const target = session.target();
  const { tool, path, version } = await checkBackup(session.config, target, file);
  if (!(await confirm(version))) throw new UsageError('restore cancelled; nothing was changed');
  return session.withDriver(target, { create: false, lock: true }, async ({ driver }) => {
    const started = performance.now();
    await tool.restore(path);
    session.emit({ type: 'restored', database: driver.description, file, version, ms: elapsed(started) });
    return { version };
  });
}

// Backups of a whole database, by the database's own tools: one interface, one module per dialect.
import type { TableName, Target } from '../config.js';

export interface BackupTool {
  /** The database's own name (file name or database name), which backup file names start with. */
  readonly name: string;
  /** The file extension of this dialect's backups, with its dot. */
  readonly extension: string;
  /** Writes a consistent copy of the database to `file`, while the application may keep writing. */
  backup(file: string): Promise<void>;
  /** Reads a backup through and returns the ledger version it holds (0 without a ledger); throws when unusable. */
  check(file: string, ledger: TableName): Promise<number>;
  /** Replaces the database's contents with the backup's. */
  restore(file: string): Promise<void>;
}

/** `ledger`: tidemark's tables; a lock row of the run that took the backup is not kept in it. */
export async function backupTool(target: Target, ledger: TableName, secrets: string[]): Promise<BackupTool> {
  if (target.dialect === 'sqlite') {
    const { sqliteBackupTool } = await import('./sqlite-backup.js');
    return sqliteBackupTool(target.file);
  }
  const { postgresBackupTool } = await import('./postgres-backup.js');
  return postgresBackupTool(target.url, ledger, secrets);
}

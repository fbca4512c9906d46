// Backups of a whole database, by the database's own tools: one interface, one module per dialect
// (connect.ts picks it).
import type { TableName } from '../config.js';
import type { Version } from '../version.js';

export interface BackupTool {
  /** The database's own name (file name or database name), which backup file names start with. */
  readonly name: string;
  /** The file extension of this dialect's backups, with its dot. */
  readonly extension: string;
  /** Writes a consistent copy of the database to `file`, while the application may keep writing. */
  backup(file: string): Promise<void>;
  /** Reads a backup through and returns the ledger version it holds (0 without a ledger); throws when unusable. */
  check(file: string, ledger: TableName): Promise<Version>;
  /** Replaces the database's contents with the backup's. */
  restore(file: string): Promise<void>;
}

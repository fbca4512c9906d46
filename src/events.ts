// What a migrator reports as it works: one event type per name, for the CLI's printer, the migration
// log and an application's listeners.
import type { Version } from './version.js';

export type MigratorEvent =
  | { type: 'start'; command: 'migrate' | 'rollback'; database: string; count: number; dryRun: boolean }
  | { type: 'running'; action: 'up' | 'down'; version: Version; versionText: string; name: string }
  | ({ type: 'applied' } & StepDone)
  | ({ type: 'reverted' } & StepDone)
  | { type: 'failed'; action: 'up' | 'down'; version: Version; versionText: string; name: string; error: string }
  | {
      type: 'summary';
      command: 'migrate' | 'rollback';
      database: string;
      count: number;
      ms: number;
      version: Version;
      dryRun: boolean;
    }
  | ({ type: 'forced'; database: string; version: Version; dryRun: boolean } & ForceChanges)
  | { type: 'resolved'; database: string; version: Version; change: 'clean' | 'delete'; dryRun: boolean }
  | { type: 'baselined'; database: string; version: Version; recorded: Version[]; dryRun: boolean }
  | ({ type: 'backup'; database: string } & BackupResult)
  | { type: 'restored'; database: string; file: string; version: Version; ms: number }
  | { type: 'warning'; message: string }
  | { type: 'notice'; message: string };

export type EventListener = (event: MigratorEvent) => void;

/** What 'applied' and 'reverted' carry: one type per event name, so a listener's payload is typed. */
export interface StepDone {
  version: Version;
  versionText: string;
  name: string;
  ms: number;
  dryRun: boolean;
}

/** What force changes in the ledger, by version. */
export interface ForceChanges {
  removed: Version[];
  added: Version[];
  cleaned: Version[];
}

/** What 'backup' carries: the backup just taken. */
export interface BackupResult {
  /** The backup file, relative to the project folder when inside it. */
  file: string;
  bytes: number;
  /** The ledger version the backup holds. */
  version: Version;
  ms: number;
  /** Older backups removed by `keep`. */
  removed: string[];
}

/** The emitter's map: each event under its own name, and every event under `event`. */
export type MigratorEvents = { [K in MigratorEvent['type']]: [Extract<MigratorEvent, { type: K }>] } & {
  event: [MigratorEvent];
};

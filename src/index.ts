// The public API: the same migrator the CLI uses, for scripts and application start-up.
import { loadConfig, type ConfigFlags } from './config.js';
import { SchemaVersionError } from './errors.js';
import type { EventListener } from './events.js';
import { Migrator } from './migrator.js';
import { assertAtVersion } from './plan.js';
import { highestVersion, optionalVersion, type Version, type VersionInput } from './version.js';

export {
  ExitCode,
  TidemarkError,
  UsageError,
  MigrationError,
  ConnectionError,
  SchemaVersionError,
  InterruptedError,
} from './errors.js';
export type { ErrorDetails } from './errors.js';
export type { Config, ConfigFlags } from './config.js';
export type { MigratorEvent, MigratorEvents, EventListener, StepDone, ForceChanges } from './events.js';
export type { MigrateOptions, RollbackOptions, SqlOptions, StatusReport, HistoryReport } from './migrator.js';
export type { ForceOptions } from './migrator.js';
export type { StatusEntry, VersionState, LedgerRow, DirtyAction } from './plan.js';
export type { Version, VersionInput } from './version.js';
export type { Irreversible } from './reversibility.js';
export type { HistoryRow, HistoryAction } from './drivers/driver.js';
export type { VerifyOptions } from './verify.js';
export type { ImportOptions, ImportResult } from './migrator.js';
export type { LintOptions } from './migrator.js';
export type { LintResult, Finding as LintFinding } from './linting.js';
export type { FindingRule as LintRule } from './lint/index.js';
export type { SourceFormat, ConvertedFile, ImportNote } from './import/convert.js';
export type { InitOptions, InitStep } from './init.js';
export type { VerifyReport, Finding, CheckName, Reference } from './findings.js';
export type { RollbackSummary, RollbackResult, RollbackVerdict } from './findings.js';
export type {
  Snapshot,
  Difference,
  Table,
  Column,
  Constraint,
  Index,
  View,
  Trigger,
  EnumType,
  Sequence,
  Routine,
} from './schema.js';
export { diffSnapshots, formatSnapshot } from './schema.js';
export { formatVerifyReport } from './findings.js';
export { Migrator };

/**
 * Settings for {@link createMigrator} and {@link assertSchemaVersion}. Each one wins over its
 * environment variable (`DATABASE_URL`, `MIGRATIONS_DIR`, `MIGRATIONS_TABLE`, …), `.env` in `cwd`
 * and package.json's `"tidemark"` field, exactly as the CLI's flags do.
 */
export interface TidemarkSettings extends ConfigFlags {
  /** The project folder: `.env`, package.json and relative paths are read from here. Default: process.cwd(). */
  cwd?: string;
}

/**
 * A migrator configured like the CLI.
 *
 * @example
 * const migrator = createMigrator({ url: 'sqlite:data/app.db' });
 * migrator.events.on('applied', (e) => console.log(`applied ${e.versionText} ${e.name} in ${e.ms} ms`));
 * const { version } = await migrator.migrate();
 *
 * @param onEvent - optional listener for every progress event (also available as `migrator.events`).
 * @throws UsageError when the configuration is invalid (no database, a bad table name).
 */
export function createMigrator(settings: TidemarkSettings = {}, onEvent?: EventListener): Migrator {
  return new Migrator(loadConfig(settings, settings.cwd ?? process.cwd()), onEvent);
}

/** Settings for {@link assertSchemaVersion}. */
export interface SchemaVersionSettings extends TidemarkSettings {
  /**
   * The version this release needs (a bigint, a safe integer or a string of digits); default
   * SCHEMA_VERSION, else the newest migration file.
   */
  expected?: VersionInput;
  /**
   * Start on a database that is ahead of this release (default true): during a rolling reload and
   * right after a code revert, the old code runs on the newer schema until the database is taken
   * back, and refusing would take every restarted worker down. false: refuse ahead too.
   */
  allowAhead?: boolean;
}

/**
 * For application start-up: resolves with the database's version when it has every migration this
 * release needs, and rejects with a {@link SchemaVersionError} (exit code 3) naming the versions and
 * the fix when it lacks one, when a version is dirty, when the ledger is not one a serial run could
 * have written, or (with `allowAhead: false`) when it is ahead. Read-only: it never migrates.
 *
 * @example
 * await assertSchemaVersion(); // in server.js, before app.listen(): refuses to start on a stale schema
 */
export async function assertSchemaVersion(settings: SchemaVersionSettings = {}): Promise<Version> {
  const config = loadConfig(settings, settings.cwd ?? process.cwd());
  const report = await new Migrator(config).status();
  if (report.anomalies.length > 0) {
    const anomalies = report.anomalies.join('; ');
    throw new SchemaVersionError(
      `${report.database}: the ledger is not one a serial run could have written: ${anomalies}`,
      {
        hint: 'see `tidemark verify`, and fix the ledger table by hand',
      },
    );
  }
  const newestFile = highestVersion(report.entries.filter((e) => e.state !== 'not-in-release').map((e) => e.version));
  const expected = optionalVersion(settings.expected, 'expected') ?? config.schemaVersion ?? newestFile;
  assertAtVersion(report.database, report.version, report.entries, expected, settings.allowAhead ?? true);
  return report.version;
}

// The public API: the same migrator the CLI uses, for scripts and application start-up.
import { loadConfig, type Config, type ConfigFlags } from './config.js';
import { Migrator, type EventListener } from './migrator.js';

export { ExitCode, TidemarkError, UsageError, MigrationError, ConnectionError } from './errors.js';
export type { Config, ConfigFlags } from './config.js';
export type { MigratorEvent, EventListener, MigrateOptions, RollbackOptions, StatusReport } from './migrator.js';
export type { StatusEntry, VersionState, LedgerRow } from './plan.js';
export { Migrator };

/**
 * A migrator configured like the CLI: the given settings win over DATABASE_URL, MIGRATIONS_DIR,
 * .env and package.json's "tidemark" field.
 */
export function createMigrator(settings: ConfigFlags & { cwd?: string } = {}, onEvent?: EventListener): Migrator {
  const config: Config = loadConfig(settings, settings.cwd ?? process.cwd());
  return new Migrator(config, onEvent);
}

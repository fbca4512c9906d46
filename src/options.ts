// The options of the commands every deploy runs, as data: yargs declares them from these tables
// (commands.ts), and a bare `tidemark migrate`, which runs without yargs (cli.ts), still knows which
// options are migrate's (npm may have kept one of them for itself: see npmflags.ts).
import type { Options } from 'yargs';
import type { AcceptedOptions } from './npmflags.js';

/** Options of every command. */
export const GLOBAL_OPTIONS = {
  url: { type: 'string', describe: 'database URL (default: DATABASE_URL)' },
  dir: { type: 'string', describe: 'migrations folder (default: MIGRATIONS_DIR or sql)' },
  table: { type: 'string', describe: 'ledger table (default: MIGRATIONS_TABLE or schema_version)' },
  json: { type: 'boolean', describe: 'machine-readable output on stdout' },
  quiet: { type: 'boolean', describe: 'only the summary and errors' },
  'lock-timeout': {
    type: 'string',
    describe: "seconds to wait for another run's migration lock (default 60)",
  },
  lock: {
    type: 'string',
    describe: 'how runners keep apart: advisory (default), table (behind PgBouncer in transaction mode) or none',
  },
  'lock-ttl': {
    type: 'string',
    describe: "--lock table, SQLite: seconds a dead run's lock lasts before another takes it over (default 30)",
  },
  wait: {
    type: 'string',
    describe: 'retry connecting for up to this many seconds while the server starts (alone: 60)',
  },
  'statement-timeout': {
    type: 'string',
    describe: 'PostgreSQL: longest a migration statement may run, e.g. 5min',
  },
  'pg-lock-timeout': {
    type: 'string',
    describe:
      'PostgreSQL: longest a migration may wait for a table lock before it is retried (default 5s; 0: no limit)',
  },
  'lock-retries': {
    type: 'string',
    describe: 'PostgreSQL: retries of a migration whose table lock wait timed out (default 3)',
  },
  db: { type: 'string', describe: 'with several databases configured: only this one' },
  log: {
    type: 'string',
    describe: 'append to this log file (default logs/migration.log); --no-log for none',
  },
  fleet: {
    type: 'string',
    describe:
      'migrate, rollback, status, verify, sql over many databases: sqlite:dir/*.db, urls:file, query:<sql>, ' +
      'schemas:<sql>',
  },
  concurrency: {
    type: 'string',
    describe: 'fleet: connections per server at once (default 4; one per database, more for verify or --lock table)',
  },
  canary: {
    type: 'string',
    describe: 'fleet: run the first K databases alone first; any failure stops the fleet',
  },
  'keep-going': {
    type: 'boolean',
    describe: 'fleet: run every database whatever fails (default: start none after a failure)',
  },
  'only-failed': {
    type: 'boolean',
    describe: 'fleet: only the databases the last run of this command failed on or did not reach',
  },
  shard: { type: 'string', describe: 'fleet: only the K-th of N stable slices, e.g. 2/4' },
} as const satisfies Record<string, Options>;

export const DRY_RUN_OPTION = {
  'dry-run': { type: 'boolean', describe: 'show what would happen, change nothing' },
} as const satisfies Record<string, Options>;

/** migrate's own options (besides --dry-run and the target). */
export const MIGRATE_OPTIONS = {
  'allow-changed': {
    type: 'boolean',
    describe: 'proceed although applied files were edited; records their new checksums',
  },
  'allow-out-of-order': {
    type: 'boolean',
    describe: 'apply pending versions below the applied version (recorded as up-out-of-order)',
  },
  'single-transaction': {
    type: 'boolean',
    describe: 'run all pending migrations in one transaction',
  },
  sync: {
    type: 'boolean',
    describe:
      'first undo applied versions this release has no files for (a reverted release), from their stored ' +
      'rollbacks',
  },
  backup: {
    type: 'boolean',
    describe: 'back up the database first when something is pending (see tidemark backup)',
  },
  keep: {
    type: 'string',
    describe: 'with --backup: keep only the newest N backups of this database',
  },
  'backup-dir': { type: 'string', describe: 'where backups go (default backups/)' },
  strict: {
    type: 'boolean',
    describe: 'refuse (exit 2, nothing run) when tidemark lint finds a lock hazard in a pending file',
  },
} as const satisfies Record<string, Options>;

/** yargs' own --help. */
const HELP: Record<string, Options> = { help: { type: 'boolean' } };

/** What yargs reports as migrate's options once it has picked the command (see the middleware in commands.ts). */
export function migrateAccepts(): AcceptedOptions {
  const positional: Record<string, Options> = { target: { type: 'string' } };
  const tables: Record<string, Options>[] = [GLOBAL_OPTIONS, HELP, DRY_RUN_OPTION, positional, MIGRATE_OPTIONS];
  const entries = tables.flatMap((table) => Object.entries(table));
  return {
    names: entries.map(([name]) => name),
    booleans: entries.filter(([, option]) => option.type === 'boolean').map(([name]) => name),
  };
}

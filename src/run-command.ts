// Runs one command on each configured database: configs, reporter, migration log, signals, exit
// codes. No yargs here: a bare `tidemark migrate` (what `npm run migrate` runs on every deploy)
// comes straight from cli.ts; every other command line is parsed by yargs in commands.ts.
import {
  loadConfigs,
  loadFleetSetting,
  parseTarget,
  type Config,
  type ConfigFlags,
  type FleetSetting,
} from './config.js';
import {
  ExitCode,
  fileSystemError,
  signalError,
  SIGNAL_EXIT_CODES,
  TidemarkError,
  UsageError,
  type StopSignal,
} from './errors.js';
import type { MigratorEvent } from './events.js';
import type { FleetWork } from './fleet/run.js';
import { MigrationLog } from './log.js';
import { Migrator } from './migrator.js';
import { assertNoSwallowedNpmFlags, type AcceptedOptions } from './npmflags.js';
import { Reporter } from './report.js';
import { versionInput, type Version } from './version.js';

export interface GlobalArgs extends ConfigFlags {
  'dry-run'?: boolean;
  concurrency?: string;
  canary?: string;
  'keep-going'?: boolean;
  'only-failed'?: boolean;
  shard?: string;
  /** The running command's options and which of them are boolean (set by a middleware). */
  accepts?: AcceptedOptions;
}

export interface RunOptions {
  /** The command changes the database: it appends to the migration log (dry runs do not). */
  changes?: boolean;
  /** The command rewrites one ledger or folder (force, baseline, create): several databases need --db. */
  oneDatabase?: string;
  /** The command also runs over a fleet (--fleet or the "fleet" setting): its name and what it does on each. */
  fleet?: { command: string; work: FleetWork };
}

/**
 * Builds the configs, reporter and migrators for one command, runs it on each configured database in
 * order (stopping at the first failure, and saying which were done), and maps failures to exit codes.
 */
export async function run(
  args: GlobalArgs,
  work: (migrator: Migrator, reporter: Reporter) => Promise<void>,
  options: RunOptions = {},
): Promise<void> {
  let reporter = new Reporter({ json: Boolean(args.json), quiet: Boolean(args.quiet), secrets: [] });
  let configs: Config[] = [];
  let log: MigrationLog | null = null;
  const done: string[] = [];
  let started = false;
  try {
    // Before anything else: a flag npm kept for itself must not let the command run without it.
    assertNoSwallowedNpmFlags(process.env, args.accepts ?? { names: [], booleans: [] }, process.argv.slice(2));
    configs = loadConfigs(args);
    const fleet = loadFleetSetting(args);
    if (fleet && options.fleet) {
      process.exitCode = await runFleetCommand(args, configs, fleet, options);
      return;
    }
    if (args.fleet)
      throw new UsageError('--fleet works with migrate, rollback, status, verify and sql', {
        hint: 'pass --url to work on one database of the fleet',
      });
    if (options.oneDatabase && configs.length > 1) {
      throw new UsageError(
        `${options.oneDatabase} works on one database, and this project configures ` +
          `${configs.map((c) => c.name).join(', ')}`,
        {
          hint: `add --db, e.g. --db ${configs[0]!.name}`,
        },
      );
    }
    const output = new Reporter({
      json: Boolean(args.json),
      quiet: Boolean(args.quiet),
      secrets: configs.flatMap((c) => c.secrets),
    });
    reporter = output;
    started = true;
    for (const config of configs) {
      // Headers only group several databases: one database's output (a `sql` script) stays as it is.
      if (configs.length > 1) output.section(config.name!);
      log = options.changes && config.log && !args['dry-run'] ? openLog(config, output) : null;
      const logged = log;
      const listener = logged
        ? (event: MigratorEvent) => {
            output.event(event);
            logged.event(event);
          }
        : output.event;
      const migrator = new Migrator(config, listener);
      if (options.changes) {
        stopCleanlyOnSignals(migrator, (error) => {
          reporter.error(error);
          logged?.error(error);
        });
      }
      await work(migrator, output);
      done.push(config.name ?? '');
    }
  } catch (caught) {
    const error = fileSystemError(caught) ?? caught;
    reporter.error(error);
    log?.error(error);
    if (started && configs.length > 1)
      reporter.stoppedAt(
        configs.map((c) => c.name!),
        done,
      );
    process.exitCode = error instanceof TidemarkError ? error.exitCode : ExitCode.migrationFailed;
  }
}

/** Fleet code loads only when a fleet runs: a one-database migrate pays nothing for it. */
async function runFleetCommand(
  args: GlobalArgs,
  configs: Config[],
  fleet: FleetSetting,
  { fleet: options, changes }: RunOptions,
): Promise<number> {
  const { runFleet } = await import('./fleet/run.js');
  const flags = {
    ...args,
    keepGoing: args['keep-going'],
    onlyFailed: args['only-failed'],
    dryRun: args['dry-run'],
    changes,
  };
  return runFleet(options!.command, configs[0]!, fleet, flags, options!.work);
}

/** What each fleet command reports per database (loaded with the fleet). */
export const outcomes = () => import('./fleet/commands.js');

/** The run a SIGINT or SIGTERM stops, and where its error goes when no run is under way to report it. */
let stoppable: { migrator: Migrator; report: (error: TidemarkError) => void } | null = null;

/**
 * pm2 stop, a cancelled CI job or Ctrl-C: the running statement is cancelled, its migration rolled back
 * and recorded as interrupted, the lock released, and the process exits 130 (SIGINT) or 143 (SIGTERM)
 * with an `error:` line. A second signal, or cleanup taking longer than 10 s, exits at once.
 */
function stopCleanlyOnSignals(migrator: Migrator, report: (error: TidemarkError) => void): void {
  if (!stoppable) {
    for (const signal of Object.keys(SIGNAL_EXIT_CODES) as StopSignal[]) process.on(signal, () => stop(signal));
  }
  stoppable = { migrator, report };
}

let stopping = false;

function stop(signal: StopSignal): void {
  const code = SIGNAL_EXIT_CODES[signal];
  if (stopping || !stoppable!.migrator.interrupt(signal)) {
    if (!stopping) stoppable!.report(signalError(signal));
    process.exit(code);
  }
  stopping = true;
  setTimeout(() => process.exit(code), 10_000).unref();
}

/** The log opens only on a valid configuration: a configuration error must not leave a logs/ folder behind. */
function openLog(config: Config, output: Reporter): MigrationLog {
  parseTarget(config.url, config.cwd);
  return new MigrationLog({
    path: config.log!,
    cwd: config.cwd,
    redact: (text) => output.redact(text),
    onWriteError: (message) => output.event({ type: 'warning', message }),
  });
}

/** A version argument, exact whatever its width (up to the ledger's bigint); undefined when not given. */
export function versionArg(value: unknown, what: string): Version | undefined {
  return value === undefined ? undefined : versionInput(String(value), what);
}

/** Counts arrive as strings through npm: accept only whole numbers. */
export function wholeNumber(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${what} must be a whole number, not "${text}"`, {
      hint: `e.g. ${what === 'steps' ? 'tidemark rollback 2' : 'tidemark migrate 3'}`,
    });
  }
  return Number(text);
}

/** migrate's arguments as yargs gives them; a bare `tidemark migrate` gives none. */
export interface MigrateArgs extends GlobalArgs {
  target?: string;
  'dry-run'?: boolean;
  'allow-changed'?: boolean;
  'allow-out-of-order'?: boolean;
  'single-transaction'?: boolean;
  sync?: boolean;
  backup?: boolean;
  keep?: string;
  strict?: boolean;
}

/** `tidemark migrate`: on each configured database, or over a fleet. */
export function migrateCommand(args: MigrateArgs): Promise<void> {
  const options = () => ({
    strict: args.strict,
    target: versionArg(args.target, 'target'),
    dryRun: args['dry-run'],
    allowChanged: args['allow-changed'],
    allowOutOfOrder: args['allow-out-of-order'],
    singleTransaction: args['single-transaction'],
    backup: args.backup ? { keep: wholeNumber(args.keep, 'keep') } : false,
    sync: args.sync,
  });
  const work = async (m: Migrator) => (await outcomes()).migrated(await m.migrate(options()), Boolean(args['dry-run']));
  return run(args, async (migrator) => void (await migrator.migrate(options())), {
    changes: true,
    fleet: { command: 'migrate', work },
  });
}

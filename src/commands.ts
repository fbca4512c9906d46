// yargs commands: parse, call the core, print. No SQL here. What only one command needs (verify's
// report, the schema printer, import's formats) is imported inside that command's handler, so that
// `migrate` loads none of it.
import { createRequire } from 'node:module';
import type { Argv } from 'yargs';
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
import { MigrationLog } from './log.js';
import { printable, printableJson } from './printable.js';
import type { InitStep } from './init.js';
import type { LintResult } from './linting.js';
import { SOURCE_FORMATS, type SourceFormat } from './import/formats.js';
import type { ForceChanges, MigratorEvent } from './events.js';
import { Migrator } from './migrator.js';
import { forceChangeWords, Reporter } from './report.js';
import { assertNoSwallowedNpmFlags, type AcceptedOptions } from './npmflags.js';

// yargs' CommonJS build wraps help at word boundaries (its ESM build splits words) and is one file to load.
const yargs = createRequire(import.meta.url)('yargs') as typeof import('yargs').default;

/** Help fits the terminal; elsewhere (a pipe, a file) it is wrapped at 80 columns. */
const HELP_WIDTH = process.stdout.isTTY ? process.stdout.columns : 80;

const COMMAND_NAMES =
  'migrate, rollback, status, version, force, resolve, baseline, import, sql, create, init, verify, lint, ' +
  'backup, restore or schema';
import type { FleetMember, FleetWork } from './fleet/run.js';
import { versionInput, type Version } from './version.js';

interface GlobalArgs extends ConfigFlags {
  'dry-run'?: boolean;
  concurrency?: string;
  canary?: string;
  'keep-going'?: boolean;
  'only-failed'?: boolean;
  shard?: string;
  /** The running command's options and which of them are boolean (set by a middleware). */
  accepts?: AcceptedOptions;
}

interface RunOptions {
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
async function run(
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
const outcomes = () => import('./fleet/commands.js');

const HISTORY_ONE_DATABASE = new UsageError('status --history works on one database, not over a fleet', {
  hint: "pass --no-fleet --url <database> for one database's history",
});

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
function versionArg(value: unknown, what: string): Version | undefined {
  return value === undefined ? undefined : versionInput(String(value), what);
}

/** Counts arrive as strings through npm: accept only whole numbers. */
function wholeNumber(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${what} must be a whole number, not "${text}"`, {
      hint: `e.g. ${what === 'steps' ? 'tidemark rollback 2' : 'tidemark migrate 3'}`,
    });
  }
  return Number(text);
}

/** force asks first, naming the rows it deletes; outside a terminal only --yes answers. */
async function confirmForce(version: Version, changes: ForceChanges): Promise<void> {
  const what = `${forceChangeWords(changes, true).join(', ')}, without running any SQL`;
  const npm = `npm run migrate:force-version -- ${version} --yes`;
  const command = `\`tidemark force ${version} --yes\` (npm: \`${npm}\`)`;
  const question = `Make the ledger say version ${version}: ${what}?`;
  const confirmed = await confirm(`force ${version} ${what}`, question, false, command);
  if (!confirmed) throw new UsageError('force cancelled; nothing was changed');
}

/** Asks on a terminal; elsewhere (a deploy, CI) only --yes goes ahead, and the refusal names the command (quoted). */
async function confirm(what: string, question: string, yes: boolean | undefined, command: string): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) {
    throw new UsageError(`${what}; refusing to do it without confirmation`, {
      hint: `check the database by hand, then run ${command}`,
    });
  }
  const { createInterface } = await import('node:readline/promises');
  const prompt = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await prompt.question(`${question} [y/N] `);
  prompt.close();
  return /^y(es)?$/i.test(answer.trim());
}

async function lintLines(result: LintResult): Promise<string[]> {
  const { findingLines } = await import('./linting.js');
  const count = result.findings.length;
  const summary =
    `lint: ${count} finding${count === 1 ? '' : 's'} in ${result.files.length} ` +
    `file${result.files.length === 1 ? '' : 's'}`;
  return [...result.findings.flatMap(findingLines), summary];
}

function initLines(steps: InitStep[], dryRun: boolean): string[] {
  const lines = steps.map(
    (s) => `${s.action === 'added' ? (dryRun ? 'would add' : 'added') : 'kept'} ${s.path}: ${s.what}`,
  );
  if (!steps.some((s) => s.action === 'added')) lines.push('nothing to change: tidemark is already set up here');
  return lines;
}

const dryRun = (y: Argv) =>
  y.option('dry-run', { type: 'boolean', describe: 'show what would happen, change nothing' });

export function cli(argv: string[]): Promise<unknown> {
  const parser = yargs(argv);
  return (
    parser
      .scriptName('tidemark')
      .usage('$0 <command> [options]\n\nPlain-SQL migrations for PostgreSQL and SQLite.')
      .option('url', { type: 'string', describe: 'database URL (default: DATABASE_URL)' })
      .option('dir', { type: 'string', describe: 'migrations folder (default: MIGRATIONS_DIR or sql)' })
      .option('table', { type: 'string', describe: 'ledger table (default: MIGRATIONS_TABLE or schema_version)' })
      .option('json', { type: 'boolean', describe: 'machine-readable output on stdout' })
      .option('quiet', { type: 'boolean', describe: 'only the summary and errors' })
      .option('lock-timeout', {
        type: 'string',
        describe: "seconds to wait for another run's migration lock (default 60)",
      })
      .option('lock', {
        type: 'string',
        describe: 'how runners keep apart: advisory (default), table (behind PgBouncer in transaction mode) or none',
      })
      .option('lock-ttl', {
        type: 'string',
        describe: "--lock table, SQLite: seconds a dead run's lock lasts before another takes it over (default 30)",
      })
      .option('wait', {
        type: 'string',
        describe: 'retry connecting for up to this many seconds while the server starts (alone: 60)',
      })
      .option('statement-timeout', {
        type: 'string',
        describe: 'PostgreSQL: longest a migration statement may run, e.g. 5min',
      })
      .option('pg-lock-timeout', {
        type: 'string',
        describe:
          'PostgreSQL: longest a migration may wait for a table lock before it is retried (default 5s; 0: no limit)',
      })
      .option('lock-retries', {
        type: 'string',
        describe: 'PostgreSQL: retries of a migration whose table lock wait timed out (default 3)',
      })
      .option('db', { type: 'string', describe: 'with several databases configured: only this one' })
      .option('log', {
        type: 'string',
        describe: 'append to this log file (default logs/migration.log); --no-log for none',
      })
      .option('fleet', {
        type: 'string',
        describe:
          'migrate, rollback, status, verify, sql over many databases: sqlite:dir/*.db, urls:file, query:<sql>, ' +
          'schemas:<sql>',
      })
      .option('concurrency', {
        type: 'string',
        describe:
          'fleet: connections per server at once (default 4; one per database, more for verify or --lock table)',
      })
      .option('canary', {
        type: 'string',
        describe: 'fleet: run the first K databases alone first; any failure stops the fleet',
      })
      .option('keep-going', {
        type: 'boolean',
        describe: 'fleet: run every database whatever fails (default: start none after a failure)',
      })
      .option('only-failed', {
        type: 'boolean',
        describe: 'fleet: only the databases the last run of this command failed on or did not reach',
      })
      .option('shard', { type: 'string', describe: 'fleet: only the K-th of N stable slices, e.g. 2/4' })
      .command(
        'migrate [target]',
        'apply pending migrations, up to target when given',
        (y) =>
          dryRun(y)
            .positional('target', { type: 'string', describe: 'highest version to apply' })
            .option('allow-changed', {
              type: 'boolean',
              describe: 'proceed although applied files were edited; records their new checksums',
            })
            .option('allow-out-of-order', {
              type: 'boolean',
              describe: 'apply pending versions below the applied version (recorded as up-out-of-order)',
            })
            .option('single-transaction', {
              type: 'boolean',
              describe: 'run all pending migrations in one transaction',
            })
            .option('sync', {
              type: 'boolean',
              describe:
                'first undo applied versions this release has no files for (a reverted release), from their stored ' +
                'rollbacks',
            })
            .option('backup', {
              type: 'boolean',
              describe: 'back up the database first when something is pending (see tidemark backup)',
            })
            .option('keep', {
              type: 'string',
              describe: 'with --backup: keep only the newest N backups of this database',
            })
            .option('backup-dir', { type: 'string', describe: 'where backups go (default backups/)' })
            .option('strict', {
              type: 'boolean',
              describe: 'refuse (exit 2, nothing run) when tidemark lint finds a lock hazard in a pending file',
            }),
        (args) => {
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
          const work = async (m: Migrator) =>
            (await outcomes()).migrated(await m.migrate(options()), Boolean(args['dry-run']));
          return run(args, async (migrator) => void (await migrator.migrate(options())), {
            changes: true,
            fleet: { command: 'migrate', work },
          });
        },
      )
      .command(
        'rollback [steps]',
        'undo the last migration, or the last steps',
        (y) =>
          dryRun(y)
            .positional('steps', { type: 'string', describe: 'how many migrations to undo (default 1)' })
            .option('to', { type: 'string', describe: 'undo every migration above this version' })
            .option('all', { type: 'boolean', describe: 'undo every applied migration' })
            .option('use-stored', {
              type: 'boolean',
              describe: 'run the rollback stored in the ledger, not a rollback file that differs from it',
            })
            .conflicts('to', ['all', 'steps'])
            .conflicts('all', 'steps'),
        (args) => {
          const options = () => ({
            steps: wholeNumber(args.steps, 'steps'),
            to: versionArg(args.to, 'version'),
            all: args.all,
            useStored: args['use-stored'],
            dryRun: args['dry-run'],
          });
          const work = async (m: Migrator) =>
            (await outcomes()).reverted(await m.rollback(options()), Boolean(args['dry-run']));
          return run(args, async (migrator) => void (await migrator.rollback(options())), {
            changes: true,
            fleet: { command: 'rollback', work },
          });
        },
      )
      .command(
        'status',
        'list every version: applied, pending, out of order, not in this release, changed',
        (y) =>
          y.option('history', { type: 'boolean', describe: 'list every up, down, force and failed attempt instead' }),
        (args) =>
          run(
            args,
            async (migrator, reporter) => {
              if (args.history) reporter.history(await migrator.history());
              else reporter.status(await migrator.status());
            },
            {
              fleet: {
                command: 'status',
                work: async (m) =>
                  args.history
                    ? Promise.reject(HISTORY_ONE_DATABASE)
                    : (await outcomes()).statusOutcome(await m.status()),
              },
            },
          ),
      )
      .command(
        'version',
        'print the current version number alone (0 when nothing is applied)',
        (y) => y,
        (args) =>
          run(args, async (migrator, reporter) => {
            const version = await migrator.version();
            reporter.out(args.json ? printableJson({ version }) : String(version));
          }),
      )
      .command(
        'force <version>',
        'make the ledger say version without running SQL',
        (y) =>
          dryRun(y)
            .positional('version', { type: 'string', describe: 'the version the database really is at' })
            .option('yes', { type: 'boolean', describe: 'do not ask' }),
        (args) =>
          run(
            args,
            async (migrator) => {
              const version = versionArg(args.version, 'version')!;
              const confirm = args.yes ? undefined : (changes: ForceChanges) => confirmForce(version, changes);
              await migrator.force(version, { dryRun: args['dry-run'], confirm });
            },
            { changes: true, oneDatabase: 'force' },
          ),
      )
      .command(
        'resolve <version>',
        'settle a dirty version: did its interrupted step (migration or rollback) take effect? changes only that row',
        (y) =>
          dryRun(y)
            .positional('version', { type: 'string', describe: 'the dirty version (see tidemark status)' })
            .option('applied', { type: 'boolean', describe: 'the interrupted step took effect' })
            .option('not-applied', { type: 'boolean', describe: 'the interrupted step did not take effect' })
            .conflicts('applied', 'not-applied'),
        (args) =>
          run(
            args,
            async (migrator) => {
              const version = versionArg(args.version, 'version')!;
              if (!args.applied && !args['not-applied']) {
                throw new UsageError(
                  'resolve needs --applied or --not-applied: did the interrupted step take effect?',
                  {
                    hint: 'run `tidemark status`: its hint says what each does for this version',
                  },
                );
              }
              await migrator.resolve(version, Boolean(args.applied), { dryRun: args['dry-run'] });
            },
            { changes: true, oneDatabase: 'resolve' },
          ),
      )
      .command(
        'baseline <version>',
        'record the versions up to version as applied, running no SQL, on a database built without tidemark',
        (y) => dryRun(y).positional('version', { type: 'string', describe: 'the version the existing schema is at' }),
        (args) =>
          run(
            args,
            async (migrator) => {
              await migrator.baseline(versionArg(args.version, 'version')!, { dryRun: args['dry-run'] });
            },
            { changes: true, oneDatabase: 'baseline' },
          ),
      )
      .command(
        'import <source>',
        "write another migrator's folder as tidemark files; with a database URL, also adopt its ledger",
        (y) =>
          dryRun(y)
            .positional('source', { type: 'string', describe: "the other tool's migrations folder" })
            .option('from', { choices: SOURCE_FORMATS, demandOption: true, describe: 'the tool that wrote it' })
            .option('files-only', { type: 'boolean', describe: 'convert the files only, even with a database URL' })
            .option('from-table', { type: 'string', describe: "the other tool's ledger table, when renamed" }),
        (args) =>
          run(
            args,
            async (migrator, reporter) => {
              const options = { filesOnly: args['files-only'], dryRun: args['dry-run'], table: args['from-table'] };
              const result = await migrator.import(args.from as SourceFormat, String(args.source), options);
              const { importJson, importLines } = await import('./import/report.js');
              if (args.json) reporter.out(printableJson(importJson(result)));
              else for (const line of importLines(result)) reporter.out(line);
            },
            { oneDatabase: 'import' },
          ),
      )
      .command(
        'sql [target]',
        'print the script migrate (or rollback) would run, for psql or the sqlite3 shell',
        (y) =>
          y
            .positional('target', { type: 'string', describe: 'highest version to include' })
            .option('rollback', {
              type: 'string',
              describe: 'print the rollback script instead: undo the last [steps] (default 1)',
            })
            .option('to', { type: 'string', describe: 'rollback script: undo every migration above this version' })
            .option('all', { type: 'boolean', describe: 'rollback script: undo every applied migration' })
            .option('allow-out-of-order', { type: 'boolean', describe: 'as migrate --allow-out-of-order' })
            .option('use-stored', { type: 'boolean', describe: 'rollback script: as rollback --use-stored' })
            .option('out', { type: 'string', describe: "with a fleet: write each database's script into this folder" })
            .conflicts('target', ['rollback', 'to', 'all'])
            .conflicts('to', 'all'),
        (args) => {
          const options = () => {
            // `--rollback` alone is '' (one step); --to and --all mean a rollback script too.
            const steps = args.rollback ? wholeNumber(args.rollback, 'steps') : undefined;
            if (steps !== undefined && (args.to !== undefined || args.all)) {
              throw new UsageError('--rollback <steps> cannot be combined with --to or --all', {
                hint: 'e.g. tidemark sql --rollback 2, or tidemark sql --to 1',
              });
            }
            return {
              target: versionArg(args.target, 'target'),
              rollback: args.rollback !== undefined || args.to !== undefined || Boolean(args.all),
              steps,
              to: versionArg(args.to, 'version'),
              all: args.all,
              allowOutOfOrder: args['allow-out-of-order'],
              useStored: args['use-stored'],
            };
          };
          let write: ((script: string, member: FleetMember) => Awaited<ReturnType<FleetWork>>) | null = null;
          const work = async (m: Migrator, member: FleetMember) => {
            write ??= (await outcomes()).scriptWriter(args.out, process.cwd());
            return write(await m.sql(options()), member);
          };
          return run(
            args,
            async (migrator, reporter) => {
              const script = await migrator.sql(options());
              reporter.out(args.json ? JSON.stringify({ script }) : script.trimEnd());
            },
            { oneDatabase: 'sql', fleet: { command: 'sql', work } },
          );
        },
      )
      .command(
        'create <name>',
        'write the next NNN_name.sql and NNN_name_rollback.sql',
        (y) =>
          y
            .positional('name', { type: 'string', describe: 'what the migration does, e.g. add_orders' })
            .option('timestamp', {
              type: 'boolean',
              describe: 'version the files by the UTC time (YYYYMMDDhhmmss), for teams that merge branches often',
            }),
        (args) =>
          run(
            args,
            async (migrator, reporter) => {
              const paths = migrator.create(String(args.name), { timestamp: args.timestamp });
              if (args.json) reporter.out(printableJson({ created: paths }));
              else for (const path of paths) reporter.out(`created ${path}`);
            },
            { oneDatabase: 'create' },
          ),
      )
      .command(
        'init',
        'add tidemark to this app: npm scripts, a migrations folder, DATABASE_URL in .env',
        (y) =>
          dryRun(y).option('pm2', {
            type: 'boolean',
            describe: 'also write ecosystem.config.cjs with a commented pm2 deploy block',
          }),
        (args) =>
          run(
            args,
            async (migrator, reporter) => {
              const steps = await migrator.init({
                pm2: args.pm2,
                url: (args as GlobalArgs).url,
                dryRun: args['dry-run'],
              });
              if (args.json) reporter.out(JSON.stringify({ steps, dryRun: Boolean(args['dry-run']) }));
              else for (const line of initLines(steps, Boolean(args['dry-run']))) reporter.out(line);
            },
            { oneDatabase: 'init' },
          ),
      )
      .command(
        'verify',
        'check that the database is exactly what the files say; exit 3 on any finding',
        (y) =>
          y
            .option('rollbacks', { type: 'boolean', describe: 'also prove each rollback on a scratch database' })
            .option('from', { type: 'string', describe: '--rollbacks: start at this version' })
            .option('fail-fast', {
              type: 'boolean',
              describe: '--rollbacks: stop at the first failed or lossy rollback',
            })
            .option('from-files', { type: 'boolean', describe: 'compare with the files run on a scratch database' })
            .option('scratch-url', { type: 'string', describe: 'build it on this server, or in this empty database' })
            .option('lint', {
              type: 'boolean',
              describe: 'also lint every migration file for lock hazards (see tidemark lint)',
            })
            .implies('from', 'rollbacks')
            .implies('fail-fast', 'rollbacks'),
        (args) => {
          const options = () => ({
            rollbacks: args.rollbacks,
            from: versionArg(args.from, 'version'),
            failFast: args['fail-fast'],
          });
          // The files are the same for every database of a fleet: lint them once, not per database.
          const lintOnce = new UsageError('verify --lint does not run over a fleet', {
            hint: 'run `tidemark lint --all` once, and verify the fleet without --lint',
          });
          const work = async (m: Migrator) =>
            args.lint ? Promise.reject(lintOnce) : (await outcomes()).verified(await m.verify(options()));
          return run(
            args,
            async (migrator, reporter) => {
              const report = await migrator.verify(options());
              const { formatVerifyReport } = await import('./findings.js');
              const lint = args.lint ? await migrator.lint({ all: true }) : null;
              if (args.json) reporter.out(printableJson(lint ? { ...report, lint: lint.findings } : report));
              else {
                for (const line of formatVerifyReport(report, Boolean(args.quiet))) reporter.out(line);
                if (lint) for (const line of await lintLines(lint)) reporter.out(line);
              }
              if (!report.ok || (lint && lint.findings.length > 0)) process.exitCode = ExitCode.verifyFailed;
            },
            { fleet: { command: 'verify', work } },
          );
        },
      )
      .command(
        'lint [files..]',
        'check migration files for lock hazards (default: the pending ones); exit 3 on any finding',
        (y) =>
          y
            .positional('files', { type: 'string', array: true, describe: 'migration files to lint' })
            .option('all', { type: 'boolean', describe: 'lint every migration file' })
            .option('format', {
              type: 'string',
              choices: ['text', 'github'],
              describe: 'github: ::warning lines that GitHub Actions shows on the files',
            }),
        (args) =>
          run(args, async (migrator, reporter) => {
            if (args.all && args.files?.length)
              throw new UsageError('lint takes files or --all, not both', { hint: 'e.g. tidemark lint --all' });
            const result = await migrator.lint({ files: args.files, all: args.all });
            if (args.json)
              reporter.out(
                printableJson({ files: result.files, findings: result.findings, ms: Math.round(result.ms) }),
              );
            else if (args.format === 'github') {
              const { githubAnnotation } = await import('./linting.js');
              for (const finding of result.findings) reporter.out(githubAnnotation(finding));
            } else for (const line of await lintLines(result)) reporter.out(line);
            if (result.findings.length > 0) process.exitCode = ExitCode.verifyFailed;
          }),
      )
      .command(
        'backup',
        'write a backup of the database to backups/ (SQLite: VACUUM INTO; PostgreSQL: pg_dump -Fc)',
        (y) =>
          y
            .option('keep', { type: 'string', describe: 'keep only the newest N backups of this database' })
            .option('backup-dir', { type: 'string', describe: 'where backups go (default backups/)' }),
        (args) =>
          run(
            args,
            async (migrator) => {
              await migrator.backup({ keep: wholeNumber(args.keep, 'keep') });
            },
            { changes: true },
          ),
      )
      .command(
        'restore <file>',
        'replace the database with a backup, after reading the backup through (asks first; --yes elsewhere)',
        (y) =>
          y
            .positional('file', { type: 'string', describe: 'a file written by tidemark backup' })
            .option('yes', { type: 'boolean', describe: 'do not ask' }),
        (args) =>
          run(
            args,
            async (migrator) => {
              const file = String(args.file);
              const question = (version: Version) =>
                `Replace everything in the database with ${file} (version ${version})?`;
              const command = `\`tidemark restore ${file} --yes\``;
              await migrator.restore(file, (v) =>
                confirm('restore replaces the database', question(v), args.yes, command),
              );
            },
            { changes: true, oneDatabase: 'restore' },
          ),
      )
      .command(
        'schema',
        'print the normalized schema, for review in git (--json: as data)',
        (y) => y,
        (args) =>
          run(args, async (migrator, reporter) => {
            const snapshot = await migrator.schema();
            const { formatSnapshot } = await import('./schema.js');
            reporter.out(args.json ? printableJson(snapshot) : printable(formatSnapshot(snapshot)));
          }),
      )
      // The running command's options (yargs knows them once it has picked the command): see npmflags.ts.
      .middleware((args) => {
        // getOptions() is yargs' own (untyped) view of the options the chosen command declared.
        type Options = { key: Record<string, unknown>; boolean: string[] };
        const { key, boolean } = (parser as unknown as { getOptions(): Options }).getOptions();
        (args as GlobalArgs).accepts = { names: Object.keys(key), booleans: boolean };
      })
      .demandCommand(1, `name a command: ${COMMAND_NAMES}`)
      .strict()
      .fail((message, error) => {
        if (error) throw error;
        process.stderr.write(`error: ${message}\nhint: run \`tidemark --help\` for the commands and their options\n`);
        process.exit(ExitCode.usage);
      })
      .help()
      .wrap(HELP_WIDTH)
      // `version` names force's and baseline's positional, so yargs' own --version would take it over.
      .version(false)
      .parseAsync()
  );
}

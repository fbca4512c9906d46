// yargs commands: parse, call the core, print. No SQL here. What only one command needs (verify's
// report, the schema printer, import's formats) is imported inside that command's handler, so that
// `migrate` loads none of it.
import { createRequire } from 'node:module';
import type { Argv } from 'yargs';
import { ExitCode, UsageError } from './errors.js';
import { printable, printableJson } from './printable.js';
import type { InitStep } from './init.js';
import type { LintResult } from './linting.js';
import { SOURCE_FORMATS, type SourceFormat } from './import/formats.js';
import type { ForceChanges } from './events.js';
import type { Migrator } from './migrator.js';
import { DRY_RUN_OPTION, GLOBAL_OPTIONS, MIGRATE_OPTIONS } from './options.js';
import { forceChangeWords } from './report.js';
import type { FleetMember, FleetWork } from './fleet/run.js';
import { migrateCommand, outcomes, run, versionArg, wholeNumber, type GlobalArgs } from './run-command.js';
import type { Version } from './version.js';

// yargs' CommonJS build wraps help at word boundaries (its ESM build splits words) and is one file to load.
const yargs = createRequire(import.meta.url)('yargs') as typeof import('yargs').default;

/** Help fits the terminal; elsewhere (a pipe, a file) it is wrapped at 80 columns. */
const HELP_WIDTH = process.stdout.isTTY ? process.stdout.columns : 80;

const COMMAND_NAMES =
  'migrate, rollback, status, version, force, resolve, baseline, import, sql, create, init, verify, lint, ' +
  'backup, restore or schema';

const HISTORY_ONE_DATABASE = new UsageError('status --history works on one database, not over a fleet', {
  hint: "pass --no-fleet --url <database> for one database's history",
});

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
  // terminal: false leaves echo and line editing to the terminal itself: readline's own redrawing
  // writes cursor escapes that stay in a captured session.
  const prompt = createInterface({ input: process.stdin, output: process.stderr, terminal: false });
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

const dryRun = (y: Argv) => y.options(DRY_RUN_OPTION);

/** The parser with the global options, which every command's handler receives. */
type Parser = Argv<GlobalArgs>;

/** migrate and rollback: the commands a deploy and a failed release run. */
function applyCommands(parser: Parser): Parser {
  return parser
    .command(
      'migrate [target]',
      'apply pending migrations, up to target when given',
      (y) =>
        dryRun(y)
          .positional('target', { type: 'string', describe: 'highest version to apply' })
          .options(MIGRATE_OPTIONS),
      (args) => migrateCommand(args),
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
    );
}

/** status, version and force. */
function ledgerReadCommands(parser: Parser): Parser {
  return parser
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
    );
}

/** resolve, baseline and import: settling or adopting a ledger. */
function ledgerRepairCommands(parser: Parser): Parser {
  return parser
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
              throw new UsageError('resolve needs --applied or --not-applied: did the interrupted step take effect?', {
                hint: 'run `tidemark status`: its hint says what each does for this version',
              });
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
    );
}

/** sql: the script a DBA reviews and runs by hand. */
function scriptCommands(parser: Parser): Parser {
  return parser.command(
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
  );
}

/** create and init: files for a project. */
function setupCommands(parser: Parser): Parser {
  return parser
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
    );
}

/** verify. */
function verifyCommands(parser: Parser): Parser {
  return parser.command(
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
  );
}

/** lint, backup and restore. */
function lintAndBackupCommands(parser: Parser): Parser {
  return parser
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
            reporter.out(printableJson({ files: result.files, findings: result.findings, ms: Math.round(result.ms) }));
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
    );
}

/** schema: the normalized schema for review. */
function schemaCommands(parser: Parser): Parser {
  return parser.command(
    'schema',
    'print the normalized schema, for review in git (--json: as data)',
    (y) => y,
    (args) =>
      run(args, async (migrator, reporter) => {
        const snapshot = await migrator.schema();
        const { formatSnapshot } = await import('./schema.js');
        reporter.out(args.json ? printableJson(snapshot) : printable(formatSnapshot(snapshot)));
      }),
  );
}

const COMMAND_GROUPS = [
  applyCommands,
  ledgerReadCommands,
  ledgerRepairCommands,
  scriptCommands,
  setupCommands,
  verifyCommands,
  lintAndBackupCommands,
  schemaCommands,
];

export function cli(argv: string[]): Promise<unknown> {
  const parser = yargs(argv)
    .scriptName('tidemark')
    .usage('$0 <command> [options]\n\nPlain-SQL migrations for PostgreSQL and SQLite.')
    .options(GLOBAL_OPTIONS) as Parser;
  for (const addCommands of COMMAND_GROUPS) addCommands(parser);
  return (
    parser
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

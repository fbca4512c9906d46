// `tidemark lint`, and the same lint run by migrate over its pending files before anything runs.
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { discover, type Dialect, type Migration } from '../files.js';
import { loadScript, type Script } from '../script.js';
import { distinctFindings, findingLines, lintScripts, type LintResult } from '../linting.js';
import type { Session } from '../run/session.js';

/** `tidemark lint`: which files to lint (default: the pending ones, or every file when no database is configured). */
export interface LintOptions {
  /** Paths of migration files, as given on the command line (relative to the working folder). */
  files?: string[];
  all?: boolean;
}

/** Lints the chosen files for every dialect they may run on; see {@link Migrator.lint}. */
export async function lint(session: Session, options: LintOptions): Promise<LintResult> {
  const { config } = session;
  const started = performance.now();
  const catalog = discover(session.dir, config.cwd);
  const dialects: Dialect[] = config.url ? [session.target().dialect] : ['postgres', 'sqlite'];
  const chosen = options.files?.length ? namedFiles(session, options.files, catalog) : null;
  const results: LintResult[] = [];
  for (const dialect of dialects) {
    let migrations = catalog.migrationsFor(dialect);
    if (chosen) migrations = migrations.filter((m) => chosen.has(m.forward.fullPath));
    else if (!options.all && config.url) migrations = await pendingOf(session, migrations);
    const scripts = await Promise.all(migrations.map((m) => loadScript(m.forward, dialect)));
    results.push(await lintOf(session, scripts, dialect));
  }
  const files = [...new Set(results.flatMap((r) => r.files))];
  return { findings: distinctFindings(results.flatMap((r) => r.findings)), files, ms: performance.now() - started };
}

/**
 * migrate's lint of its pending files: each finding as a warning; with `strict`, any finding
 * refuses the run before anything changes.
 */
export async function lintPending(
  session: Session,
  scripts: Script[],
  dialect: Dialect,
  strict: boolean,
): Promise<void> {
  const result = await lintOf(session, scripts, dialect);
  for (const finding of result.findings) session.emit({ type: 'warning', message: findingLines(finding).join('\n') });
  if (!strict || result.findings.length === 0) return;
  const count = result.findings.length;
  throw new UsageError(
    `lint found ${count} lock hazard${count === 1 ? '' : 's'} in the pending files (strict); nothing was run`,
    {
      file: result.findings[0]!.file,
      hint:
        'apply the safe pattern shown with each finding, or suppress one with -- tidemark:allow <rule> ' +
        '<reason> on its statement',
    },
  );
}

function lintOf(session: Session, scripts: Script[], dialect: Dialect): Promise<LintResult> {
  const { pgLockTimeout } = session.config;
  return lintScripts(scripts, dialect, { lockTimeoutConfigured: Boolean(pgLockTimeout) && pgLockTimeout !== '0' });
}

/** The full paths of files named on the command line; each must be a migration file of the folder. */
function namedFiles(session: Session, paths: string[], catalog: ReturnType<typeof discover>): Set<string> {
  const { cwd } = session.config;
  const { dir } = session;
  const known = new Set(catalog.files.filter((f) => f.kind === 'forward').map((f) => f.fullPath));
  for (const path of paths) {
    if (!known.has(resolve(cwd, path))) {
      throw new UsageError(`${path} is not a forward migration file in ${dir}/`, {
        file: path,
        hint:
          `name files of the migrations folder (e.g. ${dir}/001_create_users.sql), or point --dir at the ` +
          `folder that holds it`,
      });
    }
  }
  return new Set(paths.map((p) => resolve(cwd, p)));
}

/** The migrations not applied on the configured database (read-only; a missing SQLite file has none applied). */
async function pendingOf(session: Session, migrations: Migration[]): Promise<Migration[]> {
  const access = { create: false, lock: false };
  const ledger = await session.withDriver(session.target(), access, ({ driver }) => driver.readLedger());
  const applied = new Set(ledger.map((r) => r.version));
  return migrations.filter((m) => !applied.has(m.version));
}

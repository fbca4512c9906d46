// Runs one command over every database of a fleet, in parallel within this process, each through its own
// Migrator (its own connection and lock), and reports per database and for the whole fleet.
import { dirname, resolve } from 'node:path';
import { passwordOf, type Config, type FleetSetting } from '../config.js';
import { ExitCode, signalError, SIGNAL_EXIT_CODES, TidemarkError, UsageError, type StopSignal } from '../errors.js';
import type { MigratorEvent } from '../events.js';
import { MigrationLog } from '../log.js';
import { Migrator } from '../migrator.js';
import { Reporter } from '../report.js';
import { FleetProgress } from './progress.js';
import { saveLastReport, unfinishedNames, type DatabaseResult } from './results.js';
import { schedule } from './schedule.js';
import { inShard, parseShard } from './shard.js';
import { listFleet, type FleetMember } from './sources.js';
import { compareVersions, type Version } from '../version.js';

export type { FleetMember };

export interface FleetFlags {
  concurrency?: string;
  canary?: string;
  keepGoing?: boolean;
  onlyFailed?: boolean;
  shard?: string;
  json?: boolean;
  quiet?: boolean;
  dryRun?: boolean;
  /** The command changes databases: each one's events go to the migration log (config.log). */
  changes?: boolean;
}

/** What a command did on one database. A finding (verify) fails the database without an exception. */
export interface WorkOutcome {
  summary: string;
  version: Version | null;
  dirty?: Version | null;
  finding?: TidemarkError;
}

export type FleetWork = (migrator: Migrator, member: FleetMember) => Promise<WorkOutcome>;

const DEFAULT_CONCURRENCY = 4;

/**
 * Lists the fleet (then picks the shard and, with --only-failed, the last run's unfinished ones), runs
 * `work` on each as the schedule allows, prints the report and keeps it in logs/fleet-last.json.
 * @returns the exit code: 0, the first failed database's code, or a signal's.
 */
export async function runFleet(
  command: string,
  base: Config,
  setting: FleetSetting,
  flags: FleetFlags,
  work: FleetWork,
): Promise<number> {
  const concurrency = count(flags.concurrency, '--concurrency', DEFAULT_CONCURRENCY, 1);
  const canary = count(flags.canary, '--canary', 0, 0);
  const reportPath = resolve(base.cwd, dirname(base.log ?? 'logs/migration.log'), 'fleet-last.json');
  const members = await selectMembers(command, setting, base, flags, reportPath);
  if (flags.onlyFailed && members.length === 0) {
    process.stdout.write(`nothing to retry: the last ${command} over this fleet left no database failed or not run\n`);
    return ExitCode.ok;
  }

  const secrets = [...base.secrets, ...members.map((m) => passwordOf(m.url)).filter((s): s is string => Boolean(s))];
  const reporter = new Reporter({ json: Boolean(flags.json), quiet: Boolean(flags.quiet), secrets });
  const progress = new FleetProgress(reporter, {
    json: Boolean(flags.json),
    quiet: Boolean(flags.quiet),
    command,
    total: members.length,
    terminal: process.stderr,
  });
  const results = new Map<string, DatabaseResult>();
  const running = new Set<Migrator>();
  const signals = haltOnSignals(running);

  const logged = flags.changes && !flags.dryRun && base.log !== null;
  // The same files warn alike on every database (a missing rollback file): each message is shown once.
  const warnings = new Map<string, number>();
  const runOne = async (member: FleetMember): Promise<boolean> => {
    const log = logged ? memberLog(base, reporter) : null;
    // Schemas of one database share its description: the log names each by its fleet name.
    const listener = (event: MigratorEvent) => {
      if (event.type === 'warning') warnings.set(event.message, (warnings.get(event.message) ?? 0) + 1);
      log?.event('database' in event ? { ...event, database: member.name } : event);
    };
    const migrator = new Migrator(memberConfig(base, member), listener);
    running.add(migrator);
    progress.start();
    const result = await outcome(member.name, () => work(migrator, member), reporter);
    if (result.error !== null) log?.error(result.error);
    running.delete(migrator);
    results.set(member.name, result);
    progress.finish(result);
    return result.state === 'ok';
  };
  const notRun = await schedule(members, runOne, {
    concurrency: Math.max(1, Math.floor(concurrency / connectionsPerDatabase(command, base, members))),
    canary,
    keepGoing: Boolean(flags.keepGoing),
    halted: () => signals.signal !== null,
  });
  signals.remove();
  progress.close();
  for (const member of notRun) results.set(member.name, notRunResult(member.name));

  const ordered = members.map((m) => results.get(m.name)!);
  for (const [message, times] of warnings)
    reporter.event({ type: 'warning', message: `${message} (${times === 1 ? 'one database' : `${times} databases`})` });
  if (!flags.dryRun) saveLastReport(reportPath, command, ordered);
  printSummary(reporter, command, ordered, progress.elapsedMs(), Boolean(flags.json), retryCommand());
  if (signals.signal) return SIGNAL_EXIT_CODES[signals.signal];
  return ordered.find((r) => r.state === 'failed')?.exitCode ?? ExitCode.ok;
}

/** One log per database (each names its own database on its lines), all appending to the one file. */
function memberLog(base: Config, reporter: Reporter): MigrationLog {
  return new MigrationLog({
    path: base.log!,
    cwd: base.cwd,
    redact: (text) => reporter.redact(text),
    onWriteError: (message) => reporter.out(`warning: ${message}`),
  });
}

/** The fleet as listed, then this shard of it, then (--only-failed) what the last run left unfinished. */
async function selectMembers(
  command: string,
  setting: FleetSetting,
  base: Config,
  flags: FleetFlags,
  reportPath: string,
): Promise<FleetMember[]> {
  const shard = flags.shard === undefined ? null : parseShard(flags.shard);
  const retry = flags.onlyFailed ? unfinishedNames(reportPath, command) : null;
  let members = await listFleet(setting, base.cwd, process.env);
  if (shard) members = members.filter((m) => inShard(m.name, shard));
  if (retry) members = members.filter((m) => retry.has(m.name));
  return members;
}

/**
 * --concurrency bounds connections per server: a database whose run holds several connections counts
 * for several. `--lock table` renews its row on a second connection; verify also connects to create
 * and drop its scratch database and inside it. A SQLite fleet has no server to spare.
 */
function connectionsPerDatabase(command: string, base: Config, members: FleetMember[]): number {
  if (members.every((m) => m.url.startsWith('sqlite:'))) return 1;
  if (command === 'verify') return 3;
  return base.lock === 'table' && (command === 'migrate' || command === 'rollback') ? 2 : 1;
}

/** The same settings for every member; only the URL (and so the secrets) differ. */
function memberConfig(base: Config, member: FleetMember): Config {
  const password = passwordOf(member.url);
  return { ...base, url: member.url, secrets: password ? [...base.secrets, password] : base.secrets };
}

async function outcome(name: string, work: () => Promise<WorkOutcome>, reporter: Reporter): Promise<DatabaseResult> {
  const started = Date.now();
  try {
    const { finding, summary, version, dirty = null } = await work();
    const done = { name, summary, version, dirty, ms: Date.now() - started };
    if (!finding) return { ...done, state: 'ok', exitCode: ExitCode.ok, error: null };
    return { ...done, state: 'failed', exitCode: finding.exitCode, error: errorText(finding, reporter) };
  } catch (error) {
    const exitCode = error instanceof TidemarkError ? error.exitCode : ExitCode.migrationFailed;
    const failed = { name, summary: 'failed', version: null, dirty: null, ms: Date.now() - started };
    return { ...failed, state: 'failed', exitCode, error: errorText(error, reporter) };
  }
}

function errorText(error: unknown, reporter: Reporter): string {
  if (!(error instanceof TidemarkError))
    return reporter.redact(
      `unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  const lines = [
    error.message,
    ...(error.details.context ?? []),
    ...(error.details.hint ? [`hint: ${error.details.hint}`] : []),
  ];
  return reporter.redact(lines.join('\n'));
}

function notRunResult(name: string): DatabaseResult {
  return { name, state: 'not-run', exitCode: null, summary: 'not run', version: null, dirty: null, error: null, ms: 0 };
}

/**
 * The first SIGINT or SIGTERM stops starting databases and interrupts the running ones cleanly (each
 * rolls back its migration and frees its lock); a second exits at once.
 */
function haltOnSignals(running: Set<Migrator>): { signal: StopSignal | null; remove: () => void } {
  const state = { signal: null as StopSignal | null, remove: () => {} };
  const handlers = (Object.keys(SIGNAL_EXIT_CODES) as StopSignal[]).map((signal) => {
    const handler = () => {
      if (state.signal) process.exit(SIGNAL_EXIT_CODES[signal]);
      state.signal = signal;
      for (const migrator of running) migrator.interrupt(signal);
      process.stderr.write(`${signalError(signal).message}; letting the running databases stop cleanly\n`);
    };
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  state.remove = () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
  return state;
}

/** The retry names the same command line with --only-failed, which reads the report just written. */
function retryCommand(): string {
  const args = process.argv.slice(2).filter((a) => a !== '--only-failed');
  const quoted = args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`));
  return `tidemark ${[...quoted, '--only-failed'].join(' ')}`;
}

function printSummary(
  reporter: Reporter,
  command: string,
  results: DatabaseResult[],
  ms: number,
  json: boolean,
  retry: string,
): void {
  const failed = results.filter((r) => r.state === 'failed');
  const notRun = results.filter((r) => r.state === 'not-run');
  const ok = results.length - failed.length - notRun.length;
  if (json) {
    const summary = {
      type: 'fleet',
      command,
      databases: results.length,
      ok,
      failed: failed.length,
      notRun: notRun.length,
      ms,
    };
    reporter.out(JSON.stringify(summary));
    return;
  }
  if (failed.length > 0) {
    reporter.out('');
    reporter.out(`failed (${failed.length}):`);
    for (const result of failed) {
      reporter.out(`  ${result.name}  exit ${result.exitCode}`);
      for (const line of (result.error ?? '').split('\n')) reporter.out(`    ${line}`);
    }
  }
  const versions = versionCounts(results);
  if (versions) reporter.out(versions);
  const dirty = results.filter((r) => r.dirty !== null);
  if (dirty.length > 0)
    reporter.out(`dirty (${dirty.length}): ${dirty.map((r) => `${r.name} (version ${r.dirty})`).join(', ')}`);
  if (notRun.length > 0) reporter.out(`not run (${notRun.length}): ${someNames(notRun)}`);
  const counts = `${ok} ok, ${failed.length} failed, ${notRun.length} not run`;
  reporter.out(`${command} over ${results.length} databases: ${counts}, in ${(ms / 1000).toFixed(1)} s`);
  if (failed.length + notRun.length > 0) reporter.out(`retry only the failed and not run: ${retry}`);
}

/** A list that stays one line on a fleet of thousands. */
function someNames(results: DatabaseResult[], most = 10): string {
  const names = results
    .slice(0, most)
    .map((r) => r.name)
    .join(', ');
  return results.length > most ? `${names} and ${results.length - most} more` : names;
}

/** `at version 5: 18 · at version 4: 2`, highest first; null when no version is known. */
function versionCounts(results: DatabaseResult[]): string | null {
  const counts = new Map<Version, number>();
  for (const { version } of results) if (version !== null) counts.set(version, (counts.get(version) ?? 0) + 1);
  if (counts.size === 0) return null;
  return [...counts]
    .sort(([a], [b]) => compareVersions(b, a))
    .map(([version, n]) => `at version ${version}: ${n}`)
    .join(' · ');
}

function count(value: string | undefined, flag: string, fallback: number, least: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(String(value)) || Number(value) < least) {
    throw new UsageError(`${flag} takes a whole number${least > 0 ? ` of at least ${least}` : ''}, not "${value}"`, {
      hint: `e.g. ${flag} 4`,
    });
  }
  return Number(value);
}

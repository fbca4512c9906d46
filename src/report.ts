// Human and JSON output of migrator events, status tables and errors. Every line passes through redact().
import kleur from 'kleur';
import { TidemarkError } from './errors.js';
import { printable, printableJson } from './printable.js';
import type { ForceChanges, MigratorEvent } from './events.js';
import type { HistoryReport, StatusReport } from './migrator.js';
import type { StatusEntry, VersionState } from './plan.js';
import type { Version } from './version.js';

export interface ReporterOptions {
  json: boolean;
  quiet: boolean;
  secrets: string[];
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

/** Each state's colour and its words in the status table (`--json` keeps the state's name). */
const STATES: Record<VersionState, { colour: (text: string) => string; label: string }> = {
  applied: { colour: kleur.green, label: 'applied' },
  pending: { colour: kleur.yellow, label: 'pending' },
  'out-of-order': { colour: kleur.red, label: 'pending, out of order' },
  'not-in-release': { colour: kleur.yellow, label: 'applied, not in this release' },
  changed: { colour: kleur.red, label: 'changed' },
  'rollback-changed': { colour: kleur.red, label: 'rollback file changed' },
  dirty: { colour: kleur.red, label: 'dirty' },
};

/** A migration must run this long before the live elapsed-time line appears. */
const LIVE_AFTER_MS = 1000;

export class Reporter {
  private readonly stdout: NodeJS.WritableStream;
  private readonly stderr: NodeJS.WritableStream;
  /** The elapsed-time line redrawn in place while a migration runs, on a terminal only. */
  private live: { timer: NodeJS.Timeout; drawn: boolean } | null = null;

  constructor(private readonly options: ReporterOptions) {
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
  }

  /** Cursor tricks only where a person watches: a terminal, not pm2 logs, a pipe or --json. */
  private get interactive(): boolean {
    return Boolean((this.stdout as NodeJS.WriteStream).isTTY) && !this.options.json && !this.options.quiet;
  }

  private startLive(event: Extract<MigratorEvent, { type: 'running' }>): void {
    const started = Date.now();
    const label = `${event.action === 'up' ? '↑' : '↓'} ${event.versionText} ${event.name}`;
    const live = {
      drawn: false,
      timer: setInterval(() => {
        const ms = Date.now() - started;
        if (ms < LIVE_AFTER_MS) return;
        this.stdout.write(`\r\x1b[K${label}  ${kleur.dim(`${(ms / 1000).toFixed(1)} s…`)}`);
        live.drawn = true;
      }, 100),
    };
    live.timer.unref();
    this.live = live;
  }

  private stopLive(): void {
    if (!this.live) return;
    clearInterval(this.live.timer);
    if (this.live.drawn) this.stdout.write('\r\x1b[K');
    this.live = null;
  }

  /**
   * Never prints a password, whatever the text came from (a server message, a URL, a stack). A very
   * short password is only masked where it stands in a URL, so that it does not garble every word.
   */
  redact(text: string): string {
    return this.options.secrets.reduce(
      (out, secret) => (secret.length >= 4 ? out.split(secret).join('***') : out.split(`:${secret}@`).join(':***@')),
      text,
    );
  }

  out(text: string): void {
    this.stdout.write(`${this.redact(text)}\n`);
  }

  private err(text: string): void {
    this.stderr.write(`${this.redact(text)}\n`);
  }

  private json(value: unknown): void {
    this.out(printableJson(value));
  }

  event = (event: MigratorEvent): void => {
    this.stopLive();
    if (event.type === 'running') {
      if (this.interactive) this.startLive(event);
      return;
    }
    if (this.options.json) {
      if (event.type !== 'notice') this.json('ms' in event ? { ...event, ms: Math.round(event.ms) } : event);
      return;
    }
    const line = this.describe(event);
    if (line === null) return;
    if (event.type === 'warning') this.err(line);
    else if (event.type === 'notice') this.err(line);
    else if (!this.options.quiet || event.type === 'summary') this.out(line);
  };

  private describe(event: Exclude<MigratorEvent, { type: 'running' }>): string | null {
    const would = 'dryRun' in event && event.dryRun ? 'would ' : '';
    switch (event.type) {
      case 'start':
        if (event.count === 0) return null;
        return `${would}${event.command} ${event.database}: ${event.count} migration${event.count === 1 ? '' : 's'}`;
      case 'applied':
      case 'reverted': {
        const arrow = event.type === 'applied' ? kleur.green('↑') : kleur.yellow('↓');
        const ms = event.dryRun ? '' : kleur.dim(`  ${event.ms} ms`);
        return `${arrow} ${event.versionText} ${event.name}${ms}`;
      }
      case 'failed':
        return `${kleur.red('✗')} ${event.versionText} ${event.name}`;
      case 'summary': {
        if (event.count === 0) {
          return event.command === 'migrate'
            ? `${event.database} is up to date at version ${event.version}`
            : `nothing to roll back in ${event.database} (at version ${event.version})`;
        }
        const verb = event.command === 'migrate' ? 'applied' : 'rolled back';
        if (event.dryRun)
          return `dry run: ${event.count} would be ${verb}, ending at version ${event.version}; nothing was changed`;
        return `${event.count} ${verb} in ${formatDuration(event.ms)}, now at version ${event.version}`;
      }
      case 'forced': {
        const changes = forceChangeWords(event, false);
        const head = event.dryRun
          ? `dry run: the ledger of ${event.database} would say version ${event.version}`
          : `the ledger of ${event.database} now says version ${event.version}`;
        return `${head} (${changes.length ? changes.join('; ') : 'no change'}); no migration SQL was run`;
      }
      case 'resolved': {
        const v = event.version;
        const deleted = event.change === 'delete';
        if (event.dryRun) {
          const would = deleted ? `would delete the row of version ${v}` : `would record version ${v} as applied`;
          return `dry run: ${would} in ${event.database}; nothing was changed`;
        }
        const kept = `version ${v} is now recorded as applied (no longer dirty)`;
        const change = deleted ? `deleted the row of version ${v} (not applied)` : kept;
        return `${event.database}: ${change}; no other row was touched and no migration SQL was run`;
      }
      case 'baselined': {
        const versions = versionsText(event.recorded);
        return event.dryRun
          ? `dry run: the ledger of ${event.database} would record ${versions} as applied (baseline ` +
              `${event.version}); nothing was changed`
          : `the ledger of ${event.database} now records ${versions} as applied (baseline ${event.version}); no ` +
              `migration SQL was run`;
      }
      case 'backup': {
        const removed = event.removed.length ? `; removed ${event.removed.length} older (--keep)` : '';
        return (
          `backup of ${event.database} at version ${event.version}: ${event.file} (${formatBytes(event.bytes)}, ` +
          `${formatDuration(event.ms)})${removed}`
        );
      }
      case 'restored':
        return (
          `restored ${event.database} from ${event.file} in ${formatDuration(event.ms)}: now at version ` +
          `${event.version}`
        );
      case 'warning':
        return `${kleur.yellow('warning:')} ${printable(event.message)}`;
      case 'notice':
        return this.options.quiet ? null : `${kleur.dim('notice:')} ${printable(event.message)}`;
    }
  }

  /** Starts the output of one named database, so a multi-database run reads in groups. */
  section(name: string): void {
    if (this.options.json) this.json({ type: 'database', name });
    else this.out(kleur.bold(`== ${name} ==`));
  }

  /** After a failure in a multi-database run: which databases were done and which were not run. */
  stoppedAt(names: string[], done: string[]): void {
    const failed = names[done.length];
    const notRun = names.slice(done.length + 1);
    this.err(`stopped at ${failed}; done: ${done.join(', ') || 'none'}; not run: ${notRun.join(', ') || 'none'}`);
  }

  status(report: StatusReport): void {
    if (this.options.json) return this.json(report);
    this.out(`${report.database}: version ${report.version}`);
    if (report.entries.length === 0) return this.out('no migrations');
    if (report.resolution) this.err(`${kleur.cyan('hint:')} ${printable(report.resolution)}`);
    const rows = report.entries.map((e) => [
      e.versionText,
      e.name,
      STATES[e.state].label,
      e.appliedAt ?? '',
      e.executionMs === null ? '' : `${e.executionMs} ms`,
      rollbackNote(e),
    ]);
    this.table(
      ['version', 'name', 'state', 'applied at', 'took', ''],
      rows,
      2,
      report.entries.map((e) => STATES[e.state].colour),
    );
  }

  history(report: HistoryReport): void {
    if (this.options.json) return this.json(report);
    this.out(`${report.database}: history`);
    if (report.entries.length === 0) return this.out('no history yet');
    const rows = report.entries.map((e) => [
      e.at,
      e.action,
      e.versionText,
      e.name,
      e.outcome,
      e.executionMs === null ? '' : `${e.executionMs} ms`,
      e.appliedBy ?? '',
      e.error?.split('\n')[0] ?? '',
    ]);
    this.table(
      ['at', 'action', 'version', 'name', 'outcome', 'took', 'by', 'error'],
      rows,
      4,
      report.entries.map((e) => (e.outcome === 'ok' ? kleur.green : kleur.red)),
    );
  }

  /** An aligned table; the cells of column `coloured` take their row's colour. */
  private table(header: string[], rows: string[][], coloured: number, colours: ((text: string) => string)[]): void {
    rows = rows.map((row) => row.map(printable));
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const format = (cells: string[], colour?: (t: string) => string) =>
      cells
        .map((cell, i) => (i === coloured && colour ? colour(cell.padEnd(widths[i]!)) : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd();
    this.out(kleur.bold(format(header)));
    for (const [i, row] of rows.entries()) this.out(format(row, colours[i]));
  }

  error(error: unknown): void {
    this.stopLive();
    if (!(error instanceof TidemarkError)) {
      // A bug, not a user error: say so, with the stack, but still never a password.
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      this.err(`${kleur.red('error:')} unexpected failure: ${printable(text)}`);
      return;
    }
    if (this.options.json) {
      this.json({ type: 'error', exitCode: error.exitCode, message: error.message, ...error.details });
    }
    // Server messages quote table data, and source lines come from files: neither may drive the terminal.
    this.err(`${kleur.red('error:')} ${printable(error.message)}`);
    for (const line of error.details.context ?? []) this.err(`  ${printable(line)}`);
    if (error.details.hint) this.err(`${kleur.cyan('hint:')} ${printable(error.details.hint)}`);
  }
}

/** What force changes, in words: `deleted the rows of versions 3, 4` (before it runs: `deletes the ledger rows …`). */
export function forceChangeWords(changes: ForceChanges, future: boolean): string[] {
  const rows = (list: Version[]) => `${list.length === 1 ? 'row' : 'rows'} of ${versionsText(list)}`;
  return [
    changes.removed.length ? `${future ? 'deletes the ledger' : 'deleted the'} ${rows(changes.removed)}` : '',
    changes.added.length ? `${future ? 'records' : 'recorded'} ${versionList(changes.added)}` : '',
    changes.cleaned.length ? `${future ? 'marks' : 'marked'} ${versionList(changes.cleaned)} clean` : '',
  ].filter(Boolean);
}

/** How many versions a line names in full; of more, it shows the count and both ends (--json and the log keep all). */
const VERSIONS_IN_FULL = 10;

/** "1, 2, 3", or for many "40 versions (1, 2, 3, … 137, 138, 139)": a force over 10,000 stays one line. */
function versionList(list: Version[]): string {
  if (list.length <= VERSIONS_IN_FULL) return list.join(', ');
  return `${list.length} versions (${list.slice(0, 3).join(', ')}, … ${list.slice(-3).join(', ')})`;
}

/** "version 3", "versions 1, 2", or {@link versionList}'s count for many. */
function versionsText(list: Version[]): string {
  if (list.length > VERSIONS_IN_FULL) return versionList(list);
  return `${list.length === 1 ? 'version' : 'versions'} ${list.join(', ')}`;
}

/** The status table's last column: how the version would be undone, when that is not its rollback file. */
function rollbackNote(entry: StatusEntry): string {
  if (entry.rollback === 'stored') return 'rollback stored in the ledger';
  return entry.rollback === null ? 'no rollback file' : '';
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

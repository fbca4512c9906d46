// The migration log: one appended line per event, for the operator reading pm2 hosts after the fact.
import { appendFileSync, existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { TidemarkError } from './errors.js';
import { makeFolders } from './folders.js';
import { printable } from './printable.js';
import type { MigratorEvent } from './events.js';

export interface MigrationLogOptions {
  /** The log file; relative paths are relative to cwd. */
  path: string;
  cwd: string;
  /** Removes passwords from every line (the reporter's redact). */
  redact: (text: string) => string;
  /** Told once when the file cannot be written; the migration itself goes on. */
  onWriteError: (message: string) => void;
}

/**
 * Appends `ISO-time database action version name duration outcome error` lines. Dry runs change
 * nothing and are not logged. The file and its folder are created on first use, never truncated.
 */
export class MigrationLog {
  private readonly file: string;
  private database = '-';
  private opened = false;
  private broken = false;

  constructor(private readonly options: MigrationLogOptions) {
    this.file = resolve(options.cwd, options.path);
  }

  event = (event: MigratorEvent): void => {
    if ('dryRun' in event && event.dryRun) return;
    switch (event.type) {
      case 'start':
        this.database = event.database;
        return this.write(event.command, '-', '-', '-', 'start', `${event.count} pending`);
      case 'applied':
      case 'reverted':
        return this.write(
          event.type === 'applied' ? 'up' : 'down',
          event.versionText,
          event.name,
          `${Math.round(event.ms)}ms`,
          'ok',
        );
      case 'failed':
        return this.write(event.action, event.versionText, event.name, '-', 'failed', event.error);
      case 'summary':
        return this.write(
          event.command,
          String(event.version),
          '-',
          `${Math.round(event.ms)}ms`,
          'done',
          `${event.count} ${event.command === 'migrate' ? 'applied' : 'rolled back'}`,
        );
      case 'forced':
        this.database = event.database;
        return this.write(
          'force',
          String(event.version),
          '-',
          '-',
          'ok',
          `removed [${event.removed}] recorded [${event.added}] cleaned [${event.cleaned}]`,
        );
      case 'resolved': {
        this.database = event.database;
        const what = event.change === 'delete' ? 'row deleted' : 'row kept, no longer dirty';
        return this.write('resolve', String(event.version), '-', '-', 'ok', what);
      }
      case 'backup':
        this.database = event.database;
        return this.write(
          'backup',
          String(event.version),
          '-',
          `${Math.round(event.ms)}ms`,
          'ok',
          `${event.file} ${event.bytes} bytes`,
        );
      case 'restored':
        this.database = event.database;
        return this.write('restore', String(event.version), '-', `${Math.round(event.ms)}ms`, 'ok', event.file);
      case 'warning':
        return this.write('-', '-', '-', '-', 'warning', event.message);
    }
  };

  /**
   * The error a command ended with, so a failed deploy's reason is in the log too. A command that failed
   * before it reached the database (bad files, no connection) starts no new log: it is appended only
   * to a log this run or an earlier one wrote.
   */
  error(error: unknown): void {
    if (!this.opened && !existsSync(this.file)) return;
    const message = error instanceof Error ? error.message : String(error);
    const hint = error instanceof TidemarkError && error.details.hint ? ` (hint: ${error.details.hint})` : '';
    this.write('-', '-', '-', '-', 'error', message + hint);
  }

  private write(action: string, version: string, name: string, duration: string, outcome: string, text = ''): void {
    if (this.broken) return;
    // One event, one line: a multi-line server error is folded so the log stays greppable.
    const folded = printable(text.replace(/\s*\n\s*/g, ' | '));
    const fields = [new Date().toISOString(), this.database, action, version, name, duration, outcome, folded];
    const line = fields.join(' ').trimEnd();
    try {
      if (!this.opened) makeFolders(dirname(this.file));
      this.opened = true;
      appendFileSync(this.file, `${this.options.redact(line)}\n`);
    } catch (error) {
      this.broken = true;
      this.options.onWriteError(
        `cannot write the migration log ${this.options.path}: ${(error as Error).message}; use --log <path> or ` +
          `--no-log`,
      );
    }
  }
}

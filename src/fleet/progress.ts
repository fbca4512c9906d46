// What a fleet run shows: a live line on a terminal (done / failed / running / left, rate, ETA), plain
// lines elsewhere (pm2 logs, CI), one JSON line per database with --json, and at the end the failures.
import kleur from 'kleur';
import { printable, printableJson } from '../printable.js';
import type { Reporter } from '../report.js';
import type { DatabaseResult } from './results.js';

export interface ProgressOptions {
  json: boolean;
  quiet: boolean;
  command: string;
  total: number;
  /** Where the live line is drawn: only a terminal gets one. */
  terminal: NodeJS.WriteStream;
}

export class FleetProgress {
  private readonly started = Date.now();
  private running = 0;
  private done = 0;
  private failed = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly reporter: Reporter,
    private readonly options: ProgressOptions,
  ) {
    if (this.live) {
      this.timer = setInterval(() => this.draw(), 200);
      this.timer.unref();
    }
  }

  private get live(): boolean {
    return Boolean(this.options.terminal.isTTY) && !this.options.json && !this.options.quiet;
  }

  start(): void {
    this.running++;
  }

  finish(result: DatabaseResult): void {
    this.running--;
    this.done++;
    if (result.state === 'failed') this.failed++;
    if (this.options.json)
      return this.reporter.out(printableJson({ type: 'database', command: this.options.command, ...result }));
    if (result.state === 'ok' && (this.options.quiet || this.live)) return;
    this.clear();
    this.reporter.out(resultLine(result));
  }

  /** `412 done (1 failed), 4 running, 583 left · 38/s · ETA 15 s` */
  private draw(): void {
    const seconds = (Date.now() - this.started) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    const left = this.options.total - this.done - this.running;
    const eta = rate > 0 ? `ETA ${Math.ceil((left + this.running) / rate)} s` : 'ETA …';
    const failed = this.failed ? kleur.red(` (${this.failed} failed)`) : '';
    const counts = `${this.done} done${failed}, ${this.running} running, ${left} left`;
    this.options.terminal.write(`\r\x1b[K${this.options.command}: ${counts} · ${rate.toFixed(1)}/s · ${eta}`);
  }

  private clear(): void {
    if (this.live) this.options.terminal.write('\r\x1b[K');
  }

  /** Stops the live line; the caller prints the summary. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.clear();
  }

  elapsedMs(): number {
    return Date.now() - this.started;
  }
}

export function resultLine(result: DatabaseResult): string {
  if (result.state === 'ok') return `${kleur.green('ok')}      ${result.name}  ${result.summary}  ${result.ms} ms`;
  if (result.state === 'not-run') return `${kleur.yellow('not run')} ${result.name}`;
  return `${kleur.red('FAILED')}  ${result.name}  ${printable(result.error?.split('\n')[0] ?? '')}`;
}

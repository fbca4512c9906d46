// What every command runs on: the configuration, the events, the connection with its run lock, and
// the stop signal (SIGINT, SIGTERM) that ends a run cleanly. No dialect knowledge here.
import { parseTarget, type Config, type Target } from '../config.js';
import { connect } from '../drivers/connect.js';
import type { Driver } from '../drivers/driver.js';
import { ConnectionError, signalError, TidemarkError, type InterruptedError, type StopSignal } from '../errors.js';
import type { EventListener } from '../events.js';
import { discover, type Migration } from '../files.js';
import { versionLabel, type LedgerRow } from '../plan.js';

/** One connection of a command, as its work sees it. */
export interface Run {
  driver: Driver;
  /** The lock covers the whole run: no other runner can change the ledger meanwhile. */
  exclusive: boolean;
  /** This run holds a run lock (not --lock none): a dirty row it finds was left by a run that ended. */
  locked: boolean;
}

/** What a command needs of its connection: whether a missing database is created, whether the run lock is taken. */
export interface Access {
  create: boolean;
  lock: boolean;
}

/** One Migrator's configuration and events, the database it is working on now, and why it must stop. */
export class Session {
  private active: Driver | null = null;
  private stopReason: InterruptedError | null = null;
  private readonly stopping = new AbortController();

  constructor(
    readonly config: Config,
    readonly emit: EventListener,
  ) {}

  get dir(): string {
    return this.config.dir;
  }

  /** The signal's error once one arrived: whatever fails after it failed because of it. */
  get interruption(): InterruptedError | null {
    return this.stopReason;
  }

  /** Cancels the running statement; false when no database work is under way. */
  interrupt(signal: StopSignal): boolean {
    this.stopReason ??= signalError(signal);
    this.stopping.abort(this.stopReason);
    this.active?.cancel();
    return this.active !== null;
  }

  /** The configured database. */
  target(): Target {
    return parseTarget(this.config.url, this.config.cwd);
  }

  /** Files are read and checked before any connection is made: bad files never touch the database. */
  migrations(): { migrations: Migration[]; target: Target } {
    const target = this.target();
    return { migrations: discover(this.dir, this.config.cwd).migrationsFor(target.dialect), target };
  }

  /**
   * Connects, and for commands that write takes the run lock first. `exclusive` says whether that lock
   * covers the whole run (PostgreSQL); if not (SQLite), each step re-checks the ledger inside its own
   * write transaction.
   */
  async withDriver<T>(target: Target, access: Access, work: (run: Run) => Promise<T>): Promise<T> {
    const driver = await connect(target, this.config, {
      create: access.create,
      onNotice: (message) => this.emit({ type: 'notice', message }),
    });
    this.active = driver;
    try {
      const { lock: mode, lockTimeoutSeconds: timeoutSeconds, lockTtlSeconds: ttlSeconds } = this.config;
      const signal = this.stopping.signal;
      const exclusive = access.lock ? await driver.lock({ mode, timeoutSeconds, ttlSeconds, signal }) : false;
      return await work({ driver, exclusive, locked: access.lock && mode !== 'none' });
    } catch (error) {
      // After a signal, whatever failed (the cancelled statement) failed because of it.
      throw error instanceof TidemarkError ? error : (this.stopReason ?? driver.explain(error));
    } finally {
      this.active = null;
      await driver.close();
    }
  }
}

/**
 * A dirty row while another run holds the lock is a no-transaction migration still running, not a
 * crash: say so (exit 4, wait) rather than "did not finish". A run that holds the lock itself knows
 * the row's writer has ended.
 */
export async function assertNoRunInProgress(run: Run, ledger: LedgerRow[]): Promise<void> {
  const dirty = ledger.find((r) => r.dirty);
  if (!dirty || run.locked) return;
  const holder = await run.driver.otherRun();
  if (!holder) return;
  const message =
    `version ${versionLabel(dirty.version, null, dirty)} (${dirty.name}) is being applied by a run in progress ` +
    `(${holder}); it has not crashed`;
  throw new ConnectionError(message, {
    hint: 'wait for that run to finish, then run again',
  });
}

/** Runs work in one transaction: all of it commits, or none of it. */
export async function inTransaction(driver: Driver, work: () => Promise<void>): Promise<void> {
  await driver.begin();
  try {
    await work();
    await driver.commit();
  } catch (error) {
    await driver.rollback().catch(() => {});
    throw error;
  }
}

// The run lock on SQLite: a lock file beside the database (`<file>.tidemark-lock`), so that a whole
// run (migrate, rollback, force, baseline) excludes every other, not only each of its steps. The file
// is only read and written while its writer holds SQLite's own write lock (BEGIN IMMEDIATE), so
// taking over a dead holder's file is atomic. A file rather than a row in a table: a run refused for
// bad files leaves the database exactly as it was, and the file goes when its run ends.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { ConnectionError, lockTakenOverError, type InterruptedError } from '../errors.js';
import type { LockOptions } from './driver.js';
import { pollUntil } from './poll.js';

/** BEGIN IMMEDIATE, COMMIT and ROLLBACK as the driver runs them (busy timeout included). */
export interface WriteLock {
  begin(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

interface Holder {
  token: string;
  host: string;
  pid: number;
  since: string;
  /** Milliseconds since the epoch. */
  expires: number;
}

export function lockFileOf(databaseFile: string): string {
  return `${databaseFile}.tidemark-lock`;
}

function readHolder(path: string): Holder | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Holder;
  } catch (error) {
    // No file: nobody holds it. A torn or foreign file counts as no holder too: it is replaced.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || error instanceof SyntaxError) return null;
    throw error;
  }
}

/** Written to a file of its own first, then renamed: a reader sees the old holder or the new one, never half. */
function writeHolder(path: string, holder: Holder): void {
  const temporary = `${path}.${holder.token}`;
  writeFileSync(temporary, JSON.stringify(holder));
  renameSync(temporary, path);
}

/**
 * The holder is presumed dead when its file has expired (it stopped renewing: any host), or at once
 * when it ran on this host and its process is gone (kill -9, a crash).
 */
function presumedDead(holder: Holder): boolean {
  if (holder.expires < Date.now()) return true;
  if (holder.host !== hostname()) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    // EPERM: the process exists and belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function describe(holder: Holder): string {
  return `pid ${holder.pid} on host ${holder.host} since ${holder.since}`;
}

/** Who holds the run lock of this database and is alive, or null: for a dirty row, in progress or crashed. */
export function sqliteLockHolder(databaseFile: string): string | null {
  const holder = readHolder(lockFileOf(databaseFile));
  return holder && !presumedDead(holder) ? describe(holder) : null;
}

const TAKEN = Symbol('taken');

export class SqliteRunLock {
  private readonly token = randomBytes(8).toString('hex');
  private readonly path: string;
  private timer: NodeJS.Timeout | undefined;
  private released = false;
  private lost: InterruptedError | null = null;

  private constructor(
    private readonly db: WriteLock,
    databaseFile: string,
    private readonly description: string,
    private readonly ttlSeconds: number,
  ) {
    this.path = lockFileOf(databaseFile);
  }

  /** Waits up to timeoutSeconds for the lock; a holder that is alive and renewing is waited for. */
  static async take(db: WriteLock, file: string, description: string, options: LockOptions): Promise<SqliteRunLock> {
    const lock = new SqliteRunLock(db, file, description, options.ttlSeconds);
    let holder: Holder | null = null;
    const attempt = async () => {
      const outcome = await lock.tryTake();
      if (outcome === TAKEN) return true;
      holder = outcome;
      return false;
    };
    if (!(await pollUntil(options.timeoutSeconds, attempt, options.signal))) {
      // Busy all along: the holder's migration kept the write lock; its file still says who it is.
      holder ??= readHolder(lock.path);
      const busy = 'another connection held the write lock';
      const who = holder ? `its lock is held by ${describe(holder)}, a run in progress` : busy;
      const message = `could not get the migration lock on ${description} within ${options.timeoutSeconds} s: ${who}`;
      throw new ConnectionError(message, {
        hint:
          'wait for that run to finish and try again, or raise --lock-timeout. ' +
          'A dead holder on this host is taken over at once, ' +
          `one on another host once its lock expires (--lock-ttl, ${options.ttlSeconds} s)`,
      });
    }
    lock.scheduleRenewal();
    return lock;
  }

  /** One attempt under BEGIN IMMEDIATE: TAKEN when the lock is now ours, else the live holder (null: busy). */
  private async tryTake(): Promise<Holder | typeof TAKEN | null> {
    try {
      await this.db.begin();
    } catch (error) {
      // Another connection kept the write lock for the whole busy timeout: try again at the next poll.
      if (error instanceof ConnectionError) return null;
      throw error;
    }
    try {
      const holder = readHolder(this.path);
      if (holder && !presumedDead(holder)) return holder;
      writeHolder(this.path, this.holder(new Date().toISOString()));
      return TAKEN;
    } catch (error) {
      throw lockFileError(this.description, this.path, error);
    } finally {
      await this.db.rollback();
    }
  }

  private holder(since: string): Holder {
    const expires = Date.now() + this.ttlSeconds * 1000;
    return { token: this.token, host: hostname(), pid: process.pid, since, expires };
  }

  /** Renews the lock every ttl/3, for holders on other hosts; one on this host is known alive by its pid. */
  private scheduleRenewal(): void {
    if (this.released) return;
    this.timer = setTimeout(
      () => {
        // A renewal that fails (the disk is full) is tried again; the check before COMMIT decides.
        if (this.renew() !== false) this.scheduleRenewal();
      },
      (this.ttlSeconds * 1000) / 3,
    );
    this.timer.unref();
  }

  /** false, and the lock marked lost, when the lock is no longer ours; undefined when it could not be written. */
  private renew(): boolean | undefined {
    try {
      const holder = readHolder(this.path);
      if (holder?.token !== this.token) {
        this.lost = lockTakenOverError(this.description);
        return false;
      }
      writeHolder(this.path, this.holder(holder.since));
      return true;
    } catch {
      return undefined;
    }
  }

  assertHeld(): void {
    if (this.lost) throw this.lost;
  }

  /**
   * Inside a step's transaction (no other runner can take the lock meanwhile), before COMMIT: still
   * ours? Only read: the timer renews it, and a write per step (a file and a rename) cost more than a
   * small migration.
   */
  checkBeforeCommit(): void {
    let holder: Holder | null;
    try {
      holder = readHolder(this.path);
    } catch {
      return;
    }
    if (holder?.token !== this.token) this.lost = lockTakenOverError(this.description);
    if (this.lost) throw this.lost;
  }

  /** Removes the lock file if it is still ours. One left behind (a full disk) is taken over later. */
  release(): void {
    this.released = true;
    clearTimeout(this.timer);
    try {
      if (readHolder(this.path)?.token === this.token) rmSync(this.path, { force: true });
    } catch {
      // The run itself is done: a lock file left behind is taken over once its holder is gone.
    }
  }
}

/** The folder of the database cannot take the lock file: read-only, full, or not ours. Exit 4. */
function lockFileError(description: string, path: string, error: unknown): ConnectionError {
  const e = error as NodeJS.ErrnoException;
  const full = e.code === 'ENOSPC';
  const reason = full ? 'the disk is full' : e.message.replace(/,.*$/, '');
  return new ConnectionError(`could not write ${description}: cannot create its lock file ${path}: ${reason}`, {
    hint: full
      ? 'free space on the file system that holds the database, then run again'
      : 'tidemark needs to create files beside the database (the lock file, the journal): ' +
        "check the folder's permissions " +
        'and that its file system is not mounted read-only',
  });
}

// The run lock on PostgreSQL (--lock): a session advisory lock, a row in a lock table for
// transaction-mode poolers, or none. A waiter polls with short statements and is idle in between:
// never blocked inside a transaction, whose snapshot the holder's CREATE INDEX CONCURRENTLY would wait for.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';
import type { TableName } from '../config.js';
import { ConnectionError } from '../errors.js';
import type { LockOptions } from './driver.js';
import { pollUntil } from './poll.js';
import { tidemarkTables } from './postgres-tables.js';

/** The lock a run holds until it closes. */
export interface RunLock {
  /** Throws a ConnectionError (exit 4) once the lock is known to be lost. */
  assertHeld(): void;
  /**
   * SQL each migration runs inside its transaction just before COMMIT: it fails with LOCK_LOST_CODE
   * when the lock is no longer this run's, so a runner paused past its TTL cannot commit. '' when the
   * lock cannot be taken over (an advisory lock ends only with its session).
   */
  readonly checkBeforeCommit: string;
  release(): Promise<void>;
}

/** The SQLSTATE of checkBeforeCommit's failure. */
export const LOCK_LOST_CODE = 'TM001';

export interface LockContext {
  /** The run's reserved connection: the advisory lock lives and dies with it. */
  session: postgres.ReservedSql;
  /** For the lock table's own connection, which renews the row while the session runs migrations. */
  url: string;
  table: TableName;
  description: string;
  onNotice: (message: string) => void;
}

/** No lock to lose or let go: --lock none, or an advisory lock, which ends with its session. */
const NOTHING_TO_RELEASE: RunLock = { assertHeld() {}, checkBeforeCommit: '', async release() {} };

/**
 * The two modes exclude each other, so runners configured differently still never overlap: each
 * takes its own lock first and then checks that the other mode's lock is free, letting its own go
 * when it is not. `none` takes nothing and is excluded by nothing.
 */
export async function takeRunLock(options: LockOptions, context: LockContext): Promise<RunLock> {
  if (options.mode === 'none') return NOTHING_TO_RELEASE;
  if (options.mode === 'advisory') {
    await takeAdvisoryLock(context, options);
    return NOTHING_TO_RELEASE;
  }
  return TableLock.take(context, options);
}

// ---- --lock advisory ---------------------------------------------------------------------------

/** First key of tidemark's advisory locks ('tm'), so they never collide with an application's one-key locks. */
const LOCK_NAMESPACE = 0x746d;

/**
 * A session-level advisory lock on the reserved connection, keyed by the ledger's schema-qualified
 * name so two applications in one database do not wait for each other.
 */
async function takeAdvisoryLock(context: LockContext, { timeoutSeconds, signal }: LockOptions): Promise<void> {
  const { session, table, description } = context;
  const keys = advisoryKeys(table).join(', ');
  const lockTable = tidemarkTables(table).lock;
  let tableHolder: LockRow | undefined;
  const tryLock = async () => {
    if (!(await session.unsafe(`select pg_try_advisory_lock(${keys}) as locked`))[0]!.locked) return false;
    // A --lock table runner may hold the lock row: then this run waits for it like for an advisory holder.
    tableHolder = await readLockRow(session, lockTable, true);
    if (!tableHolder) return true;
    await session.unsafe(`select pg_advisory_unlock(${keys})`);
    return false;
  };
  if (await pollUntil(timeoutSeconds, tryLock, signal)) return;
  if (tableHolder) throw busyError(description, lockTable, timeoutSeconds, tableHolder);
  const holder = await advisoryHolder(session, table);
  throw new ConnectionError(
    `could not get the migration lock on ${description} within ${timeoutSeconds} s: ${holder.text}`,
    {
      hint:
        `wait for that run to finish and try again, or raise --lock-timeout; if it is stuck, end it with select ` +
        `pg_terminate_backend(${holder.pid ?? '<pid>'})`,
    },
  );
}

/** LOCK_NAMESPACE and hashtext('schema.table'): the two keys of this ledger's advisory lock, as SQL. */
function advisoryKeys({ schema, name }: TableName): [string, string] {
  return [
    String(LOCK_NAMESPACE),
    `hashtext(coalesce(${schema ? `'${schema}'` : 'null'}, current_schema()) || '.${name}')`,
  ];
}

/** Who holds the advisory lock, from pg_stat_activity, for the timeout message. */
async function advisoryHolder(session: postgres.Sql, table: TableName): Promise<{ text: string; pid?: number }> {
  const [key1, key2] = advisoryKeys(table);
  const [holder] = await session.unsafe(`
    select a.pid, a.usename as user, a.application_name as application,
           coalesce(host(a.client_addr), 'local socket') as client,
           to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS TZ') as since,
           round(extract(epoch from now() - a.backend_start)) as seconds
    from pg_locks l join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory' and l.granted
      and l.database = (select oid from pg_database where datname = current_database())
      and l.classid = ${key1} and l.objid = (${key2})::oid and l.objsubid = 2`);
  if (!holder) return { text: 'another run held it and has just let go' };
  const who = `user ${holder.user}, application ${holder.application || '(none)'}, from ${holder.client}`;
  return { text: `held by pid ${holder.pid} (${who}) since ${holder.since}, ${holder.seconds} s ago`, pid: holder.pid };
}

// ---- --lock table ------------------------------------------------------------------------------

/** The lock row's holder as the messages show it; times are the database's. */
interface LockRow {
  holder: string;
  host: string;
  pid: number;
  user: string;
  since: string;
  expires: string;
  /** Seconds until expires, by the database's clock (negative once expired). */
  expiresIn: number;
}

/**
 * 23505 unique_violation, 42P07 duplicate_table and 42710 duplicate_object (its row type): another runner
 * created the same table at the same moment.
 */
const CREATED_CONCURRENTLY = new Set(['23505', '42P07', '42710']);

/**
 * One row in `<ledger>_lock`, for poolers in transaction mode where a session advisory lock does not
 * hold. Every statement is a single autocommit statement, on a connection of its own: the reserved
 * session is busy running migrations while the row is renewed every ttl/3 seconds. A holder that
 * dies stops renewing, and its row is taken over once it has expired.
 */
class TableLock implements RunLock {
  private readonly table: string;
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Set when a renewal finds the row taken over or deleted. */
  private lost: ConnectionError | null = null;
  /**
   * performance.now() by which the row cannot yet have expired: the send time of the last successful write plus the
   * TTL.
   */
  private heldUntil: number;
  private renewalError = '';

  private constructor(
    private readonly sql: postgres.Sql,
    private readonly context: LockContext,
    private readonly token: string,
    private readonly ttlSeconds: number,
    acquiredAt: number,
  ) {
    this.table = tidemarkTables(context.table).lock;
    this.heldUntil = acquiredAt + ttlSeconds * 1000;
    this.scheduleRenewal();
  }

  static async take(context: LockContext, { timeoutSeconds, ttlSeconds, signal }: LockOptions): Promise<TableLock> {
    // lock_timeout: a holder paused inside a migration keeps the lock row locked until its COMMIT
    // (checkBeforeCommit), and an attempt must not wait for it beyond one poll.
    const connection = { application_name: 'tidemark lock', lock_timeout: 1000 };
    const sql = postgres(context.url, { max: 1, onnotice: () => {}, fetch_types: false, connection });
    try {
      const table = tidemarkTables(context.table).lock;
      await createLockTable(sql, context.table);
      const token = randomBytes(8).toString('hex');
      const keys = advisoryKeys(context.table).join(', ');
      let sentAt = 0;
      let advisoryHeld = false;
      const acquire = async () => {
        sentAt = performance.now();
        const taken = await sql.unsafe(acquireSql(table, ttlSeconds), [token, hostname(), process.pid]).catch(busyRow);
        if (taken.length === 0) return false;
        // An --lock advisory runner may hold the run: then the row is given back and this run waits.
        const probe = `select case when pg_try_advisory_lock(${keys})
          then pg_advisory_unlock(${keys}) else false end as free`;
        const [{ free }] = await sql.unsafe(probe);
        advisoryHeld = !free;
        if (free) return true;
        await sql.unsafe(`delete from ${table} where holder = $1`, [token]);
        return false;
      };
      if (await pollUntil(timeoutSeconds, acquire, signal)) {
        return new TableLock(sql, context, token, ttlSeconds, sentAt);
      }
      if (advisoryHeld) throw advisoryBusyError(context.description, timeoutSeconds);
      throw busyError(context.description, table, timeoutSeconds, await readLockRow(sql, table));
    } catch (error) {
      await sql.end({ timeout: 0 }).catch(() => {});
      throw error;
    }
  }

  get checkBeforeCommit(): string {
    const renew = `update ${this.table} set expires_at = clock_timestamp() + make_interval(secs => ${this.ttlSeconds})
      where id = 1 and holder = '${this.token}'`;
    const lost = `another runner took over the migration lock while this run was paused`;
    const fail = `raise exception '${lost}' using errcode = '${LOCK_LOST_CODE}'`;
    return `do $tidemark$ begin ${renew}; if not found then ${fail}; end if; end $tidemark$`;
  }

  assertHeld(): void {
    if (this.lost) throw this.lost;
    if (performance.now() > this.heldUntil) {
      const reason =
        `could not renew it within --lock-ttl (${this.ttlSeconds} ` +
        `s)${this.renewalError && `: ${this.renewalError}`}`;
      throw lostError(this.context.description, reason, this.ttlSeconds);
    }
  }

  /** Unref'd: the timer alone never keeps the process alive. */
  private scheduleRenewal(): void {
    this.timer = setTimeout(
      () => {
        this.renewing = this.renew().finally(() => this.stopped || this.scheduleRenewal());
      },
      (this.ttlSeconds * 1000) / 3,
    );
    this.timer.unref();
  }

  /** A failed renewal is tried again at the next tick; assertHeld() fails once the row may have expired. */
  private async renew(): Promise<void> {
    const sentAt = performance.now();
    try {
      const renewed = await this.sql.unsafe(
        `update ${this.table} set expires_at = now() + make_interval(secs => ${this.ttlSeconds}) where id = 1 and ` +
          `holder = $1 returning 1`,
        [this.token],
      );
      if (renewed.length > 0) {
        this.heldUntil = sentAt + this.ttlSeconds * 1000;
        return;
      }
      const row = await readLockRow(this.sql, this.table);
      const reason = row ? `it was taken over by ${describeHolder(row)}` : `its row in ${this.table} was deleted`;
      this.lost = lostError(this.context.description, reason, this.ttlSeconds);
      this.stopped = true;
    } catch (error) {
      this.renewalError = (error as Error).message;
    }
  }

  /** Deletes our row (only ours: a run that lost it deletes nothing) and closes the lock's connection. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.renewing;
    try {
      await this.sql.unsafe(`delete from ${this.table} where holder = $1`, [this.token]);
    } catch (error) {
      // The run itself is done: a row left behind only delays the next run until it expires.
      this.context.onNotice(
        `could not release the migration lock (${(error as Error).message}); it expires within ${this.ttlSeconds} s`,
      );
    } finally {
      await this.sql.end({ timeout: 5 });
    }
  }
}

/** Creates the lock table unless it exists; a runner that loses the race to create it goes on. */
async function createLockTable(sql: postgres.Sql, ledger: TableName): Promise<void> {
  const table = tidemarkTables(ledger).lock;
  const [{ exists }] = await sql.unsafe<[{ exists: boolean }]>(`select to_regclass('${table}') is not null as exists`);
  if (exists) return;
  // The schema exists: the driver refused a ledger schema that does not (it is never created).
  const statement = `create table if not exists ${table} (
      id integer primary key check (id = 1),
      holder text not null,
      host text not null,
      pid integer not null,
      db_user text not null,
      acquired_at timestamptz not null,
      expires_at timestamptz not null)`;
  await sql.unsafe(statement).catch((error: postgres.PostgresError) => {
    if (!CREATED_CONCURRENTLY.has(error.code)) throw error;
  });
}

/**
 * One statement takes the lock: it inserts the row, or takes over one that has expired; it returns
 * a row only when we hold the lock. $1 token, $2 host, $3 pid.
 */
function acquireSql(table: string, ttlSeconds: number): string {
  return `insert into ${table} as held (id, holder, host, pid, db_user, acquired_at, expires_at)
    values (1, $1, $2, $3, current_user, now(), now() + make_interval(secs => ${ttlSeconds}))
    on conflict (id) do update set holder = excluded.holder, host = excluded.host, pid = excluded.pid,
      db_user = excluded.db_user,
      acquired_at = excluded.acquired_at, expires_at = excluded.expires_at
    where held.expires_at < now()
    returning holder`;
}

/** 55P03: the lock row is locked by a holder's migration transaction: taken, for now. */
function busyRow(error: postgres.PostgresError): [] {
  if (error.code !== '55P03') throw error;
  return [];
}

/** The lock row, when there is one; `unexpired` leaves out one whose holder is presumed dead. */
async function readLockRow(sql: postgres.Sql, table: string, unexpired = false): Promise<LockRow | undefined> {
  const format = (column: string) => `to_char(${column}, 'YYYY-MM-DD HH24:MI:SS TZ')`;
  if (unexpired) {
    const [{ exists }] = await sql.unsafe(`select to_regclass('${table}') is not null as exists`);
    if (!exists) return undefined;
  }
  const [row] = await sql.unsafe<LockRow[]>(`
    select holder, host, pid, db_user as user, ${format('acquired_at')} as since, ${format('expires_at')} as expires,
           ceil(extract(epoch from expires_at - now()))::int as "expiresIn"
    from ${table} where id = 1${unexpired ? ' and expires_at >= now()' : ''}`);
  return row;
}

/** Who holds the run lock of this ledger, in either mode, or null when nobody does (for a dirty row). */
export async function runLockHolder(sql: postgres.Sql, table: TableName): Promise<string | null> {
  const row = await readLockRow(sql, tidemarkTables(table).lock, true);
  if (row) return describeHolder(row);
  const holder = await advisoryHolder(sql, table);
  return holder.pid === undefined ? null : holder.text;
}

function advisoryBusyError(description: string, timeoutSeconds: number): ConnectionError {
  const message =
    `could not get the migration lock on ${description} within ${timeoutSeconds} s: ` +
    'a runner with --lock advisory holds it';
  return new ConnectionError(message, {
    hint: 'wait for that run to finish and try again; give every runner of this database the same --lock mode',
  });
}

function describeHolder(row: LockRow): string {
  return `pid ${row.pid} on host ${row.host} (user ${row.user}) since ${row.since}`;
}

function busyError(
  description: string,
  table: string,
  timeoutSeconds: number,
  row: LockRow | undefined,
): ConnectionError {
  if (!row)
    return new ConnectionError(
      `could not get the migration lock on ${description} within ${timeoutSeconds} s: another run held it and has ` +
        `just let go`,
      { hint: 'try again' },
    );
  const expiry = row.expiresIn > 0 ? `in ${row.expiresIn} s` : `${-row.expiresIn} s ago`;
  return new ConnectionError(
    `could not get the migration lock on ${description} within ${timeoutSeconds} s: held by ${describeHolder(row)}; ` +
      `it expires at ${row.expires} (${expiry}) unless that run renews it`,
    {
      hint:
        'wait for that run to finish and try again, or raise --lock-timeout; if that run is dead, its lock is taken ' +
        'over automatically once it expires, ' +
        `or delete it by hand: delete from ${table} where holder = '${row.holder}';`,
    },
  );
}

function lostError(description: string, reason: string, ttlSeconds: number): ConnectionError {
  return new ConnectionError(`lost the migration lock on ${description}: ${reason}; no further migration was started`, {
    hint:
      `the migrations reported above are applied; run again for the rest. A run loses its lock when it cannot ` +
      `renew it for --lock-ttl (${ttlSeconds} s): raise --lock-ttl if its connection is slow`,
  });
}

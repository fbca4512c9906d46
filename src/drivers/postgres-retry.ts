// A migration that hit its lock_timeout is rolled back and tried again, with back-off: waiting
// longer in the lock queue would hold up every query of the application on that table. When the
// retries run out, the error names the sessions that most likely held the lock.
import { setTimeout as sleep } from 'node:timers/promises';
import type postgres from 'postgres';
import { MigrationError } from '../errors.js';

/** 55P03: lock_not_available, what lock_timeout raises. */
const LOCK_TIMEOUT = '55P03';
const FIRST_PAUSE_MS = 1000;

export interface RetryOptions {
  retries: number;
  lockTimeout: string;
  /** Rolls the failed attempt back. */
  rollback: () => Promise<void>;
  onNotice: (message: string) => void;
  /** The migration's own session, to name the likely holders when giving up. */
  session: postgres.Sql;
}

export async function retryOnLockTimeout<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  for (let retry = 1; ; retry++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof MigrationError) || error.details.code !== LOCK_TIMEOUT) throw error;
      await options.rollback();
      if (retry > options.retries) throw await withHolders(error, options);
      const pause = FIRST_PAUSE_MS * 2 ** (retry - 1);
      const what =
        `${error.details.file}: a table it needs stayed locked for the lock timeout ` + `(${options.lockTimeout})`;
      options.onNotice(`${what}; rolled back, retry ${retry} of ${options.retries} in ${pause / 1000} s`);
      await sleep(pause);
    }
  }
}

/**
 * The sessions holding table locks in transactions older than the lock timeout: the migration no
 * longer waits, so the server cannot say who blocked it, but these are the ones that could have.
 */
async function withHolders(error: MigrationError, options: RetryOptions): Promise<MigrationError> {
  const rows = await options.session
    .unsafe(
      `select a.pid, a.usename, a.application_name, a.state, to_char(a.xact_start, 'YYYY-MM-DD HH24:MI:SS') as since,
              left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80) as query
         from pg_stat_activity a
        where a.datname = current_database() and a.pid <> pg_backend_pid()
          and a.xact_start < now() - $1::interval
          and exists (select 1 from pg_locks l where l.pid = a.pid and l.locktype = 'relation' and l.granted)
        order by a.xact_start limit 5`,
      [options.lockTimeout],
    )
    .catch(() => []);
  const holders = rows.map(
    (r) =>
      `held by pid ${r.pid} (user ${r.usename}, application ${r.application_name || '-'}, ${r.state}, in a ` +
      `transaction since ${r.since}): ${r.query}`,
  );
  const context = [...(error.details.context ?? []), ...holders];
  return new MigrationError(error.message, { ...error.details, context });
}

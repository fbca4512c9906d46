// Lock modes (--lock advisory|table|none): waiters poll instead of blocking, so a no-transaction
// CREATE INDEX CONCURRENTLY finishes while others wait; the lock table's row, its busy message, its
// takeover after a kill -9 and its renewal; no lock at all; how the mode is chosen. Runners are real
// CLI processes; waits are polls with generous limits.
import { mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BASE,
  advisoryLocks,
  dispose,
  freshDatabase,
  ledgerVersions,
  poll,
  project,
  runCli,
  sleepingBackend,
  startCli,
  writeSql,
} from './helpers.mjs';

const USER = new URL(process.env.TEST_DATABASE_URL).username || 'postgres';
const LOCK_TABLE = 'schema_version_lock';

/** 002: a migration that holds the lock for `seconds` while the test looks around. */
const sleeping = (seconds) => ({
  ...BASE,
  '002_nap.sql': `SELECT pg_sleep(${seconds});\n`,
  '002_nap_rollback.sql': 'SELECT 1;\n',
});

const lockRows = (db) =>
  db.query(
    `select holder, host, pid, db_user, acquired_at <= now() as acquired, expires_at > now() as live, expires_at from ${LOCK_TABLE}`,
  );
const upRows = async (db, version) =>
  Number(
    (
      await db.query(
        `select count(*) as n from schema_version_history where action = 'up' and outcome = 'ok' and version = $1`,
        [version],
      )
    )[0].n,
  );

// ---- a. CREATE INDEX CONCURRENTLY under the lock, with runners waiting for it ---------------------
const cic = suite('CREATE INDEX CONCURRENTLY while other runners wait');

for (const mode of ['advisory', 'table']) {
  cic(
    `--lock ${mode}: 4 runners at once; the no-transaction CIC completes long before --lock-timeout, the index is valid`,
    async () => {
      const p = await project('postgres', {
        '001_items.sql':
          'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);\nINSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 20000) g;\n',
        '001_items_rollback.sql': 'DROP TABLE items;\n',
        // Long enough for the other runners to be waiting when the index is built.
        '002_pause.sql': 'SELECT pg_sleep(1.5);\n',
        '002_pause_rollback.sql': 'SELECT 1;\n',
        '003_items_name_idx.sql':
          '-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY items_name_idx ON items (name);\n',
        '003_items_name_idx_rollback.sql': '-- tidemark:no-transaction\nDROP INDEX CONCURRENTLY items_name_idx;\n',
      });
      try {
        const started = performance.now();
        const runners = Array.from({ length: 4 }, () =>
          startCli(['migrate', '--lock', mode, '--lock-timeout', '30'], p.cwd, p.db.url),
        );
        const results = await Promise.all(runners.map((r) => r.done));
        const wall = (performance.now() - started) / 1000;
        console.log(`\n  [--lock ${mode}] 4 runners with a CREATE INDEX CONCURRENTLY: ${wall.toFixed(1)} s wall`);

        for (const [i, r] of results.entries()) assert.is(r.code, 0, `runner ${i + 1}:\n${r.output}`);
        assert.ok(wall < 20, `all done in ${wall.toFixed(1)} s: nobody waited out the 30 s lock timeout`);
        const [index] = await p.db.query(
          `select x.indisvalid as valid from pg_index x join pg_class c on c.oid = x.indexrelid where c.relname = 'items_name_idx'`,
        );
        assert.ok(index?.valid, 'the index exists and is valid');
        assert.equal(await ledgerVersions(p.db), [1, 2, 3]);
        const reported = results.reduce((sum, r) => sum + (r.stdout.match(/^↑ \d+ /gm) ?? []).length, 0);
        assert.is(reported, 3, 'each migration was applied by one runner');
      } finally {
        await dispose(p);
      }
    },
  );
}

cic.run();

// ---- b-e. --lock table ---------------------------------------------------------------------------
const table = suite('--lock table');

table(
  'the row names host, pid, user and expiry while a migration runs, is gone after it, and verify does not report the table',
  async () => {
    const p = await project('postgres', sleeping(3));
    try {
      const runner = startCli(['migrate', '--lock', 'table'], p.cwd, p.db.url);
      await poll('the runner to sleep in 002', () => sleepingBackend(p.db, 'pg_sleep(3)'));
      const [row] = await lockRows(p.db);
      assert.equal(
        [row.host, row.pid, row.db_user, row.acquired, row.live],
        [hostname(), runner.child.pid, USER, true, true],
      );
      assert.match(row.holder, /^[0-9a-f]{16}$/);
      const done = await runner.done;
      assert.is(done.code, 0, done.output);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
      assert.equal(await lockRows(p.db), [], 'released at the end of the run');

      const verify = p.cli('verify', '--lock', 'table');
      assert.is(verify.code, 0, verify.output);
      assert.match(verify.stdout, /the schema matches the migration files at version 2, built on a scratch database/);
      assert.not.match(verify.output, /_lock/);
      assert.not.match(p.cli('schema').stdout, /_lock/, "not part of the application's schema");
    } finally {
      await dispose(p);
    }
  },
);

table(
  "a held lock: a second runner exits 4 within --lock-timeout 1, naming the holder's host, pid and expiry, and changes nothing",
  async () => {
    const p = await project('postgres', sleeping(4));
    try {
      const holder = startCli(['migrate', '--lock', 'table'], p.cwd, p.db.url);
      await poll('the holder to sleep in 002', () => sleepingBackend(p.db, 'pg_sleep(4)'));
      const [before] = await lockRows(p.db);

      const r = p.cli('migrate', '--lock', 'table', '--lock-timeout', '1');
      assert.is(r.code, 4, r.output);
      assert.match(
        r.stderr,
        new RegExp(
          `^error: could not get the migration lock on postgres://\\S+ within 1 s: held by pid ${holder.child.pid} on host ${hostname()} \\(user ${USER}\\) since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\S+; it expires at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\S+ \\(in \\d+ s\\)`,
          'm',
        ),
      );
      assert.match(
        r.stderr,
        new RegExp(
          `^hint: .*--lock-timeout.*taken over automatically once it expires.*delete from "public"."${LOCK_TABLE}" where holder = '${before.holder}';`,
          'm',
        ),
      );
      assert.equal(await ledgerVersions(p.db), [1], 'the refused runner applied nothing');
      assert.equal(
        (await lockRows(p.db)).map((row) => row.holder),
        [before.holder],
        "the lock is still the holder's",
      );

      const held = await holder.done;
      assert.is(held.code, 0, held.output);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
    } finally {
      await dispose(p);
    }
  },
);

table(
  "kill -9 leaves the row; a new runner takes it over once it has expired (the holder's --lock-ttl 2) and applies everything",
  async () => {
    const slow = 'CREATE TABLE slow_t (a INTEGER);\nSELECT pg_sleep(30);\n';
    const p = await project('postgres', {
      ...BASE,
      '002_slow.sql': slow,
      '002_slow_rollback.sql': 'DROP TABLE slow_t;\n',
    });
    try {
      const runner = startCli(['migrate', '--lock', 'table', '--lock-ttl', '2'], p.cwd, p.db.url);
      await poll('the runner to sleep in 002', () => sleepingBackend(p.db, 'pg_sleep(30)'));
      runner.child.kill('SIGKILL');
      assert.is((await runner.done).signal, 'SIGKILL');
      assert.equal(
        (await lockRows(p.db)).map((row) => row.pid),
        [runner.child.pid],
        "the dead runner's row stays",
      );

      writeSql(p.cwd, '002_slow.sql', slow.replace('SELECT pg_sleep(30);\n', ''));
      const r = p.cli('migrate', '--lock', 'table');
      assert.is(r.code, 0, r.output);
      assert.match(r.stdout, /↑ 002 slow/);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
      assert.equal(await lockRows(p.db), []);
    } finally {
      await dispose(p);
    }
  },
);

table(
  'renewal: a holder with --lock-ttl 2 keeps the lock through a 5 s migration; a second runner waits and finds nothing pending',
  async () => {
    const p = await project('postgres', sleeping(5));
    try {
      const holder = startCli(['migrate', '--lock', 'table', '--lock-ttl', '2'], p.cwd, p.db.url);
      await poll('the holder to sleep in 002', () => sleepingBackend(p.db, 'pg_sleep(5)'));
      const [first] = await lockRows(p.db);
      const waiter = startCli(['migrate', '--lock', 'table', '--lock-timeout', '20'], p.cwd, p.db.url);
      await poll('the holder to renew its row', async () => (await lockRows(p.db))[0]?.expires_at > first.expires_at, {
        limitMs: 10_000,
      });

      const [held, waited] = await Promise.all([holder.done, waiter.done]);
      assert.is(held.code, 0, held.output);
      assert.match(held.stdout, /↑ 002 nap/);
      assert.is(waited.code, 0, waited.output);
      assert.match(waited.stdout, /is up to date at version 2/);
      assert.is(await upRows(p.db, 2), 1, 'the migration ran exactly once');
    } finally {
      await dispose(p);
    }
  },
);

table(
  'a holder whose row was taken over cannot commit the migration it is running: rolled back, exit 4, no failed row',
  async () => {
    const p = await project('postgres', {
      '001_nap.sql': 'CREATE TABLE nap_t (a INTEGER);\nSELECT pg_sleep(3);\n',
      '001_nap_rollback.sql': 'DROP TABLE nap_t;\n',
      '002_after.sql': 'CREATE TABLE after_t (a INTEGER);\n',
      '002_after_rollback.sql': 'DROP TABLE after_t;\n',
    });
    try {
      const holder = startCli(['migrate', '--lock', 'table', '--lock-ttl', '3'], p.cwd, p.db.url);
      await poll('the holder to sleep in 001', () => sleepingBackend(p.db, 'pg_sleep(3)'));
      // What a runner that found the row expired (its holder paused past the TTL) does.
      await p.db.query(`update ${LOCK_TABLE} set holder = 'thief', host = 'other-host', pid = 4242`);

      const r = await holder.done;
      assert.is(r.code, 4, r.output);
      assert.not.match(r.stdout, /↑ 001 nap/);
      assert.match(
        r.stderr,
        /^error: lost the migration lock on postgres:\/\/\S+: another runner took it over while this run was paused$/m,
      );
      assert.match(r.stderr, /^hint: the running migration was rolled back .*--lock-ttl/m);
      assert.not.match(r.output, /fix the SQL/);
      assert.equal(await ledgerVersions(p.db), [], 'the migration did not commit');
      assert.not.ok((await p.db.tables()).includes('nap_t'));
      assert.not.ok((await p.db.tables()).includes('after_t'));
      const history = await p.db.query('select version, outcome from schema_version_history');
      assert.equal(
        history.map((h) => [Number(h.version), h.outcome]),
        [[1, 'interrupted']],
      );
      assert.equal(
        (await lockRows(p.db)).map((row) => row.holder),
        ['thief'],
        "the new holder's row is left alone",
      );
    } finally {
      await dispose(p);
    }
  },
);

table.run();

// ---- f. --lock none, and choosing the mode ---------------------------------------------------------
const modes = suite('--lock none and choosing the mode');

modes('--lock none: no advisory lock is held during the run and no lock table is created', async () => {
  const p = await project('postgres', sleeping(2));
  try {
    const runner = startCli(['migrate', '--lock', 'none'], p.cwd, p.db.url);
    await poll('the runner to sleep in 002', () => sleepingBackend(p.db, 'pg_sleep(2)'));
    assert.is(await advisoryLocks(p.db), 0);
    assert.not.ok((await p.db.tables()).includes(LOCK_TABLE));
    const done = await runner.done;
    assert.is(done.code, 0, done.output);
    assert.equal(await ledgerVersions(p.db), [1, 2]);
    assert.not.ok((await p.db.tables()).includes(LOCK_TABLE));
  } finally {
    await dispose(p);
  }
});

modes('an unknown mode is exit 2 naming the allowed ones, from a flag, TIDEMARK_LOCK or package.json', async () => {
  const p = await project('postgres', BASE);
  try {
    const flag = p.cli('migrate', '--lock=bogus');
    assert.is(flag.code, 2, flag.output);
    assert.match(flag.stderr, /^error: --lock must be one of advisory, table, none, not "bogus"/m);
    const env = runCli(['migrate'], { cwd: p.cwd, env: { DATABASE_URL: p.db.url, TIDEMARK_LOCK: 'tables' } });
    assert.is(env.code, 2, env.output);
    assert.match(env.stderr, /^error: TIDEMARK_LOCK must be one of advisory, table, none, not "tables"/m);
    const ttl = p.cli('migrate', '--lock', 'table', '--lock-ttl', '0');
    assert.is(ttl.code, 2, ttl.output);
    assert.match(ttl.stderr, /--lock-ttl takes whole seconds \(at least 1\), not "0"/);
    assert.equal(await p.db.tables(), [], 'nothing ran');
  } finally {
    await dispose(p);
  }
});

modes(
  'TIDEMARK_LOCK=table in the environment, or "lock": "table" in package.json, selects table mode; a flag wins over both',
  async () => {
    const p = await project('postgres', {
      ...BASE,
      '002_more.sql': 'CREATE TABLE more_t (a INTEGER);\n',
      '002_more_rollback.sql': 'DROP TABLE more_t;\n',
    });
    try {
      writeFileSync(join(p.cwd, 'package.json'), JSON.stringify({ name: 'app', tidemark: { lock: 'bogus' } }));
      const flagWins = runCli(['migrate', '1', '--lock', 'none'], {
        cwd: p.cwd,
        env: { DATABASE_URL: p.db.url, TIDEMARK_LOCK: 'bogus' },
      });
      assert.is(flagWins.code, 0, flagWins.output);
      assert.not.ok((await p.db.tables()).includes(LOCK_TABLE));

      const env = runCli(['migrate', '1'], { cwd: p.cwd, env: { DATABASE_URL: p.db.url, TIDEMARK_LOCK: 'table' } });
      assert.is(env.code, 0, env.output);
      assert.ok((await p.db.tables()).includes(LOCK_TABLE), 'TIDEMARK_LOCK=table made the lock table');

      await p.db.query(`drop table ${LOCK_TABLE}`);
      writeFileSync(join(p.cwd, 'package.json'), JSON.stringify({ name: 'app', tidemark: { lock: 'table' } }));
      const settings = p.cli('migrate');
      assert.is(settings.code, 0, settings.output);
      assert.ok((await p.db.tables()).includes(LOCK_TABLE), '"lock": "table" made the lock table');
      assert.equal(await ledgerVersions(p.db), [1, 2]);
    } finally {
      await dispose(p);
    }
  },
);

modes(
  'SQLite accepts every mode (it takes its write lock per step): one --lock table for a project with a PostgreSQL and a SQLite database',
  async () => {
    const p = await project('postgres', {});
    const trades = await freshDatabase('sqlite', p.cwd);
    try {
      const files = {
        'main/001_users.sql': 'CREATE TABLE users (id INTEGER);\n',
        'main/001_users_rollback.sql': 'DROP TABLE users;\n',
        'trades/001_fills.sql': 'CREATE TABLE fills (id INTEGER);\n',
        'trades/001_fills_rollback.sql': 'DROP TABLE fills;\n',
      };
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(dirname(join(p.cwd, 'sql', path)), { recursive: true });
        writeFileSync(join(p.cwd, 'sql', path), text);
      }
      const databases = {
        main: { url: 'env:DATABASE_URL', dir: 'sql/main' },
        trades: { url: 'env:TRADES_DATABASE_URL' },
      };
      writeFileSync(join(p.cwd, 'tidemark.config.json'), JSON.stringify({ databases }));
      const env = { DATABASE_URL: p.db.url, TRADES_DATABASE_URL: trades.url };
      for (const mode of ['table', 'none', 'advisory']) {
        const r = runCli(['migrate', '--lock', mode], { cwd: p.cwd, env });
        assert.is(r.code, 0, `--lock ${mode}:\n${r.output}`);
      }
      assert.equal(await ledgerVersions(p.db), [1]);
      assert.equal(await ledgerVersions(trades), [1]);
      assert.ok((await p.db.tables()).includes(LOCK_TABLE));
      assert.not.ok(
        (await trades.tables()).some((t) => t.endsWith('_lock')),
        'SQLite has no lock table',
      );
    } finally {
      await trades.close();
      await dispose(p);
    }
  },
);

modes.run();

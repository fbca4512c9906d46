// Safe under concurrent deploys and crashes (issue 3): many runners at once, kill -9 during a
// transactional and during a no-transaction migration, and the lock, timeout, --wait and history
// options. Runners are real CLI processes started with spawn; waits are polls with generous limits,
// never timed assertions.
import { existsSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BASE,
  advisoryLocks,
  dispose,
  freePort,
  ledgerVersions,
  poll,
  project,
  sleepingBackend,
  startCli,
  writeSql,
} from './helpers.mjs';

const ADMIN_URL = new URL(process.env.TEST_DATABASE_URL);
const RUNNERS = 16;
const MIGRATIONS = 30;
/** A SQLite statement that runs far longer than any test: it counts to ten billion. */
const SQLITE_FOREVER =
  'SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) SELECT x FROM c)';

const pad = (v) => String(v).padStart(3, '0');

const isDirty = (row) => row.dirty === true || Number(row.dirty) === 1;

// ---- 1. many runners at once ---------------------------------------------------------------------
// PostgreSQL in both of its locking modes; SQLite's steps take the write lock whatever the mode.
for (const [dialect, lock] of [
  ['sqlite', null],
  ['postgres', 'advisory'],
  ['postgres', 'table'],
]) {
  const mode = lock ? ` --lock ${lock}` : '';
  const test = suite(`concurrent runners [${dialect}${mode}]`);

  test(`${RUNNERS} runners started at once on ${MIGRATIONS} pending migrations: each runs exactly once, all exit 0`, async () => {
    const files = {
      '001_counter.sql': 'CREATE TABLE counter (n INTEGER);\n',
      '001_counter_rollback.sql': 'DROP TABLE counter;\n',
    };
    for (let v = 2; v <= MIGRATIONS; v++) {
      files[`${pad(v)}_bump_${v}.sql`] = `INSERT INTO counter (n) VALUES (${v});\n`;
      files[`${pad(v)}_bump_${v}_rollback.sql`] = `DELETE FROM counter WHERE n = ${v};\n`;
    }
    const p = await project(dialect, files);
    try {
      const started = performance.now();
      const runners = Array.from({ length: RUNNERS }, () =>
        startCli(['migrate', ...(lock ? ['--lock', lock] : [])], p.cwd, p.db.url),
      );
      const results = await Promise.all(runners.map((r) => r.done));
      const wall = performance.now() - started;
      console.log(`\n  [${dialect}${mode}] ${RUNNERS} runners, ${MIGRATIONS} migrations: ${Math.round(wall)} ms wall`);

      for (const [i, r] of results.entries()) assert.is(r.code, 0, `runner ${i + 1}:\n${r.output}`);
      assert.equal(
        await ledgerVersions(p.db),
        Array.from({ length: MIGRATIONS }, (_, i) => i + 1),
        'the ledger has exactly one row per migration',
      );
      const counted = (await p.db.query('select n from counter order by n')).map((row) => Number(row.n));
      assert.is(counted.length, MIGRATIONS - 1, 'one row per insert migration');
      assert.equal(
        counted,
        Array.from({ length: MIGRATIONS - 1 }, (_, i) => i + 2),
        'distinct values: every insert ran exactly once',
      );
      const [{ n }] = await p.db.query(
        `select count(*) as n from schema_version_history where action = 'up' and outcome = 'ok'`,
      );
      assert.is(Number(n), MIGRATIONS, 'the history records each migration once');
      const reported = results.reduce((sum, r) => sum + (r.stdout.match(/^↑ \d+ /gm) ?? []).length, 0);
      assert.is(reported, MIGRATIONS, 'across all runners, each migration is reported as applied once');
    } finally {
      await dispose(p);
    }
  });

  test.run();
}

// ---- 2. kill -9 during a transactional migration -------------------------------------------------
const crash = suite('kill -9 during a transactional migration');

crash('PostgreSQL: the lock is released, nothing of the migration stays, a rerun applies everything', async () => {
  const slow = 'CREATE TABLE slow_t (a INTEGER);\nINSERT INTO slow_t (a) VALUES (1);\nSELECT pg_sleep(30);\n';
  const p = await project('postgres', {
    ...BASE,
    '002_slow.sql': slow,
    '002_slow_rollback.sql': 'DROP TABLE slow_t;\n',
  });
  try {
    const runner = startCli(['migrate'], p.cwd, p.db.url);
    const pid = await poll('the migration to sleep in pg_sleep', () => sleepingBackend(p.db, 'pg_sleep(30)'));
    assert.ok((await advisoryLocks(p.db)) > 0, 'the runner holds its advisory lock while it sleeps');
    runner.child.kill('SIGKILL');
    const killed = await runner.done;
    assert.is(killed.signal, 'SIGKILL', killed.output);

    // Uncommitted: already invisible while the orphaned backend still runs.
    assert.equal(await ledgerVersions(p.db), [1]);
    assert.not.ok((await p.db.tables()).includes('slow_t'));

    // The server ends the backend once it notices the client is gone; then the lock goes with it.
    const killedAt = performance.now();
    await poll("the killed runner's backend and its advisory lock to go away", async () => {
      const [{ alive }] = await p.db.query('select count(*)::int as alive from pg_stat_activity where pid = $1', [pid]);
      return alive === 0 && (await advisoryLocks(p.db)) === 0;
    });
    console.log(`\n  [postgres] lock released ${((performance.now() - killedAt) / 1000).toFixed(1)} s after kill -9`);
    assert.equal(await ledgerVersions(p.db), [1], 'no ledger row for the killed migration');
    assert.not.ok((await p.db.tables()).includes('slow_t'), 'its CREATE TABLE was rolled back');
    const [{ n }] = await p.db.query(
      `select count(*)::int as n from schema_version_history where version = 2 and outcome = 'ok'`,
    );
    assert.is(n, 0, 'no history of success either');

    writeSql(p.cwd, '002_slow.sql', slow.replace('SELECT pg_sleep(30);\n', ''));
    const rerun = p.cli('migrate');
    assert.is(rerun.code, 0, rerun.output);
    assert.match(rerun.stdout, /↑ 002 slow/);
    assert.equal(await ledgerVersions(p.db), [1, 2]);
    assert.equal(
      (await p.db.query('select a from slow_t')).map((r) => Number(r.a)),
      [1],
    );
  } finally {
    await dispose(p);
  }
});

crash('SQLite: the hot journal is rolled back, no stale lock, a rerun applies everything', async () => {
  const p = await project('sqlite', {
    ...BASE,
    '002_slow.sql': `CREATE TABLE slow_t (a INTEGER);\nINSERT INTO slow_t (a) VALUES (1);\nINSERT INTO slow_t (a) ${SQLITE_FOREVER};\n`,
    '002_slow_rollback.sql': 'DROP TABLE slow_t;\n',
  });
  try {
    const runner = startCli(['migrate'], p.cwd, p.db.url);
    // 001 is committed and reported; 002's transaction has written (its journal exists) and is counting.
    await poll(
      '001 to be applied and 002 to be writing',
      () => /↑ 001 base/.test(runner.stdout) && existsSync(`${p.db.file}-journal`),
    );
    await sleep(500);
    assert.is(runner.child.exitCode, null, `the runner is still inside 002:\n${runner.stdout}${runner.stderr}`);
    runner.child.kill('SIGKILL');
    const killed = await runner.done;
    assert.is(killed.signal, 'SIGKILL', killed.output);

    const status = p.cli('status');
    assert.is(status.code, 0, status.output);
    assert.match(status.stdout, /001\s+base\s+applied/);
    assert.match(status.stdout, /002\s+slow\s+pending/);
    assert.equal(await ledgerVersions(p.db), [1], 'no ledger row for the killed migration');
    assert.not.ok((await p.db.tables()).includes('slow_t'), 'its CREATE TABLE was rolled back');

    writeSql(p.cwd, '002_slow.sql', 'CREATE TABLE slow_t (a INTEGER);\nINSERT INTO slow_t (a) VALUES (1);\n');
    const rerun = p.cli('migrate');
    assert.is(rerun.code, 0, rerun.output);
    assert.match(rerun.stdout, /↑ 002 slow/);
    assert.equal(await ledgerVersions(p.db), [1, 2]);
    assert.equal(
      (await p.db.query('select a from slow_t')).map((r) => Number(r.a)),
      [1],
    );
  } finally {
    await dispose(p);
  }
});

crash.run();

// ---- 3. kill -9 during a no-transaction migration ------------------------------------------------
const dirty = suite('kill -9 during a no-transaction migration');

for (const dialect of ['postgres', 'sqlite']) {
  dirty(
    `${dialect}: the version stays dirty, migrate and rollback refuse until resolve, then migrate works`,
    async () => {
      const long = dialect === 'postgres' ? 'SELECT pg_sleep(30);' : `INSERT INTO nt_half (a) ${SQLITE_FOREVER};`;
      const p = await project(dialect, {
        ...BASE,
        '002_nt.sql': `-- tidemark:no-transaction\nCREATE TABLE nt_half (a INTEGER);\n${long}\n`,
        '002_nt_rollback.sql': 'DROP TABLE nt_half;\n',
        '003_after.sql': 'CREATE TABLE after_t (a INTEGER);\n',
        '003_after_rollback.sql': 'DROP TABLE after_t;\n',
      });
      try {
        const runner = startCli(['migrate'], p.cwd, p.db.url);
        if (dialect === 'postgres') {
          await poll('the no-transaction migration to sleep', () => sleepingBackend(p.db, 'pg_sleep(30)'));
        } else {
          // Read while the runner writes: a momentary SQLITE_BUSY just means "not yet".
          await poll(
            'the no-transaction migration to reach its long statement',
            async () => existsSync(p.db.file) && (await p.db.tables().catch(() => [])).includes('nt_half'),
          );
          await sleep(500);
        }
        assert.is(runner.child.exitCode, null, `the runner is still inside 002:\n${runner.stdout}${runner.stderr}`);
        runner.child.kill('SIGKILL');
        const killed = await runner.done;
        assert.is(killed.signal, 'SIGKILL', killed.output);
        if (dialect === 'postgres') {
          // The orphaned session keeps the run lock until the server notices the client is gone.
          await poll("the killed runner's advisory lock to go away", async () => (await advisoryLocks(p.db)) === 0);
        }

        const status = p.cli('status');
        assert.is(status.code, 0, status.output);
        assert.match(status.stdout, /002\s+nt\s+dirty/);
        assert.match(status.stdout, /003\s+after\s+pending/);
        const rows = await p.db.query('select version, dirty from schema_version order by version');
        assert.equal(
          rows.map((r) => [Number(r.version), isDirty(r)]),
          [
            [1, false],
            [2, true],
          ],
        );
        assert.ok(
          (await p.db.tables()).includes('nt_half'),
          'outside a transaction, the CREATE TABLE before the kill stayed',
        );

        for (const args of [['migrate'], ['rollback'], ['migrate', '--dry-run']]) {
          const r = p.cli(...args);
          assert.is(r.code, 2, `${args.join(' ')}:\n${r.output}`);
          assert.match(r.stderr, /version 002 \(nt\) is dirty/);
          assert.match(r.stderr, /tidemark resolve 002 --applied/);
          assert.match(r.stderr, /^hint: /m);
        }
        assert.not.ok((await p.db.tables()).includes('after_t'), 'the refusals ran nothing');

        // The table is there: the change took effect, so the hint's --applied is the truth.
        const resolved = p.cli('resolve', '2', '--applied');
        assert.is(resolved.code, 0, resolved.output);
        assert.match(resolved.stdout, /version 2 is now recorded as applied/);
        const after = p.cli('migrate');
        assert.is(after.code, 0, after.output);
        assert.match(after.stdout, /↑ 003 after/);
        const finalRows = await p.db.query('select version, dirty from schema_version order by version');
        assert.equal(
          finalRows.map((r) => [Number(r.version), isDirty(r)]),
          [
            [1, false],
            [2, false],
            [3, false],
          ],
        );
      } finally {
        await dispose(p);
      }
    },
  );
}

dirty.run();

// ---- 4. lock timeout, statement and lock limits, --wait, history ---------------------------------
const options = suite('lock timeout, limits, --wait and history');

options(
  'PostgreSQL --lock-timeout: exit 4 naming the holder (pid, user, application, since); the holder finishes',
  async () => {
    const p = await project('postgres', {
      ...BASE,
      '002_slow.sql': 'SELECT pg_sleep(8);\n',
      '002_slow_rollback.sql': 'SELECT 1;\n',
    });
    try {
      const holder = startCli(['migrate'], p.cwd, p.db.url);
      const pid = await poll('the holder to sleep', () => sleepingBackend(p.db, 'pg_sleep(8)'));
      const r = p.cli('migrate', '--lock-timeout', '1');
      assert.is(r.code, 4, r.output);
      assert.match(r.stderr, /^error: could not get the migration lock on postgres:\/\/\S+ within 1 s: /m);
      assert.match(r.stderr, new RegExp(`pid ${pid}\\b`), `names the holder's pid ${pid}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`user ${ADMIN_URL.username || 'postgres'}\\b`));
      assert.match(r.stderr, /application tidemark/);
      assert.match(r.stderr, /since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
      assert.match(r.stderr, /^hint: .*--lock-timeout/m);
      const held = await holder.done;
      assert.is(held.code, 0, held.output);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
    } finally {
      await dispose(p);
    }
  },
);

options('SQLite --lock-timeout: a runner that cannot get the write lock in time exits 4 with a message', async () => {
  const p = await project('sqlite', {
    ...BASE,
    '002_slow.sql': `CREATE TABLE slow_t (a INTEGER);\nINSERT INTO slow_t (a) ${SQLITE_FOREVER};\n`,
    '002_slow_rollback.sql': 'DROP TABLE slow_t;\n',
  });
  let holder;
  try {
    assert.is(p.cli('migrate', '1').code, 0);
    holder = startCli(['migrate'], p.cwd, p.db.url);
    await poll('the holder to be inside 002', () => existsSync(`${p.db.file}-journal`));
    const r = p.cli('migrate', '--lock-timeout', '1');
    assert.is(r.code, 4, r.output);
    assert.match(r.stderr, /^error: .*sqlite:\S+.*(lock|busy)/im);
    assert.match(r.stderr, /^hint: .*--lock-timeout/m);
    assert.not.match(r.output, /unexpected failure/);
  } finally {
    holder?.child.kill('SIGKILL');
    await holder?.done;
    await dispose(p);
  }
});

options(
  'PostgreSQL --statement-timeout: a migration that runs too long fails (exit 1) with a hint and leaves nothing',
  async () => {
    const p = await project('postgres', {
      ...BASE,
      '002_slow.sql': 'CREATE TABLE slow_t (a INTEGER);\nSELECT pg_sleep(5);\n',
      '002_slow_rollback.sql': 'DROP TABLE slow_t;\n',
    });
    try {
      assert.is(p.cli('migrate', '1').code, 0);
      const bad = p.cli('migrate', '--statement-timeout', 'soon');
      assert.is(bad.code, 2, bad.output);
      assert.match(bad.stderr, /--statement-timeout must be a duration/);
      const r = p.cli('migrate', '--statement-timeout', '300ms');
      assert.is(r.code, 1, r.output);
      assert.match(r.stderr, /^error: sql\/002_slow\.sql\S*: canceling statement due to statement timeout/m);
      assert.match(r.stderr, /^hint: .*--statement-timeout/m);
      assert.equal(await ledgerVersions(p.db), [1]);
      assert.not.ok((await p.db.tables()).includes('slow_t'));
      // SET LOCAL: the limit ended with the migration; without it the same file runs.
      const again = p.cli('migrate');
      assert.is(again.code, 0, again.output);
    } finally {
      await dispose(p);
    }
  },
);

/**
 * The application's side: a session holds a lock on `base` in an open transaction (an idle-in-
 * transaction request), and a second client queries `base` every 50 ms, timing each query.
 */
async function busyTable(url) {
  const holder = postgres(url, { max: 1, onnotice: () => {} });
  const [{ pid }] = await holder`select pg_backend_pid() as pid`;
  let release;
  const released = new Promise((resolve) => (release = resolve));
  let locked;
  const isLocked = new Promise((resolve) => (locked = resolve));
  const transaction = holder.begin(async (tx) => {
    await tx`lock table base in access share mode`;
    locked();
    await released;
  });
  await isLocked;
  const reader = postgres(url, { max: 1, onnotice: () => {} });
  let probing = true;
  let worstMs = 0;
  const probe = (async () => {
    while (probing) {
      const started = performance.now();
      await reader`select count(*) from base`;
      worstMs = Math.max(worstMs, performance.now() - started);
      await sleep(50);
    }
  })();
  return {
    pid,
    release: async () => {
      release();
      await transaction;
    },
    stop: async () => {
      probing = false;
      await probe;
      await Promise.all([holder.end({ timeout: 5 }), reader.end({ timeout: 5 })]);
      return worstMs;
    },
  };
}

const WIDEN = {
  ...BASE,
  '002_widen.sql': 'ALTER TABLE base ADD COLUMN b INTEGER;\n',
  '002_widen_rollback.sql': 'ALTER TABLE base DROP COLUMN b;\n',
};

options(
  'PostgreSQL lock timeout: a migration that waits for a busy table is retried; the application never waits longer than the timeout',
  async () => {
    const p = await project('postgres', WIDEN);
    try {
      assert.is(p.cli('migrate', '1').code, 0);
      const app = await busyTable(p.db.url);
      const runner = startCli(['migrate', '--pg-lock-timeout', '500ms'], p.cwd, p.db.url);
      await sleep(2500);
      await app.release();
      const r = await runner.done;
      const worstMs = await app.stop();
      assert.is(r.code, 0, r.output);
      assert.match(
        r.stderr,
        /^notice: sql\/002_widen\.sql: a table it needs stayed locked for the lock timeout \(500ms\); rolled back, retry 1 of 3 in 1 s$/m,
      );
      assert.equal(await ledgerVersions(p.db), [1, 2]);
      process.stdout.write(
        `  worst wait of the application's query: ${Math.round(worstMs)} ms (lock timeout 500 ms)\n`,
      );
      assert.ok(worstMs < 1500, `the application waited ${Math.round(worstMs)} ms`);
    } finally {
      await dispose(p);
    }
  },
);

options('PostgreSQL lock timeout: with no limit, the application waits as long as the migration does', async () => {
  const p = await project('postgres', WIDEN);
  try {
    assert.is(p.cli('migrate', '1').code, 0);
    const app = await busyTable(p.db.url);
    const runner = startCli(['migrate', '--pg-lock-timeout', '0'], p.cwd, p.db.url);
    await sleep(2500);
    await app.release();
    const r = await runner.done;
    const worstMs = await app.stop();
    assert.is(r.code, 0, r.output);
    assert.ok(worstMs > 1500, `the application waited only ${Math.round(worstMs)} ms`);
  } finally {
    await dispose(p);
  }
});

options(
  'PostgreSQL lock timeout: when every retry times out, exit 1 names the session holding the table, nothing is applied',
  async () => {
    const p = await project('postgres', WIDEN);
    try {
      assert.is(p.cli('migrate', '1').code, 0);
      const app = await busyTable(p.db.url);
      const r = p.cli('migrate', '--pg-lock-timeout', '300ms', '--lock-retries', '1');
      await app.release();
      await app.stop();
      assert.is(r.code, 1, r.output);
      assert.match(r.stderr, /retry 1 of 1 in 1 s/);
      assert.match(r.stderr, /^error: sql\/002_widen\.sql\S*: canceling statement due to lock timeout/m);
      assert.match(
        r.stderr,
        new RegExp(
          `held by pid ${app.pid} \\(user \\w+, application postgres.js, idle in transaction, in a transaction since `,
        ),
        r.stderr,
      );
      assert.match(r.stderr, /^hint: .*--lock-retries, --pg-lock-timeout/m);
      assert.equal(await ledgerVersions(p.db), [1]);
      assert.is(p.cli('migrate').code, 0);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
    } finally {
      await dispose(p);
    }
  },
);

options(
  '--wait: a server that comes up during the wait is used; one that never does is exit 4 after the wait',
  async () => {
    const p = await project('postgres', BASE);
    let proxy;
    try {
      const port = await freePort();
      const viaProxy = new URL(p.db.url);
      viaProxy.host = `127.0.0.1:${port}`;
      const waiting = startCli(['migrate', '--wait', '60'], p.cwd, viaProxy.toString());
      await poll('the runner to say it is waiting', () => /does not answer yet/.test(waiting.stderr), {
        limitMs: 30_000,
      });
      // The "database restart" finishes: something now listens on the port and forwards to the server.
      proxy = createServer((client) => {
        const server = tcpConnect(Number(ADMIN_URL.port || 5432), ADMIN_URL.hostname);
        client.pipe(server).pipe(client);
        client.on('error', () => server.destroy());
        server.on('error', () => client.destroy());
      });
      await new Promise((resolve) => proxy.listen(port, '127.0.0.1', resolve));
      const done = await waiting.done;
      assert.is(done.code, 0, done.output);
      assert.match(done.stdout, /↑ 001 base/);
      assert.equal(await ledgerVersions(p.db), [1]);

      const closed = new URL(p.db.url);
      closed.host = `127.0.0.1:${await freePort()}`;
      const never = await startCli(['status', '--wait', '2'], p.cwd, closed.toString()).done;
      assert.is(never.code, 4, never.output);
      assert.match(never.stderr, /does not answer yet; retrying for up to 2 s/);
      assert.match(never.stderr, /^error: could not connect to postgres:\/\/\S+: connection refused/m);
      const bad = p.cli('status', '--wait', 'a-while');
      assert.is(bad.code, 2, bad.output);
    } finally {
      await new Promise((resolve) => (proxy ? proxy.close(resolve) : resolve()));
      await dispose(p);
    }
  },
);

for (const dialect of ['sqlite', 'postgres']) {
  options(`${dialect}: status --history lists every up, down, force and failed attempt with its error`, async () => {
    const p = await project(dialect, {
      ...BASE,
      '002_more.sql': 'CREATE TABLE more_t (a INTEGER);\n',
      '002_more_rollback.sql': 'DROP TABLE more_t;\n',
      '003_broken.sql': 'CREATE TABLE broken (a INTEGER);\nINSERT INTO broken (a) VALUES (nope);\n',
      '003_broken_rollback.sql': 'DROP TABLE broken;\n',
    });
    try {
      const empty = p.cli('status', '--history');
      assert.is(empty.code, 0, empty.output);
      assert.match(empty.stdout, /no history yet/);
      assert.is(p.cli('migrate').code, 1);
      assert.is(p.cli('rollback').code, 0);
      assert.is(p.cli('force', '2', '--yes').code, 0);

      const r = p.cli('status', '--history');
      assert.is(r.code, 0, r.output);
      const lines = r.stdout.split('\n').filter((line) => /^\d{4}-\d\d-\d\d/.test(line));
      const summary = lines.map((line) =>
        line
          .split(/\s{2,}/)
          .slice(1, 5)
          .join(' '),
      );
      assert.equal(summary, [
        'up 001 base ok',
        'up 002 more ok',
        'up 003 broken failed',
        'down 002 more ok',
        'force 002 more ok',
      ]);
      assert.match(lines[2], /nope/, 'the failed attempt shows its error');

      const json = p.cli('status', '--history', '--json');
      assert.is(json.code, 0, json.output);
      const { entries } = JSON.parse(json.stdout);
      assert.equal(
        entries.map((e) => [e.action, e.version, e.outcome]),
        [
          ['up', 1, 'ok'],
          ['up', 2, 'ok'],
          ['up', 3, 'failed'],
          ['down', 2, 'ok'],
          ['force', 2, 'ok'],
        ],
      );
      assert.match(entries[2].error, /nope/);
      assert.ok(
        entries.every((e) => e.at && e.appliedBy),
        'each entry says when and who',
      );
      assert.ok(entries[0].checksum && entries[0].checksum.length === 64, "an up records its file's checksum");
    } finally {
      await dispose(p);
    }
  });
}

options.run();

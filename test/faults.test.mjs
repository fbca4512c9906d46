// Faults from outside the migrations: a connection cut mid-migration, SIGINT and SIGTERM, a run lock
// taken over or held by another mode, a no-transaction migration still running, a SQLite migrate and
// rollback at the same time, a full SQLite database. Each ends in an `error:` line naming the fault,
// a documented exit code, an `interrupted` history row (never `failed` for a fine migration), the lock
// released, and a state the next run converges from. The long, many-point runs are `npm run faults`.
import { existsSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BASE, dispose, ledgerVersions, poll, project, sleepingBackend, startCli } from './helpers.mjs';

/** Runs for a few seconds on SQLite: long enough to be caught in the middle. */
const SQLITE_LONG =
  'SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT x FROM c)';
const LONG = { postgres: 'SELECT pg_sleep(20);', sqlite: `${SQLITE_LONG};` };
const LOCK_TABLE = 'schema_version_lock';

/** Version 1 and a long version 2 that creates a table first: caught mid-way, nothing of it may stay. */
function longSecond(dialect, { noTransaction = false } = {}) {
  const head = noTransaction ? '-- tidemark:no-transaction\n' : '';
  return {
    ...BASE,
    '002_long.sql': `${head}CREATE TABLE half (a INTEGER);\n${LONG[dialect]}\n`,
    '002_long_rollback.sql': 'DROP TABLE half;\n',
  };
}

/**
 * Starts `migrate` (or args) with version 1 applied first, and resolves once it is inside version 2's
 * long statement: PostgreSQL shows the sleep; SQLite has its lock file and, in the transaction, its
 * journal, or outside one the table committed before the long statement.
 */
async function startInsideLong(p, args = ['migrate']) {
  assert.is(p.cli('migrate', '1').code, 0);
  const runner = startCli(args, p.cwd, p.db.url);
  running.add(runner);
  if (p.db.dialect === 'postgres') {
    await poll('the runner to sleep in 002', () => sleepingBackend(p.db, 'pg_sleep(20)'));
  } else {
    const inside = async () =>
      existsSync(`${p.db.file}.tidemark-lock`) &&
      (existsSync(`${p.db.file}-journal`) || (await p.db.tables().catch(() => [])).includes('half'));
    await poll('the runner to be inside 002', inside, { everyMs: 50, limitMs: 20_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.is(runner.child.exitCode, null, `the runner is still running:\n${runner.stdout}${runner.stderr}`);
  return runner;
}

/** Runners a failed test left behind are killed, so none spins on after it. */
const running = new Set();
async function killRunners() {
  for (const runner of running) {
    if (runner.child.exitCode === null && runner.child.signalCode === null) runner.child.kill('SIGKILL');
    await runner.done;
  }
  running.clear();
}

/** No stack trace and no "unexpected failure" reached the user. */
function assertClean(result) {
  assert.not.match(result.output, /^\s+at .+:\d+:\d+\)?$/m, result.output);
  assert.not.match(result.output, /TypeError|unexpected failure|fix the SQL/, result.output);
}

async function history(db) {
  return (await db.query('select version, outcome from schema_version_history order by id')).map((h) => [
    Number(h.version),
    h.outcome,
  ]);
}

/** The run lock is released: no PostgreSQL lock row, no SQLite lock file. */
async function assertUnlocked(p) {
  if (p.db.dialect === 'sqlite')
    assert.not.ok(existsSync(`${p.db.file}.tidemark-lock`), 'the SQLite lock file is gone');
  else if ((await p.db.tables()).includes(LOCK_TABLE))
    assert.equal(await p.db.query(`select holder from ${LOCK_TABLE}`), [], 'no lock row is left');
}

/** The next run applies the rest and exits 0. */
async function _assertConverges(p, versions) {
  const again = p.cli('migrate');
  assert.is(again.code, 0, again.output);
  assert.equal(await ledgerVersions(p.db), versions);
}

// ---- connection lost ------------------------------------------------------------------------------
const lost = suite('connection lost mid-migration (PostgreSQL)');

for (const lock of ['advisory', 'table']) {
  lost(
    `--lock ${lock}: pg_terminate_backend is exit 5 naming the loss, an interrupted history row, the lock released`,
    async () => {
      const p = await project('postgres', longSecond('postgres'));
      try {
        const runner = await startInsideLong(p, ['migrate', '--lock', lock]);
        await p.db.query(
          `select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and application_name = 'tidemark'`,
        );
        const r = await runner.done;
        assert.is(r.code, 5, r.output);
        assert.match(r.stderr, /^error: lost the connection to postgres:\/\/\S+ during the run: /m);
        assert.match(r.stderr, /^hint: .*the database is consistent: run again/m);
        assertClean(r);
        assert.equal(await ledgerVersions(p.db), [1]);
        assert.not.ok((await p.db.tables()).includes('half'), 'the server rolled version 2 back');
        assert.equal(
          await history(p.db),
          [
            [1, 'ok'],
            [2, 'interrupted'],
          ],
          'written through a new connection',
        );
        await assertUnlocked(p);
        await p.db.query(`select 1`); // the test's own connection survived the terminate of tidemark's sessions
      } finally {
        await killRunners();
        await dispose(p);
      }
    },
  );
}

lost(
  'a runner whose connection is closed while it waits for the lock exits 5 naming the loss, no stack trace',
  async () => {
    const p = await project('postgres', longSecond('postgres'));
    try {
      const holder = await startInsideLong(p);
      const holderPid = await sleepingBackend(p.db, 'pg_sleep(20)');
      const waiter = startCli(['migrate', '--lock-timeout', '30'], p.cwd, p.db.url);
      running.add(waiter);
      const waiting = `select pid from pg_stat_activity
      where datname = current_database() and application_name = 'tidemark' and pid <> $1`;
      await poll('the waiter to connect', async () => (await p.db.query(waiting, [holderPid])).length > 0);
      // Between its lock polls the waiter's connection is idle: the close reaches it before any query fails.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await p.db.query(`select pg_terminate_backend(pid) from (${waiting}) w`, [holderPid]);
      const r = await waiter.done;
      assert.is(r.code, 5, r.output);
      assert.match(r.stderr, /^error: lost the connection to postgres:\/\/\S+ during the run: /m);
      assertClean(r);
      holder.child.kill('SIGINT');
      assert.is((await holder.done).code, 130);
      assert.equal(await ledgerVersions(p.db), [1]);
    } finally {
      await killRunners();
      await dispose(p);
    }
  },
);

lost.run();

// ---- signals --------------------------------------------------------------------------------------
const signals = suite('SIGINT and SIGTERM mid-migration');

for (const [dialect, signal, code] of [
  ['postgres', 'SIGTERM', 143],
  ['postgres', 'SIGINT', 130],
  ['sqlite', 'SIGTERM', 143],
  ['sqlite', 'SIGINT', 130],
]) {
  signals(
    `${dialect}: ${signal} cancels the running statement, rolls back, records interrupted, unlocks, exits ${code}`,
    async () => {
      const p = await project(dialect, longSecond(dialect));
      try {
        const args = dialect === 'postgres' ? ['migrate', '--lock', 'table'] : ['migrate'];
        const runner = await startInsideLong(p, args);
        const sent = Date.now();
        runner.child.kill(signal);
        const r = await runner.done;
        assert.ok(Date.now() - sent < 5000, 'the statement was cancelled, not waited for');
        assert.is(r.code, code, r.output);
        assert.match(
          r.stderr,
          new RegExp(`^error: interrupted by ${signal}: the running migration was cancelled and rolled back$`, 'm'),
        );
        assertClean(r);
        assert.equal(await ledgerVersions(p.db), [1]);
        assert.not.ok((await p.db.tables()).includes('half'));
        assert.equal(await history(p.db), [
          [1, 'ok'],
          [2, 'interrupted'],
        ]);
        await assertUnlocked(p);
      } finally {
        await killRunners();
        await dispose(p);
      }
    },
  );
}

/** Version v as a migration that takes no time: it creates table quick<v>. */
const quick = (v) => ({
  [`00${v}_quick.sql`]: `CREATE TABLE quick${v} (a INTEGER);\n`,
  [`00${v}_quick_rollback.sql`]: `DROP TABLE quick${v};\n`,
});

// SQLite commits quick migrations in groups. A signal in a group's last migration keeps the earlier
// ones, applied and reported, whether the interrupted statement is a SELECT (SQLite keeps the
// transaction) or an INSERT (SQLite rolls the whole transaction back, and the group is run again).
for (const [kind, long] of [
  ['SELECT', `${SQLITE_LONG};`],
  ['INSERT', `INSERT INTO half ${SQLITE_LONG.replace('count(*)', 'x')} WHERE x < 0;`],
]) {
  signals(`sqlite: SIGTERM in a long ${kind} keeps the quick migrations run just before it`, async () => {
    const p = await project('sqlite', {
      ...BASE,
      ...quick(2),
      ...quick(3),
      '004_long.sql': `CREATE TABLE half (a INTEGER);\n${long}\n`,
      '004_long_rollback.sql': 'DROP TABLE half;\n',
    });
    try {
      const runner = startCli(['migrate'], p.cwd, p.db.url);
      running.add(runner);
      await poll('the runner to be inside 004', () => existsSync(`${p.db.file}-journal`), {
        everyMs: 20,
        limitMs: 20_000,
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      runner.child.kill('SIGTERM');
      const r = await runner.done;
      assert.is(r.code, 143, r.output);
      assertClean(r);
      assert.match(r.stdout, /^↑ 001 base .*\n↑ 002 quick .*\n↑ 003 quick .*\n✗ 004 long$/m);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3]);
      const tables = await p.db.tables();
      assert.ok(tables.includes('quick3') && !tables.includes('half'), tables.join(' '));
      assert.equal(await history(p.db), [
        [1, 'ok'],
        [2, 'ok'],
        [3, 'ok'],
        [4, 'interrupted'],
      ]);
      await assertUnlocked(p);
    } finally {
      await killRunners();
      await dispose(p);
    }
  });
}

signals(
  'sqlite: quick migrations before a long one are committed and reported while it runs; kill -9 keeps them',
  async () => {
    const p = await project('sqlite', {
      ...BASE,
      ...quick(2),
      '003_long.sql': `CREATE TABLE half (a INTEGER);\n${SQLITE_LONG};\n`,
      '003_long_rollback.sql': 'DROP TABLE half;\n',
    });
    try {
      const runner = startCli(['migrate'], p.cwd, p.db.url);
      running.add(runner);
      await poll('002 to be reported', () => runner.stdout.includes('↑ 002 quick'), { everyMs: 20, limitMs: 20_000 });
      assert.is(runner.child.exitCode, null, 'the long migration still runs');
      assert.equal(await ledgerVersions(p.db), [1, 2], 'what is reported is committed');
      runner.child.kill('SIGKILL');
      await runner.done;
      assert.equal(await ledgerVersions(p.db), [1, 2]);
      assert.not.ok((await p.db.tables()).includes('half'));
    } finally {
      await killRunners();
      await dispose(p);
    }
  },
);

signals(
  'a signal during a no-transaction migration leaves it dirty and says so; status shows it, force resolves it',
  async () => {
    const p = await project('postgres', longSecond('postgres', { noTransaction: true }));
    try {
      const runner = await startInsideLong(p);
      runner.child.kill('SIGTERM');
      const r = await runner.done;
      assert.is(r.code, 143, r.output);
      assert.match(r.stderr, /^error: interrupted by SIGTERM/m);
      assert.match(
        r.stderr,
        /^hint: sql\/002_long\.sql runs outside a transaction, so it may have partly run; version 002 is now marked dirty/m,
      );
      assertClean(r);
      assert.equal(await history(p.db), [
        [1, 'ok'],
        [2, 'interrupted'],
      ]);
      const refused = p.cli('migrate');
      assert.is(refused.code, 2, refused.output);
      assert.match(refused.stderr, /version 002 \(long\) is dirty/);
    } finally {
      await killRunners();
      await dispose(p);
    }
  },
);

signals.run();

// ---- SQLite commit groups -------------------------------------------------------------------------
const groups = suite('SQLite commit groups: a failure at COMMIT is still the failing migration alone');

groups('a deferred foreign key violated by 003 fails 003 alone; 002 stays applied, 004 never runs', async () => {
  const p = await project('sqlite', {
    // Outside a transaction the pragma holds for the connection, so the later migrations check keys.
    '001_keys.sql': '-- tidemark:no-transaction\nPRAGMA foreign_keys = ON;\n',
    '001_keys_rollback.sql': 'SELECT 1;\n',
    '002_tables.sql':
      'CREATE TABLE parent (id INTEGER PRIMARY KEY);\n' +
      'CREATE TABLE child (pid INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);\n',
    '002_tables_rollback.sql': 'DROP TABLE child;\nDROP TABLE parent;\n',
    '003_orphan.sql': 'INSERT INTO child (pid) VALUES (1);\n',
    '003_orphan_rollback.sql': 'DELETE FROM child;\n',
    '004_later.sql': 'CREATE TABLE later (a INTEGER);\n',
    '004_later_rollback.sql': 'DROP TABLE later;\n',
  });
  try {
    const r = p.cli('migrate');
    assert.is(r.code, 1, r.output);
    assertClean(r);
    assert.match(r.stderr, /^error: sql\/003_orphan\.sql: .*FOREIGN KEY constraint failed/m);
    assert.match(r.stdout, /^↑ 002 tables .*\n✗ 003 orphan$/m);
    assert.not.match(r.stdout, /004/);
    assert.equal(await ledgerVersions(p.db), [1, 2]);
    const tables = await p.db.tables();
    assert.ok(tables.includes('child') && !tables.includes('later'), tables.join(' '));
    assert.equal(await p.db.query('select count(*) as n from child'), [{ n: 0 }]);
    assert.equal(await history(p.db), [
      [1, 'ok'],
      [2, 'ok'],
      [3, 'failed'],
    ]);
  } finally {
    await dispose(p);
  }
});

groups.run();

// ---- runners that overlap -------------------------------------------------------------------------
const overlap = suite('runners that overlap: lock modes, --lock none, in progress or crashed');

overlap('PostgreSQL: --lock advisory and --lock table exclude each other, each way', async () => {
  const p = await project('postgres', longSecond('postgres'));
  try {
    for (const [first, second, holder] of [
      ['advisory', 'table', /a runner with --lock advisory holds it/],
      ['table', 'advisory', /held by pid \d+ on host \S+/],
    ]) {
      const runner = await startInsideLong(p, ['migrate', '--lock', first]);
      const other = p.cli('migrate', '--lock', second, '--lock-timeout', '1');
      assert.is(other.code, 4, `${first} then ${second}:\n${other.output}`);
      assert.match(other.stderr, /^error: could not get the migration lock on \S+ within 1 s: /m);
      assert.match(other.stderr, holder);
      runner.child.kill('SIGINT');
      assert.is((await runner.done).code, 130);
    }
    assert.equal(await ledgerVersions(p.db), [1]);
    assert.equal(await history(p.db), [
      [1, 'ok'],
      [2, 'interrupted'],
      [2, 'interrupted'],
    ]);
  } finally {
    await killRunners();
    await dispose(p);
  }
});

overlap(
  'PostgreSQL --lock none: the runner that finds its ledger row taken exits 4 "another runner", no failed row',
  async () => {
    const p = await project('postgres', {
      ...BASE,
      '002_count.sql': 'INSERT INTO base VALUES (2);\nSELECT pg_sleep(1);\n',
      '002_count_rollback.sql': 'DELETE FROM base WHERE a = 2;\n',
    });
    try {
      assert.is(p.cli('migrate', '1').code, 0);
      const runners = [0, 1].map(() => startCli(['migrate', '--lock', 'none'], p.cwd, p.db.url));
      const results = await Promise.all(runners.map((r) => r.done));
      const codes = results.map((r) => r.code).sort();
      assert.equal(codes, [0, 4], results.map((r) => r.output).join('\n---\n'));
      const loser = results.find((r) => r.code === 4);
      assert.match(loser.stderr, /^error: version 002 was recorded in \S+ by another runner while this one ran it$/m);
      assert.match(loser.stderr, /^hint: this run rolled its copy back, so the version ran once/m);
      assertClean(loser);
      assert.equal(
        (await p.db.query('select a from base')).map((r) => r.a),
        [2],
        'the migration ran once',
      );
      assert.equal(await history(p.db), [
        [1, 'ok'],
        [2, 'ok'],
        [2, 'interrupted'],
      ]);
    } finally {
      await killRunners();
      await dispose(p);
    }
  },
);

for (const dialect of ['postgres', 'sqlite']) {
  overlap(
    `${dialect}: a no-transaction migration still running is "in progress" to others; once killed, "did not finish"`,
    async () => {
      const p = await project(dialect, longSecond(dialect, { noTransaction: true }));
      try {
        const runner = await startInsideLong(p);
        const waiting = p.cli('migrate', '--lock-timeout', '1');
        assert.is(waiting.code, 4, waiting.output);
        assert.match(waiting.stderr, /could not get the migration lock .* held by pid \d+/);
        assert.not.match(waiting.output, /did not finish|force/);
        const version = p.cli('version');
        assert.is(version.code, 4, version.output);
        assert.match(
          version.stderr,
          /^error: version 002 \(long\) is being applied by a run in progress \(.*pid \d+.*\); it has not crashed$/m,
        );
        assert.match(version.stderr, /^hint: wait for that run to finish, then run again$/m);

        runner.child.kill('SIGKILL');
        await runner.done;
        await poll('the killed run to be seen as ended', () => p.cli('version').code === 2, { limitMs: 20_000 });
        const crashed = p.cli('migrate');
        assert.is(crashed.code, 2, crashed.output);
        assert.match(
          crashed.stderr,
          /version 002 \(long\) is dirty: a no-transaction migration started and did not finish/,
        );
      } finally {
        await killRunners();
        await dispose(p);
      }
    },
  );
}

overlap('SQLite: a rollback started during a migrate waits for the whole run, never interleaving with it', async () => {
  const p = await project('sqlite', longSecond('sqlite'));
  try {
    const runner = await startInsideLong(p);
    const rollback = p.cli('rollback', '--to', '0', '--lock-timeout', '1');
    assert.is(rollback.code, 4, rollback.output);
    assert.match(
      rollback.stderr,
      /^error: could not get the migration lock on sqlite:\S+ within 1 s: its lock is held by pid \d+ on host \S+ since \S+, a run in progress$/m,
    );
    assert.equal(await ledgerVersions(p.db), [1], 'the rollback undid nothing in the middle of the run');
    runner.child.kill('SIGINT');
    assert.is((await runner.done).code, 130);
    assert.equal(await ledgerVersions(p.db), [1]);
  } finally {
    await killRunners();
    await dispose(p);
  }
});

overlap('SQLite: a lock file whose holder died (kill -9) is taken over at once', async () => {
  const p = await project('sqlite', longSecond('sqlite'));
  try {
    const runner = await startInsideLong(p);
    runner.child.kill('SIGKILL');
    await runner.done;
    assert.ok(existsSync(`${p.db.file}.tidemark-lock`), 'kill -9 left the lock file');
    const again = p.cli('rollback', '--lock-timeout', '2');
    assert.is(again.code, 0, again.output);
    assert.equal(await ledgerVersions(p.db), []);
    await assertUnlocked(p);
  } finally {
    await killRunners();
    await dispose(p);
  }
});

overlap.run();

// ---- SQLite full ----------------------------------------------------------------------------------
const full = suite('SQLite database full');

full('SQLITE_FULL is exit 4 saying the disk is full, not a SQL error; the migration is rolled back', async () => {
  // max_page_count makes SQLite answer SQLITE_FULL exactly as a full disk does (npm run faults uses a small tmpfs).
  const p = await project('sqlite', {
    ...BASE,
    '002_big.sql':
      'PRAGMA max_page_count = 40;\nCREATE TABLE big (a BLOB);\n' +
      'INSERT INTO big SELECT randomblob(4000) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) SELECT x FROM c);\n',
    '002_big_rollback.sql': 'DROP TABLE big;\n',
  });
  try {
    const r = p.cli('migrate');
    assert.is(r.code, 4, r.output);
    assert.match(
      r.stderr,
      /^error: could not write sqlite:\S+: the disk is full \(SQLITE_FULL: database or disk is full\)$/m,
    );
    assert.match(r.stderr, /^hint: the running migration was rolled back; free space/m);
    assertClean(r);
    assert.equal(await ledgerVersions(p.db), [1]);
    assert.not.ok((await p.db.tables()).includes('big'));
    await assertUnlocked(p);
  } finally {
    await killRunners();
    await dispose(p);
  }
});

full.run();

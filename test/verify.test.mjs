// verify and schema against real databases, through the CLI, on both dialects: hand changes after
// migrate, the ledger and file checks, SCHEMA_VERSION, SQL run by hand, and the proof on a scratch
// database that every rollback undoes its migration.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  CLI,
  DIALECTS,
  EXAMPLE_VERSIONS,
  freshDatabase,
  perTestDatabase,
  removeSql,
  runCli,
  writeSql,
} from './helpers.mjs';

/** The difference lines verify prints under a drift or rollback finding. */
const differenceLines = (stdout) =>
  stdout
    .split('\n')
    .filter((l) => /^ {2}[+~-] /.test(l))
    .map((l) => l.trim());
/** The scratch database a run announced on stderr for a purpose: `building the expected schema` or `proving rollbacks`. */
const scratchOf = (stderr, purpose) =>
  new RegExp(`${purpose} on scratch database (\\S+) \\(removed afterwards\\)`).exec(stderr)?.[1];

/** Hand changes a DBA might make after `migrate`, and the exact lines verify must print for each. */
const HAND_CHANGES = {
  'an added column': {
    sql: { sqlite: 'ALTER TABLE users ADD COLUMN phone TEXT', postgres: 'ALTER TABLE users ADD COLUMN phone TEXT' },
    lines: { sqlite: ['+ column users.phone: text'], postgres: ['+ column users.phone: text'] },
  },
  'a dropped index': {
    sql: { sqlite: 'DROP INDEX trades_user_id_idx', postgres: 'DROP INDEX trades_user_id_idx' },
    lines: {
      sqlite: ['- index trades_user_id_idx: on trades (user_id)'],
      postgres: ['- index trades_user_id_idx: on trades btree (user_id)'],
    },
  },
  'a changed default': {
    // SQLite cannot alter a column: the usual table rebuild.
    sql: {
      sqlite: `CREATE TABLE price_cache_new (symbol TEXT PRIMARY KEY, price REAL NOT NULL, fetched_at TEXT NOT NULL DEFAULT '1970-01-01') WITHOUT ROWID;
               INSERT INTO price_cache_new SELECT * FROM price_cache; DROP TABLE price_cache; ALTER TABLE price_cache_new RENAME TO price_cache;`,
      postgres: 'ALTER TABLE user_strategies ALTER COLUMN risk_pct SET DEFAULT 2',
    },
    lines: {
      sqlite: [`~ column price_cache.fetched_at: default CURRENT_TIMESTAMP → default '1970-01-01'`],
      postgres: ['~ column user_strategies.risk_pct: default 1 → default 2'],
    },
  },
  'a new table': {
    sql: {
      sqlite: 'CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT NOT NULL)',
      postgres: 'CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT NOT NULL)',
    },
    lines: { sqlite: ['+ table audit'], postgres: ['+ table audit'] },
  },
  'an altered check constraint': {
    sql: {
      sqlite: `CREATE TABLE trades_new (
                 id TEXT PRIMARY KEY, user_id TEXT REFERENCES users (id) ON DELETE SET NULL, symbol TEXT NOT NULL,
                 side TEXT NOT NULL CHECK (side IN ('buy', 'sell', 'short')), quantity NUMERIC NOT NULL CHECK (quantity > 0),
                 price NUMERIC NOT NULL CHECK (price > 0), executed_at TIMESTAMP NOT NULL);
               INSERT INTO trades_new SELECT * FROM trades; DROP TABLE trades; ALTER TABLE trades_new RENAME TO trades;
               CREATE INDEX trades_user_id_idx ON trades (user_id);`,
      postgres: `ALTER TABLE trades DROP CONSTRAINT trades_side_check, ADD CONSTRAINT trades_side_check CHECK (side IN ('buy', 'sell', 'short'))`,
    },
    lines: {
      // SQLite keeps no constraint names: the old check is gone and a new one is there.
      sqlite: [`- check trades: (side IN ('buy', 'sell'))`, `+ check trades: (side IN ('buy', 'sell', 'short'))`],
      postgres: [
        `~ check trades.trades_side_check: ((side = ANY (ARRAY['buy'::text, 'sell'::text]))) → ((side = ANY (ARRAY['buy'::text, 'sell'::text, 'short'::text])))`,
      ],
    },
  },
  'an added enum label': {
    sql: { postgres: `ALTER TYPE exchange_type ADD VALUE 'bitstamp'` },
    lines: {
      postgres: [
        `~ type exchange_type: enum ('binance', 'kraken', 'coinbase') → enum ('binance', 'kraken', 'coinbase', 'bitstamp')`,
      ],
    },
  },
};

for (const dialect of DIALECTS) {
  const test = suite(`verify [${dialect}]`);
  const ctx = perTestDatabase(test, dialect);
  const last = EXAMPLE_VERSIONS[dialect].at(-1);

  test('an untouched database verifies clean (exit 0), as text and as --json', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    const r = ctx.cli('verify');
    assert.is(r.code, 0, r.output);
    assert.match(r.stdout, `✓ the schema matches the migration files at version ${last}, built on a scratch database`);
    assert.match(r.stdout, '✓ nothing pending');
    assert.match(r.stdout, '✓ every migration has a rollback file');
    assert.is(
      r.stdout.trim().split('\n').at(-1),
      `verified: matches the migration files at version ${last}, built on a scratch database`,
    );
    const json = JSON.parse(ctx.cli('verify', '--json').stdout);
    assert.equal(
      { ok: json.ok, findings: json.findings, version: json.version, reference: json.reference.source },
      { ok: true, findings: [], version: last, reference: 'files' },
    );
  });

  for (const [change, { sql, lines }] of Object.entries(HAND_CHANGES)) {
    if (!sql[dialect]) continue;
    test(`${change} by hand after migrate is reported object by object (exit 3)`, async () => {
      assert.is(ctx.cli('migrate').code, 0);
      await ctx.db.query(sql[dialect]);
      const r = ctx.cli('verify');
      assert.is(r.code, 3, r.output);
      assert.match(
        r.stdout,
        `✗ the schema differs from the migration files at version ${last}, built on a scratch database`,
      );
      assert.equal(differenceLines(r.stdout), lines[dialect]);
      assert.match(
        r.stdout,
        'fix: undo these changes by hand; to keep them instead, undo them here too, put them in a new migration',
      );
      assert.not.match(r.stdout, 'force');
      const json = JSON.parse(ctx.cli('verify', '--json').stdout);
      assert.equal(
        json.findings.map((f) => f.check),
        ['drift'],
      );
      assert.equal(
        json.findings[0].differences.map((d) => d.line),
        lines[dialect],
      );
    });
  }

  test('SCHEMA_VERSION from the environment or .env must equal the version', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    const verify = (env) => runCli(['verify'], { cwd: ctx.cwd, env: { DATABASE_URL: ctx.db.url, ...env } });
    let r = verify({ SCHEMA_VERSION: '99' });
    assert.is(r.code, 3, r.output);
    assert.match(r.stdout, `✗ the database is at version ${last}, but SCHEMA_VERSION expects 99`);
    assert.match(r.stdout, 'no migration file has version 99 here');

    writeFileSync(join(ctx.cwd, '.env'), 'SCHEMA_VERSION=1\n');
    r = verify({});
    assert.is(r.code, 3, r.output);
    assert.match(r.stdout, `✗ the database is at version ${last}, but SCHEMA_VERSION expects 1`);
    assert.match(r.stdout, 'tidemark rollback --to 1');

    r = verify({ SCHEMA_VERSION: String(last) });
    assert.is(r.code, 0, r.output);
    assert.match(r.stdout, `✓ version ${last} is the one SCHEMA_VERSION expects`);
  });

  test('pending, edited, missing, dirty and rollback-less migrations are each a finding', async () => {
    assert.is(ctx.cli('migrate', '2').code, 0);
    writeSql(
      ctx.cwd,
      '001_create_users.sql',
      `${readFileSync(join(ctx.cwd, 'sql', '001_create_users.sql'), 'utf8')}\n-- edited\n`,
    );
    for (const f of [
      '002_user_strategies.postgres.sql',
      '002_user_strategies.sqlite.sql',
      '002_user_strategies_rollback.postgres.sql',
      '002_user_strategies_rollback.sql',
    ]) {
      removeSql(ctx.cwd, f);
    }
    writeSql(ctx.cwd, '005_orders.sql', 'CREATE TABLE orders (id TEXT PRIMARY KEY);\n');
    await ctx.db.query(`update schema_version set dirty = ${dialect === 'postgres' ? 'true' : '1'} where version = 1`);

    const r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    const pending =
      dialect === 'sqlite'
        ? ['003 create_trades', '004 price_cache', '005 orders']
        : ['003 create_trades', '005 orders'];
    assert.match(
      r.stdout,
      `✗ ${pending.length} migrations are pending\n${pending.map((p) => `  ${p}`).join('\n')}\n  fix: run \`tidemark migrate\``,
    );
    assert.match(
      r.stdout,
      '✗ 1 applied version is not in this release: no migration file\n  version 002 (user_strategies): its rollback is stored in the ledger',
    );
    assert.match(
      r.stdout,
      '✗ 1 applied migration file was edited after the migration ran\n  sql/001_create_users.sql: checksum differs',
    );
    assert.match(
      r.stdout,
      '✗ 1 version is dirty: a no-transaction migration started and did not finish\n  version 001 (create_users)',
    );
    assert.match(r.stdout, '✗ 1 migration has no rollback file\n  sql/005_orders.sql: write 005_orders_rollback.sql');
    assert.match(
      r.stdout,
      '✗ the schema was not compared with the migration files: version 2 (user_strategies) is applied but this release has no file to rebuild it from',
    );
    assert.match(r.stdout, 'verify found 6 problems');

    const json = JSON.parse(ctx.cli('verify', '--json').stdout);
    assert.is(json.ok, false);
    assert.equal(
      json.findings.map((f) => [f.check, f.versions]),
      [
        ['pending', dialect === 'sqlite' ? [3, 4, 5] : [3, 5]],
        ['missing-file', [2]],
        ['checksum', [1]],
        ['dirty', [1]],
        ['rollback-file', [5]],
        ['reference', [2]],
      ],
    );
  });

  test('a file the DBA ran by hand with its ledger row is compared like any other; the scratch database is gone afterwards', async () => {
    assert.is(ctx.cli('migrate', '2').code, 0);
    await ctx.db.query(readFileSync(join(ctx.cwd, 'sql', '003_create_trades.sql'), 'utf8'));
    await ctx.db.query(`insert into schema_version (version, migration_name) values (3, 'create_trades')`);

    let r = ctx.cli('verify');
    assert.match(r.stdout, '✓ the schema matches the migration files at version 3, built on a scratch database');
    assert.is(r.code, dialect === 'sqlite' ? 3 : 0, r.output); // SQLite's 004 is still pending
    const scratch = scratchOf(r.stderr, 'building the expected schema');
    assert.ok(scratch, r.stderr);
    if (dialect === 'postgres')
      assert.equal(
        await ctx.db.query('select datname from pg_database where datname = $1', [new URL(scratch).pathname.slice(1)]),
        [],
      );
    else assert.not.ok(existsSync(scratch.slice('sqlite:'.length)), 'the scratch file is removed');

    await ctx.db.query('ALTER TABLE trades ADD COLUMN fee NUMERIC');
    r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.match(r.stdout, '✗ the schema differs from the migration files at version 3, built on a scratch database');
    assert.equal(differenceLines(r.stdout), ['+ column trades.fee: numeric']);
  });

  test('the same files give the same schema on another database; after rollback and force, verify compares with the files', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    const schema = JSON.parse(ctx.cli('schema', '--json').stdout);
    const other = await freshDatabase(dialect, ctx.cwd);
    try {
      const onOther = (...args) => runCli(args, { cwd: ctx.cwd, env: { DATABASE_URL: other.url } });
      assert.is(onOther('migrate').code, 0);
      assert.equal(JSON.parse(onOther('schema', '--json').stdout), schema);
      assert.is(onOther('schema').stdout, ctx.cli('schema').stdout);
    } finally {
      await other.close();
    }

    assert.is(ctx.cli('rollback').code, 0);
    let r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.equal(
      r.stdout.split('\n').filter((l) => l.startsWith('✗')),
      ['✗ 1 migration is pending'],
      `only pending: the schema matches version ${last - 1}`,
    );

    // force records `last` without running it: the files say its objects must be there, and they are not.
    assert.is(ctx.cli('force', String(last), '--yes').code, 0);
    r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.match(differenceLines(r.stdout)[0], /^- table (price_cache|trades)$/);
    // The hand fix force is meant for: the file's SQL run by hand. Now the database is what the files say.
    await ctx.db.query(
      readFileSync(
        join(ctx.cwd, 'sql', dialect === 'postgres' ? '003_create_trades.sql' : '004_price_cache.sqlite.sql'),
        'utf8',
      ),
    );
    r = ctx.cli('verify');
    assert.is(r.code, 0, r.output);
  });

  test("schema prints the normalized schema as text, without tidemark's own tables", async () => {
    assert.is(ctx.cli('migrate').code, 0);
    const r = ctx.cli('schema');
    assert.is(r.code, 0, r.output);
    const expected =
      dialect === 'postgres'
        ? [
            `type exchange_type enum ('binance', 'kraken', 'coinbase')`,
            'sequence user_strategies_id_seq bigint start 1 increment 1 owned by user_strategies.id',
            'table users',
            '  column id text not null',
            '  column email text not null',
            '  column display_name text',
            '  column created_at timestamp without time zone not null default CURRENT_TIMESTAMP',
            '  primary key users_pkey (id)',
            '  unique users_email_key (email)',
            '  foreign key trades_user_id_fkey (user_id) REFERENCES users(id) ON DELETE SET NULL',
            'index trades_user_id_idx on trades btree (user_id)',
          ]
        : [
            'table users',
            '  column id text',
            '  column email text not null',
            '  column created_at timestamp not null default CURRENT_TIMESTAMP',
            '  primary key (id)',
            '  unique (email)',
            "  check (side IN ('buy', 'sell'))",
            '  foreign key (user_id) REFERENCES users(id) ON DELETE SET NULL',
            'index trades_user_id_idx on trades (user_id)',
          ];
    const lines = r.stdout.split('\n');
    for (const line of expected) assert.ok(lines.includes(line), `${line}\n---\n${r.stdout}`);
    assert.not.match(r.stdout, 'schema_version');
  });

  test('verify --rollbacks proves the example set on a scratch database that is gone afterwards', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    const r = ctx.cli('verify', '--rollbacks');
    assert.is(r.code, 0, r.output);
    const n = EXAMPLE_VERSIONS[dialect].length;
    assert.match(
      r.stdout,
      `✓ every rollback checked undoes its migration (${n} rollbacks proven on a scratch database)`,
    );
    assert.match(r.stdout, `rollbacks: ${n} proven, 0 lossy, 0 failed, 0 irreversible, 0 unchecked`);
    const scratch = scratchOf(r.stderr, 'proving rollbacks');
    assert.ok(scratch, r.stderr);
    if (dialect === 'postgres') {
      const name = new URL(scratch).pathname.slice(1);
      assert.match(name, /^tidemark_scratch_[0-9a-f]+$/);
      assert.equal(await ctx.db.query('select datname from pg_database where datname = $1', [name]), []);
    } else {
      assert.not.ok(existsSync(scratch.slice('sqlite:'.length)), 'the scratch file is removed');
    }
    assert.equal(JSON.parse(ctx.cli('verify', '--rollbacks', '--json').stdout).rollbacks.counts, {
      proven: n,
      lossy: 0,
      failed: 0,
      irreversible: 0,
      unchecked: 0,
    });
  });

  test('verify --rollbacks names an index a rollback forgets, and what a rollback removes too much', async () => {
    writeSql(ctx.cwd, '005_name_index.sql', 'CREATE INDEX users_display_name_idx ON users (display_name);\n');
    // A statement that undoes nothing (a comment-only rollback would say "irreversible on purpose").
    writeSql(ctx.cwd, '005_name_index_rollback.sql', '-- forgot DROP INDEX users_display_name_idx\nSELECT 1;\n');
    let r = ctx.cli('verify', '--rollbacks');
    assert.is(r.code, 3, r.output);
    assert.match(
      r.stdout,
      '✗ the rollback of 005 name_index does not restore the schema it started from (+ left behind, - removed, ~ changed)',
    );
    assert.equal(differenceLines(r.stdout), [
      `+ index users_display_name_idx: on users ${dialect === 'postgres' ? 'btree ' : ''}(display_name)`,
    ]);
    assert.match(r.stdout, 'fix: make sql/005_name_index_rollback.sql undo everything sql/005_name_index.sql does');
    assert.match(
      r.stdout,
      `rollbacks: ${EXAMPLE_VERSIONS[dialect].length} proven, 1 lossy, 0 failed, 0 irreversible, 0 unchecked`,
    );

    writeSql(ctx.cwd, '005_name_index.sql', 'ALTER TABLE users ADD COLUMN nickname TEXT;\n');
    writeSql(
      ctx.cwd,
      '005_name_index_rollback.sql',
      'ALTER TABLE users DROP COLUMN nickname;\nALTER TABLE users DROP COLUMN display_name;\n',
    );
    r = ctx.cli('verify', '--rollbacks');
    assert.is(r.code, 3, r.output);
    assert.equal(differenceLines(r.stdout), ['- column users.display_name: text']);
  });

  if (dialect === 'postgres') {
    test('verify --rollbacks catches a rollback that forgets DROP TYPE, and carries on from a fresh scratch database', async () => {
      writeSql(ctx.cwd, '002_user_strategies_rollback.postgres.sql', 'DROP TABLE user_strategies;\n');
      const r = ctx.cli('verify', '--rollbacks');
      assert.is(r.code, 3, r.output);
      assert.match(r.stdout, '✗ the rollback of 002 user_strategies does not restore the schema it started from');
      assert.equal(differenceLines(r.stdout), [`+ type exchange_type: enum ('binance', 'kraken', 'coinbase')`]);
      assert.match(r.stdout, 'rollbacks: 2 proven, 1 lossy, 0 failed, 0 irreversible, 0 unchecked');
      const fast = ctx.cli('verify', '--rollbacks', '--fail-fast');
      assert.is(fast.code, 3, fast.output);
      assert.match(fast.stdout, 'rollbacks: 1 proven, 1 lossy, 0 failed, 0 irreversible, 1 unchecked');
      assert.match(fast.stdout, '  003 create_trades: unchecked: --fail-fast stopped at 002 user_strategies');
    });

    test('Ctrl-C during verify --rollbacks still drops the scratch database', async () => {
      writeSql(ctx.cwd, '005_slow.sql', 'SELECT pg_sleep(30);\n');
      writeSql(ctx.cwd, '005_slow_rollback.sql', 'SELECT 1;\n');
      const env = { ...process.env, NO_COLOR: '1', DATABASE_URL: ctx.db.url };
      const child = spawn(process.execPath, [CLI, 'verify', '--rollbacks'], { cwd: ctx.cwd, env });
      let stderr = '';
      child.stderr.on('data', (chunk) => (stderr += chunk));
      const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        let name;
        for (let waited = 0; waited < 30_000; waited += 200) {
          const scratch = scratchOf(stderr, 'proving rollbacks');
          name = scratch && new URL(scratch).pathname.slice(1);
          if (
            name &&
            (
              await ctx.db.query(`select 1 from pg_stat_activity where datname = $1 and query like '%pg_sleep%'`, [
                name,
              ])
            ).length > 0
          )
            break;
          await sleep(200);
        }
        assert.ok(name, stderr);
        assert.equal(
          (await ctx.db.query('select datname from pg_database where datname = $1', [name])).length,
          1,
          'the scratch database exists while 005 runs',
        );
        child.kill('SIGINT');
        assert.is(await exited, 130, stderr);
        assert.equal(await ctx.db.query('select datname from pg_database where datname = $1', [name]), []);
      } finally {
        // A failed assertion must not leave the run going after its database is dropped.
        if (child.exitCode === null) {
          child.kill('SIGINT');
          await exited;
        }
      }
    });
  }

  test.run();
}

// verify never lies: the paths of issue 12 that made it say "verified" about a schema the files do
// not produce, on both dialects, through the CLI. The expected schema is always the files of the
// ledger's applied versions, in apply order, built on a scratch database.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  BASE,
  DIALECTS,
  EXAMPLE_VERSIONS,
  dispose,
  ledgerVersions,
  perTestDatabase,
  project,
  runCli,
  writeSql,
} from './helpers.mjs';

/** The difference lines verify prints under a drift finding. */
const differenceLines = (stdout) =>
  stdout
    .split('\n')
    .filter((l) => /^ {2}[+~-] /.test(l))
    .map((l) => l.trim());
const checks = (stdout) => JSON.parse(stdout).findings.map((f) => f.check);

const FORWARD_FILES = {
  postgres: ['001_create_users.sql', '002_user_strategies.postgres.sql', '003_create_trades.sql'],
  sqlite: [
    '001_create_users.sql',
    '002_user_strategies.sqlite.sql',
    '003_create_trades.sql',
    '004_price_cache.sqlite.sql',
  ],
};

for (const dialect of DIALECTS) {
  const test = suite(`verify tells the truth [${dialect}]`);
  const ctx = perTestDatabase(test, dialect);
  const last = EXAMPLE_VERSIONS[dialect].at(-1);
  const TRUE = dialect === 'postgres' ? 'true' : '1';

  test('a clean database: the success line and --json name the reference, the files at the version', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    const r = ctx.cli('verify');
    assert.is(r.code, 0, r.output);
    const reference = `the migration files at version ${last}, built on a scratch database`;
    assert.match(r.stdout, `✓ the schema matches ${reference}`);
    assert.is(r.stdout.trim().split('\n').at(-1), `verified: matches ${reference}`);
    const json = JSON.parse(ctx.cli('verify', '--json').stdout);
    assert.equal(json.reference, { source: 'files', description: reference, versions: EXAMPLE_VERSIONS[dialect] });
    assert.is(ctx.cli('verify', '--from-files').code, 0, 'the flag names the default');
    if (dialect === 'postgres') {
      // --scratch-url on a server where the user may create databases: a new one there, dropped afterwards.
      const onServer = ctx.cli('verify', '--scratch-url', process.env.TEST_DATABASE_URL);
      assert.is(onServer.code, 0, onServer.output);
      const name = /scratch database postgres:\/\/\S+\/(tidemark_scratch_[0-9a-f]+) \(removed afterwards\)/.exec(
        onServer.stderr,
      )?.[1];
      assert.ok(name, onServer.stderr);
      assert.equal(await ctx.db.query('select datname from pg_database where datname = $1', [name]), []);
    }
  });

  test('drift survives the next migrate: a hand change before a run stays a finding after it', async () => {
    assert.is(ctx.cli('migrate', String(last - 1)).code, 0);
    await ctx.db.query('ALTER TABLE users ADD COLUMN phone TEXT');
    assert.is(ctx.cli('verify').code, 3);
    assert.is(ctx.cli('migrate').code, 0);
    const r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.match(
      r.stdout,
      `✗ the schema differs from the migration files at version ${last}, built on a scratch database`,
    );
    assert.equal(differenceLines(r.stdout), ['+ column users.phone: text']);
    assert.not.match(r.stdout, 'force', 'force does not change what is expected: it is no fix for drift');
    assert.not.match(r.output, 'verified');
  });

  test('baseline then migrate: a hand-built schema that differs from the files stays drift', async () => {
    for (const name of FORWARD_FILES[dialect].slice(0, 2))
      await ctx.db.query(readFileSync(join(ctx.cwd, 'sql', name), 'utf8'));
    await ctx.db.query('ALTER TABLE users ADD COLUMN phone TEXT');
    assert.is(ctx.cli('baseline', '2').code, 0);
    assert.is(ctx.cli('migrate').code, 0);
    const r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.equal(differenceLines(r.stdout), ['+ column users.phone: text']);
  });

  test('force 2 --yes on an empty database: verify exits 3, the tables are missing', async () => {
    assert.is(ctx.cli('force', '2', '--yes').code, 0);
    const r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    const missing = ['- table user_strategies', '- table users'];
    if (dialect === 'postgres') missing.unshift(`- type exchange_type: enum ('binance', 'kraken', 'coinbase')`);
    assert.equal(differenceLines(r.stdout), missing);
    assert.match(r.stdout, '✗ the schema differs from the migration files at version 2, built on a scratch database');
  });

  test('force after a hand change: verify still compares with the files, so the change shows', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    await ctx.db.query('DROP INDEX trades_user_id_idx');
    assert.is(ctx.cli('force', String(last), '--yes').code, 0);
    const r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.equal(differenceLines(r.stdout).length, 1);
    assert.match(differenceLines(r.stdout)[0], '- index trades_user_id_idx');
  });

  test('no snapshot table is written any more; an old one is ignored, not reported as drift', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    assert.not.ok((await ctx.db.tables()).includes('schema_version_schema'));
    // What older versions stored: a snapshot that holds a hand change as if it were expected.
    await ctx.db.query('CREATE TABLE schema_version_schema (version integer primary key, snapshot text not null)');
    await ctx.db.query(`insert into schema_version_schema values (${last}, '{"format":1,"schema":{"tables":[]}}')`);
    assert.is(ctx.cli('verify').code, 0);
    await ctx.db.query('ALTER TABLE users ADD COLUMN phone TEXT');
    const r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.equal(differenceLines(r.stdout), ['+ column users.phone: text']);
  });

  test('a duplicated ledger version (unique constraint dropped by hand) is a finding; migrate, rollback, force and version refuse, status warns', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    if (dialect === 'postgres') {
      await ctx.db.query('ALTER TABLE schema_version DROP CONSTRAINT schema_version_version_key');
    } else {
      const [{ sql }] = await ctx.db.query(`select sql from sqlite_schema where name = 'schema_version'`);
      const unconstrained = sql
        .replace('"schema_version"', 'schema_version_new')
        .replace('not null unique', 'not null');
      assert.is.not(unconstrained, sql);
      await ctx.db.query(`${unconstrained}; insert into schema_version_new select * from schema_version;
        drop table schema_version; alter table schema_version_new rename to schema_version;`);
    }
    await ctx.db.query(
      `insert into schema_version (version, migration_name, checksum, dirty) select version, migration_name, checksum, dirty from schema_version where version = 1`,
    );
    assert.equal(await ledgerVersions(ctx.db), [1, 1, ...EXAMPLE_VERSIONS[dialect].slice(1)]);

    const r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.match(r.stdout, '✗ the ledger is not one a serial run could have written');
    assert.match(r.stdout, '  version 001 is recorded 2 times');
    assert.ok(checks(ctx.cli('verify', '--json').stdout).includes('ledger'));
    for (const command of [['migrate'], ['rollback'], ['force', '1', '--yes'], ['version']]) {
      const refused = ctx.cli(...command);
      assert.is(refused.code, 2, `${command}: ${refused.output}`);
      assert.match(refused.stderr, 'version 001 is recorded 2 times');
    }
    const status = ctx.cli('status');
    assert.is(status.code, 0, status.output);
    assert.match(
      status.stderr,
      'warning: the ledger is not one a serial run could have written: version 001 is recorded 2 times',
    );
    const json = JSON.parse(ctx.cli('status', '--json').stdout.trim().split('\n').at(-1));
    assert.equal(json.anomalies, ['version 001 is recorded 2 times']);
    // An application's start-up check refuses it too.
    const { assertSchemaVersion } = await import('../dist/index.js');
    await assertSchemaVersion({ url: ctx.db.url, cwd: ctx.cwd }).then(
      () => assert.unreachable('assertSchemaVersion accepted a duplicated version'),
      (error) => assert.match(error.message, 'version 001 is recorded 2 times'),
    );
    assert.equal(await ledgerVersions(ctx.db), [1, 1, ...EXAMPLE_VERSIONS[dialect].slice(1)], 'nothing changed');
  });

  test('more than one dirty row is a ledger no serial run could have written', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    await ctx.db.query(`update schema_version set dirty = ${TRUE} where version in (1, 2)`);
    const r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.match(r.stdout, '  versions 001, 002 are both dirty');
  });

  test('an applied version with no file: verify cannot compare, says why, exits 3 and never says verified', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    await ctx.db.query(`insert into schema_version (version, migration_name) values (99, 'gone')`);
    const r = ctx.cli('verify');
    assert.is(r.code, 3, r.output);
    assert.match(
      r.stdout,
      '✗ the schema was not compared with the migration files: version 99 (gone) is applied but this release has no file to rebuild it from',
    );
    assert.not.match(r.output, 'verified');
    const json = JSON.parse(ctx.cli('verify', '--json').stdout);
    assert.is(json.reference.source, 'none');
    assert.ok(json.findings.some((f) => f.check === 'reference'));
  });

  test('a version applied out of order is rebuilt in apply order, not version order', async () => {
    const p = await project(dialect, {
      ...BASE,
      '003_orders.sql': 'CREATE TABLE orders (id INTEGER PRIMARY KEY);\n',
      '003_orders_rollback.sql': 'DROP TABLE orders;\n',
    });
    try {
      assert.is(p.cli('migrate').code, 0);
      // 002 came late and alters 003's table: in version order it could not run at all.
      writeSql(p.cwd, '002_orders_note.sql', 'ALTER TABLE orders ADD COLUMN note TEXT;\n');
      writeSql(p.cwd, '002_orders_note_rollback.sql', 'ALTER TABLE orders DROP COLUMN note;\n');
      assert.is(p.cli('migrate', '--allow-out-of-order').code, 0);
      const r = p.cli('verify');
      assert.is(r.code, 0, r.output);
      assert.match(
        r.stdout,
        'verified: matches the migration files at version 3 (applied in the order 1, 3, 2), built on a scratch database',
      );
      await p.db.query('ALTER TABLE orders DROP COLUMN note');
      const drift = p.cli('verify');
      assert.is(drift.code, 3, drift.output);
      assert.equal(differenceLines(drift.stdout), ['- column orders.note: text']);
    } finally {
      await dispose(p);
    }
  });

  test('verify --rollbacks carries on past a failing rollback and counts proven, lossy, failed and unchecked', async () => {
    const p = await project(dialect, {
      ...BASE,
      '002_broken.sql': 'CREATE TABLE broken (a INTEGER);\n',
      '002_broken_rollback.sql': 'DROP TABLE no_such_table;\n',
      '003_fine.sql': 'CREATE TABLE fine (a INTEGER);\n',
      '003_fine_rollback.sql': 'DROP TABLE fine;\n',
      '004_lossy.sql': 'CREATE TABLE lossy (a INTEGER);\nCREATE INDEX lossy_a ON lossy (a);\n',
      '004_lossy_rollback.sql': '-- forgot the table\nDROP INDEX lossy_a;\n',
      '005_oneway.sql': 'CREATE TABLE oneway (a INTEGER);\n',
      '006_last.sql': 'CREATE TABLE last (a INTEGER);\n',
      '006_last_rollback.sql': 'DROP TABLE last;\n',
    });
    try {
      let r = p.cli('verify', '--rollbacks');
      assert.is(r.code, 3, r.output);
      assert.match(r.stdout, '✗ rolling back 002 broken failed on the scratch database');
      assert.match(r.stdout, '✗ the rollback of 004 lossy does not restore the schema it started from');
      assert.match(r.stdout, '+ table lossy');
      assert.match(r.stdout, 'rollbacks: 3 proven, 1 lossy, 1 failed, 0 irreversible, 1 unchecked');
      assert.match(r.stdout, '  005 oneway: unchecked: no rollback file');
      let json = JSON.parse(p.cli('verify', '--rollbacks', '--json').stdout);
      assert.equal(json.rollbacks.counts, { proven: 3, lossy: 1, failed: 1, irreversible: 0, unchecked: 1 });
      assert.equal(
        json.rollbacks.results.map((x) => [x.version, x.verdict]),
        [
          [1, 'proven'],
          [2, 'failed'],
          [3, 'proven'],
          [4, 'lossy'],
          [5, 'unchecked'],
          [6, 'proven'],
        ],
      );

      r = p.cli('verify', '--rollbacks', '--fail-fast');
      assert.is(r.code, 3, r.output);
      assert.match(r.stdout, 'rollbacks: 1 proven, 0 lossy, 1 failed, 0 irreversible, 4 unchecked');
      assert.match(r.stdout, '  003 fine: unchecked: --fail-fast stopped at 002 broken');
      assert.not.match(r.stdout, 'the rollback of 004 lossy');

      const alone = p.cli('verify', '--from', '3');
      assert.is(alone.code, 2, alone.output);
      assert.match(alone.stderr, 'from -> rollbacks');

      json = JSON.parse(p.cli('verify', '--rollbacks', '--from', '3', '--json').stdout);
      assert.equal(
        json.rollbacks.results.map((x) => [x.version, x.verdict]),
        [
          [3, 'proven'],
          [4, 'lossy'],
          [5, 'unchecked'],
          [6, 'proven'],
        ],
      );
      assert.equal(json.rollbacks.from, 3);
    } finally {
      await dispose(p);
    }
  });

  test('verify --rollbacks names the migrations it could not reach when a forward file fails', async () => {
    const p = await project(dialect, {
      ...BASE,
      '002_bad.sql': 'CREATE TABLE bad (a INTEGER;\n',
      '002_bad_rollback.sql': 'DROP TABLE bad;\n',
      '003_after.sql': 'CREATE TABLE after_bad (a INTEGER);\n',
      '003_after_rollback.sql': 'DROP TABLE after_bad;\n',
    });
    try {
      const r = p.cli('verify', '--rollbacks');
      assert.is(r.code, 3, r.output);
      assert.match(r.stdout, 'rollbacks: 1 proven, 0 lossy, 1 failed, 0 irreversible, 1 unchecked');
      assert.match(
        r.stdout,
        '  003 after: unchecked: not reached: 002 bad does not apply on a database built by the migrations before it',
      );
    } finally {
      await dispose(p);
    }
  });

  if (dialect === 'sqlite') {
    test('--scratch-url: a file that does not exist is built and removed; a file with content is refused; another dialect is exit 2', async () => {
      assert.is(ctx.cli('migrate').code, 0);
      const file = join(ctx.cwd, 'scratch-here.db');
      let r = ctx.cli('verify', '--scratch-url', `sqlite:${file}`);
      assert.is(r.code, 0, r.output);
      assert.match(r.stderr, `on scratch database sqlite:${file} (removed afterwards)`);
      assert.not.ok(existsSync(file));
      r = ctx.cli('verify', '--scratch-url', ctx.db.url);
      assert.is(r.code, 3, r.output);
      assert.match(
        r.stdout,
        `✗ the schema was not compared with the migration files: the file given with --scratch-url (${ctx.db.file}) is not empty`,
      );
      assert.ok((await ctx.db.tables()).includes('users'), 'the database given is left alone');
      r = ctx.cli('verify', '--scratch-url', 'postgres://nobody@127.0.0.1:1/x');
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, '--scratch-url names a postgres database, and the database to verify is sqlite');
    });
  }

  if (dialect === 'postgres') {
    test('a role without CREATEDB: verify exits 3 naming --scratch-url; with it, verify builds there and leaves it empty', async () => {
      const role = `tidemark_app_${randomBytes(4).toString('hex')}`;
      const scratchName = `${role}_scratch`;
      const admin = postgres(process.env.TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
      const roleUrl = (database) => {
        const url = new URL(ctx.db.url);
        url.username = role;
        url.password = 'app-secret-pw';
        url.pathname = `/${database}`;
        return url.toString();
      };
      const dbName = new URL(ctx.db.url).pathname.slice(1);
      await admin.unsafe(`create role ${role} login password 'app-secret-pw' nocreatedb`);
      try {
        await admin.unsafe(`alter database ${dbName} owner to ${role}`);
        await admin.unsafe(`create database ${scratchName} owner ${role}`);
        await ctx.db.query(`alter schema public owner to ${role}`);
        const asRole = (...args) => runCli(args, { cwd: ctx.cwd, env: { DATABASE_URL: roleUrl(dbName) } });
        assert.is(asRole('migrate').code, 0);

        let r = asRole('verify');
        assert.is(r.code, 3, r.output);
        assert.match(
          r.stdout,
          '✗ the schema was not compared with the migration files: cannot create a scratch database',
        );
        assert.match(r.stdout, 'permission denied to create database');
        assert.match(r.stdout, '--scratch-url');
        assert.not.match(r.output, 'verified');

        r = asRole('verify', '--rollbacks');
        assert.is(r.code, 3, r.output);
        assert.match(r.stdout, '✗ the rollbacks were not proven: cannot create a scratch database');
        assert.match(r.stdout, 'rollbacks: 0 proven, 0 lossy, 0 failed, 0 irreversible, 3 unchecked');

        r = asRole('verify', '--scratch-url', roleUrl(scratchName));
        assert.is(r.code, 0, r.output);
        assert.match(r.stderr, `building the expected schema on scratch database postgres://${role}@`);
        assert.match(r.stderr, '(emptied afterwards)');
        assert.match(r.stdout, 'verified: matches the migration files at version 3, built on a scratch database');
        assert.not.match(r.output, 'app-secret-pw');
        const scratch = postgres(roleUrl(scratchName), { max: 1, onnotice: () => {} });
        try {
          const left = await scratch`select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname not like 'pg_%' and n.nspname <> 'information_schema'`;
          assert.equal([...left], [], 'the scratch database is left empty');
          const types =
            await scratch`select typname from pg_type t join pg_namespace n on n.oid = t.typnamespace where n.nspname = 'public'`;
          assert.equal([...types], []);
        } finally {
          await scratch.end({ timeout: 5 });
        }

        await ctx.db.query('ALTER TABLE users ADD COLUMN phone TEXT');
        r = asRole('verify', '--scratch-url', roleUrl(scratchName), '--rollbacks');
        assert.is(r.code, 3, r.output);
        assert.equal(differenceLines(r.stdout), ['+ column users.phone: text']);
        assert.match(r.stdout, 'rollbacks: 3 proven, 0 lossy, 0 failed, 0 irreversible, 0 unchecked');

        // A database that holds objects is never used (nor emptied): that would destroy someone's data.
        await ctx.db.query('ALTER TABLE users DROP COLUMN phone');
        r = asRole('verify', '--scratch-url', roleUrl(dbName));
        assert.is(r.code, 3, r.output);
        assert.match(r.stdout, 'holds objects');
        assert.equal(await ctx.db.tables(), [
          'schema_version',
          'schema_version_history',
          'trades',
          'user_strategies',
          'users',
        ]);
      } finally {
        const superuser = new URL(process.env.TEST_DATABASE_URL).username || 'postgres';
        await admin.unsafe(`drop database if exists ${scratchName} with (force)`);
        await admin.unsafe(`alter database ${dbName} owner to ${superuser}`);
        await ctx.db.query(`alter schema public owner to pg_database_owner`).catch(() => {});
        await ctx.db.query(`reassign owned by ${role} to ${superuser}`);
        await ctx.db.query(`drop owned by ${role}`);
        await admin.unsafe(`drop role ${role}`);
        await admin.end({ timeout: 5 });
      }
    });
  }

  test.run();
}

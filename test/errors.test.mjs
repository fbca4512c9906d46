// Bad files, bad configuration and unreachable servers: a clear message, the right exit code, nothing changed.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  perTestDatabase,
  DIALECTS,
  EXAMPLE_VERSIONS,
  freshDatabase,
  ledgerVersions,
  makeProject,
  removeProject,
  runCli,
  sqlFiles,
  writeSql,
} from './helpers.mjs';

const PATTERN = /expected <version>_<name>\[_rollback\]\[\.postgres\|\.sqlite\]\.sql/;

for (const dialect of DIALECTS) {
  const test = suite(`bad files [${dialect}]`);
  const ctx = perTestDatabase(test, dialect);
  /** The run was refused with exit 2 and the database was not touched. */
  const assertRefused = async (result, message) => {
    assert.is(result.code, 2, result.output);
    assert.match(result.stderr, message);
    assert.match(result.stderr, /hint:/);
    assert.equal(await ctx.db.tables(), [], 'no SQL ran, not even the ledger');
  };

  test('a stray file name is named with the expected pattern', async () => {
    writeSql(ctx.cwd, '1-x.sql', 'select 1;');
    const r = ctx.cli('migrate');
    await assertRefused(r, /sql\/1-x\.sql: not a migration file name/);
    assert.match(r.stderr, PATTERN);
  });

  test('two files for one version (001 and 1)', async () => {
    writeSql(ctx.cwd, '1_create_users.sql', 'select 1;');
    await assertRefused(
      ctx.cli('migrate'),
      /sql\/001_create_users\.sql, sql\/1_create_users\.sql: two files for version 1/,
    );
  });

  test('a rollback with no forward file', async () => {
    writeSql(ctx.cwd, '007_orphan_rollback.sql', 'select 1;');
    await assertRefused(ctx.cli('migrate'), /sql\/007_orphan_rollback\.sql: rollback with no forward migration/);
  });

  test('two names for one version across dialect variants', async () => {
    writeSql(ctx.cwd, '003_trades.sqlite.sql', 'select 1;');
    await assertRefused(ctx.cli('migrate'), /version 3 has 2 names \(create_trades, trades\)/);
  });

  test('an unknown directive names file:line', async () => {
    writeSql(ctx.cwd, '005_x.sql', '-- first line\n-- tidemark:no-transactoin\nselect 1;\n');
    writeSql(ctx.cwd, '005_x_rollback.sql', 'select 1;\n');
    await assertRefused(ctx.cli('migrate'), /sql\/005_x\.sql:2: unknown directive "-- tidemark:no-transactoin"/);
  });

  test('status and rollback refuse bad files too; README.md and other files are ignored', async () => {
    writeSql(ctx.cwd, 'README.md', '# notes');
    writeSql(ctx.cwd, 'seed.txt', 'x');
    assert.is(ctx.cli('migrate').code, 0);
    writeSql(ctx.cwd, '005-add.sql', 'select 1;');
    assert.is(ctx.cli('status').code, 2);
    const r = ctx.cli('rollback');
    assert.is(r.code, 2, r.output);
    assert.match(r.stderr, /005-add\.sql/);
    assert.ok((await ledgerVersions(ctx.db)).length > 0, 'nothing was rolled back');
  });

  test('a bad --table name is refused before connecting', async () => {
    const r = ctx.cli('migrate', '--table', 'x; drop table users');
    await assertRefused(r, /"x; drop table users" is not a valid ledger table name/);
  });

  test('--table names another ledger', async () => {
    const r = ctx.cli('migrate', '--table', 'tm_ledger');
    assert.is(r.code, 0, r.output);
    const tables = await ctx.db.tables();
    assert.ok(tables.includes('tm_ledger') && tables.includes('tm_ledger_history'));
    assert.not.ok(tables.includes('schema_version'));
    assert.equal(await ledgerVersions(ctx.db, 'tm_ledger'), EXAMPLE_VERSIONS[dialect]);
  });

  test.run();
}

const config = suite('configuration and connections');
let cwd;
config.before.each(() => {
  cwd = makeProject();
});
config.after.each(() => removeProject(cwd));

config('no database configured: exit 2 with the fix', () => {
  const r = runCli(['migrate'], { cwd });
  assert.is(r.code, 2, r.output);
  assert.match(r.stderr, /no database is configured/);
  assert.match(r.stderr, /DATABASE_URL/);
});

config('an unknown URL scheme: exit 2, the password is not printed', () => {
  const r = runCli(['migrate'], { cwd, env: { DATABASE_URL: 'mysql://app:hunter2secret@localhost/db' } });
  assert.is(r.code, 2, r.output);
  assert.match(r.stderr, /unknown database URL scheme in "mysql:…"/);
  assert.not.match(r.output, /hunter2secret/);
});

config('a closed port: exit 4 naming host and database, never the password', () => {
  const r = runCli(['migrate'], { cwd, env: { DATABASE_URL: 'postgres://app:s3cr3t-pw@127.0.0.1:1/trading' } });
  assert.is(r.code, 4, r.output);
  assert.match(r.stderr, /could not connect to postgres:\/\/app@127\.0\.0\.1:1\/trading: connection refused/);
  assert.not.match(r.output, /s3cr3t-pw/);
});

config('a wrong password: exit 4, the password appears nowhere', async () => {
  const admin = new URL(process.env.TEST_DATABASE_URL);
  const db = await freshDatabase('postgres');
  try {
    // A role that must log in with a password, whatever the server's trust settings for others.
    await db.query(
      `do $$ begin create role tidemark_pw_test login password 'right-password'; exception when duplicate_object then null; end $$`,
    );
    const url = `postgres://tidemark_pw_test:wrong-pa55word@${admin.host}/${new URL(db.url).pathname.slice(1)}`;
    const r = runCli(['status'], { cwd, env: { DATABASE_URL: url } });
    assert.not.match(r.output, /wrong-pa55word/);
    // A server that trusts local connections ignores passwords; the embedded one checks them.
    if (admin.password) {
      assert.is(r.code, 4, r.output);
      assert.match(
        r.stderr,
        new RegExp(
          `could not connect to postgres://tidemark_pw_test@${admin.hostname}:\\d+/tidemark_test_\\w+: password authentication failed`,
        ),
      );
    }
  } finally {
    await db.query('drop role if exists tidemark_pw_test').catch(() => {});
    await db.close();
  }
});

config('a SQLite path that cannot be created: exit 4 naming it', () => {
  const r = runCli(['migrate'], { cwd, env: { DATABASE_URL: 'sqlite:/dev/null/app.db' } });
  assert.is(r.code, 4, r.output);
  assert.match(r.stderr, /could not open sqlite:\/dev\/null\/app\.db/);
  assert.not.match(r.stderr, /unexpected failure/);
});

config('a database that does not exist: exit 4 with the fix', () => {
  const url = new URL(process.env.TEST_DATABASE_URL);
  url.pathname = '/tidemark_no_such_db';
  const r = runCli(['status'], { cwd, env: { DATABASE_URL: url.toString() } });
  assert.is(r.code, 4, r.output);
  assert.match(r.stderr, /tidemark_no_such_db/);
  assert.match(r.stderr, /createdb/);
  if (url.password) assert.not.match(r.output, new RegExp(url.password));
});

config('the process environment wins over .env, and .env over package.json', () => {
  writeSql(cwd, '../.env', 'DATABASE_URL=sqlite:from-env-file.db\n');
  writeSql(cwd, '../package.json', JSON.stringify({ tidemark: { url: 'sqlite:from-package.db' } }));
  assert.is(runCli(['migrate'], { cwd }).code, 0);
  assert.ok(existsSync(join(cwd, 'from-env-file.db')));
  assert.is(runCli(['migrate'], { cwd, env: { DATABASE_URL: 'sqlite:from-process.db' } }).code, 0);
  assert.ok(existsSync(join(cwd, 'from-process.db')));
  assert.not.ok(existsSync(join(cwd, 'from-package.db')));
});

config('read-only commands do not create a missing SQLite file', () => {
  const r = runCli(['status'], { cwd, env: { DATABASE_URL: 'sqlite:data/none.db' } });
  assert.is(r.code, 0, r.output);
  assert.match(r.stdout, /version 0/);
  assert.is(runCli(['version'], { cwd, env: { DATABASE_URL: 'sqlite:data/none.db' } }).stdout, '0\n');
  assert.not.ok(existsSync(join(cwd, 'data', 'none.db')));
});

config('unknown commands and bad numbers are usage errors (exit 2)', () => {
  const env = { DATABASE_URL: 'sqlite:app.db' };
  let r = runCli(['migrat'], { cwd, env });
  assert.is(r.code, 2, r.output);
  r = runCli(['rollback', 'two'], { cwd, env });
  assert.is(r.code, 2, r.output);
  assert.match(r.stderr, /steps must be a whole number, not "two"/);
  r = runCli(['verify', '--rollback'], { cwd, env });
  assert.is(r.code, 2, r.output);
  assert.match(r.stderr, /Unknown argument: rollback/);
});

config.run();

const create = suite('create');
create.before.each(() => {
  cwd = makeProject();
});
create.after.each(() => removeProject(cwd));

create('writes the next version with a rollback partner and a helpful comment; needs no database', () => {
  const r = runCli(['create', 'add_orders'], { cwd });
  assert.is(r.code, 0, r.output);
  assert.match(r.stdout, /created sql\/005_add_orders\.sql/);
  assert.match(r.stdout, /created sql\/005_add_orders_rollback\.sql/);
  assert.ok(sqlFiles(cwd).includes('005_add_orders.sql') && sqlFiles(cwd).includes('005_add_orders_rollback.sql'));
  assert.match(readFileSync(join(cwd, 'sql', '005_add_orders.sql'), 'utf8'), /tidemark:no-transaction/);
  assert.match(
    readFileSync(join(cwd, 'sql', '005_add_orders_rollback.sql'), 'utf8'),
    /undo everything 005_add_orders\.sql does/,
  );
});

create('refuses names with a slash, dots or spaces, and writes nothing', () => {
  const before = sqlFiles(cwd);
  for (const name of ['../evil', 'a/b', 'add orders', '..', 'x.sql', 'undo_rollback']) {
    const r = runCli(['create', name], { cwd });
    assert.is(r.code, 2, `${name}: ${r.output}`);
    assert.match(r.stderr, /cannot be a migration name/);
  }
  assert.equal(sqlFiles(cwd), before);
  assert.not.ok(existsSync(join(cwd, 'evil.sql')));
});

create('in an empty project it starts at 001', () => {
  const empty = makeProject({});
  try {
    const r = runCli(['create', 'first'], { cwd: empty });
    assert.is(r.code, 0, r.output);
    assert.equal(sqlFiles(empty), ['001_first.sql', '001_first_rollback.sql']);
  } finally {
    removeProject(empty);
  }
});

create.run();

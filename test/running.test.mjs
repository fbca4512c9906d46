// How files run: statement lines, psql leftovers, transaction wrappers, no-transaction migrations and concurrent runners.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DIALECTS, EXAMPLE_VERSIONS, ledgerVersions, perTestDatabase, runCliAsync, writeSql } from './helpers.mjs';

for (const dialect of DIALECTS) {
  const test = suite(`running files [${dialect}]`);
  const ctx = perTestDatabase(test, dialect);

  test('an error on line 40 is named file:40 with the line and a caret', async () => {
    const lines = [
      '-- forty lines',
      ...Array.from({ length: 38 }, (_, i) => `INSERT INTO users (id, email) VALUES ('u${i}', 'u${i}@example.com');`),
    ];
    lines.push(`INSERT INTO users (id, email) VALUES ('u39', 'u39@example.com') RETURNIN id;`);
    writeSql(ctx.cwd, '005_seed.sql', `${lines.join('\n')}\n`);
    writeSql(ctx.cwd, '005_seed_rollback.sql', 'DELETE FROM users;\n');
    const r = ctx.cli('migrate');
    assert.is(r.code, 1, r.output);
    assert.match(r.stderr, /sql\/005_seed\.sql:40(:\d+)?: /);
    assert.match(r.stderr, /40 \| INSERT INTO users \(id, email\) VALUES \('u39'/);
    assert.equal(
      (await ctx.db.query('select count(*) as n from users')).map((row) => Number(row.n)),
      [0],
      'the 38 inserts before it were rolled back',
    );
  });

  test('semicolons inside strings, comments and trigger bodies do not split statements', async () => {
    const body =
      dialect === 'sqlite'
        ? `CREATE TABLE audit (note TEXT);
CREATE TRIGGER users_audit AFTER INSERT ON users BEGIN
  INSERT INTO audit (note) VALUES ('new; user ' || CASE WHEN NEW.display_name IS NULL THEN 'anon;' ELSE NEW.display_name END);
  INSERT INTO audit (note) VALUES ('second;');
END;`
        : `CREATE TABLE audit (note TEXT);
CREATE FUNCTION users_audit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO audit (note) VALUES ('new; user ' || coalesce(NEW.display_name, 'anon;'));
  INSERT INTO audit (note) VALUES ('second;');
  RETURN NEW;
END $$;
CREATE TRIGGER users_audit AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION users_audit();`;
    writeSql(
      ctx.cwd,
      '005_audit.sql',
      `/* a comment; with a semicolon */\n-- and another;\n${body}\nINSERT INTO users (id, email) VALUES ('a;b', 'x;y@example.com');\n`,
    );
    writeSql(ctx.cwd, '005_audit_rollback.sql', 'DELETE FROM users;\nDROP TABLE audit;\n');
    const r = ctx.cli('migrate');
    assert.is(r.code, 0, r.output);
    const notes = (await ctx.db.query('select note from audit order by note')).map((row) => row.note);
    assert.equal(notes, ['new; user anon;', 'second;']);
  });

  test('psql leftovers: harmless meta-commands are skipped with a notice, a BEGIN/COMMIT wrapper is replaced', async () => {
    writeSql(
      ctx.cwd,
      '005_orders.sql',
      '\\set ON_ERROR_STOP on\n\\echo creating orders\nBEGIN;\nCREATE TABLE orders (id TEXT PRIMARY KEY);\nCOMMIT;\n',
    );
    writeSql(ctx.cwd, '005_orders_rollback.sql', 'DROP TABLE orders;\n');
    const r = ctx.cli('migrate');
    assert.is(r.code, 0, r.output);
    assert.match(r.stderr, /005_orders\.sql:1: skipped psql meta-command \\set ON_ERROR_STOP on/);
    assert.match(r.stderr, /005_orders\.sql:3: the file's own BEGIN \.\.\. COMMIT wrapper is replaced/);
    assert.ok((await ctx.db.tables()).includes('orders'));
    assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[dialect], 5]);
  });

  // On SQLite a migration that outlasts its commit group's 100 ms is cut short and run again alone.
  test('a long migration after quick ones prints its notices and its line once', async () => {
    const long = {
      sqlite:
        'SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) ' +
        'SELECT x FROM c);',
      postgres: 'SELECT pg_sleep(0.4);',
    }[dialect];
    writeSql(ctx.cwd, '005_quick.sql', 'CREATE TABLE quick (a INTEGER);\n');
    writeSql(ctx.cwd, '005_quick_rollback.sql', 'DROP TABLE quick;\n');
    writeSql(ctx.cwd, '006_long.sql', `\\echo this takes a while\nCREATE TABLE slow (a INTEGER);\n${long}\n`);
    writeSql(ctx.cwd, '006_long_rollback.sql', 'DROP TABLE slow;\n');
    const r = ctx.cli('migrate');
    assert.is(r.code, 0, r.output);
    const notices = r.stderr.match(/006_long\.sql:1: skipped psql meta-command \\echo this takes a while/g);
    assert.is(notices?.length, 1, r.stderr);
    assert.is(r.stdout.match(/^↑ 006 long/gm)?.length, 1, r.stdout);
    assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[dialect], 5, 6]);
  });

  test('other meta-commands, COPY FROM stdin and a COMMIT mid-file stop the run before any SQL', async () => {
    const cases = [
      ['\\i other.sql\n', /005_bad\.sql:1:1: psql meta-command \\i is not SQL/],
      ['CREATE TABLE t (a INT);\n\\connect other\n', /005_bad\.sql:2:1: psql meta-command \\connect is not SQL/],
      ['CREATE TABLE t (a INT);\nCOPY t (a) FROM stdin;\n1\n\\.\n', /005_bad\.sql:2:1: COPY \.\.\. FROM stdin/],
      ['CREATE TABLE t (a INT);\nCOMMIT;\nCREATE TABLE u (a INT);\n', /005_bad\.sql:2:1: COMMIT inside a migration/],
    ];
    writeSql(ctx.cwd, '005_bad_rollback.sql', 'DROP TABLE t;\n');
    for (const [text, message] of cases) {
      writeSql(ctx.cwd, '005_bad.sql', text);
      const r = ctx.cli('migrate');
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, message);
      assert.equal(await ctx.db.tables(), [], 'nothing ran, not even the migrations before it');
    }
  });

  test('a no-transaction migration that fails leaves a dirty row; everything but status and resolve refuses until resolve', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    writeSql(
      ctx.cwd,
      '005_outside.sql',
      '-- tidemark:no-transaction\nCREATE TABLE half_done (a INT);\nCREAT TABLE never (a INT);\n',
    );
    writeSql(ctx.cwd, '005_outside_rollback.sql', 'DROP TABLE half_done;\n');
    const failed = ctx.cli('migrate');
    assert.is(failed.code, 1, failed.output);
    assert.match(failed.stderr, /005_outside\.sql:3/);
    assert.match(failed.stderr, /version 005 is now marked dirty/);
    assert.match(
      failed.stderr,
      /`tidemark resolve 005 --applied` if the migration took effect.*`tidemark resolve 005 --not-applied` if it did not/,
    );
    assert.ok((await ctx.db.tables()).includes('half_done'), 'outside a transaction, the first statement stayed');
    const [row] = await ctx.db.query('select dirty from schema_version where version = 5');
    assert.ok(Number(row.dirty) === 1 || row.dirty === true);

    for (const args of [['migrate'], ['rollback']]) {
      const r = ctx.cli(...args);
      assert.is(r.code, 2, `${args}: ${r.output}`);
      assert.match(r.stderr, /version 005 \(outside\) is dirty/);
      assert.match(r.stderr, /tidemark resolve 005 --applied/);
    }
    const status = ctx.cli('status');
    assert.is(status.code, 0, status.output);
    assert.match(status.stdout, /005\s+outside\s+dirty/);

    writeSql(ctx.cwd, '005_outside.sql', '-- tidemark:no-transaction\nCREATE TABLE half_done (a INT);\n');
    const resolved = ctx.cli('resolve', '5', '--not-applied');
    assert.is(resolved.code, 0, resolved.output);
    assert.match(resolved.stdout, /deleted the row of version 5/);
    await ctx.db.query('DROP TABLE half_done');
    const again = ctx.cli('migrate');
    assert.is(again.code, 0, again.output);
    assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[dialect], 5]);
  });

  test('several runners at once: every migration runs exactly once and all exit 0', async () => {
    const files = {
      '010_counter.sql': 'CREATE TABLE counter (n INTEGER);\n',
      '010_counter_rollback.sql': 'DROP TABLE counter;\n',
    };
    for (let v = 11; v <= 22; v++) {
      files[`0${v}_bump_${v}.sql`] = `INSERT INTO counter (n) VALUES (${v});\n`;
      files[`0${v}_bump_${v}_rollback.sql`] = `DELETE FROM counter WHERE n = ${v};\n`;
    }
    for (const [name, text] of Object.entries(files)) writeSql(ctx.cwd, name, text);
    const runners = 6;
    const results = await Promise.all(
      Array.from({ length: runners }, () =>
        runCliAsync(['migrate'], { cwd: ctx.cwd, env: { DATABASE_URL: ctx.db.url } }),
      ),
    );
    for (const r of results) assert.is(r.code, 0, r.output);
    const counted = (await ctx.db.query('select n from counter order by n')).map((row) => Number(row.n));
    assert.equal(
      counted,
      Array.from({ length: 12 }, (_, i) => i + 11),
      'each insert ran exactly once',
    );
    assert.equal(await ledgerVersions(ctx.db), [
      ...EXAMPLE_VERSIONS[dialect],
      10,
      ...Array.from({ length: 12 }, (_, i) => i + 11),
    ]);
  });

  test.run();
}

const postgresOnly = suite('no-transaction on PostgreSQL');
const pg = perTestDatabase(postgresOnly, 'postgres');

postgresOnly(
  'CREATE INDEX CONCURRENTLY runs with the directive, and without it gets a hint naming the directive',
  async () => {
    assert.is(pg.cli('migrate').code, 0);
    writeSql(pg.cwd, '005_trades_symbol_idx.sql', 'CREATE INDEX CONCURRENTLY trades_symbol_idx ON trades (symbol);\n');
    writeSql(
      pg.cwd,
      '005_trades_symbol_idx_rollback.sql',
      '-- tidemark:no-transaction\nDROP INDEX CONCURRENTLY trades_side_idx;\nDROP INDEX CONCURRENTLY trades_symbol_idx;\n',
    );
    const refused = pg.cli('migrate');
    assert.is(refused.code, 2, refused.output);
    assert.match(
      refused.stderr,
      /005_trades_symbol_idx\.sql:1:1: CREATE INDEX CONCURRENTLY trades_symbol_idx .* cannot run inside a transaction block/,
    );
    assert.match(refused.stderr, /-- tidemark:no-transaction/);
    assert.equal(await ledgerVersions(pg.db), [1, 2, 3]);

    writeSql(
      pg.cwd,
      '005_trades_symbol_idx.sql',
      '-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY trades_symbol_idx ON trades (symbol);\nCREATE INDEX CONCURRENTLY trades_side_idx ON trades (side);\n',
    );
    const r = pg.cli('migrate');
    assert.is(r.code, 0, r.output);
    assert.ok((await pg.db.indexes()).includes('trades_symbol_idx'));
    assert.ok((await pg.db.indexes()).includes('trades_side_idx'));
    const [row] = await pg.db.query('select dirty from schema_version where version = 5');
    assert.is(row.dirty, false);
    const back = pg.cli('rollback');
    assert.is(back.code, 0, back.output);
    assert.not.ok((await pg.db.indexes()).includes('trades_symbol_idx'));
    assert.equal(await ledgerVersions(pg.db), [1, 2, 3]);
  },
);

postgresOnly.run();

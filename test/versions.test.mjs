// Wide versions, exactly: 16 digits above 2^53, 18 and 19 digits up to PostgreSQL's bigint and
// SQLite's integer maximum, through the CLI on both dialects. Two versions that are one apart and
// round to the same float (2^53 and 2^53 + 1; 2^63 - 2 and 2^63 - 1) must stay two versions in the
// files, the ledger, the history, the output and every command argument.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DIALECTS,
  dispose,
  freshDatabase,
  HAND_SHELL,
  makeProject,
  project,
  removeProject,
  runByHand,
  runCli,
  sqlFiles,
} from './helpers.mjs';

const MAX = '9223372036854775807';
/** Ascending: 001, 2^53, 2^53 + 1, an 18-digit timestamp (diesel/popx style), 2^63 - 2, 2^63 - 1. */
const WIDE = [
  ['001', 'base'],
  ['9007199254740992', 'two_to_53'],
  ['9007199254740993', 'one_above'],
  ['202401011200000001', 'eighteen'],
  ['9223372036854775806', 'below_max'],
  [MAX, 'at_max'],
];

function wideFiles() {
  const files = {};
  for (const [version, name] of WIDE) {
    files[`${version}_${name}.sql`] = `CREATE TABLE t_${name} (id INTEGER);\n`;
    files[`${version}_${name}_rollback.sql`] = `DROP TABLE t_${name};\n`;
  }
  return files;
}

/** The ledger's versions as the database holds them (as text: the test's own SQLite client reads floats). */
async function ledger(db) {
  const rows = await db.query(
    'select cast(version as text) as v, version_text, migration_name from schema_version order by version',
  );
  return rows.map((r) => `${r.v} ${r.version_text} ${r.migration_name}`);
}

const upTo = (n) => WIDE.slice(0, n).map(([v, name]) => `${String(BigInt(v))} ${v} ${name}`);

for (const dialect of DIALECTS) {
  const test = suite(`versions [${dialect}]`);

  test('16-, 18- and 19-digit versions migrate, sort, show, roll back and verify exactly', async () => {
    const p = await project(dialect, wideFiles());
    try {
      const up = p.cli('migrate');
      assert.is(up.code, 0, up.output);
      const applied = up.stdout.split('\n').filter((l) => l.startsWith('↑'));
      assert.equal(
        applied.map((l) => l.split(/\s+/).slice(1, 3).join(' ')),
        WIDE.map(([v, name]) => `${v} ${name}`),
      );
      assert.match(up.stdout, `now at version ${MAX}`);
      assert.equal(await ledger(p.db), upTo(6));
      const tables = await p.db.tables();
      for (const [, name] of WIDE) assert.ok(tables.includes(`t_${name}`), name);

      const again = p.cli('migrate');
      assert.is(again.code, 0, again.output);
      assert.match(again.stdout, `up to date at version ${MAX}`);

      assert.is(p.cli('version').stdout.trim(), MAX);
      assert.is(p.cli('version', '--json').stdout.trim(), `{"version":${MAX}}`);

      const status = p.cli('status');
      assert.is(status.code, 0, status.output);
      const rows = status.stdout.split('\n').filter((l) => /^\d/.test(l));
      assert.equal(
        rows.map((l) => l.split(/\s+/).slice(0, 3).join(' ')),
        WIDE.map(([v, name]) => `${v} ${name} applied`),
      );
      const json = p.cli('status', '--json');
      assert.is(json.code, 0, json.output);
      // Exact integers in the JSON text, never rounded (JSON.parse in JavaScript would round them).
      assert.match(json.stdout, `"version":${MAX},"entries":[`);
      assert.match(json.stdout, `{"version":9007199254740993,"versionText":"9007199254740993","name":"one_above"`);
      assert.match(json.stdout, `{"version":1,"versionText":"001","name":"base"`);

      const verify = p.cli('verify');
      assert.is(verify.code, 0, verify.output);

      const one = p.cli('rollback');
      assert.is(one.code, 0, one.output);
      assert.match(one.stdout, `↓ ${MAX} at_max`);
      assert.match(one.stdout, 'now at version 9223372036854775806');
      assert.equal(await ledger(p.db), upTo(5));

      const to = p.cli('rollback', '--to', '9007199254740992');
      assert.is(to.code, 0, to.output);
      assert.equal(await ledger(p.db), upTo(2));
      assert.not.ok((await p.db.tables()).includes('t_one_above'));

      const target = p.cli('migrate', '202401011200000001');
      assert.is(target.code, 0, target.output);
      assert.equal(await ledger(p.db), upTo(4));

      const history = await p.db.query(
        'select action, cast(version as text) as v from schema_version_history order by id',
      );
      assert.equal(
        history.map((h) => `${h.action} ${h.v}`),
        [
          ...WIDE.map(([v]) => `up ${BigInt(v)}`),
          `down ${MAX}`,
          'down 9223372036854775806',
          'down 202401011200000001',
          'down 9007199254740993',
          'up 9007199254740993',
          'up 202401011200000001',
        ],
      );
      const shown = p.cli('status', '--history');
      assert.is(shown.code, 0, shown.output);
      assert.match(shown.stdout, /\bdown\s+9223372036854775807\s+at_max\b/);
      assert.match(shown.stdout, /\bup\s+001\s+base\b/);

      const force = p.cli('force', '9007199254740993', '--yes');
      assert.is(force.code, 0, force.output);
      assert.equal(await ledger(p.db), upTo(3));

      const all = p.cli('rollback', '--all');
      assert.is(all.code, 0, all.output);
      assert.equal(await ledger(p.db), []);
    } finally {
      await dispose(p);
    }
  });

  test('resolve, baseline, SCHEMA_VERSION and sql --to take 19-digit versions exactly', async () => {
    const p = await project(dialect, wideFiles());
    try {
      const base = p.cli('baseline', '9223372036854775806');
      assert.is(base.code, 0, base.output);
      assert.equal(await ledger(p.db), upTo(5));
      // Baseline ran no SQL: empty the ledger again, and migrate for real.
      const empty = p.cli('force', '0', '--yes');
      assert.is(empty.code, 0, empty.output);
      assert.equal(await ledger(p.db), []);
      assert.is(p.cli('migrate').code, 0);
      await p.db.query(
        `update schema_version set dirty = ${dialect === 'postgres' ? 'true' : '1'} where version = ${MAX}`,
      );
      const dirty = p.cli('migrate');
      assert.is(dirty.code, 2, dirty.output);
      assert.match(dirty.stderr, `version ${MAX} (at_max) is dirty`);
      assert.match(dirty.stderr, `tidemark resolve ${MAX} --applied`);
      const resolve = p.cli('resolve', MAX, '--not-applied');
      assert.is(resolve.code, 0, resolve.output);
      assert.equal(await ledger(p.db), upTo(5));
      await p.db.query('DROP TABLE t_at_max');

      const env = (schemaVersion) => ({ DATABASE_URL: p.db.url, SCHEMA_VERSION: schemaVersion });
      // verify also finds at_max pending; the SCHEMA_VERSION check is the line looked at here.
      const at = runCli(['verify'], { cwd: p.cwd, env: env('9223372036854775806') });
      assert.match(at.stdout, '✓ version 9223372036854775806 is the one SCHEMA_VERSION expects');
      // One above, which rounds to the same float: the database is behind it.
      const behind = runCli(['verify'], { cwd: p.cwd, env: env(MAX) });
      assert.is(behind.code, 3, behind.output);
      assert.match(behind.stdout, `the database is at version 9223372036854775806, but SCHEMA_VERSION expects ${MAX}`);

      const script = p.cli('sql', '--to', '9007199254740993');
      assert.is(script.code, 0, script.output);
      assert.match(script.stdout, `from version 9223372036854775806 to version 9007199254740993`);
      assert.match(script.stdout, /delete from .*"schema_version" where version = 9223372036854775806\b/);
    } finally {
      await dispose(p);
    }
  });

  (HAND_SHELL[dialect] ? test : test.skip)('the sql script run by hand records the wide versions exactly', async () => {
    const p = await project(dialect, wideFiles());
    const twin = await freshDatabase(dialect, p.cwd);
    try {
      const script = p.cli('sql');
      assert.is(script.code, 0, script.output);
      const hand = await runByHand(p.db, script.stdout);
      assert.is(hand.code, 0, hand.output);
      assert.equal(await ledger(p.db), upTo(6));
      const status = p.cli('status', '--json');
      assert.is(status.code, 0, status.output);
      assert.not.match(status.stdout, /"state":"(?!applied)/);
      const migrated = runCli(['migrate'], { cwd: p.cwd, env: { DATABASE_URL: twin.url } });
      assert.is(migrated.code, 0, migrated.output);
      assert.equal(await ledger(twin), await ledger(p.db));
    } finally {
      await twin.close();
      await dispose(p);
    }
  });

  test('a version above 9223372036854775807 is refused, naming the file, the limit and the fix', async () => {
    const p = await project(dialect, {
      ...wideFiles(),
      '9223372036854775808_too_big.sql': 'SELECT 1;\n',
      '20240101120000000000001_popx.sql': 'SELECT 1;\n',
    });
    try {
      const r = p.cli('migrate');
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, /sql\/9223372036854775808_too_big\.sql: version 9223372036854775808 is above/);
      assert.match(r.stderr, /sql\/20240101120000000000001_popx\.sql: version 20240101120000000000001 is above/);
      assert.match(r.stderr, /9223372036854775807 \(PostgreSQL bigint, SQLite integer\)/);
      assert.match(r.stderr, /9223372036854775807 \(PostgreSQL bigint, SQLite integer\); renumber it/);
      assert.not.match(r.output, /15 digits/);
      assert.equal(await p.db.tables(), []);
      for (const args of [
        ['force', '9223372036854775808', '--yes'],
        ['rollback', '--to', '99999999999999999999'],
      ]) {
        const arg = p.cli(...args);
        assert.is(arg.code, 2, arg.output);
        assert.match(arg.stderr, /is above the largest version 9223372036854775807/);
      }
      const env = { DATABASE_URL: p.db.url, SCHEMA_VERSION: '9223372036854775808' };
      const schema = runCli(['status'], { cwd: p.cwd, env });
      assert.is(schema.code, 2, schema.output);
      assert.match(schema.stderr, /SCHEMA_VERSION .*is above the largest version 9223372036854775807/);
    } finally {
      await dispose(p);
    }
  });

  test('a version is shown as its file names it, else as the ledger stored it', async () => {
    const p = await project(dialect, {
      '001_base.sql': 'CREATE TABLE base (a INTEGER);\n',
      '001_base_rollback.sql': 'DROP TABLE base;\n',
      '0042_fees.sql': 'CREATE TABLE fees (a INTEGER);\n',
      '0042_fees_rollback.sql': 'DROP TABLE fees;\n',
    });
    try {
      assert.is(p.cli('migrate').code, 0);
      // The release is reverted: the files of 0042 are gone, the ledger keeps its text and rollback.
      const { rmSync } = await import('node:fs');
      for (const f of ['0042_fees.sql', '0042_fees_rollback.sql']) rmSync(join(p.cwd, 'sql', f));
      const status = p.cli('status');
      assert.match(status.stdout, /^0042\s+fees\s+applied, not in this release/m);
      const back = p.cli('rollback');
      assert.is(back.code, 0, back.output);
      assert.match(back.stdout, /↓ 0042 fees/);
      assert.match(back.stdout, /now at version 1\b/);
    } finally {
      await dispose(p);
    }
  });

  test('a legacy ledger gets the version_text column; its old rows show the number', async () => {
    const p = await project(dialect, {
      '001_base.sql': 'CREATE TABLE base (a INTEGER);\n',
      '002_more.sql': 'CREATE TABLE more (a INTEGER);\n',
    });
    try {
      await p.db.query(
        dialect === 'postgres'
          ? 'CREATE TABLE schema_version (id serial primary key, version bigint not null unique, migration_name varchar(255) not null, applied_at timestamp default now()); CREATE TABLE base (a INTEGER)'
          : 'CREATE TABLE schema_version (id integer primary key, version integer not null unique, migration_name text not null, applied_at text); CREATE TABLE base (a INTEGER)',
      );
      await p.db.query(`insert into schema_version (version, migration_name) values (1, 'base')`);
      const r = p.cli('migrate');
      assert.is(r.code, 0, r.output);
      assert.equal(await ledger(p.db), ['1 null base', '2 002 more']);
    } finally {
      await dispose(p);
    }
  });

  test.run();
}

const create = suite('versions: create');

create('create --timestamp writes a 14-digit UTC YYYYMMDDhhmmss version; later creates keep to timestamps', () => {
  const cwd = makeProject({ '001_base.sql': 'CREATE TABLE base (a INTEGER);\n' });
  try {
    const r = runCli(['create', 'add_orders', '--timestamp'], { cwd });
    assert.is(r.code, 0, r.output);
    const made = sqlFiles(cwd).filter((f) => f.includes('add_orders'));
    assert.is(made.length, 2, made.join(', '));
    const [, stamp] = /^(\d{14})_add_orders\.sql$/.exec(made.find((f) => !f.includes('rollback'))) ?? [];
    assert.ok(stamp, made.join(', '));
    const iso = `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(8, 10)}:${stamp.slice(10, 12)}:${stamp.slice(12)}Z`;
    assert.is(new Date(iso).toISOString().replace(/\D/g, '').slice(0, 14), stamp, 'a real UTC date and time');
    const next = runCli(['create', 'add_fees'], { cwd });
    assert.is(next.code, 0, next.output);
    const fee = readdirSync(join(cwd, 'sql')).find((f) => /^\d+_add_fees\.sql$/.test(f));
    assert.match(fee, /^\d{14}_add_fees\.sql$/);
    assert.ok(BigInt(fee.slice(0, 14)) > BigInt(stamp), `${fee} after ${stamp}`);
  } finally {
    removeProject(cwd);
  }
});

create.run();

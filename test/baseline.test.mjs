// `tidemark baseline <V>`: adopting a database whose schema was built by hand or by another tool.
// Both dialects, through the CLI.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { planBaseline } from '../dist/plan.js';
import { DIALECTS, EXAMPLE_VERSIONS, ledgerVersions, perTestDatabase } from './helpers.mjs';

const plan = suite('baseline plan');

plan('planBaseline: the versions up to V that exist for the dialect, only on an empty ledger', () => {
  const migration = (version, name) => ({
    version,
    versionText: String(version).padStart(3, '0'),
    name,
    forward: { path: `sql/${name}.sql` },
    rollback: null,
  });
  const migrations = [migration(1, 'a'), migration(2, 'b'), migration(5, 'c')];
  assert.equal(
    planBaseline(migrations, [], 2).map((m) => m.version),
    [1, 2],
  );
  assert.equal(
    planBaseline(migrations, [], 5).map((m) => m.version),
    [1, 2, 5],
  );
  assert.throws(() => planBaseline(migrations, [], 3), /there is no migration with version 3 for this database/);
  assert.throws(() => planBaseline(migrations, [], 0), /there is no migration with version 0/);
  const row = {
    version: 1,
    name: 'a',
    appliedAt: null,
    checksum: null,
    executionMs: null,
    appliedBy: null,
    dirty: false,
  };
  assert.throws(() => planBaseline(migrations, [row], 2), /the ledger already records 1 version \(up to 1\)/);
});

plan.run();

/** The example files each dialect runs, by version. */
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
  const test = suite(`baseline [${dialect}]`);
  const ctx = perTestDatabase(test, dialect);
  const last = EXAMPLE_VERSIONS[dialect].at(-1);
  const fileText = (name) => readFileSync(join(ctx.cwd, 'sql', name), 'utf8');

  /** The schema up to `version`, made the way another tool or a DBA would: the files' SQL, no ledger. */
  async function buildByHand(version) {
    for (const name of FORWARD_FILES[dialect].slice(0, version)) await ctx.db.query(fileText(name));
  }

  test('baseline on a hand-built database records versions <= V with their checksums, runs nothing; migrate applies only the rest', async () => {
    await buildByHand(2);
    const r = ctx.cli('baseline', '2');
    assert.is(r.code, 0, r.output);
    assert.match(r.stdout, /now records versions 1, 2 as applied \(baseline 2\); no migration SQL was run/);

    const rows = await ctx.db.query(
      'select version, migration_name, checksum, execution_ms, dirty from schema_version order by version',
    );
    assert.equal(
      rows.map((row) => [Number(row.version), row.migration_name, row.checksum, row.execution_ms, Number(row.dirty)]),
      FORWARD_FILES[dialect]
        .slice(0, 2)
        .map((name, i) => [
          i + 1,
          name.split('.')[0].slice(4),
          createHash('sha256').update(fileText(name)).digest('hex'),
          null,
          0,
        ]),
    );
    const history = await ctx.db.query(
      'select action, version, migration_name, outcome from schema_version_history order by id',
    );
    assert.equal(
      history.map((h) => `${h.action} ${h.version} ${h.migration_name} ${h.outcome}`),
      ['baseline 2 user_strategies ok'],
    );

    const m = ctx.cli('migrate');
    assert.is(m.code, 0, m.output);
    assert.not.match(m.stdout, /↑ 00[12]/, 'the baselined versions are not run');
    assert.match(m.stdout, /↑ 003 create_trades/);
    assert.equal(await ledgerVersions(ctx.db), EXAMPLE_VERSIONS[dialect]);
    const status = JSON.parse(ctx.cli('status', '--json').stdout);
    assert.ok(
      status.entries.every((e) => e.state === 'applied'),
      JSON.stringify(status.entries),
    );
  });

  test('after a baseline, verify compares the hand-built schema with the files, so a difference shows', async () => {
    await buildByHand(last);
    assert.is(ctx.cli('baseline', String(last)).code, 0);
    const clean = ctx.cli('verify');
    assert.is(clean.code, 0, clean.output);

    await ctx.db.query('DROP INDEX trades_user_id_idx');
    const drift = ctx.cli('verify');
    assert.is(drift.code, 3, drift.output);
    assert.match(drift.stdout, /trades_user_id_idx/);
  });

  test('baseline refuses a ledger that has rows: exit 2 with a hint, nothing changed', async () => {
    assert.is(ctx.cli('migrate', '1').code, 0);
    const r = ctx.cli('baseline', '2');
    assert.is(r.code, 2, r.output);
    assert.match(r.stderr, /error: the ledger already records 1 version \(up to 1\)/);
    assert.match(r.stderr, /hint: .*tidemark status.*tidemark force 2 --yes/);
    assert.equal(await ledgerVersions(ctx.db), [1]);
    const actions = await ctx.db.query('select action from schema_version_history order by id');
    assert.equal(
      actions.map((a) => a.action),
      ['up'],
    );
  });

  test('baseline refuses a version with no file for this dialect (and 0), before creating anything', async () => {
    for (const version of ['99', '0', ...(dialect === 'postgres' ? ['4'] : [])]) {
      const r = ctx.cli('baseline', version);
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, `there is no migration with version ${version} for this database`);
    }
    assert.equal(await ctx.db.tables(), [], 'no ledger table was created');
  });

  test('baseline --dry-run says what it would record and changes nothing', async () => {
    const r = ctx.cli('baseline', String(last), '--dry-run');
    assert.is(r.code, 0, r.output);
    assert.match(r.stdout, `dry run: the ledger of ${dialect === 'postgres' ? 'postgres://' : 'sqlite:'}`);
    assert.match(
      r.stdout,
      `would record versions ${EXAMPLE_VERSIONS[dialect].join(', ')} as applied (baseline ${last}); nothing was changed`,
    );
    assert.equal(await ctx.db.tables(), []);
  });

  test.run();
}

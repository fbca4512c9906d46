// Rollback after a code revert (the ledger keeps each rollback's text) and out-of-order migrations
// (issue 7, parts 1 and 2), through the CLI, on both dialects.
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DIALECTS,
  freshDatabase,
  ledgerVersions,
  makeProject,
  removeProject,
  removeSql,
  runCli,
  writeSql,
} from './helpers.mjs';

/** Four releases' worth of migrations; 004 is the one a failed release adds. */
const FILES = {
  '001_accounts.sql': 'CREATE TABLE accounts (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n',
  '001_accounts_rollback.sql': 'DROP TABLE accounts;\n',
  '002_orders.sql':
    'CREATE TABLE orders (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts (id));\n',
  '002_orders_rollback.sql': 'DROP TABLE orders;\n',
  '003_orders_index.sql': 'CREATE INDEX orders_account_idx ON orders (account_id);\n',
  '003_orders_index_rollback.sql': 'DROP INDEX orders_account_idx;\n',
  '004_fees.sql':
    '-- the failed release adds fees\nCREATE TABLE fees (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, amount NUMERIC NOT NULL);\nCREATE INDEX fees_order_idx ON fees (order_id);\n',
  '004_fees_rollback.sql': '-- undo 004\nDROP INDEX fees_order_idx;\nDROP TABLE fees;\n',
};
const FEES = ['004_fees.sql', '004_fees_rollback.sql'];

/** A project with FILES and a fresh database; cli() runs the CLI against it. */
async function project(dialect) {
  const cwd = makeProject(FILES);
  const db = await freshDatabase(dialect, cwd);
  return {
    cwd,
    db,
    cli: (...args) => runCli(args, { cwd, env: { DATABASE_URL: db.url } }),
    schema: () => JSON.parse(runCli(['schema', '--json'], { cwd, env: { DATABASE_URL: db.url } }).stdout),
    close: async () => {
      await db.close();
      removeProject(cwd);
    },
  };
}

async function withProject(dialect, work) {
  const p = await project(dialect);
  try {
    await work(p);
  } finally {
    await p.close();
  }
}

/** The older release's checkout: 004's files are not there (kept aside to bring back). */
function revertRelease(p) {
  const aside = join(p.cwd, 'newer-release');
  mkdirSync(aside, { recursive: true });
  for (const f of FEES) renameSync(join(p.cwd, 'sql', f), join(aside, f));
}

const history = async (db) =>
  (await db.query('select action, version, outcome from schema_version_history order by id')).map(
    (h) => `${h.action} ${Number(h.version)} ${h.outcome}`,
  );

for (const dialect of DIALECTS) {
  const test = suite(`rollback after a code revert [${dialect}]`);

  test('apply 1-4, the older release lacks 004: migrate warns and exits 0, status says so, rollback runs the stored copy back to 3', () =>
    withProject(dialect, async (p) => {
      assert.is(p.cli('migrate', '3').code, 0);
      const before4 = p.schema();
      const up = p.cli('migrate');
      assert.is(up.code, 0, up.output);
      const [row] = await p.db.query('select rollback_sql, rollback_checksum from schema_version where version = 4');
      assert.is(row.rollback_sql, FILES['004_fees_rollback.sql'], 'the rollback file is stored as it was');
      assert.match(String(row.rollback_checksum), /^[0-9a-f]{64}$/);

      revertRelease(p);
      const deploy = p.cli('migrate');
      assert.is(deploy.code, 0, deploy.output);
      assert.match(
        deploy.stderr,
        /^warning: version 004 \(fees\) is applied but not in this release: the database is ahead of the code/m,
      );
      assert.match(deploy.stderr, /npm run migrate:rollback -- --to 3/);

      const status = p.cli('status');
      assert.is(status.code, 0, status.output);
      assert.match(status.stdout, /^004\s+fees\s+applied, not in this release\s+.*rollback stored in the ledger$/m);
      const json = JSON.parse(p.cli('status', '--json').stdout);
      assert.equal(
        json.entries.map((e) => `${e.version}:${e.state}:${e.rollback}`),
        ['1:applied:file', '2:applied:file', '3:applied:file', '4:not-in-release:stored'],
      );

      const back = p.cli('rollback');
      assert.is(back.code, 0, back.output);
      assert.match(
        back.stderr,
        /^notice: 004 fees: its rollback file is not in this release; running the rollback stored in the ledger when it was applied$/m,
      );
      assert.match(back.stdout, /↓ 004 fees/);
      assert.match(back.stdout, /now at version 3/);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3]);
      assert.equal(p.schema(), before4, 'the schema is as it was before 004');
      assert.equal((await history(p.db)).slice(-1), ['down 4 ok']);
      const verify = p.cli('verify');
      assert.is(verify.code, 0, verify.output);
    }));

  test('a stored rollback that fails names itself and line, exit 1, the version stays applied', () =>
    withProject(dialect, async (p) => {
      assert.is(p.cli('migrate').code, 0);
      revertRelease(p);
      await p.db.query('DROP INDEX fees_order_idx');
      const r = p.cli('rollback');
      assert.is(r.code, 1, r.output);
      assert.match(r.stderr, /^error: stored 004_fees_rollback\.sql(:2(:1)?)?: .*fees_order_idx/m);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3, 4]);
      assert.ok((await p.db.tables()).includes('fees'), 'the failed rollback changed nothing');
    }));

  test('file and stored copy differ: the file runs with a warning; --use-stored runs the stored one', () =>
    withProject(dialect, async (p) => {
      assert.is(p.cli('migrate').code, 0);
      // A rollback "fixed" after 004 ran: it leaves a marker, so it is visible which one ran.
      writeSql(p.cwd, '004_fees_rollback.sql', `${FILES['004_fees_rollback.sql']}CREATE TABLE marker (id INTEGER);\n`);

      const stored = p.cli('rollback', '--use-stored');
      assert.is(stored.code, 0, stored.output);
      assert.match(
        stored.stderr,
        /^notice: 004 fees: running the rollback stored in the ledger when it was applied \(--use-stored\), not sql\/004_fees_rollback\.sql, which differs from it$/m,
      );
      assert.not.ok((await p.db.tables()).includes('marker'), 'the stored copy ran');
      assert.not.ok((await p.db.tables()).includes('fees'));

      assert.is(p.cli('migrate').code, 0, 'reapplied: the new rollback text is stored');
      writeSql(p.cwd, '004_fees_rollback.sql', `${FILES['004_fees_rollback.sql']}CREATE TABLE marker2 (id INTEGER);\n`);
      const file = p.cli('rollback');
      assert.is(file.code, 0, file.output);
      assert.match(
        file.stderr,
        /^warning: sql\/004_fees_rollback\.sql differs from the rollback stored in the ledger when 004 was applied; running the file \(pass --use-stored to run the stored copy\)$/m,
      );
      assert.ok((await p.db.tables()).includes('marker2'), 'the file ran');
      assert.equal(await ledgerVersions(p.db), [1, 2, 3]);
    }));

  test('an edited rollback file is checked like a forward file: migrate refuses, status and verify say so, --allow-changed stores the new text', () =>
    withProject(dialect, async (p) => {
      assert.is(p.cli('migrate').code, 0);
      const edited = `${FILES['003_orders_index_rollback.sql']}-- edited after 003 ran\n`;
      writeSql(p.cwd, '003_orders_index_rollback.sql', edited);

      const refused = p.cli('migrate');
      assert.is(refused.code, 2, refused.output);
      assert.match(refused.stderr, /^error: an applied migration file was edited after the migration ran$/m);
      assert.match(
        refused.stderr,
        /^ {2}sql\/003_orders_index_rollback\.sql: checksum differs from the one recorded when 003 was applied$/m,
      );
      assert.match(refused.stderr, /^hint: .*--allow-changed/m);
      assert.match(p.cli('status').stdout, /^003\s+orders_index\s+rollback file changed/m);
      const verify = p.cli('verify');
      assert.is(verify.code, 3, verify.output);
      assert.match(verify.stdout, /^ {2}sql\/003_orders_index_rollback\.sql: checksum differs/m);

      const allowed = p.cli('migrate', '--allow-changed');
      assert.is(allowed.code, 0, allowed.output);
      const [row] = await p.db.query('select rollback_sql from schema_version where version = 3');
      assert.is(row.rollback_sql, edited);
      assert.match(p.cli('status').stdout, /^003\s+orders_index\s+applied/m);
      assert.is(p.cli('migrate').code, 0);
    }));

  test('rows without a stored rollback (applied by an older tidemark) get it on the next migrate; force and baseline store it too', () =>
    withProject(dialect, async (p) => {
      assert.is(p.cli('migrate').code, 0);
      await p.db.query('UPDATE schema_version SET rollback_sql = NULL, rollback_checksum = NULL');
      const r = p.cli('migrate');
      assert.is(r.code, 0, r.output);
      const rows = await p.db.query('select version, rollback_sql from schema_version order by version');
      assert.equal(
        rows.map((row) => row.rollback_sql),
        [1, 2, 3, 4].map(
          (v) => FILES[Object.keys(FILES).find((f) => f.startsWith(`00${v}_`) && f.endsWith('_rollback.sql'))],
        ),
      );

      assert.is(p.cli('force', '0', '--yes').code, 0);
      assert.is(p.cli('force', '4', '--yes').code, 0);
      const [forced] = await p.db.query('select rollback_sql from schema_version where version = 4');
      assert.is(forced.rollback_sql, FILES['004_fees_rollback.sql']);
      revertRelease(p);
      const back = p.cli('rollback');
      assert.is(back.code, 0, back.output);
      assert.not.ok((await p.db.tables()).includes('fees'), 'the rollback stored by force ran');
    }));

  test('nothing stored and no file: rollback refuses before changing anything', () =>
    withProject(dialect, async (p) => {
      assert.is(p.cli('migrate').code, 0);
      await p.db.query('UPDATE schema_version SET rollback_sql = NULL, rollback_checksum = NULL WHERE version = 4');
      revertRelease(p);
      const r = p.cli('rollback', '2');
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, /^error: cannot roll back: nothing was changed$/m);
      assert.match(
        r.stderr,
        /version 004 \(fees\) is applied, but this release has no file for it and the ledger stored no rollback for it/,
      );
      assert.equal(await ledgerVersions(p.db), [1, 2, 3, 4]);
      assert.ok((await p.db.tables()).includes('fees'));
      assert.ok(existsSync(join(p.cwd, 'newer-release', '004_fees.sql')));
    }));

  test('tidemark sql --rollback prints the stored rollback for a DBA', () =>
    withProject(dialect, async (p) => {
      assert.is(p.cli('migrate').code, 0);
      revertRelease(p);
      const r = p.cli('sql', '--rollback');
      assert.is(r.code, 0, r.output);
      assert.match(r.stdout, /-- 004 fees \(stored 004_fees_rollback\.sql\)/);
      assert.ok(r.stdout.includes(FILES['004_fees_rollback.sql'].trimEnd()), r.stdout);
      assert.match(r.stderr, /running the rollback stored in the ledger/);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3, 4], 'sql only prints');
    }));

  test.run();

  const late = suite(`out-of-order migrations [${dialect}]`);

  /** 1-3 and 006 applied; then a branch merged late brings 005. */
  async function withLateBranch(work) {
    await withProject(dialect, async (p) => {
      for (const f of FEES) removeSql(p.cwd, f);
      writeSql(p.cwd, '006_refunds.sql', 'CREATE TABLE refunds (id INTEGER PRIMARY KEY);\n');
      writeSql(p.cwd, '006_refunds_rollback.sql', 'DROP TABLE refunds;\n');
      assert.is(p.cli('migrate').code, 0);
      writeSql(p.cwd, '005_coupons.sql', 'CREATE TABLE coupons (id INTEGER PRIMARY KEY);\n');
      writeSql(p.cwd, '005_coupons_rollback.sql', 'DROP TABLE coupons;\n');
      await work(p);
    });
  }

  late('migrate exits 2 naming the version and both choices; nothing changes; status marks it', () =>
    withLateBranch(async (p) => {
      const historyBefore = await history(p.db);
      const r = p.cli('migrate');
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, /^error: version 005 is pending but below the applied version 006: out of order/m);
      assert.match(r.stderr, /^ {2}sql\/005_coupons\.sql: not applied, while version 006 is$/m);
      assert.match(
        r.stderr,
        /^hint: either apply it anyway with --allow-out-of-order .*or renumber the file and its rollback above 006 \(e\.g\. 007_coupons\.sql\)/m,
      );
      assert.not.ok((await p.db.tables()).includes('coupons'));
      assert.equal(await ledgerVersions(p.db), [1, 2, 3, 6]);
      assert.equal(await history(p.db), historyBefore, 'not even a history row');

      assert.match(p.cli('status').stdout, /^005\s+coupons\s+pending, out of order$/m);
      assert.equal(
        JSON.parse(p.cli('status', '--json').stdout).entries.find((e) => e.version === 5).state,
        'out-of-order',
      );
      const verify = p.cli('verify');
      assert.is(verify.code, 3, verify.output);
      assert.match(verify.stdout, /1 migration is pending/);
    }),
  );

  late('--allow-out-of-order applies it, with a warning, recorded as up-out-of-order in the history', () =>
    withLateBranch(async (p) => {
      const r = p.cli('migrate', '--allow-out-of-order');
      assert.is(r.code, 0, r.output);
      assert.match(r.stdout, /↑ 005 coupons/);
      assert.match(
        r.stderr,
        /^warning: sql\/005_coupons\.sql runs out of order, below the applied version 6 \(--allow-out-of-order\)$/m,
      );
      assert.ok((await p.db.tables()).includes('coupons'));
      assert.equal(await ledgerVersions(p.db), [1, 2, 3, 5, 6]);
      assert.equal((await history(p.db)).slice(-1), ['up-out-of-order 5 ok']);
      assert.match(p.cli('status', '--history').stdout, /up-out-of-order\s+005\s+coupons\s+ok/);
      assert.match(p.cli('status').stdout, /^005\s+coupons\s+applied/m);
      const again = p.cli('migrate');
      assert.is(again.code, 0, again.output);
    }),
  );

  late('renumbering the file above the applied version runs it in order', () =>
    withLateBranch(async (p) => {
      for (const [from, to] of [
        ['005_coupons.sql', '007_coupons.sql'],
        ['005_coupons_rollback.sql', '007_coupons_rollback.sql'],
      ]) {
        writeSql(p.cwd, to, readFileSync(join(p.cwd, 'sql', from), 'utf8'));
        removeSql(p.cwd, from);
      }
      const r = p.cli('migrate');
      assert.is(r.code, 0, r.output);
      assert.match(r.stdout, /↑ 007 coupons/);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3, 6, 7]);
      assert.equal((await history(p.db)).slice(-1), ['up 7 ok']);
    }),
  );

  late.run();
}

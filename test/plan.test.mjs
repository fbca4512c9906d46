// Pure logic without a database: file names, variants, checksums, directives and plans.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checksumOf, discover, fileChecksum, normalizeText, parseDirectives, parseFileName } from '../dist/files.js';
import {
  assertReversible,
  dirtyResolution,
  planForce,
  planMigrate,
  planResolve,
  planRollback,
  planStatus,
} from '../dist/plan.js';

const files = suite('files');

files('file names: version, name, rollback and dialect', () => {
  assert.equal(parseFileName('sql', '002_user_strategies_rollback.postgres.sql'), {
    path: join('sql', '002_user_strategies_rollback.postgres.sql'),
    fullPath: join('sql', '002_user_strategies_rollback.postgres.sql'),
    version: 2n,
    versionText: '002',
    name: 'user_strategies',
    kind: 'rollback',
    dialect: 'postgres',
  });
  assert.is(parseFileName('sql', '20260223143052_x.sql').version, 20260223143052n);
  // Exact past 2^53: these two round to the same float.
  assert.is(parseFileName('sql', '9223372036854775807_x.sql').version, 9223372036854775807n);
  assert.is(parseFileName('sql', '9223372036854775806_x.sql').version, 9223372036854775806n);
  assert.is(parseFileName('sql', '001_rollback.sql').name, 'rollback');
  for (const bad of ['1-x.sql', 'x.sql', '001_.sql', '001_x.mysql.sql', '001 x.sql', '001_x.SQL'])
    assert.is(parseFileName('sql', bad), null, bad);
});

files('checksum ignores a BOM and CRLF line endings', () => {
  const text = 'CREATE TABLE a (id int);\nSELECT 1;\n';
  assert.is(checksumOf(normalizeText(`\uFEFF${text.replace(/\n/g, '\r\n')}`)), checksumOf(normalizeText(text)));
  assert.is.not(checksumOf(normalizeText(`${text} `)), checksumOf(normalizeText(text)));
});

files('a file read for its checksum alone gets the checksum of its normalized text, at any size', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-checksum-'));
  try {
    const big = `${'-- a long comment line, repeated past the read buffer\n'.repeat(6000)}SELECT 'é';\n`;
    const texts = ['SELECT 1;\n', big, '\uFEFFSELECT 1;\r\nSELECT 2;\r\n', 'SELECT 1;\rSELECT 2;\n', ''];
    for (const [i, text] of texts.entries()) {
      const name = `00${i + 1}_t.sql`;
      writeFileSync(join(dir, name), text);
      assert.is(
        fileChecksum(parseFileName(dir, name)),
        checksumOf(normalizeText(text)),
        JSON.stringify(text.slice(0, 20)),
      );
    }
    writeFileSync(join(dir, '009_latin1.sql'), Buffer.from([0x53, 0xe9, 0x0a]));
    assert.throws(
      () => fileChecksum(parseFileName(dir, '009_latin1.sql')),
      /009_latin1\.sql:1:2: not valid UTF-8 text \(byte 0xE9\)/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

files('directives come from the leading comments only', () => {
  assert.ok(
    parseDirectives('f.sql', '-- why\n-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);').has(
      'no-transaction',
    ),
  );
  assert.not.ok(parseDirectives('f.sql', 'SELECT 1;\n-- tidemark:no-transaction\n').has('no-transaction'));
  assert.throws(() => parseDirectives('f.sql', '-- tidemark:notransaction\n'), /f\.sql:1: unknown directive/);
});

files('variants: the dialect file wins, a version missing for a dialect is not in its plan', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-plan-'));
  try {
    for (const f of [
      '001_a.sql',
      '001_a_rollback.sql',
      '002_b.postgres.sql',
      '002_b.sql',
      '002_b_rollback.sql',
      '003_c.sqlite.sql',
    ])
      writeFileSync(join(dir, f), '');
    mkdirSync(join(dir, 'nested.sql'));
    const catalog = discover(dir);
    const pg = catalog.migrationsFor('postgres');
    assert.equal(
      pg.map((m) => Number(m.version)),
      [1, 2],
    );
    assert.is(pg[1].forward.dialect, 'postgres');
    assert.is(pg[1].rollback.dialect, null);
    const lite = catalog.migrationsFor('sqlite');
    assert.equal(
      lite.map((m) => Number(m.version)),
      [1, 2, 3],
    );
    assert.is(lite[1].forward.dialect, null);
    assert.is(lite[2].rollback, null);
    assert.is(catalog.nextVersionText(), '004');
  } finally {
    rmSync(dir, { recursive: true });
  }
});

const plan = suite('plan');
const m = (version, { rollback = true } = {}) => ({
  version: BigInt(version),
  versionText: String(version).padStart(3, '0'),
  name: `m${version}`,
  forward: { path: `sql/${version}_m${version}.sql` },
  rollback: rollback ? { path: `sql/${version}_m${version}_rollback.sql` } : null,
});
const row = (version, extra = {}) => ({
  version: BigInt(version),
  name: `m${version}`,
  appliedAt: null,
  checksum: `c${version}`,
  executionMs: 1,
  appliedBy: null,
  dirty: false,
  rollbackChecksum: `r${version}`,
  ...extra,
});
/** The files' checksums as planning sees them: forward `c<V>`, rollback `r<V>`, as recorded by row(). */
const sums = (...versions) => ({
  forward: new Map(versions.map((v) => [BigInt(v), `c${v}`])),
  rollback: new Map(versions.map((v) => [BigInt(v), `r${v}`])),
});
const rollbackSums = (...versions) => sums(...versions).rollback;

plan('migrate: pending up to the target; legacy rows get their checksum and rollback text', () => {
  const migrations = [m(1), m(2), m(3)];
  const p = planMigrate(migrations, [row(1, { checksum: null, rollbackChecksum: null })], sums(1, 2, 3), {
    target: 2n,
  });
  assert.equal(
    p.pending.map((x) => Number(x.version)),
    [2],
  );
  assert.equal(
    p.backfill.map((b) => [Number(b.migration.version), b.checksum, b.rollback]),
    [[1, true, true]],
  );
  assert.is(p.current, 1n);
  const rollbackOnly = planMigrate(migrations, [row(1, { rollbackChecksum: null })], sums(1, 2, 3), { target: 1n });
  assert.equal(
    rollbackOnly.backfill.map((b) => [Number(b.migration.version), b.checksum, b.rollback]),
    [[1, false, true]],
  );
});

plan('migrate: refuses a dirty ledger, an edited forward or rollback file, and an out-of-order version', () => {
  assert.throws(() => planMigrate([m(1)], [row(1, { dirty: true })], sums(1)), /version 1 \(m1\) is dirty/);
  assert.throws(() => planMigrate([m(1)], [row(1, { checksum: 'old' })], sums(1)), /edited after the migration ran/);
  assert.throws(
    () => planMigrate([m(1)], [row(1, { rollbackChecksum: 'old' })], sums(1)),
    (e) => /1_m1_rollback\.sql: checksum differs/.test(e.details.context.join('\n')),
  );
  assert.throws(
    () => planMigrate([m(1), m(2), m(3)], [row(1), row(3)], sums(1, 2, 3)),
    /version 002 is pending but below the applied version 003: out of order/,
  );
});

plan(
  'migrate: --allow-out-of-order applies the late version and marks it; applied versions without files are not in this release',
  () => {
    const late = planMigrate([m(1), m(2), m(3)], [row(1), row(3)], sums(1, 2, 3), { allowOutOfOrder: true });
    assert.equal(
      late.pending.map((x) => Number(x.version)),
      [2],
    );
    assert.equal([...late.outOfOrder], [2n]);
    assert.is(late.version, 3n);
    const reverted = planMigrate([m(1), m(2)], [row(1), row(2), row(3)], sums(1, 2));
    assert.equal(reverted.pending, []);
    assert.equal(
      reverted.notInRelease.map((r) => Number(r.version)),
      [3],
    );
  },
);

plan('rollback: steps, --to, --all, newest first; a missing rollback file stops the whole plan', () => {
  const migrations = [m(1), m(2), m(3)];
  const ledger = [row(1), row(2), row(3)];
  const now = rollbackSums(1, 2, 3);
  assert.equal(
    planRollback(migrations, ledger, {}, now).map((s) => Number(s.row.version)),
    [3],
  );
  assert.equal(
    planRollback(migrations, ledger, { steps: 2 }, now).map((s) => Number(s.row.version)),
    [3, 2],
  );
  assert.equal(
    planRollback(migrations, ledger, { to: 1n }, now).map((s) => Number(s.row.version)),
    [3, 2],
  );
  assert.equal(
    planRollback(migrations, ledger, { all: true }, now).map((s) => Number(s.row.version)),
    [3, 2, 1],
  );
  const unstored = [row(1), row(2, { rollbackChecksum: null }), row(3)];
  assert.throws(
    () => planRollback([m(1), m(2, { rollback: false }), m(3)], unstored, { steps: 2 }, now),
    /cannot roll back: nothing was changed/,
  );
});

plan(
  'rollback: the file when it matches; the stored copy when the file is gone; a differing file runs with a warning unless useStored',
  () => {
    const ledger = [row(1), row(2), row(3)];
    const source = (steps) => steps.map((s) => `${s.version}:${s.file ? 'file' : 'stored'}:${s.note?.level ?? '-'}`);
    assert.equal(source(planRollback([m(1), m(2), m(3)], ledger, { all: true }, rollbackSums(1, 2, 3))), [
      '3:file:-',
      '2:file:-',
      '1:file:-',
    ]);
    assert.equal(source(planRollback([m(1), m(2, { rollback: false })], ledger, { all: true }, rollbackSums(1))), [
      '3:stored:notice',
      '2:stored:notice',
      '1:file:-',
    ]);
    const edited = new Map([
      [1n, 'r1'],
      [2n, 'edited'],
      [3n, 'r3'],
    ]);
    assert.equal(source(planRollback([m(1), m(2), m(3)], ledger, { to: 1n }, edited)), ['3:file:-', '2:file:warning']);
    assert.equal(source(planRollback([m(1), m(2), m(3)], ledger, { to: 1n, useStored: true }, edited)), [
      '3:file:-',
      '2:stored:notice',
    ]);
  },
);

plan(
  'rollback: in apply order (ledger id), not by version number; --to refuses across a migration applied after those it undoes',
  () => {
    const migrations = [m(1), m(2), m(3)];
    const ledger = [row(1, { id: 1 }), row(2, { id: 3 }), row(3, { id: 2 })];
    const now = rollbackSums(1, 2, 3);
    assert.equal(
      planRollback(migrations, ledger, {}, now).map((s) => Number(s.row.version)),
      [2],
    );
    assert.equal(
      planRollback(migrations, ledger, { steps: 2 }, now).map((s) => Number(s.row.version)),
      [2, 3],
    );
    assert.equal(
      planRollback(migrations, ledger, { to: 1n }, now).map((s) => Number(s.row.version)),
      [2, 3],
    );
    assert.equal(
      planRollback(migrations, ledger, { all: true }, now).map((s) => Number(s.row.version)),
      [2, 3, 1],
    );
    assert.throws(() => planRollback(migrations, ledger, { to: 2n }, now), /version 2 was applied after 3/);
    assert.equal(planRollback(migrations, ledger, { to: 3n }, now), [], 'nothing above --to: nothing to undo');
  },
);

plan('rollback: an irreversible migration among those to undo refuses the whole plan up front', () => {
  const migrations = [m(1), m(2), m(3)];
  const ledger = [row(1), row(2), row(3)];
  const irreversible = new Map([[2n, 'sql/2_m2_rollback.sql: no statement, while its migration has some']]);
  assertReversible(planRollback(migrations, ledger, {}, rollbackSums(1, 2, 3)), irreversible);
  const across = planRollback(migrations, ledger, { to: 1n }, rollbackSums(1, 2, 3));
  assert.throws(
    () => assertReversible(across, irreversible),
    (e) => /irreversible; nothing was changed/.test(e.message) && /tidemark rollback 1/.test(e.details.hint),
  );
});

plan('resolve: only the row of the version; the meaning of --applied follows the dirty direction', () => {
  const ledger = [row(1), row(2, { dirty: true, dirtyAction: 'up' }), row(3)];
  assert.equal(planResolve(ledger, 2n, true), { version: 2n, name: 'm2', change: 'clean', direction: 'up' });
  assert.equal(planResolve(ledger, 2n, false), { version: 2n, name: 'm2', change: 'delete', direction: 'up' });
  const down = [row(1), row(2, { dirty: true, dirtyAction: 'down' })];
  assert.equal(planResolve(down, 2n, true), { version: 2n, name: 'm2', change: 'delete', direction: 'down' });
  assert.equal(planResolve(down, 2n, false), { version: 2n, name: 'm2', change: 'clean', direction: 'down' });
  assert.throws(() => planResolve(ledger, 1n, true), /version 1 is not dirty/);
  assert.throws(() => planResolve(ledger, 9n, true), /version 9 is not in the ledger/);
  assert.match(dirtyResolution('2', 'up'), /resolve 2 --applied` if the migration took effect/);
  assert.match(
    dirtyResolution('2', 'down'),
    /resolve 2 --applied` if the rollback took effect \(deletes the row of version 2 only\)/,
  );
  assert.not.match(dirtyResolution('2', null), /force/);
});

plan('status: out of order, not in this release, rollback file changed', () => {
  const entries = planStatus(
    [m(1), m(2), m(3), m(4)],
    [row(1), row(3, { rollbackChecksum: 'old' }), row(5)],
    sums(1, 2, 3, 4),
  );
  assert.equal(
    entries.map((e) => `${e.version}:${e.state}:${e.rollback}`),
    [
      '1:applied:file',
      '2:out-of-order:file',
      '3:rollback-changed:file',
      '4:out-of-order:file',
      '5:not-in-release:stored',
    ],
  );
});

plan('force: exactly the versions <= V that exist', () => {
  const p = planForce([m(1), m(2), m(4)], [row(1), row(3), row(4), row(9)], 2n);
  assert.equal(
    p.remove.map((r) => Number(r.version)),
    [3, 4, 9],
  );
  assert.equal(
    p.add.map((x) => Number(x.version)),
    [2],
  );
  assert.throws(() => planForce([m(1)], [], 5n), /no migration with version 5/);
  assert.equal(
    planForce([m(1)], [row(1)], 0n).remove.map((r) => Number(r.version)),
    [1],
  );
});

files.run();
plan.run();

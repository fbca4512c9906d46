// Pure logic of verify without a database: SQL text normalization, snapshot diffs and text, findings.
import kleur from 'kleur';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { filesReference, formatVerifyReport, ledgerFindings, rebuildObstacle } from '../dist/findings.js';
import { diffSnapshots, EMPTY_SNAPSHOT, formatSnapshot, normalizeSql } from '../dist/schema.js';

const snapshots = suite('schema snapshots');

const users = (columns = [], constraints = []) => ({
  name: 'users',
  columns: [
    { name: 'id', type: 'text', nullable: false, default: null },
    { name: 'email', type: 'text', nullable: true, default: null },
    ...columns,
  ],
  constraints: [{ kind: 'primary key', name: 'users_pkey', definition: '(id)' }, ...constraints],
});
const schema = (parts) => ({ ...EMPTY_SNAPSHOT, ...parts });
const lines = (expected, actual) => diffSnapshots(expected, actual).map((d) => d.line);

snapshots('SQL text: comments and spacing do not count, string literals and quoted mixed-case names do', () => {
  assert.is(
    normalizeSql('CREATE  VIEW v AS\n  SELECT id -- the key\n  FROM /* c */ users WHERE ( a = 1 ) , b'),
    'CREATE VIEW v AS SELECT id FROM users WHERE (a = 1), b',
  );
  assert.is(
    normalizeSql(`SELECT 'two  spaces -- kept', "Mixed", "trades"`),
    `SELECT 'two  spaces -- kept', "Mixed", trades`,
  );
  assert.is(normalizeSql("SELECT 'it''s'  FROM t"), "SELECT 'it''s' FROM t");
});

snapshots('identical schemas have no difference, whatever order the catalog gave', () => {
  const a = schema({
    tables: [users(), { name: 'a', columns: [], constraints: [] }],
    indexes: [{ name: 'i2', table: 'users', unique: false, method: null, columns: ['email'], predicate: null }],
  });
  const b = schema({ tables: [{ name: 'a', columns: [], constraints: [] }, users()], indexes: a.indexes });
  assert.equal(diffSnapshots(a, b), []);
  assert.is(formatSnapshot(a), formatSnapshot(b));
});

snapshots('added, removed and changed objects are each one line', () => {
  const before = schema({ tables: [users()], types: [{ name: 'mood', labels: ['ok'] }] });
  const after = schema({
    tables: [users([{ name: 'phone', type: 'text', nullable: true, default: null }])].map((t) => ({
      ...t,
      columns: t.columns.map((c) => (c.name === 'email' ? { ...c, nullable: false, default: "''" } : c)),
    })),
    indexes: [
      {
        name: 'users_email_idx',
        table: 'users',
        unique: true,
        method: 'btree',
        columns: ['email'],
        predicate: 'email IS NOT NULL',
      },
    ],
  });
  assert.equal(lines(before, after), [
    "- type mood: enum ('ok')",
    "~ column users.email: nullable → not null; no default → default ''",
    '+ column users.phone: text',
    '+ index users_email_idx: on users unique btree (email) where email IS NOT NULL',
  ]);
  const [change] = diffSnapshots(before, after).filter((d) => d.change === 'changed');
  assert.equal(
    { expected: change.expected, actual: change.actual },
    { expected: 'text nullable no default', actual: "text not null default ''" },
  );
});

snapshots('what belongs to an added or removed table is not listed again', () => {
  const orders = {
    name: 'orders',
    columns: [{ name: 'id', type: 'integer', nullable: false, default: null }],
    constraints: [{ kind: 'check', name: null, definition: '(id > 0)' }],
  };
  const withOrders = schema({
    tables: [users(), orders],
    indexes: [{ name: 'orders_idx', table: 'orders', unique: false, method: null, columns: ['id'], predicate: null }],
    triggers: [{ name: 'orders_t', table: 'orders', definition: 'AFTER INSERT ON orders BEGIN SELECT 1; END' }],
    sequences: [
      { name: 'orders_id_seq', type: 'integer', start: '1', increment: '1', cycle: false, ownedBy: 'orders.id' },
    ],
  });
  const without = schema({ tables: [users()] });
  assert.equal(lines(without, withOrders), ['+ table orders']);
  assert.equal(lines(withOrders, without), ['- table orders']);
});

snapshots('an unnamed constraint (SQLite) is known by what it says: a new check is one out and one in', () => {
  const check = (definition) => schema({ tables: [users([], [{ kind: 'check', name: null, definition }])] });
  assert.equal(lines(check("(side IN ('buy'))"), check("(side IN ('buy', 'sell'))")), [
    "- check users: (side IN ('buy'))",
    "+ check users: (side IN ('buy', 'sell'))",
  ]);
});

snapshots('the schema text: types first, a block per table, then indexes; an empty schema says so', () => {
  const s = schema({
    tables: [users([], [{ kind: 'unique', name: null, definition: '(email)' }])],
    types: [{ name: 'mood', labels: ['ok', "it's"] }],
    indexes: [
      {
        name: 'users_email_idx',
        table: 'users',
        unique: false,
        method: 'btree',
        columns: ['lower(email)'],
        predicate: null,
      },
    ],
  });
  assert.is(
    formatSnapshot(s),
    [
      "type mood enum ('ok', 'it''s')",
      '',
      'table users',
      '  column id text not null',
      '  column email text',
      '  primary key users_pkey (id)',
      '  unique (email)',
      '',
      'index users_email_idx on users btree (lower(email))',
    ].join('\n'),
  );
  assert.is(formatSnapshot(EMPTY_SNAPSHOT), '(empty schema)');
});

snapshots.run();

const findings = suite('verify findings');
kleur.enabled = false;
const m = (version, { rollback = true } = {}) => ({
  version,
  versionText: String(version).padStart(3, '0'),
  name: `m${version}`,
  forward: { path: `sql/${String(version).padStart(3, '0')}_m${version}.sql` },
  rollback: rollback ? { path: `sql/${String(version).padStart(3, '0')}_m${version}_rollback.sql` } : null,
});
const row = (version, extra = {}) => ({
  version,
  name: `m${version}`,
  appliedAt: null,
  checksum: `c${version}`,
  executionMs: 1,
  appliedBy: null,
  dirty: false,
  rollbackChecksum: `r${version}`,
  ...extra,
});
const sums = (...versions) => ({
  forward: new Map(versions.map((v) => [v, `c${v}`])),
  rollback: new Map(versions.map((v) => [v, `r${v}`])),
});

findings('a ledger that matches its files has no finding; SCHEMA_VERSION is checked only when set', () => {
  const facts = { migrations: [m(1), m(2)], ledger: [row(1), row(2)], checksums: sums(1, 2), expectedVersion: null };
  assert.equal(ledgerFindings(facts), []);
  assert.equal(ledgerFindings({ ...facts, expectedVersion: 2 }), []);
  const [ahead] = ledgerFindings({ ...facts, expectedVersion: 1 });
  assert.is(ahead.message, 'the database is at version 2, but SCHEMA_VERSION expects 1');
  assert.match(ahead.fix, 'rollback --to 1');
});

findings('each kind of problem is one finding listing its items', () => {
  const facts = {
    migrations: [m(1), m(2, { rollback: false }), m(3), m(4)],
    ledger: [
      row(1, { checksum: 'old' }),
      row(2, { dirty: true }),
      row(9),
      row(3, { checksum: null, rollbackChecksum: 'old' }),
    ],
    checksums: sums(1, 2, 3),
    expectedVersion: null,
  };
  assert.equal(
    ledgerFindings(facts).map((f) => [f.check, f.versions, f.details]),
    [
      ['pending', [4], ['004 m4']],
      ['missing-file', [9], ['version 9 (m9): its rollback is stored in the ledger']],
      [
        'checksum',
        [1, 3],
        [
          'sql/001_m1.sql: checksum differs from the one recorded when 001 was applied',
          'sql/003_m3_rollback.sql: checksum differs from the one recorded when 003 was applied',
        ],
      ],
      ['dirty', [2], ['version 2 (m2)']],
      ['rollback-file', [2], ['sql/002_m2.sql: write 002_m2_rollback.sql']],
    ],
  );
});

findings(
  'the expected schema can be rebuilt from the files when every applied version has its file, in any order',
  () => {
    assert.is(rebuildObstacle([m(1), m(2), m(3)], [row(1), row(2)]), null);
    assert.is(rebuildObstacle([m(1), m(2), m(3)], [row(1), row(3)]), null);
    assert.is(
      rebuildObstacle([m(1)], [row(1), row(2)]),
      'version 2 (m2) is applied but this release has no file to rebuild it from',
    );
  },
);

findings('a ledger no serial run could have written: a version twice, several dirty rows', () => {
  const facts = {
    migrations: [m(1), m(2)],
    ledger: [row(1, { dirty: true }), row(1), row(2, { dirty: true })],
    checksums: sums(1, 2),
    expectedVersion: null,
  };
  const [ledger] = ledgerFindings(facts);
  assert.equal(
    [ledger.check, ledger.details],
    ['ledger', ['version 1 is recorded 2 times', 'versions 1, 2 are both dirty']],
  );
});

findings('the reference names the version, and the apply order when it is not the version order', () => {
  assert.is(filesReference([1, 2, 3]).description, 'the migration files at version 3, built on a scratch database');
  assert.is(
    filesReference([1, 3, 2]).description,
    'the migration files at version 3 (applied in the order 1, 3, 2), built on a scratch database',
  );
  assert.is(filesReference([]).description, 'an empty schema (no version applied)');
});

findings('the text report: every check that holds, each finding with its details and fix, a total', () => {
  const report = {
    database: 'sqlite:app.db',
    version: 2,
    expectedVersion: null,
    reference: filesReference([1, 2]),
    rollbacks: null,
    irreversible: [],
    findings: [
      {
        check: 'pending',
        message: '1 migration is pending',
        details: ['003 m3'],
        fix: 'run `tidemark migrate`',
        versions: [3],
      },
    ],
    ok: false,
  };
  assert.equal(formatVerifyReport(report), [
    'verify sqlite:app.db at version 2',
    '✓ the ledger is one a serial run could have written',
    '✗ 1 migration is pending',
    '  003 m3',
    '  fix: run `tidemark migrate`',
    '✓ every applied version has its file',
    '✓ no applied file was edited',
    '✓ no dirty version',
    '✓ every migration has a rollback file',
    '✓ the schema matches the migration files at version 2, built on a scratch database',
    'verify found 1 problem',
  ]);
  const rollbacks = {
    from: null,
    counts: { proven: 1, lossy: 0, failed: 0, irreversible: 0, unchecked: 1 },
    results: [
      { version: 1, versionText: '001', name: 'm1', verdict: 'proven', reason: null },
      { version: 2, versionText: '002', name: 'm2', verdict: 'unchecked', reason: 'no rollback file' },
    ],
  };
  assert.equal(formatVerifyReport({ ...report, findings: [], ok: true, rollbacks }).slice(-4), [
    '✓ every rollback checked undoes its migration (1 rollback proven on a scratch database)',
    'rollbacks: 1 proven, 0 lossy, 0 failed, 0 irreversible, 1 unchecked',
    '  002 m2: unchecked: no rollback file',
    'verified: matches the migration files at version 2, built on a scratch database',
  ]);
  assert.equal(formatVerifyReport(report, true), [
    '✗ 1 migration is pending',
    '  003 m3',
    '  fix: run `tidemark migrate`',
    'verify found 1 problem',
  ]);
});

findings.run();

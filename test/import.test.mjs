// tidemark import: another migrator's folder -> tidemark files (test/fixtures/import/, NOTES.md there
// names their sources), and with a database URL the adoption of that tool's ledger, created by hand
// with the tool's own schema.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dispose, project, ROOT, runCli } from './helpers.mjs';

const SOURCES = join(ROOT, 'test', 'fixtures', 'import');
const source = (format, ...path) => join(SOURCES, format, ...path);
const read = (path) => readFileSync(path, 'latin1');
const sha256 = (path) => createHash('sha256').update(readFileSync(path, 'utf8').replace(/\r\n/g, '\n')).digest('hex');
const DIRECTIVE = '-- tidemark:no-transaction\n';

/** A project folder (and a database of the dialect, not configured unless `url`) with an empty sql/. */
async function importer(dialect = 'sqlite') {
  const p = await project(dialect, {});
  const sql = (name) => join(p.cwd, 'sql', name);
  const files = () => readdirSync(join(p.cwd, 'sql')).sort();
  const run = (args, url) => runCli(['import', ...args], { cwd: p.cwd, env: url ? { DATABASE_URL: p.db.url } : {} });
  return { ...p, sql, files, run };
}

/** The text between two marker lines of a single-file migration, as the source has it. */
function section(text, from, to) {
  const start = text.indexOf('\n', text.indexOf(from)) + 1;
  const end = to ? text.indexOf(to) : text.length;
  return text.slice(start, end);
}

const pure = suite('import: conversion (no database)');
const { convert, migrationName } = await import(join(ROOT, 'dist', 'import', 'convert.js'));

pure('CRLF files split at their markers with their bytes kept; a header before the up marker is left out', () => {
  const text =
    '-- +goose NO TRANSACTION\r\n-- +goose Up\r\nCREATE INDEX CONCURRENTLY i ON t (a);\r\n-- +goose Down\r\nDROP INDEX i;\r\n';
  const { files } = convert('goose', [{ path: '00002_i.sql', text }]);
  assert.equal(
    files.map((f) => [f.fileName, f.text]),
    [
      ['00002_i.sql', '-- tidemark:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (a);\r\n'],
      ['00002_i_rollback.sql', '-- tidemark:no-transaction\nDROP INDEX i;\r\n'],
    ],
  );
});

pure('transaction control: a wrapper around the whole file needs no directive, anything else does', () => {
  const up = (text) => convert('golang-migrate', [{ path: '1_a.up.sql', text }]).files[0].noTransaction;
  assert.is(up('BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\n'), false);
  assert.is(up('BEGIN;\nCREATE TABLE a (x int);\nCOMMIT;\nCREATE TABLE b (x int);\n'), true);
  assert.is(up("CREATE TABLE a (x text DEFAULT 'BEGIN; COMMIT;');\n-- COMMIT;\n"), false);
  assert.is(up('VACUUM;\n'), true);
  // Read on both dialects' rules, a $$ body and a trigger's BEGIN ... END are not transaction control.
  assert.is(
    up('CREATE FUNCTION f() RETURNS trigger AS $$ BEGIN NEW.a := 1; RETURN NEW; END; $$ LANGUAGE plpgsql;\n'),
    false,
  );
  assert.is(up('CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 1; END;\n'), false);
});

pure(
  'versions above the ledger bigint, one version twice, and a file without its up marker are reported, not converted',
  () => {
    const { files, skipped } = convert('dbmate', [
      { path: '20190100000001000000_client.sql', text: '-- migrate:up\nSELECT 1;\n' },
      { path: '7_a.sql', text: '-- migrate:up\nSELECT 1;\n' },
      { path: '007_b.sql', text: '-- migrate:up\nSELECT 2;\n' },
      { path: '8_c.sql', text: 'SELECT 3;\n' },
      { path: '9_ok.sql', text: '-- migrate:up\nSELECT 4;\n-- migrate:down\n\n' },
    ]);
    assert.equal(
      files.map((f) => f.fileName),
      ['9_ok.sql'],
    );
    const reasons = Object.fromEntries(skipped.map((s) => [s.path, s.reason]));
    assert.match(
      reasons['20190100000001000000_client.sql'],
      'is above the largest version 9223372036854775807 (PostgreSQL bigint, SQLite integer)',
    );
    assert.match(reasons['7_a.sql'], 'version 7 has 2 files');
    assert.match(reasons['007_b.sql'], 'version 7 has 2 files');
    assert.match(reasons['8_c.sql'], 'no -- migrate:up line');
  },
);

pure('a UTF-8 byte order mark before the first marker line', () => {
  const text = Buffer.from('\uFEFF-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n', 'utf8').toString('latin1');
  const { files } = convert('dbmate', [{ path: '1_a.sql', text }]);
  assert.equal(
    files.map((f) => [f.fileName, f.text]),
    [
      ['1_a.sql', 'SELECT 1;\n'],
      ['1_a_rollback.sql', 'SELECT 2;\n'],
    ],
  );
});

pure('names become letters, digits and underscores', () => {
  assert.is(migrationName('0.1.2_store-smtp settings'), '0_1_2_store_smtp_settings');
  assert.is(migrationName('--'), 'migration');
  assert.is(migrationName('undo-rollback'), 'undo_rollback_migration');
});

pure.run();

const files = suite('import: files');

files(
  'golang-migrate: up and down pairs, an empty down reported, mid-file transactions and CONCURRENTLY get the directive',
  async () => {
    const p = await importer();
    try {
      const r = p.run(['--from', 'golang-migrate', source('golang-migrate'), '--json']);
      assert.is(r.code, 0, r.output);
      assert.equal(p.files(), [
        '20240919144910_customer_timezone.sql',
        '20240919144910_customer_timezone_rollback.sql',
        '20250129143720_minimum_entitlement_usageperiod.sql',
        '20250201000000_timezone_backfill.sql',
        '20250201000000_timezone_backfill_rollback.sql',
        '20250202000000_timezone_index.sql',
        '20250202000000_timezone_index_rollback.sql',
      ]);
      const gm = (name) => read(source('golang-migrate', name));
      assert.is(read(p.sql('20240919144910_customer_timezone.sql')), gm('20240919144910_customer-timezone.up.sql'));
      assert.is(
        read(p.sql('20240919144910_customer_timezone_rollback.sql')),
        gm('20240919144910_customer-timezone.down.sql'),
      );
      assert.is(
        read(p.sql('20250201000000_timezone_backfill.sql')),
        DIRECTIVE + gm('20250201000000_timezone_backfill.up.sql'),
      );
      // A BEGIN ... COMMIT around the whole file is replaced by tidemark's own transaction: no directive.
      assert.is(
        read(p.sql('20250201000000_timezone_backfill_rollback.sql')),
        gm('20250201000000_timezone_backfill.down.sql'),
      );
      assert.is(
        read(p.sql('20250202000000_timezone_index.sql')),
        DIRECTIVE + gm('20250202000000_timezone_index.up.sql'),
      );
      const report = JSON.parse(r.stdout);
      assert.equal(
        report.written,
        p.files().map((f) => `sql/${f}`),
      );
      assert.equal(
        report.files.find((f) => f.fileName === '20250202000000_timezone_index.sql'),
        {
          version: 20250202000000,
          versionText: '20250202000000',
          name: 'timezone_index',
          dialect: null,
          kind: 'forward',
          fileName: '20250202000000_timezone_index.sql',
          noTransaction: true,
          from: '20250202000000_timezone_index.up.sql',
        },
      );
      assert.equal(
        report.notes.map((n) => n.path),
        ['20250129143720_minimum-entitlement-usageperiod.up.sql'],
      );
      assert.match(report.notes[0].reason, 'its down is empty');
      assert.equal(report.skipped, []);
      const again = p.run(['--from', 'golang-migrate', source('golang-migrate')]);
      assert.is(again.code, 0, again.output);
      assert.match(
        again.output,
        'wrote 0 files (4 migrations) into sql/; 7 were there already, identical, and were kept',
      );
    } finally {
      await dispose(p);
    }
  },
);

files('dbmate: split at -- migrate:up / -- migrate:down, transaction:false per section', async () => {
  const p = await importer();
  try {
    const r = p.run(['--from', 'dbmate', source('dbmate')]);
    assert.is(r.code, 0, r.output);
    const text = read(source('dbmate', '20151129054053_test_migration.sql'));
    assert.is(read(p.sql('20151129054053_test_migration.sql')), section(text, '-- migrate:up', '-- migrate:down'));
    assert.is(read(p.sql('20151129054053_test_migration_rollback.sql')), section(text, '-- migrate:down'));
    const index = read(source('dbmate', '20240101000000_posts_name_index.sql'));
    assert.is(
      read(p.sql('20240101000000_posts_name_index.sql')),
      DIRECTIVE + section(index, '-- migrate:up', '-- migrate:down'),
    );
    assert.is(
      read(p.sql('20240101000000_posts_name_index_rollback.sql')),
      DIRECTIVE + section(index, '-- migrate:down'),
    );
    assert.match(r.stdout, 'wrote 6 files (3 migrations) into sql/');
  } finally {
    await dispose(p);
  }
});

files(
  'goose: dialect folders become variants; NO TRANSACTION becomes the directive; a Go migration is reported',
  async () => {
    const p = await importer();
    try {
      const r = p.run(['--from', 'goose', source('goose'), '--json']);
      assert.is(r.code, 0, r.output);
      assert.ok(p.files().includes('005_add_conditions_to_tuples.postgres.sql'));
      assert.ok(
        p.files().includes('005_add_conditions_to_tuples.sqlite.sql'),
        "the SQLite variant takes the version's one name",
      );
      const collate = read(source('goose', 'postgres', '006_add_collate_index.sql'));
      assert.is(
        read(p.sql('006_add_collate_index.postgres.sql')),
        DIRECTIVE + section(collate, '-- +goose Up', '-- +goose Down'),
      );
      assert.is(
        read(p.sql('006_add_collate_index_rollback.postgres.sql')),
        DIRECTIVE + section(collate, '-- +goose Down'),
      );
      const sqlite = read(source('goose', 'sqlite', '006_add_store_ulid_index.sql'));
      assert.is(read(p.sql('006_add_collate_index.sqlite.sql')), section(sqlite, '-- +goose Up', '-- +goose Down'));
      const report = JSON.parse(r.stdout);
      assert.equal(
        report.skipped.map((s) => s.path),
        ['postgres/007_backfill_ulids.go'],
      );
      assert.match(report.skipped[0].reason, 'Go-code migration');
      assert.equal(
        report.notes.map((n) => n.path),
        ['sqlite/005_initialize_schema.sql', 'sqlite/006_add_store_ulid_index.sql'],
      );
      // The result is a folder tidemark runs: both dialects migrate and roll back.
      for (const dialect of ['sqlite', 'postgres']) {
        const q = await project(dialect, {});
        try {
          for (const f of p.files()) writeFileSync(join(q.cwd, 'sql', f), readFileSync(p.sql(f)));
          assert.is(q.cli('migrate', '--quiet').code, 0);
          assert.is(q.cli('rollback', '--all', '--quiet').code, 0);
        } finally {
          await dispose(q);
        }
      }
    } finally {
      await dispose(p);
    }
  },
);

files(
  'flyway: V and U files, executeInTransaction=false; repeatable, dotted and Java migrations reported',
  async () => {
    const p = await importer();
    try {
      const r = p.run(['--from', 'flyway', source('flyway'), '--json']);
      assert.is(r.code, 0, r.output);
      assert.equal(p.files(), [
        '1_create_users.sql',
        '2_add_user_name.sql',
        '2_add_user_name_rollback.sql',
        '3_user_email_index.sql',
      ]);
      assert.is(read(p.sql('2_add_user_name_rollback.sql')), read(source('flyway', 'U2__add_user_name.sql')));
      assert.is(read(p.sql('3_user_email_index.sql')), DIRECTIVE + read(source('flyway', 'V3__user_email_index.sql')));
      const skipped = Object.fromEntries(JSON.parse(r.stdout).skipped.map((s) => [s.path, s.reason]));
      assert.equal(Object.keys(skipped).sort(), ['R__user_view.sql', 'V3_1__orders.sql', 'V4__Backfill.java']);
      assert.match(skipped['R__user_view.sql'], 'repeatable');
      assert.match(skipped['V3_1__orders.sql'], 'version 3_1 has parts; tidemark versions are whole numbers');
      assert.match(skipped['V4__Backfill.java'], 'Java-code migration');
    } finally {
      await dispose(p);
    }
  },
);

files('node-pg-migrate: -- Up Migration / -- Down Migration; a JavaScript migration is reported', async () => {
  const p = await importer();
  try {
    const r = p.run(['--from', 'node-pg-migrate', source('node-pg-migrate')]);
    assert.is(r.code, 0, r.output);
    const text = read(source('node-pg-migrate', '1700000001000_accounts-email.sql'));
    assert.is(read(p.sql('1700000001000_accounts_email.sql')), section(text, '-- Up Migration', '-- Down Migration'));
    assert.is(read(p.sql('1700000001000_accounts_email_rollback.sql')), section(text, '-- Down Migration'));
    assert.match(r.stdout, /1700000002000_accounts-created-at\.js: a JavaScript\/TypeScript migration/);
  } finally {
    await dispose(p);
  }
});

files('refuses to overwrite: one existing file with other contents, exit 2, nothing written', async () => {
  const p = await importer();
  try {
    writeFileSync(p.sql('20250201000000_timezone_backfill_rollback.sql'), 'mine\n');
    const r = p.run(['--from', 'golang-migrate', source('golang-migrate')]);
    assert.is(r.code, 2, r.output);
    assert.match(
      r.output,
      'sql/20250201000000_timezone_backfill_rollback.sql (from 20250201000000_timezone_backfill.down.sql)',
    );
    assert.match(r.output, 'with other contents; nothing was written');
    assert.equal(p.files(), ['20250201000000_timezone_backfill_rollback.sql']);
    assert.is(read(p.sql('20250201000000_timezone_backfill_rollback.sql')), 'mine\n');
  } finally {
    await dispose(p);
  }
});

files('a folder with nothing of the format in it (wrong --from) is refused', async () => {
  const p = await importer();
  try {
    const r = p.run(['--from', 'flyway', source('dbmate')]);
    assert.is(r.code, 2, r.output);
    assert.match(r.output, 'found no flyway migration to convert');
    assert.equal(p.files(), []);
  } finally {
    await dispose(p);
  }
});

files.run();

// Each tool's ledger as that tool creates it, per dialect, and a row writer.
const LEDGERS = {
  'golang-migrate': {
    postgres:
      'CREATE TABLE IF NOT EXISTS "schema_migrations" (version bigint not null primary key, dirty boolean not null)',
    sqlite:
      'CREATE TABLE IF NOT EXISTS "schema_migrations" (version uint64,dirty bool); CREATE UNIQUE INDEX IF NOT EXISTS version_unique ON "schema_migrations" (version)',
    rows: (rows, d) =>
      rows.map(
        ([v, dirty]) =>
          `INSERT INTO schema_migrations (version, dirty) VALUES (${v}, ${d === 'postgres' ? dirty : Number(dirty)})`,
      ),
  },
  dbmate: {
    postgres: 'create table if not exists public.schema_migrations (version varchar(128) primary key)',
    sqlite: 'create table if not exists "schema_migrations" (version varchar(128) primary key)',
    rows: (rows) => rows.map((v) => `insert into schema_migrations (version) values ('${v}')`),
  },
  goose: {
    postgres:
      'CREATE TABLE goose_db_version (id integer PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp NOT NULL DEFAULT now())',
    sqlite:
      "CREATE TABLE goose_db_version (id INTEGER PRIMARY KEY AUTOINCREMENT, version_id INTEGER NOT NULL, is_applied INTEGER NOT NULL, tstamp TIMESTAMP DEFAULT (datetime('now')))",
    rows: (rows, d) =>
      rows.map(
        ([v, applied]) =>
          `INSERT INTO goose_db_version (version_id, is_applied) VALUES (${v}, ${d === 'postgres' ? applied : Number(applied)})`,
      ),
  },
  flyway: {
    postgres: `CREATE TABLE "flyway_schema_history" ("installed_rank" INT NOT NULL, "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL,
      "type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL, "checksum" INTEGER, "installed_by" VARCHAR(100) NOT NULL,
      "installed_on" TIMESTAMP NOT NULL DEFAULT now(), "execution_time" INTEGER NOT NULL, "success" BOOLEAN NOT NULL,
      CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank"))`,
    sqlite: `CREATE TABLE "flyway_schema_history" ("installed_rank" INT NOT NULL PRIMARY KEY, "version" VARCHAR(50), "description" VARCHAR(200) NOT NULL,
      "type" VARCHAR(20) NOT NULL, "script" VARCHAR(1000) NOT NULL, "checksum" INT, "installed_by" VARCHAR(100) NOT NULL,
      "installed_on" TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f','now')), "execution_time" INT NOT NULL, "success" BOOLEAN NOT NULL)`,
    rows: (rows, d) =>
      rows.map(
        ([
          rank,
          v,
          script,
          ok,
          type = 'SQL',
        ]) => `INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, installed_by, execution_time, success)
        VALUES (${rank}, ${v === null ? 'NULL' : `'${v}'`}, 'x', '${type}', '${script}', 'ci', 3, ${d === 'postgres' ? ok : Number(ok)})`,
      ),
  },
  'node-pg-migrate': {
    postgres:
      'CREATE TABLE "public"."pgmigrations" (id SERIAL PRIMARY KEY, "name" varchar(255) NOT NULL, run_on timestamp NOT NULL)',
    rows: (rows) => rows.map((name) => `INSERT INTO pgmigrations (name, run_on) VALUES ('${name}', now())`),
  },
};

async function withForeignLedger(dialect, format, rows) {
  const p = await importer(dialect);
  const ledger = LEDGERS[format];
  for (const statement of [...ledger[dialect].split('; '), ...ledger.rows(rows, dialect)]) await p.db.query(statement);
  return p;
}

const FOREIGN_TABLE = {
  'golang-migrate': 'schema_migrations',
  dbmate: 'schema_migrations',
  goose: 'goose_db_version',
  flyway: 'flyway_schema_history',
  'node-pg-migrate': 'pgmigrations',
};

const CASES = [
  {
    format: 'golang-migrate',
    dialects: ['postgres', 'sqlite'],
    rows: [[20250201000000, false]],
    adopted: [20240919144910, 20250129143720, 20250201000000],
  },
  {
    format: 'dbmate',
    dialects: ['postgres', 'sqlite'],
    rows: ['20151129054053', '20200227231541'],
    adopted: [20151129054053, 20200227231541],
  },
  {
    format: 'goose',
    dialects: ['postgres'],
    rows: [
      [0, true],
      [1, true],
      [2, true],
      [3, true],
      [4, true],
      [5, true],
      [6, true],
      [6, false],
    ],
    adopted: [1, 2, 3, 4, 5],
  },
  {
    format: 'goose',
    dialects: ['sqlite'],
    rows: [
      [0, true],
      [5, true],
    ],
    adopted: [5],
  },
  {
    format: 'flyway',
    dialects: ['postgres', 'sqlite'],
    rows: [
      [1, '1', 'V1__create_users.sql', true],
      [2, '2', 'V2__add_user_name.sql', true],
    ],
    adopted: [1, 2],
  },
  {
    format: 'node-pg-migrate',
    dialects: ['postgres'],
    rows: ['1700000000000_create-accounts'],
    adopted: [1700000000000],
  },
  {
    format: 'flyway',
    dialects: ['sqlite'],
    rows: [
      [1, '2', '<< Flyway Baseline >>', true, 'BASELINE'],
      [2, '3', 'V3__user_email_index.sql', true],
    ],
    adopted: [1, 2, 3],
  },
];

const adopt = suite("import: adopting the other tool's ledger");

for (const { format, dialects, rows, adopted } of CASES) {
  for (const dialect of dialects) {
    adopt(
      `${format} on ${dialect}: records ${adopted.join(', ')} with the new files' checksums and a history row; its table untouched`,
      async () => {
        const p = await withForeignLedger(dialect, format, rows);
        try {
          const table = FOREIGN_TABLE[format];
          const before = await p.db.query(`select * from ${table} order by 1`);
          const r = p.run(['--from', format, source(format)], true);
          assert.is(r.code, 0, r.output);
          assert.match(
            r.output,
            `now records ${adopted.length === 1 ? `version ${adopted[0]}` : `${adopted.length} versions`}`,
          );
          const ledger = await p.db.query(
            'select version, migration_name, checksum from schema_version order by version',
          );
          assert.equal(
            ledger.map((row) => Number(row.version)),
            adopted,
          );
          for (const row of ledger) {
            const file = p
              .files()
              .find((f) => f.startsWith(`${String(row.version).padStart(3, '0')}_`) || f.startsWith(`${row.version}_`));
            const chosen =
              p.files().find((f) => f === file.replace(/(\.(postgres|sqlite))?\.sql$/, `.${dialect}.sql`)) ?? file;
            assert.is(row.checksum, sha256(p.sql(chosen)), `${row.version}: checksum of ${chosen}`);
          }
          const history = await p.db.query('select action, version from schema_version_history');
          assert.equal(
            history.map((h) => [h.action, Number(h.version)]),
            [['import', adopted.at(-1)]],
          );
          assert.equal(await p.db.query(`select * from ${table} order by 1`), before);
          // tidemark now takes over: nothing adopted runs again.
          const status = JSON.parse(p.cli('status', '--json').stdout);
          const applied = status.entries.filter((e) => e.state === 'applied').map((e) => e.version);
          assert.equal(applied, adopted);
        } finally {
          await dispose(p);
        }
      },
    );
  }
}

adopt('a second database: the committed files are kept as they are, and its ledger is adopted', async () => {
  const p = await withForeignLedger('sqlite', 'dbmate', ['20151129054053']);
  try {
    assert.is(p.run(['--from', 'dbmate', source('dbmate'), '--files-only'], true).code, 0);
    const r = p.run(['--from', 'dbmate', source('dbmate')], true);
    assert.is(r.code, 0, r.output);
    assert.match(r.output, '6 were there already, identical, and were kept');
    assert.equal(
      (await p.db.query('select version from schema_version')).map((row) => Number(row.version)),
      [20151129054053],
    );
  } finally {
    await dispose(p);
  }
});

adopt('--dry-run shows the versions it would record and writes neither files nor ledger', async () => {
  const p = await withForeignLedger('postgres', 'golang-migrate', [[20250201000000, false]]);
  try {
    const r = p.run(['--from', 'golang-migrate', source('golang-migrate'), '--dry-run'], true);
    assert.is(r.code, 0, r.output);
    assert.match(r.output, 'would write 7 files');
    assert.match(r.output, 'would record 3 versions (20240919144910 to 20250201000000) from schema_migrations');
    assert.equal(p.files(), []);
    assert.not.ok((await p.db.tables()).includes('schema_version'));
  } finally {
    await dispose(p);
  }
});

const REFUSALS = [
  {
    why: 'a dirty golang-migrate ledger',
    dialect: 'sqlite',
    format: 'golang-migrate',
    rows: [[20250201000000, true]],
    message: 'schema_migrations says version 20250201000000 is dirty',
  },
  {
    why: 'a dirty golang-migrate ledger',
    dialect: 'postgres',
    format: 'golang-migrate',
    rows: [[20250201000000, true]],
    message: 'schema_migrations says version 20250201000000 is dirty',
  },
  {
    why: 'an applied version with no file',
    dialect: 'postgres',
    format: 'dbmate',
    rows: ['20151129054053', '20230101000000'],
    message: 'with no converted postgres file: 20230101000000',
  },
  {
    why: 'a Go migration that goose applied',
    dialect: 'postgres',
    format: 'goose',
    rows: [
      [1, true],
      [7, true],
    ],
    message: '7 (postgres/007_backfill_ulids.go: a Go-code migration',
  },
  {
    why: 'a golang-migrate version with no file',
    dialect: 'sqlite',
    format: 'golang-migrate',
    rows: [[20260101000000, false]],
    message: 'with no converted sqlite file: 20260101000000',
  },
  {
    why: 'a gap: a version goose never applied below its newest',
    dialect: 'postgres',
    format: 'goose',
    rows: [
      [1, true],
      [2, true],
      [4, true],
    ],
    message: 'never applied 3, below its newest applied version 4',
  },
  {
    why: 'a failed Flyway migration',
    dialect: 'sqlite',
    format: 'flyway',
    rows: [
      [1, '1', 'V1__create_users.sql', true],
      [2, '2', 'V2__add_user_name.sql', false],
    ],
    message: 'records a failed migration (V2__add_user_name.sql',
  },
];

for (const { why, dialect, format, rows, message } of REFUSALS) {
  adopt(`refused on ${dialect}: ${why}; exit 2, nothing written`, async () => {
    const p = await withForeignLedger(dialect, format, rows);
    try {
      const r = p.run(['--from', format, source(format)], true);
      assert.is(r.code, 2, r.output);
      assert.match(r.output, message);
      assert.match(r.output, 'nothing was imported');
      assert.equal(p.files(), []);
      assert.not.ok((await p.db.tables()).includes('schema_version'));
    } finally {
      await dispose(p);
    }
  });
}

adopt('--from-table reads a renamed ledger table', async () => {
  const p = await importer('sqlite');
  try {
    await p.db.query(LEDGERS.goose.sqlite.replace('goose_db_version', 'goose_migrations'));
    await p.db.query('INSERT INTO goose_migrations (version_id, is_applied) VALUES (0, 1), (5, 1)');
    const r = p.run(['--from', 'goose', source('goose'), '--from-table', 'goose_migrations'], true);
    assert.is(r.code, 0, r.output);
    assert.match(r.output, 'now records version 5 as applied, as goose_migrations says');
    const bad = p.run(['--from', 'goose', source('goose'), '--dir', 'other', '--from-table', 'main.goose'], true);
    assert.is(bad.code, 2, bad.output);
    assert.match(bad.output, '--from-table "main.goose" is not a plain table name');
    assert.not.ok(existsSync(join(p.cwd, 'other')));
  } finally {
    await dispose(p);
  }
});

adopt("a database without the tool's table is refused, and not created", async () => {
  const p = await importer('sqlite');
  try {
    const r = p.run(['--from', 'goose', source('goose')], true);
    assert.is(r.code, 2, r.output);
    assert.match(
      r.output,
      `${p.db.url} has no goose_db_version table, so there is no goose ledger to adopt; nothing was written`,
    );
    assert.match(r.output, 'run the same command with --files-only');
    assert.equal(p.files(), []);
    assert.not.ok(existsSync(p.db.file));
  } finally {
    await dispose(p);
  }
});

adopt('a ledger tidemark already keeps is refused; --files-only converts without reading the database', async () => {
  const p = await withForeignLedger('sqlite', 'dbmate', ['20151129054053']);
  try {
    writeFileSync(p.sql('001_mine.sql'), 'CREATE TABLE mine (a INTEGER);\n');
    assert.is(p.cli('migrate', '--quiet').code, 0);
    const r = p.run(['--from', 'dbmate', source('dbmate')], true);
    assert.is(r.code, 2, r.output);
    assert.match(r.output, 'import with a database URL is for a database whose ledger is empty');
    assert.equal(p.files(), ['001_mine.sql']);
    const files = p.run(['--from', 'dbmate', source('dbmate'), '--files-only'], true);
    assert.is(files.code, 0, files.output);
    assert.is(p.files().length, 7);
    assert.ok(existsSync(p.sql('20200227231541_test_posts.sql')));
  } finally {
    await dispose(p);
  }
});

adopt.run();

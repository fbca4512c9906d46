// What tidemark reads in a migration file, on each dialect's own rules: transaction control hidden
// behind comments, strings the server reads otherwise than the lexer, NUL bytes, SQLite's comments
// and quotes, and keywords used as names. Each case is run through the CLI against a real database.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BASE, DIALECTS, dispose, ledgerVersions, project, runCli } from './helpers.mjs';

const FILE = 'sql/002_x.sql';

/** Version 2 is `text`; returns the CLI's result with the ledger and the tables after it. */
async function migrateWith(dialect, text, setup) {
  const p = await project(dialect, { ...BASE, '002_x.sql': text, '002_x_rollback.sql': 'SELECT 1;\n' });
  try {
    if (setup) await setup(p.db);
    const result = p.cli('migrate');
    return {
      ...result,
      ledger: await ledgerVersions(p.db),
      tables: (await p.db.tables()).filter((t) => !t.startsWith('schema_version')),
    };
  } finally {
    await dispose(p);
  }
}

function assertRefused(r, where, what) {
  assert.is(r.code, 2, r.output);
  assert.match(r.stderr, `${FILE}:${where}`, r.output);
  if (what) assert.match(r.stderr, what, r.output);
  assert.equal(r.ledger, [], r.output);
  assert.equal(r.tables, [], 'nothing ran: not even version 1');
}

function assertApplied(r, tables) {
  assert.is(r.code, 0, r.output);
  assert.equal(r.ledger, [1, 2], r.output);
  assert.equal(r.tables, ['base', ...tables].sort(), r.output);
}

const control = suite('transaction control is found by the statement, whatever surrounds it');

for (const dialect of DIALECTS) {
  for (const [keyword, statement] of [
    ['ROLLBACK', 'rollback/**/;'],
    ['COMMIT', 'commit/* x */;'],
    ['COMMIT', '/* lead */ commit -- tail\n;'],
    ['END', 'END\n/* nothing */\n;'],
  ]) {
    control(
      `${dialect}: ${JSON.stringify(statement)} inside a migration is refused at its line and column`,
      async () => {
        const r = await migrateWith(
          dialect,
          `CREATE TABLE half (a INTEGER);\n  ${statement}\nCREATE TABLE rest (a INTEGER);\n`,
        );
        const column = statement.startsWith('/*') ? 14 : 3;
        assertRefused(r, `2:${column}`, `${keyword} inside a migration`);
      },
    );
  }

  control(`${dialect}: a column named begin does not hide a later COMMIT`, async () => {
    const r = await migrateWith(
      dialect,
      'CREATE TABLE half (begin INTEGER, x INTEGER);\nCOMMIT;\nCREATE TABLE rest (a INTEGER);\n',
    );
    assertRefused(r, '2:1', 'COMMIT inside a migration');
  });

  control(
    `${dialect}: a file wrapped in BEGIN ... COMMIT with a column named begin is applied once, in tidemark's transaction`,
    async () => {
      const r = await migrateWith(
        dialect,
        'BEGIN;\nCREATE TABLE half (begin INTEGER);\nCREATE TABLE rest (a INTEGER);\nCOMMIT;\n',
      );
      assertApplied(r, ['half', 'rest']);
      assert.match(r.output, 'BEGIN ... COMMIT wrapper is replaced', r.output);
    },
  );

  control(`${dialect}: a wrapper closed by END with comments before its semicolon is a wrapper too`, async () => {
    const r = await migrateWith(dialect, 'begin /* x */ ;\nCREATE TABLE half (a INTEGER);\nend -- done\n;\n');
    assertApplied(r, ['half']);
  });

  control(`${dialect}: a NUL byte is refused at its line and column before anything runs`, async () => {
    const r = await migrateWith(
      dialect,
      'CREATE TABLE half (a INTEGER);\nSELECT 1; \0\nCREATE TABLE rest (a INTEGER);\n',
    );
    assertRefused(r, '2:11', 'NUL');
  });

  control(`${dialect}: a NUL byte inside a comment is refused too`, async () => {
    const r = await migrateWith(dialect, 'CREATE TABLE half (a INTEGER); -- a\0b\n');
    assertRefused(r, '1:36', 'NUL');
  });

  control(`${dialect}: an unclosed string is refused where it opens`, async () => {
    const r = await migrateWith(dialect, "CREATE TABLE half (a TEXT);\nINSERT INTO half VALUES ('x);\nCOMMIT;\n");
    assertRefused(r, '2:26', 'string');
  });

  control(`${dialect}: an unclosed block comment is refused where it opens`, async () => {
    const r = await migrateWith(dialect, 'CREATE TABLE half (a INTEGER);\n/* no end\nCOMMIT;\n');
    assertRefused(r, '2:1', 'comment');
  });
}

control.run();

const sqlite = suite('SQLite is read on SQLite rules, PostgreSQL on PostgreSQL rules');

// PostgreSQL nests block comments; SQLite ends one at the first */, so the COMMIT after it runs there.
const NESTED = 'CREATE TABLE half (a INTEGER);\n/* outer /* inner */ COMMIT; */\nCREATE TABLE rest (a INTEGER);\n';
// PostgreSQL reads $q$...$q$ as a string; SQLite knows no dollar quotes ($q$ is a parameter there).
const DOLLAR = 'CREATE TABLE half (a INTEGER);\nSELECT $q$;COMMIT;$q$ AS x;\nCREATE TABLE rest (a INTEGER);\n';

sqlite('sqlite: a COMMIT after a /* /* */ comment is seen, as SQLite does not nest comments', async () => {
  assertRefused(await migrateWith('sqlite', NESTED), '2:22', 'COMMIT inside a migration');
});

sqlite('postgres: the same file is one nested comment there, and is applied', async () => {
  assertApplied(await migrateWith('postgres', NESTED), ['half', 'rest']);
});

sqlite('sqlite: $q$ is no quote, so the COMMIT between two of them is seen', async () => {
  assertRefused(await migrateWith('sqlite', DOLLAR), '2:12', 'COMMIT inside a migration');
});

sqlite('postgres: $q$...$q$ is a string, and the file is applied', async () => {
  assertApplied(await migrateWith('postgres', DOLLAR), ['half', 'rest']);
});

sqlite('sqlite: [bracket] and `backtick` identifiers hold semicolons and quotes', async () => {
  const r = await migrateWith('sqlite', 'CREATE TABLE [half;\'] (`a;"` INTEGER);\nCREATE TABLE rest (a INTEGER);\n');
  assertApplied(r, ["half;'", 'rest']);
});

sqlite('sqlite: a trigger body with semicolons and CASE ... END is one statement', async () => {
  const trigger =
    'CREATE TABLE half (a INTEGER);\nCREATE TABLE rest (a INTEGER);\n' +
    'CREATE TEMP TRIGGER IF NOT EXISTS t AFTER INSERT ON half BEGIN\n' +
    '  INSERT INTO rest VALUES (CASE WHEN new.a > 0 THEN 1 ELSE 0 END);\n  DELETE FROM rest WHERE a = 9;\nEND;\n';
  assertApplied(await migrateWith('sqlite', trigger), ['half', 'rest']);
});

sqlite(
  'postgres: CREATE INDEX CONCURRENTLY in a transactional file is refused with the directive as the fix',
  async () => {
    const r = await migrateWith(
      'postgres',
      'CREATE TABLE half (a INTEGER);\n/* c */ create index concurrently half_a on half (a);\n',
    );
    assertRefused(r, '2:9', 'cannot run inside a transaction');
    assert.match(r.stderr, '-- tidemark:no-transaction');
  },
);

sqlite('postgres: a function body with BEGIN ATOMIC ... END is one statement', async () => {
  const r = await migrateWith(
    'postgres',
    'CREATE TABLE half (a INTEGER);\nCREATE FUNCTION f() RETURNS integer LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\nCREATE TABLE rest (a INTEGER);\n',
  );
  assertApplied(r, ['half', 'rest']);
});

sqlite.run();

const strings = suite('PostgreSQL: the session reads strings as the lexer does (standard_conforming_strings = on)');

/** A database whose default is standard_conforming_strings = off: the server would read \' as a quote. */
async function conformingOff(db) {
  const [{ name }] = await db.query('select current_database() as name');
  await db.query(`alter database "${name}" set standard_conforming_strings = off`);
}

strings(
  "on a database whose default is off, 'a\\'' is read as the lexer reads it: the COMMIT after it never runs alone",
  async () => {
    const text =
      "CREATE TABLE half (a TEXT);\nINSERT INTO half VALUES ('a\\'');\nCOMMIT;\nINSERT INTO half VALUES ('b\\'');\nCREATE TABLE rest (a INTEGER);\n";
    const r = await migrateWith('postgres', text, conformingOff);
    assert.is(r.code, 1, r.output);
    assert.match(r.stderr, `${FILE}:4:`, r.output);
    assert.equal(r.ledger, [1], r.output);
    assert.equal(r.tables, ['base'], 'half and rest are not there');
  },
);

strings('on a database whose default is off, a backslash in a string is an ordinary character', async () => {
  const p = await project('postgres', {
    ...BASE,
    '002_x.sql': "CREATE TABLE half (a TEXT);\nINSERT INTO half VALUES ('a\\b');\n",
  });
  try {
    await conformingOff(p.db);
    const r = p.cli('migrate');
    assert.is(r.code, 0, r.output);
    const url = new URL(p.db.url);
    const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
    try {
      const [{ a }] = await sql`select a from half`;
      assert.is(a, 'a\\b');
    } finally {
      await sql.end({ timeout: 5 });
    }
  } finally {
    await dispose(p);
  }
});

strings('SET standard_conforming_strings in a file is refused, even where statements run one at a time', async () => {
  const text =
    "-- tidemark:no-transaction\nSET standard_conforming_strings = off;\nCREATE TABLE half (a TEXT);\nINSERT INTO half VALUES ('a\\b');\n";
  const r = await migrateWith('postgres', text);
  assertRefused(r, '2:1', 'SET standard_conforming_strings');
});

strings.run();

const lazy = suite('the PostgreSQL parser is loaded only when a pending file is read');

lazy(
  'a migrate that applies loads it; a no-op migrate, status, lint with nothing pending and --help do not',
  async () => {
    const probeDir = mkdtempSync(join(tmpdir(), 'tidemark-probe-'));
    const probe = join(probeDir, 'probe.cjs');
    // Reports at exit whether the process loaded libpg-query (a CommonJS module, also when imported from ESM).
    writeFileSync(
      probe,
      "process.on('exit', () => process.stderr.write(`parser loaded: ${Object.keys(require('module')._cache).some((p) => p.includes('libpg-query'))}\\n`));\n",
    );
    const p = await project('postgres', BASE);
    try {
      const env = { DATABASE_URL: p.db.url, NODE_OPTIONS: `--require ${probe}` };
      const run = (...args) => runCli(args, { cwd: p.cwd, env });
      const applied = run('migrate');
      assert.is(applied.code, 0, applied.output);
      assert.match(applied.stderr, 'parser loaded: true');
      for (const args of [['migrate'], ['status'], ['lint'], ['--help']]) {
        const r = run(...args);
        assert.is(r.code, 0, r.output);
        assert.match(r.stderr, 'parser loaded: false', args.join(' '));
      }
    } finally {
      await dispose(p);
      rmSync(probeDir, { recursive: true, force: true });
    }
  },
);

lazy.run();

// The bad-input matrix (issue 3): bad file names and contents, bad ledger states, bad configuration
// and unreachable servers. Every case runs the CLI as a user would and asserts the exit code, the
// message (file, line where there is one, a hint), that the database is exactly as before, and that
// no password appears in the output or in any file the run wrote.
//
// PostgreSQL cases connect as a role of their own with a password that needs percent-encoding, so
// the password is in DATABASE_URL on every run; every run (both dialects) also has PGPASSWORD set.
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  EXAMPLE_VERSIONS,
  freshDatabase,
  ledgerVersions,
  makeProject,
  removeProject,
  removeSql,
  runCli,
  writeSql,
} from './helpers.mjs';

const ADMIN_URL = new URL(process.env.TEST_DATABASE_URL);
/** The migration role's password: `:`, `@` and `/` must be percent-encoded in a URL. */
const PG_PASSWORD = 'S3cret:P@ss/w0rd!';
/** A wrong password for the same role (refused by a server that checks passwords). */
const WRONG_PASSWORD = 'Wr0ng:Guess/42!';
/** PGPASSWORD in the environment of every run. */
const ENV_PASSWORD = 'Env-Secr3t-PgPass';
const SECRETS = [
  PG_PASSWORD,
  encodeURIComponent(PG_PASSWORD),
  WRONG_PASSWORD,
  encodeURIComponent(WRONG_PASSWORD),
  ENV_PASSWORD,
];
const ROLE = `tidemark_pw_${randomBytes(3).toString('hex')}`;

const PATTERN = /expected <version>_<name>\[_rollback\]\[\.postgres\|\.sqlite\]\.sql/;
const LAST = {
  sqlite: { version: 4, text: '004', name: 'price_cache' },
  postgres: { version: 3, text: '003', name: 'create_trades' },
};

/** A URL for the migration role on this test's database. */
function roleUrl(
  ctx,
  { password = PG_PASSWORD, role = ROLE, database = ctx.dbName, host = ADMIN_URL.host, query = '' } = {},
) {
  return `postgres://${role}:${encodeURIComponent(password)}@${host}/${database}${query}`;
}

/** A file of about 20 MB: `CREATE TABLE big` and 1 KB inserts; `last` replaces the final line. */
function twentyMegabytes(last) {
  const filler = 'x'.repeat(1000);
  const lines = ['CREATE TABLE big (n INTEGER, s TEXT);'];
  for (let i = 0; lines.length * 1040 < 20 * 1024 * 1024; i++)
    lines.push(`INSERT INTO big (n, s) VALUES (${i}, '${filler}');`);
  if (last) lines.push(last);
  return { text: `${lines.join('\n')}\n`, lines: lines.length };
}
const BIG_OK = twentyMegabytes();
const BIG_BAD = twentyMegabytes("INSERT INTO big (n, s) VALUES (oops, 'last line');");

/** 40 lines, the last one a syntax error. */
const FORTY_LINES = `${[
  '-- seed: forty lines, the last one broken',
  ...Array.from({ length: 38 }, (_, i) => `INSERT INTO users (id, email) VALUES ('u${i}', 'u${i}@example.com');`),
  `INSERT INTO users (id, email) VALUES ('u39', 'u39@example.com') RETURNIN id;`,
].join('\n')}\n`;

/** "DROP", then bytes that are not UTF-8 on line 2. */
const NOT_UTF8 = Buffer.from([0x44, 0x52, 0x4f, 0x50, 0x0a, 0xff, 0xfe, 0x0a]);

const dirtyValue = (ctx) => (ctx.dialect === 'postgres' ? 'true' : '1');
const markDirty = (ctx) =>
  ctx.db.query(`update schema_version set dirty = ${dirtyValue(ctx)} where version = ${LAST[ctx.dialect].version}`);
const dirtyRefusal = (ctx) => [
  new RegExp(`^error: version ${LAST[ctx.dialect].text} \\(${LAST[ctx.dialect].name}\\) is dirty`, 'm'),
  new RegExp(`tidemark resolve ${LAST[ctx.dialect].text} --applied\` if the migration's change is in the database`),
];

/**
 * The matrix. A case: files to write (or a function of the test context), files to remove, a setup
 * step, then the commands to run with their expected exit code and messages. `applied: false` starts
 * from an empty database instead of the applied example set. `unchanged: false` marks the few inputs
 * that are fine and must change the database (they say how in `check`).
 */
const CASES = [
  // ---- file names -------------------------------------------------------------------------------
  ...[
    ['a dash in the name', '005_add-orders.sql'],
    ['a space in the name', '005_add orders.sql'],
    ['no version', 'add_orders.sql'],
    ['a version and no name', '005_.sql'],
    ['an upper-case extension', '005_add_orders.SQL'],
    ['an unknown dialect suffix (.mysql.sql)', '005_add_orders.mysql.sql'],
    ['a misspelled dialect suffix (.postgresql.sql)', '005_add_orders.postgresql.sql'],
  ].map(([what, file]) => ({
    name: `bad file name: ${what}`,
    files: { [file]: 'CREATE TABLE orders (id INTEGER);\n' },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [new RegExp(`sql/${file.replace(/[.]/g, '\\.')}: not a migration file name`), PATTERN],
      },
    ],
  })),
  {
    name: 'bad file name: a version above the ledger bigint (2^63)',
    files: { '9223372036854775808_huge.sql': 'SELECT 1;\n' },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [
          /sql\/9223372036854775808_huge\.sql: version 9223372036854775808 is above the largest version 9223372036854775807/,
        ],
      },
    ],
  },
  {
    name: 'bad file: a symbolic link to nothing',
    setup: (ctx) => symlinkSync(join(ctx.cwd, 'nowhere.sql'), join(ctx.cwd, 'sql', '005_linked.sql')),
    run: [
      { args: ['migrate'], code: 2, stderr: [/sql\/005_linked\.sql: a symbolic link to a file that does not exist/] },
    ],
  },
  {
    name: 'a symbolic link to a migration is a migration, not skipped',
    setup: (ctx) => {
      writeFileSync(join(ctx.cwd, 'shared.sql'), 'CREATE TABLE linked (a INTEGER);\n');
      symlinkSync(join(ctx.cwd, 'shared.sql'), join(ctx.cwd, 'sql', '005_linked.sql'));
      writeSql(ctx.cwd, '005_linked_rollback.sql', 'DROP TABLE linked;\n');
    },
    run: [{ args: ['migrate'], code: 0, stdout: [/↑ 005 linked/] }],
    unchanged: false,
    check: async (ctx) => {
      assert.ok((await ctx.db.tables()).includes('linked'));
      assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[ctx.dialect], 5]);
    },
  },
  {
    name: 'the migrations folder does not exist',
    run: [
      {
        args: ['migrate', '--dir', 'migrations'],
        code: 2,
        stderr: [/^error: migrations folder migrations\/ does not exist/m],
      },
    ],
  },
  {
    name: 'duplicate versions: 001 and 1',
    files: { '1_create_users.sql': 'CREATE TABLE users2 (id TEXT);\n' },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [/sql\/001_create_users\.sql, sql\/1_create_users\.sql: two files for version 1;/],
      },
    ],
  },
  {
    name: 'duplicate versions: 005 and 0005 for one dialect',
    files: {
      '005_orders.sqlite.sql': 'SELECT 1;\n',
      '0005_orders.sqlite.sql': 'SELECT 1;\n',
      '005_orders.sql': 'SELECT 1;\n',
    },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [/sql\/0005_orders\.sqlite\.sql, sql\/005_orders\.sqlite\.sql: two files for version 5;/],
      },
    ],
  },
  {
    name: 'an orphan rollback file',
    files: { '007_orphan_rollback.sql': 'DROP TABLE orphan;\n' },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [
          /sql\/007_orphan_rollback\.sql: rollback with no forward migration; add 007_orphan\.sql, or remove the rollback/,
        ],
      },
    ],
  },
  {
    name: 'a portable rollback for a migration that exists only for SQLite',
    files: {
      '006_cache.sqlite.sql': 'CREATE TABLE cache (a INTEGER);\n',
      '006_cache_rollback.sql': 'DROP TABLE cache;\n',
    },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [
          /sql\/006_cache_rollback\.sql: rollback with no forward migration for postgres; rename it to 006_cache_rollback\.sqlite\.sql, or add 006_cache\.postgres\.sql/,
        ],
      },
    ],
  },
  {
    name: 'dialect variants with different names',
    files: { '003_trades.sqlite.sql': 'CREATE TABLE trades (id TEXT);\n' },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [/version 3 has 2 names \(create_trades, trades\); every variant of one version must share one name/],
      },
    ],
  },
  {
    name: 'a PostgreSQL variant with another name than the portable rollback',
    files: { '005_orders.postgres.sql': 'SELECT 1;\n', '005_order_rollback.sql': 'SELECT 1;\n' },
    run: [{ args: ['status'], code: 2, stderr: [/version 5 has 2 names/] }],
  },

  // ---- file contents ----------------------------------------------------------------------------
  {
    name: 'an empty file applies as a no-op on both dialects',
    files: { '005_nothing.sql': '', '005_nothing_rollback.sql': '' },
    run: [{ args: ['migrate'], code: 0, stdout: [/↑ 005 nothing/] }],
    unchanged: false,
    check: async (ctx, before) => {
      assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[ctx.dialect], 5]);
      assert.equal(await ctx.db.tables(), before.tables, 'no table was created or dropped');
      const back = ctx.run(['rollback']);
      assert.is(back.code, 0, back.output);
      assert.equal(await ledgerVersions(ctx.db), EXAMPLE_VERSIONS[ctx.dialect]);
    },
  },
  {
    name: 'a file of only comments applies as a no-op on both dialects',
    files: {
      '005_todo.sql': '-- 005_todo: nothing yet\n/* a block comment; with a semicolon */\n-- the end\n',
      '005_todo_rollback.sql': '-- nothing to undo\n',
    },
    run: [{ args: ['migrate'], code: 0, stdout: [/↑ 005 todo/] }],
    unchanged: false,
    check: async (ctx, before) => {
      assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[ctx.dialect], 5]);
      assert.equal(await ctx.db.tables(), before.tables);
    },
  },
  {
    name: 'an applied file checked out with a BOM and CRLF is not "edited"',
    setup: (ctx) => {
      const text = readFileSync(join(ctx.cwd, 'sql', '001_create_users.sql'), 'utf8');
      writeSql(ctx.cwd, '001_create_users.sql', `\uFEFF${text.replace(/\n/g, '\r\n')}`);
    },
    run: [
      { args: ['migrate'], code: 0, stdout: [/is up to date at version/] },
      { args: ['status'], code: 0, stdout: [/001\s+create_users\s+applied/] },
    ],
  },
  {
    name: 'a BOM and CRLF do not shift the line of an error',
    files: {
      '005_crlf.sql': '\uFEFF-- windows\r\nCREATE TABLE crlf (a INTEGER);\r\nINSERT INTO crlf (a) VALUES (nope);\r\n',
      '005_crlf_rollback.sql': 'DROP TABLE crlf;\r\n',
    },
    run: [
      {
        args: ['migrate'],
        code: 1,
        stderr: [/^error: sql\/005_crlf\.sql:3(:\d+)?: /m, /3 \| INSERT INTO crlf \(a\) VALUES \(nope\);\n/],
      },
    ],
  },
  {
    name: 'a BOM before a directive typo: the typo is still found on line 1',
    files: {
      '005_bom.sql': '\uFEFF-- tidemark:no-transacton\r\nCREATE TABLE bom (a INTEGER);\r\n',
      '005_bom_rollback.sql': 'DROP TABLE bom;\n',
    },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [/^error: sql\/005_bom\.sql:1: unknown directive "-- tidemark:no-transacton"/m],
      },
    ],
  },
  {
    name: 'non-UTF-8 bytes (Latin-1) name file:line:column',
    files: {
      '005_latin1.sql': Buffer.concat([
        Buffer.from("CREATE TABLE cafes (name TEXT);\n-- menu\nINSERT INTO cafes (name) VALUES ('caf"),
        Buffer.from([0xe9]),
        Buffer.from("');\n"),
      ]),
      '005_latin1_rollback.sql': 'DROP TABLE cafes;\n',
    },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [
          /^error: sql\/005_latin1\.sql:3:38: not valid UTF-8 text \(byte 0xE9\)/m,
          /^hint: save the file as UTF-8/m,
        ],
      },
    ],
  },
  {
    name: 'non-UTF-8 bytes in the rollback file of a pending migration: migrate refuses (its text is stored on apply)',
    files: { '005_ok.sql': 'CREATE TABLE ok (a TEXT);\n', '005_ok_rollback.sql': NOT_UTF8 },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [/^error: sql\/005_ok_rollback\.sql:2:1: not valid UTF-8 text \(byte 0xFF\)/m],
      },
    ],
  },
  {
    name: 'non-UTF-8 bytes in a rollback file written after its migration ran',
    files: { '005_ok.sql': 'CREATE TABLE ok (a TEXT);\n', '005_ok_rollback.sql': 'DROP TABLE ok;\n' },
    setup: (ctx) => {
      expectRun(ctx, ['migrate'], 0);
      writeSql(ctx.cwd, '005_ok_rollback.sql', NOT_UTF8);
    },
    run: [
      {
        args: ['rollback'],
        code: 2,
        stderr: [/^error: sql\/005_ok_rollback\.sql:2:1: not valid UTF-8 text \(byte 0xFF\)/m],
      },
    ],
  },
  {
    name: 'a 20 MB file applies, within 256 MB of heap',
    files: { '005_big.sql': BIG_OK.text, '005_big_rollback.sql': 'DROP TABLE big;\n' },
    run: [{ args: ['migrate'], code: 0, stdout: [/↑ 005 big/], env: { NODE_OPTIONS: '--max-old-space-size=256' } }],
    unchanged: false,
    check: async (ctx) => {
      const [{ n }] = await ctx.db.query('select count(*) as n from big');
      assert.is(Number(n), BIG_OK.lines - 1);
      assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[ctx.dialect], 5]);
    },
  },
  {
    name: 'a 20 MB file with an error on its last line names that line',
    files: { '005_big.sql': BIG_BAD.text, '005_big_rollback.sql': 'DROP TABLE big;\n' },
    run: [
      {
        args: ['migrate'],
        code: 1,
        env: { NODE_OPTIONS: '--max-old-space-size=256' },
        stderr: [
          new RegExp(`^error: sql/005_big\\.sql:${BIG_BAD.lines}(:\\d+)?: `, 'm'),
          new RegExp(`${BIG_BAD.lines} \\| INSERT INTO big \\(n, s\\) VALUES \\(oops, 'last line'\\);`),
        ],
      },
    ],
  },
  {
    name: 'a directive typo (-- tidemark:no-transacton)',
    files: {
      '005_idx.sql':
        '-- build the index without locking\n-- tidemark:no-transacton\nCREATE INDEX users_name_idx ON users (display_name);\n',
      '005_idx_rollback.sql': 'DROP INDEX users_name_idx;\n',
    },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [
          /^error: sql\/005_idx\.sql:2: unknown directive "-- tidemark:no-transacton"/m,
          /^hint: the known directives are -- tidemark:no-transaction/m,
        ],
      },
    ],
  },
  {
    name: 'a directive below the first SQL line',
    files: {
      '005_idx.sql': 'CREATE INDEX users_name_idx ON users (display_name);\n-- tidemark:no-transaction\n',
      '005_idx_rollback.sql': 'DROP INDEX users_name_idx;\n',
    },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [/^error: sql\/005_idx\.sql:2: "-- tidemark:no-transaction" is not at the top of the file/m],
      },
    ],
  },
  ...[
    ['\\i', '\\i other.sql', /psql meta-command \\i is not SQL/],
    ['\\connect', '\\connect other_db', /psql meta-command \\connect is not SQL/],
    ['\\copy', "\\copy users from 'users.csv' csv", /psql meta-command \\copy is not SQL/],
    [
      'COPY FROM stdin',
      'COPY users (id, email) FROM stdin;\nu1\tu1@example.com\n\\.',
      /COPY \.\.\. FROM stdin needs data from psql/,
    ],
  ].map(([what, line, message]) => ({
    name: `psql: ${what} stops the run before any SQL, even of earlier migrations`,
    files: {
      '005_first.sql': 'CREATE TABLE first_ran (a INTEGER);\n',
      '005_first_rollback.sql': 'DROP TABLE first_ran;\n',
      '006_load.sql': `-- load the users\nCREATE TABLE loaded (a INTEGER);\n${line}\n`,
      '006_load_rollback.sql': 'DROP TABLE loaded;\n',
    },
    run: [
      { args: ['migrate'], code: 2, stderr: [new RegExp(`^error: sql/006_load\\.sql:3:1: ${message.source}`, 'm')] },
    ],
  })),
  {
    name: 'a COMMIT in the middle of a transactional file',
    files: {
      '005_half.sql': 'CREATE TABLE half (a INTEGER);\nCOMMIT;\nCREATE TABLE other_half (a INTEGER);\n',
      '005_half_rollback.sql': 'DROP TABLE half;\n',
    },
    run: [{ args: ['migrate'], code: 2, stderr: [/^error: sql\/005_half\.sql:2:1: COMMIT inside a migration/m] }],
  },
  {
    name: 'a syntax error on line 40: file:40, the line, a caret; the 38 inserts before it are rolled back',
    files: { '005_seed.sql': FORTY_LINES, '005_seed_rollback.sql': 'DELETE FROM users;\n' },
    run: [
      {
        args: ['migrate'],
        code: 1,
        stderr: [
          /^error: sql\/005_seed\.sql:40(:\d+)?: /m,
          /40 \| INSERT INTO users \(id, email\) VALUES \('u39', 'u39@example\.com'\) RETURNIN id;\n\s+\| +\^/,
          /^hint: /m,
        ],
      },
    ],
  },
  {
    name: 'an unterminated string: refused before anything runs, naming where the unclosed quote opens',
    files: {
      '005_quote.sql':
        "CREATE TABLE q (a TEXT);\nINSERT INTO q VALUES ('one');\nINSERT INTO q VALUES ('two);\nINSERT INTO q VALUES ('three');\n",
      '005_quote_rollback.sql': 'DROP TABLE q;\n',
    },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [
          /^error: sql\/005_quote\.sql:4:29: an unclosed string; nothing was run/m,
          /a quote before it that is missing its pair/,
        ],
      },
    ],
  },
  {
    name: 'an emoji before a syntax error does not move it to another line',
    files: { '005_emoji.sql': '-- launch day \u{1F680}\nSELEC 1;\n', '005_emoji_rollback.sql': 'SELECT 1;\n' },
    run: [{ args: ['migrate'], code: 1, stderr: [/^error: sql\/005_emoji\.sql:2(:1)?: /m, /2 \| SELEC 1;\n\s+\| \^/] }],
  },
  {
    name: 'an error in the rollback file names the rollback file and line; nothing is undone',
    files: {
      '005_notes.sql': 'CREATE TABLE notes (body TEXT);\n',
      '005_notes_rollback.sql': '-- undo 005\nUPDATE notes SET body = nope;\nDROP TABLE notes;\n',
    },
    setup: (ctx) => expectRun(ctx, ['migrate'], 0),
    run: [
      {
        args: ['rollback'],
        code: 1,
        stderr: [/^error: sql\/005_notes_rollback\.sql:2(:\d+)?: /m, /2 \| UPDATE notes SET body = nope;/, /^hint: /m],
      },
    ],
  },
  {
    name: 'a psql meta-command in a rollback file stops the rollback before any SQL',
    files: {
      '005_notes.sql': 'CREATE TABLE notes (body TEXT);\n',
      '005_notes_rollback.sql': 'DROP TABLE notes;\n\\i cleanup.sql\n',
    },
    setup: (ctx) => expectRun(ctx, ['migrate'], 0),
    run: [
      {
        args: ['rollback'],
        code: 2,
        stderr: [/^error: sql\/005_notes_rollback\.sql:2:1: psql meta-command \\i is not SQL/m],
      },
    ],
  },
  {
    name: 'rolling back a migration that has no rollback file',
    files: { '005_oneway.sql': 'CREATE TABLE oneway (a INTEGER);\n' },
    setup: (ctx) => expectRun(ctx, ['migrate'], 0),
    run: [
      {
        args: ['rollback'],
        code: 2,
        stderr: [
          /^error: cannot roll back: nothing was changed/m,
          /sql\/005_oneway\.sql: no rollback file, and none stored in the ledger; write 005_oneway_rollback\.sql/,
        ],
      },
    ],
  },
  {
    name: 'rolling back a migration whose files are gone and whose ledger row stored no rollback (applied by hand)',
    files: { '005_gone.sql': 'CREATE TABLE gone (a INTEGER);\n', '005_gone_rollback.sql': 'DROP TABLE gone;\n' },
    setup: async (ctx) => {
      expectRun(ctx, ['migrate'], 0);
      removeSql(ctx.cwd, '005_gone.sql');
      removeSql(ctx.cwd, '005_gone_rollback.sql');
      await ctx.db.query('update schema_version set rollback_sql = null, rollback_checksum = null where version = 5');
    },
    run: [
      {
        args: ['rollback'],
        code: 2,
        stderr: [
          /version 005 \(gone\) is applied, but this release has no file for it and the ledger stored no rollback for it/,
        ],
      },
    ],
  },
  {
    name: 'an edited applied file: migrate refuses and names it, status shows it',
    setup: (ctx) =>
      writeSql(
        ctx.cwd,
        '001_create_users.sql',
        `${readFileSync(join(ctx.cwd, 'sql', '001_create_users.sql'), 'utf8')}CREATE INDEX users_name_idx ON users (display_name);\n`,
      ),
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [
          /^error: an applied migration file was edited after the migration ran/m,
          /sql\/001_create_users\.sql: checksum differs/,
          /--allow-changed/,
        ],
      },
      { args: ['status'], code: 0, stdout: [/001\s+create_users\s+changed/] },
    ],
  },
  {
    name: 'an edited applied file with --allow-changed: proceeds and records the new checksum',
    setup: (ctx) => {
      writeSql(
        ctx.cwd,
        '001_create_users.sql',
        `${readFileSync(join(ctx.cwd, 'sql', '001_create_users.sql'), 'utf8')}-- reviewed\n`,
      );
      writeSql(ctx.cwd, '005_next.sql', 'CREATE TABLE next_one (a INTEGER);\n');
      writeSql(ctx.cwd, '005_next_rollback.sql', 'DROP TABLE next_one;\n');
    },
    run: [
      { args: ['migrate', '--allow-changed'], code: 0, stdout: [/↑ 005 next/] },
      { args: ['status'], code: 0, stdout: [/001\s+create_users\s+applied/] },
      { args: ['migrate'], code: 0, stdout: [/is up to date/] },
    ],
    unchanged: false,
    check: async (ctx, before) => {
      const checksum = (rows) => rows.find((r) => Number(r.version) === 1).checksum;
      assert.is.not(checksum((await snapshot(ctx)).rows.schema_version), checksum(before.rows.schema_version));
      assert.equal(await ledgerVersions(ctx.db), [...EXAMPLE_VERSIONS[ctx.dialect], 5]);
    },
  },
  {
    name: 'a version older than the applied one',
    files: { '010_late.sql': 'SELECT 1;\n', '010_late_rollback.sql': 'SELECT 1;\n' },
    setup: (ctx) => {
      expectRun(ctx, ['migrate'], 0);
      writeSql(ctx.cwd, '007_mid.sql', 'CREATE TABLE mid (a INTEGER);\n');
      writeSql(ctx.cwd, '007_mid_rollback.sql', 'DROP TABLE mid;\n');
    },
    run: [
      {
        args: ['migrate'],
        code: 2,
        stderr: [
          /^error: version 007 is pending but below the applied version 010: out of order/m,
          /^ {2}sql\/007_mid\.sql: not applied/m,
          /--allow-out-of-order/,
          /renumber/,
        ],
      },
    ],
  },
  {
    name: 'a migrate target below the current version',
    run: [
      {
        args: ['migrate', '1'],
        code: 2,
        stderr: [/^error: the database is at version \d, above the target 1/m, /tidemark rollback --to 1/],
      },
    ],
  },
  {
    name: 'a no-transaction migration under --single-transaction',
    files: {
      '005_plain.sql': 'CREATE TABLE plain (a INTEGER);\n',
      '005_plain_rollback.sql': 'DROP TABLE plain;\n',
      '006_outside.sql': '-- tidemark:no-transaction\nCREATE TABLE outside (a INTEGER);\n',
      '006_outside_rollback.sql': 'DROP TABLE outside;\n',
    },
    run: [
      {
        args: ['migrate', '--single-transaction'],
        code: 2,
        stderr: [
          /^error: sql\/006_outside\.sql is marked -- tidemark:no-transaction and cannot run inside --single-transaction/m,
        ],
      },
    ],
  },

  // ---- ledger states ----------------------------------------------------------------------------
  ...[
    ['migrate', ['migrate']],
    ['migrate --dry-run', ['migrate', '--dry-run']],
    ['migrate to a target', ['migrate', '9']],
    ['rollback', ['rollback']],
    ['rollback --to 1', ['rollback', '--to', '1']],
    ['rollback --dry-run', ['rollback', '--dry-run']],
    ['version', ['version']],
  ].map(([what, args]) => ({
    name: `a dirty row: ${what} refuses, naming the version and resolve`,
    setup: markDirty,
    run: [{ args, code: 2, stderr: dirtyRefusal }],
  })),
  {
    name: 'a dirty row: status shows it (exit 0)',
    setup: markDirty,
    run: [
      {
        args: ['status'],
        code: 0,
        stdout: (ctx) => [new RegExp(`${LAST[ctx.dialect].text}\\s+${LAST[ctx.dialect].name}\\s+dirty`)],
      },
    ],
  },
  {
    name: 'a dirty row: force <version> --yes resolves it, then migrate works',
    setup: markDirty,
    run: [
      {
        args: (ctx) => ['force', String(LAST[ctx.dialect].version), '--yes'],
        code: 0,
        stdout: [/now says version \d \(marked \d clean\); no migration SQL was run/],
      },
      { args: ['migrate'], code: 0, stdout: [/is up to date/] },
      {
        args: ['status'],
        code: 0,
        stdout: (ctx) => [new RegExp(`${LAST[ctx.dialect].text}\\s+${LAST[ctx.dialect].name}\\s+applied`)],
      },
    ],
    unchanged: false,
    check: async (ctx) => {
      const rows = (await snapshot(ctx)).rows.schema_version;
      assert.ok(
        rows.every((r) => !Number(r.dirty)),
        'no dirty row is left',
      );
      assert.equal(await ledgerVersions(ctx.db), EXAMPLE_VERSIONS[ctx.dialect]);
    },
  },
  ...[
    [
      'status lists every version as pending',
      ['status'],
      { stdout: [/: version 0\n/, /001\s+create_users\s+pending/] },
    ],
    ['version prints 0', ['version'], { stdout: [/^0\n$/] }],
    ['rollback has nothing to do', ['rollback'], { stdout: [/nothing to roll back in .* \(at version 0\)/] }],
    [
      'force --dry-run writes nothing',
      ['force', '1', '--dry-run'],
      { stdout: [/dry run: the ledger of .* would say version 1 \(recorded 1\)/] },
    ],
  ].map(([what, args, expected]) => ({
    name: `a missing ledger table: ${what}, and no ledger is created`,
    setup: (ctx) => ctx.db.query('drop table schema_version; drop table schema_version_history'),
    run: [{ args, code: 0, ...expected }],
  })),
  ...[['migrate'], ['status'], ['version']].map((args) => ({
    name: `a ledger table with an unexpected layout (foo text): ${args[0]} refuses before changing it`,
    applied: false,
    setup: async (ctx) => {
      await ctx.db.query('create table schema_version (foo text)');
      await ctx.db.query("insert into schema_version (foo) values ('bar')");
      await giveToRole(ctx, 'schema_version');
    },
    run: [
      {
        args,
        code: 2,
        stderr: [/^error: .*schema_version.*\bversion\b|^error: .*\bversion\b.*schema_version/m, /^hint: /m],
      },
    ],
  })),
  ...[['migrate'], ['status'], ['version'], ['rollback']].map((args) => ({
    name: `a ledger whose version column holds garbage text: ${args[0]} refuses, naming the value`,
    applied: false,
    setup: async (ctx) => {
      await ctx.db.query(
        'create table schema_version (id integer primary key, version text not null, migration_name text not null, applied_at timestamp)',
      );
      await ctx.db.query(
        "insert into schema_version (id, version, migration_name) values (1, '1', 'create_users'), (2, 'two', 'user_strategies')",
      );
      await giveToRole(ctx, 'schema_version');
    },
    run: [{ args, code: 2, stderr: [/^error: .*schema_version/m, /"?two"?/, /^hint: /m] }],
    check: (_ctx, _before, results) => assert.not.match(results[0].output, /NaN/),
  })),
  {
    name: 'a bad --table name (x; drop table users) is refused before connecting',
    run: [
      {
        args: ['migrate', '--table', 'x; drop table users'],
        code: 2,
        stderr: [/^error: "x; drop table users" is not a valid ledger table name/m],
      },
    ],
  },
  {
    name: 'a --table name with three parts',
    run: [
      {
        args: ['status', '--table', 'a.b.c'],
        code: 2,
        stderr: [/^error: "a\.b\.c" is not a valid ledger table name/m],
      },
    ],
  },
  {
    name: 'force without --yes outside a terminal',
    run: [
      {
        args: ['force', '1'],
        code: 2,
        stderr: [
          /^error: force 1 deletes the ledger rows of versions [\d, ]+, without running any SQL; refusing to do it without confirmation/m,
          /tidemark force 1 --yes/,
        ],
      },
    ],
  },
  {
    name: 'force to a version that has no file',
    run: [
      {
        args: ['force', '42', '--yes'],
        code: 2,
        stderr: [/^error: there is no migration with version 42 for this database/m],
      },
    ],
  },

  // ---- SQLite only ------------------------------------------------------------------------------
  {
    name: 'SQLite: --table with a schema',
    dialects: ['sqlite'],
    run: [
      {
        args: ['status', '--table', 'main.schema_version'],
        code: 2,
        stderr: [/^error: SQLite has no schemas: the ledger table cannot be "main\.schema_version"/m],
      },
    ],
  },
  {
    name: 'SQLite: a file that is not a database',
    dialects: ['sqlite'],
    setup: (ctx) => writeFileSync(join(ctx.cwd, 'notes.db'), 'these are my notes, not a database\n'.repeat(100)),
    run: [
      {
        args: ['status'],
        url: 'sqlite:notes.db',
        code: 4,
        stderr: [/^error: could not open sqlite:notes\.db: .*not a database/m],
      },
      {
        args: ['migrate'],
        url: 'sqlite:notes.db',
        code: 4,
        stderr: [/^error: could not open sqlite:notes\.db: .*not a database/m],
      },
    ],
    check: (ctx) =>
      assert.is(readFileSync(join(ctx.cwd, 'notes.db'), 'utf8'), 'these are my notes, not a database\n'.repeat(100)),
  },
  {
    name: 'SQLite: a path that is a folder',
    dialects: ['sqlite'],
    run: [{ args: ['migrate'], url: 'sqlite:sql', code: 4, stderr: [/^error: could not open sqlite:sql: /m] }],
  },

  // ---- connections and configuration (PostgreSQL URLs; the database behind them must not change) --
  {
    name: 'PostgreSQL: a role without rights on the ledger gets a message, not a stack trace',
    dialects: ['postgres'],
    applied: false,
    setup: async (ctx) => {
      // Created by the administrator: the migration role may not read it.
      await ctx.db.query(
        'create table schema_version (id serial primary key, version bigint not null unique, migration_name varchar(255) not null, applied_at timestamp default now())',
      );
    },
    run: [
      { args: ['status'], code: [2, 4], stderr: [/^error: .*permission denied for table schema_version/m, /^hint: /m] },
    ],
  },
  {
    name: 'PostgreSQL: an unknown role (exit 4, no password shown)',
    dialects: ['postgres'],
    run: [
      {
        args: ['status'],
        url: (ctx) => roleUrl(ctx, { role: 'tidemark_no_such_role' }),
        code: 4,
        stderr: [
          /^error: could not connect to postgres:\/\/tidemark_no_such_role@[^ ]+: (role "tidemark_no_such_role" does not exist|password authentication failed)/m,
          /^hint: check the user name and password/m,
        ],
      },
    ],
  },
  {
    name: 'PostgreSQL: a wrong password is never shown (refused where the server checks passwords)',
    dialects: ['postgres'],
    run: [
      {
        args: ['status'],
        url: (ctx) => roleUrl(ctx, { password: WRONG_PASSWORD }),
        // The test server may trust local connections; one that checks passwords must refuse with exit 4.
        code: ADMIN_URL.password ? 4 : 0,
        stderr: ADMIN_URL.password ? [/password authentication failed/] : [],
      },
    ],
  },
  {
    name: 'PostgreSQL: an unknown database (exit 4, createdb hint)',
    dialects: ['postgres'],
    run: [
      {
        args: ['migrate'],
        url: (ctx) => roleUrl(ctx, { database: 'tidemark_no_such_db' }),
        code: 4,
        stderr: [
          new RegExp(`^error: could not connect to postgres://${ROLE}@[^ ]+/tidemark_no_such_db: `, 'm'),
          /createdb/,
        ],
      },
    ],
  },
  {
    name: 'PostgreSQL: a closed port (exit 4)',
    dialects: ['postgres'],
    run: [
      {
        args: ['migrate'],
        url: (ctx) => roleUrl(ctx, { host: '127.0.0.1:1' }),
        code: 4,
        stderr: [
          new RegExp(
            `^error: could not connect to postgres://${ROLE}@127\\.0\\.0\\.1:1/tidemark_test_\\w+: connection refused`,
            'm',
          ),
        ],
      },
    ],
  },
  {
    name: 'PostgreSQL: a closed port with --json: the error is JSON, still without the password',
    dialects: ['postgres'],
    run: [
      {
        args: ['status', '--json'],
        url: (ctx) => roleUrl(ctx, { host: '127.0.0.1:1' }),
        code: 4,
        stdout: [/"type":"error"/, /"exitCode":4/],
        stderr: [/connection refused/],
      },
    ],
  },
  {
    name: 'PostgreSQL: a malformed URL (port 99999)',
    dialects: ['postgres'],
    run: [
      {
        args: ['migrate'],
        url: (ctx) => roleUrl(ctx, { host: '127.0.0.1:99999' }),
        code: 2,
        stderr: [/^error: the PostgreSQL URL is malformed/m, /percent-encod/],
      },
    ],
  },
  {
    name: 'PostgreSQL: a password with @ and / not percent-encoded is a malformed URL, and no part of it is shown',
    dialects: ['postgres'],
    run: [
      {
        args: ['migrate'],
        url: (ctx) => `postgres://${ROLE}:${PG_PASSWORD}@${ADMIN_URL.host}/${ctx.dbName}`,
        code: 2,
        stderr: [/^error: the PostgreSQL URL is malformed/m, /percent-encod/],
      },
    ],
  },
  {
    name: 'PostgreSQL: an unknown sslmode',
    dialects: ['postgres'],
    run: [
      {
        args: ['migrate'],
        url: (ctx) => roleUrl(ctx, { query: '?sslmode=bogus' }),
        code: 2,
        stderr: [/^error: .*sslmode/m, /^hint: .*(disable|require|verify-full)/m],
      },
    ],
  },
  {
    name: 'no DATABASE_URL at all',
    dialects: ['postgres'],
    run: [
      {
        args: ['migrate'],
        url: null,
        code: 2,
        stderr: [/^error: no database is configured/m, /^hint: set DATABASE_URL/m],
      },
    ],
  },
  {
    name: 'an unknown URL scheme (mysql://) with a password',
    dialects: ['postgres'],
    run: [
      {
        args: ['migrate'],
        url: (ctx) => `mysql://${ROLE}:${encodeURIComponent(PG_PASSWORD)}@${ADMIN_URL.host}/${ctx.dbName}`,
        code: 2,
        stderr: [/^error: unknown database URL scheme in "mysql:…"/m],
      },
    ],
  },
  {
    name: 'a postgres: URL without // (a typo)',
    dialects: ['postgres'],
    run: [
      {
        args: ['status'],
        url: (ctx) => `postgres:${ROLE}:${encodeURIComponent(PG_PASSWORD)}@${ADMIN_URL.host}/${ctx.dbName}`,
        code: 2,
        stderr: [/^error: unknown database URL scheme in "postgres:…"/m],
      },
    ],
  },
  {
    name: 'a sqlite: URL without a path',
    dialects: ['postgres'],
    run: [{ args: ['migrate'], url: 'sqlite:', code: 2, stderr: [/^error: the sqlite: URL has no file path/m] }],
  },
];

/** A table the test created as administrator, handed to the migration role (PostgreSQL) as if it had made it. */
async function giveToRole(ctx, table) {
  if (ctx.dialect === 'postgres') await ctx.db.query(`alter table ${table} owner to ${ROLE}`);
}

/** Runs the CLI and asserts the exit code; for setup steps. */
function expectRun(ctx, args, code) {
  const r = ctx.run(args);
  assert.is(r.code, code, `setup: tidemark ${args.join(' ')}\n${r.output}`);
  return r;
}

/** Tables, types, indexes and every row outside the history table (which records failures by design). */
async function snapshot(ctx) {
  if (ctx.dialect === 'sqlite' && !existsSync(ctx.db.file)) return { file: 'absent' };
  const tables = await ctx.db.tables();
  const state = { tables, types: await ctx.db.types(), indexes: await ctx.db.indexes(), rows: {} };
  for (const table of tables) {
    if (!table.endsWith('_history')) state.rows[table] = await ctx.db.query(`select * from "${table}" order by 1`);
  }
  return state;
}

/** The history table's row count, for refusals: they must not even record an attempt. */
async function historyCount(ctx) {
  if (!(await ctx.db.tables()).includes('schema_version_history')) return null;
  const [{ n }] = await ctx.db.query('select count(*) as n from schema_version_history');
  return Number(n);
}

/** No password, and no piece of one (5 characters or more), in the text. */
function assertNoSecret(text, where) {
  for (const secret of SECRETS) {
    for (let i = 0; i + 5 <= secret.length; i++) {
      const piece = secret.slice(i, i + 5);
      assert.not.ok(text.includes(piece), `${where} shows part of a password ("${piece}"):\n${text}`);
    }
  }
}

/** Every file a run may have written in the project (a log, a report), minus the migrations and databases. */
function writtenFiles(dir, root = dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (relative(root, path) !== 'sql') out.push(...writtenFiles(path, root));
    } else if (
      entry.isFile() &&
      !/\.db(-journal|-wal|-shm)?$/.test(entry.name) &&
      entry.name !== 'shared.sql' &&
      statSync(path).size < 5_000_000
    ) {
      out.push(path);
    }
  }
  return out;
}

const resolveWith = (value, ctx) => (typeof value === 'function' ? value(ctx) : value);

for (const dialect of ['sqlite', 'postgres']) {
  const test = suite(`bad-input matrix [${dialect}]`);
  const ctx = {
    dialect,
    cwd: '',
    db: null,
    dbName: '',
    url: '',
    /** The CLI with this test's URL (or `url`, or none when null) and PGPASSWORD set. */
    run(args, { url = ctx.url, env = {} } = {}) {
      const runEnv = { PGPASSWORD: ENV_PASSWORD, ...env };
      if (url !== null) runEnv.DATABASE_URL = url;
      return runCli(args, { cwd: ctx.cwd, env: runEnv });
    },
  };
  let admin;
  /** The example set applied once per suite; each case starts from a copy of it. */
  const template = { cwd: '', file: '', name: `tidemark_tpl_${randomBytes(4).toString('hex')}` };

  test.before(async () => {
    template.cwd = makeProject();
    if (dialect === 'sqlite') {
      template.file = join(template.cwd, 'template.db');
      const r = runCli(['migrate'], { cwd: template.cwd, env: { DATABASE_URL: `sqlite:${template.file}` } });
      assert.is(r.code, 0, r.output);
      return;
    }
    admin = postgres(ADMIN_URL.toString(), { max: 1, onnotice: () => {} });
    await admin.unsafe(`create role ${ROLE} login password '${PG_PASSWORD}'`);
    await admin.unsafe(`create database ${template.name} owner ${ROLE}`);
    const r = runCli(['migrate'], { cwd: template.cwd, env: { DATABASE_URL: roleUrl({ dbName: template.name }) } });
    assert.is(r.code, 0, r.output);
  });
  test.after(async () => {
    removeProject(template.cwd);
    if (dialect !== 'postgres') return;
    await admin.unsafe(`drop database if exists ${template.name} with (force)`);
    await admin.unsafe(`drop role if exists ${ROLE}`);
    await admin.end({ timeout: 5 });
  });
  test.before.each(async () => {
    ctx.cwd = makeProject();
    ctx.db = await freshDatabase(dialect, ctx.cwd);
    if (dialect === 'postgres') {
      ctx.dbName = new URL(ctx.db.url).pathname.slice(1);
      // The role owns the database, so it may create the ledger and the tables in public.
      await admin.unsafe(`alter database ${ctx.dbName} owner to ${ROLE}`);
      ctx.url = roleUrl(ctx);
    } else {
      ctx.url = ctx.db.url;
    }
  });
  test.after.each(async () => {
    await ctx.db.close();
    removeProject(ctx.cwd);
  });
  /** The example set as `migrate` left it: a copy of the suite's template (the same files, so the same checksums). */
  const applyExampleSet = async () => {
    if (dialect === 'sqlite') return copyFileSync(template.file, ctx.db.file);
    // The test's own connection has not been opened yet, so the empty database can be replaced.
    await admin.unsafe(`drop database ${ctx.dbName}`);
    await admin.unsafe(`create database ${ctx.dbName} template ${template.name} owner ${ROLE}`);
  };

  for (const c of CASES.filter((c) => (c.dialects ?? ['sqlite', 'postgres']).includes(dialect))) {
    test(c.name, async () => {
      if (c.applied !== false) await applyExampleSet();
      for (const [name, text] of Object.entries(resolveWith(c.files, ctx) ?? {})) writeSql(ctx.cwd, name, text);
      await c.setup?.(ctx);
      const before = await snapshot(ctx);
      const historyBefore = await historyCount(ctx);
      const results = [];
      for (const step of c.run) {
        const args = resolveWith(step.args, ctx);
        const url = step.url === undefined ? ctx.url : resolveWith(step.url, ctx);
        const r = ctx.run(args, { url, env: step.env });
        results.push(r);
        const what = `tidemark ${args.join(' ')}`;
        assert.ok(r.code !== null, `${what} did not finish within 60 s`);
        if (Array.isArray(step.code))
          assert.ok(step.code.includes(r.code), `${what}: exit ${r.code}, expected one of ${step.code}\n${r.output}`);
        else assert.is(r.code, step.code, `${what}\n${r.output}`);
        assert.not.match(r.output, /unexpected failure/, `${what} crashed:\n${r.output}`);
        assert.not.match(r.output, /^\s+at .+:\d+:\d+\)?$/m, `${what} printed a stack trace:\n${r.output}`);
        assertNoSecret(r.output, what);
        for (const pattern of resolveWith(step.stderr, ctx) ?? [])
          assert.match(r.stderr, pattern, `${what}: stderr\n${r.output}`);
        for (const pattern of resolveWith(step.stdout, ctx) ?? [])
          assert.match(r.stdout, pattern, `${what}: stdout\n${r.output}`);
        if (r.code !== 0) {
          assert.match(r.stderr, /^error: /m, `${what}: an error line\n${r.output}`);
          assert.match(r.stderr, /^hint: /m, `${what}: a hint\n${r.output}`);
        }
      }
      for (const file of writtenFiles(ctx.cwd)) assertNoSecret(readFileSync(file, 'utf8'), relative(ctx.cwd, file));
      if (c.unchanged !== false) {
        assert.equal(await snapshot(ctx), before, 'the database is as it was before the command');
        // A refusal must not even record an attempt; a failed migration records one.
        const codes = c.run.flatMap((s) => s.code);
        if (!codes.includes(1)) assert.is(await historyCount(ctx), historyBefore, 'no history row for a refusal');
      }
      await c.check?.(ctx, before, results);
    });
  }

  test.run();
}

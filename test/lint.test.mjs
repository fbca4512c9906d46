// tidemark lint: each rule with a file it flags and one it passes (pure, no database), allow comments,
// and the CLI: --json, --format github, the pending files by default, migrate's warning and --strict
// refusal, "strict" in package.json, verify --lint, create's template.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { lintFile } from '../dist/lint/index.js';
import { parsePostgresTrees } from '../dist/sql/postgres-parser.js';
import { lexPostgres } from '../dist/sql/postgres-lexer.js';
import { lexSqlite } from '../dist/sql/sqlite-lexer.js';
import { dispose, ledgerVersions, makeProject, project, removeProject, ROOT, runCli } from './helpers.mjs';
import { RULES } from '../dist/lint/index.js';

async function lint(
  dialect,
  text,
  { noTransaction = false, sqliteVersion = '3.45.0', lockTimeoutConfigured = false } = {},
) {
  const path = 'sql/002_x.sql';
  if (dialect === 'sqlite') {
    const { tokens, statements } = lexSqlite(text);
    return lintFile({ path, text, tokens, noTransaction, dialect, statements, sqliteVersion });
  }
  const { tokens } = lexPostgres(text);
  const trees = await parsePostgresTrees(text, tokens);
  return lintFile({ path, text, tokens, noTransaction, dialect, trees, lockTimeoutConfigured });
}

const rulesOf = (findings) => findings.map((f) => f.rule);

/**
 * [rule, dialect, a file it flags, a file doing the same safely (or a case the rule must leave alone),
 * options for both (or for the safe file, when the flagged one has its own), the flagged file's options]
 */
const CASES = [
  [
    'index-concurrently',
    'postgres',
    'CREATE INDEX users_email ON users (email);',
    'CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);',
  ],
  [
    'index-concurrently',
    'postgres',
    'ALTER TABLE users ADD CONSTRAINT u UNIQUE (email);',
    'ALTER TABLE users ADD CONSTRAINT u UNIQUE USING INDEX users_email;',
  ],
  [
    'index-concurrently',
    'postgres',
    'CREATE UNIQUE INDEX i ON users (email);',
    'CREATE INDEX CONCURRENTLY i ON users (email);',
    { noTransaction: true },
  ],
  [
    'volatile-default',
    'postgres',
    'ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();',
    'ALTER TABLE users ADD COLUMN created timestamptz DEFAULT now();',
  ],
  [
    'volatile-default',
    'postgres',
    'ALTER TABLE users ADD COLUMN n bigserial;',
    'ALTER TABLE users ADD COLUMN n bigint DEFAULT 0;',
  ],
  [
    'column-type-rewrite',
    'postgres',
    'ALTER TABLE users ALTER COLUMN id TYPE bigint;',
    'ALTER TABLE users ALTER COLUMN email TYPE text;',
  ],
  [
    'set-not-null',
    'postgres',
    'ALTER TABLE users ALTER COLUMN email SET NOT NULL;',
    'ALTER TABLE users VALIDATE CONSTRAINT email_nn;\nALTER TABLE users ALTER COLUMN email SET NOT NULL;',
  ],
  [
    'constraint-not-valid',
    'postgres',
    'ALTER TABLE trades ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id);',
    'ALTER TABLE trades ADD CONSTRAINT fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;',
  ],
  [
    'constraint-not-valid',
    'postgres',
    'ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0);',
    'ALTER TABLE users ADD CONSTRAINT c CHECK (id > 0) NOT VALID;',
  ],
  [
    'rename',
    'postgres',
    'ALTER TABLE users RENAME COLUMN email TO mail;',
    'CREATE TABLE t (a int);\nALTER TABLE t RENAME COLUMN a TO b;',
  ],
  ['rename', 'postgres', 'ALTER TABLE users RENAME TO people;', 'ALTER TABLE users ADD COLUMN mail text;'],
  [
    'drop',
    'postgres',
    'ALTER TABLE users DROP COLUMN email;',
    'CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;',
  ],
  ['drop', 'postgres', 'DROP TABLE users;', 'CREATE TABLE t (a int);\nDROP TABLE t;'],
  ['vacuum-full', 'postgres', 'VACUUM FULL users;', 'VACUUM users;', { noTransaction: true }],
  [
    'cluster',
    'postgres',
    'CLUSTER users USING users_pkey;',
    'CREATE TABLE t (a int PRIMARY KEY);\nCLUSTER t USING t_pkey;',
  ],
  ['lock-table', 'postgres', 'LOCK TABLE users;', 'CREATE TABLE t (a int);\nLOCK TABLE t;'],
  [
    'mixed-schema-data',
    'postgres',
    'ALTER TABLE users ADD COLUMN n int;\nUPDATE users SET n = 1;',
    'UPDATE users SET n = 1 WHERE id < 1000;',
  ],
  [
    'mixed-schema-data',
    'postgres',
    'CREATE INDEX users_n ON users (n);\nDELETE FROM users WHERE n IS NULL;',
    'CREATE TABLE t (a int);\nCREATE INDEX t_a ON t (a);\nDELETE FROM users WHERE id = 1;',
  ],
  [
    'mixed-schema-data',
    'postgres',
    'ALTER TABLE users ADD COLUMN n int;\nINSERT INTO archive SELECT * FROM users;',
    "ALTER TABLE users ADD COLUMN n int;\nINSERT INTO kinds VALUES ('a');",
  ],
  [
    'lock-timeout',
    'postgres',
    'ALTER TABLE users ADD COLUMN n int;',
    "SET lock_timeout = '5s';\nALTER TABLE users ADD COLUMN n int;",
  ],
  [
    'lock-timeout',
    'postgres',
    'SET lock_timeout = 0;\nDROP TABLE users;',
    'CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int;',
  ],
  [
    'sqlite-foreign-keys-pragma',
    'sqlite',
    'PRAGMA foreign_keys = OFF;',
    'PRAGMA foreign_keys = OFF;',
    { noTransaction: true },
    {},
  ],
  [
    'sqlite-alter-unsupported',
    'sqlite',
    'ALTER TABLE users ALTER COLUMN email TEXT;',
    'ALTER TABLE users ADD COLUMN email TEXT;',
  ],
  [
    'sqlite-alter-unsupported',
    'sqlite',
    'ALTER TABLE users ADD COLUMN n INTEGER NOT NULL;',
    'ALTER TABLE users ADD COLUMN n INTEGER NOT NULL DEFAULT 0;',
  ],
  [
    'sqlite-alter-unsupported',
    'sqlite',
    'ALTER TABLE users ADD COLUMN c TEXT DEFAULT CURRENT_TIMESTAMP;',
    "ALTER TABLE users ADD COLUMN c TEXT DEFAULT 'x';",
  ],
  [
    'sqlite-alter-unsupported',
    'sqlite',
    'ALTER TABLE users DROP COLUMN email;',
    'ALTER TABLE users RENAME COLUMN email TO mail;',
    { sqliteVersion: '3.34.1' },
  ],
  [
    'drop',
    'sqlite',
    'DROP TABLE IF EXISTS "users";',
    'CREATE TABLE users_new (id INTEGER PRIMARY KEY);\nINSERT INTO users_new SELECT id FROM users;\nDROP TABLE users;\nALTER TABLE users_new RENAME TO users;',
  ],
  ['drop', 'sqlite', 'ALTER TABLE users DROP COLUMN email;', 'ALTER TABLE users ADD COLUMN email TEXT;'],
  [
    'rename',
    'sqlite',
    'ALTER TABLE [users] RENAME COLUMN email TO mail;',
    'CREATE TABLE t (a);\nALTER TABLE t RENAME COLUMN a TO b;',
  ],
];

const rules = suite('each rule flags its hazard and passes the safe pattern');

for (const [rule, dialect, bad, good, options, badOptions = options] of CASES) {
  rules(`${rule} (${dialect}): ${bad.split('\n').at(-1)}`, async () => {
    assert.ok(rulesOf(await lint(dialect, bad, badOptions)).includes(rule), `flags:\n${bad}`);
    assert.not.ok(rulesOf(await lint(dialect, good, options)).includes(rule), `passes:\n${good}`);
  });
}

rules('a finding names file:line:column, the why and the safe pattern', async () => {
  const [finding] = await lint(
    'postgres',
    "SET lock_timeout = '5s';\nALTER TABLE users\n  ADD COLUMN token uuid DEFAULT gen_random_uuid();\n",
  );
  assert.equal(
    { ...finding, message: undefined, safe: undefined },
    { rule: 'volatile-default', file: 'sql/002_x.sql', line: 3, column: 14, message: undefined, safe: undefined },
  );
  assert.match(finding.message, 'gen_random_uuid()');
  assert.match(finding.message, 'the table is rewritten');
  assert.match(finding.safe, 'backfill');
});

rules('lock-timeout: a timeout set by migrate (--pg-lock-timeout) counts', async () => {
  assert.not.ok(
    rulesOf(await lint('postgres', 'ALTER TABLE users ADD COLUMN n int;', { lockTimeoutConfigured: true })).includes(
      'lock-timeout',
    ),
  );
});

rules.run();

const allow = suite('-- tidemark:allow <rule> <reason> is the only way to suppress a finding');

allow("on the statement's line, or the line before it, with a reason: suppressed", async () => {
  const trailing = await lint(
    'postgres',
    "SET lock_timeout = '1s';\nDROP TABLE users; -- tidemark:allow drop nothing reads it since release 41\n",
  );
  assert.equal(trailing, []);
  const before = await lint(
    'postgres',
    "SET lock_timeout = '1s';\n-- tidemark:allow drop nothing reads it since release 41\nDROP TABLE users;\n",
  );
  assert.equal(before, []);
});

allow('it suppresses only its own rule on its own statement', async () => {
  const text =
    "SET lock_timeout = '1s';\n-- tidemark:allow rename moved in release 41\nDROP TABLE users;\nDROP TABLE orders;\n";
  assert.equal(rulesOf(await lint('postgres', text)), ['drop', 'drop']);
});

allow('without a reason, or naming no rule, it suppresses nothing and is itself reported', async () => {
  const noReason = await lint('sqlite', 'DROP TABLE users; -- tidemark:allow drop\n');
  assert.equal(rulesOf(noReason), ['drop', 'allow-comment']);
  assert.match(noReason[1].message, 'gives no reason');
  const unknown = await lint('sqlite', '-- tidemark:allow drop-table it is fine\nDROP TABLE users;\n');
  assert.equal(rulesOf(unknown), ['allow-comment', 'drop']);
  assert.match(unknown[0].message, '"drop-table", not a rule');
});

allow.run();

const cli = suite('tidemark lint on the command line');

const HAZARDS = {
  '001_base.sql': 'CREATE TABLE base (a INTEGER, b INTEGER);\n',
  '001_base_rollback.sql': 'DROP TABLE base;\n',
  '002_drop_a.sql': 'ALTER TABLE base DROP COLUMN a;\n',
  '002_drop_a_rollback.sql': 'ALTER TABLE base ADD COLUMN a INTEGER;\n',
};

cli('with no database configured: every file; file:line:col [rule], exit 3; --json and --format github', () => {
  const cwd = makeProject(HAZARDS);
  try {
    // tidemark sets a lock_timeout of its own by default: lock-timeout is a finding when that is off.
    const defaults = runCli(['lint'], { cwd });
    assert.is(defaults.code, 3, defaults.output);
    assert.not.match(defaults.stdout, '[lock-timeout]');
    const text = runCli(['lint', '--pg-lock-timeout', '0'], { cwd });
    assert.is(text.code, 3, text.output);
    assert.match(text.stdout, 'sql/002_drop_a.sql:1:1: [drop] drops column "base.a"');
    assert.match(text.stdout, '  safe: expand/contract');
    // Both dialects' rules, as no database says which one runs the files: PostgreSQL's adds lock-timeout.
    assert.match(text.stdout, 'sql/002_drop_a.sql:1:1: [lock-timeout]');
    assert.match(text.stdout, 'lint: 2 findings in 2 files');
    const json = runCli(['lint', '--json', '--pg-lock-timeout', '0'], { cwd });
    assert.is(json.code, 3, json.output);
    const parsed = JSON.parse(json.stdout);
    assert.equal(parsed.files, ['sql/001_base.sql', 'sql/002_drop_a.sql']);
    assert.equal(
      parsed.findings.map((f) => [f.rule, f.file, f.line, f.column]),
      [
        ['drop', 'sql/002_drop_a.sql', 1, 1],
        ['lock-timeout', 'sql/002_drop_a.sql', 1, 1],
      ],
    );
    const github = runCli(['lint', '--format', 'github'], { cwd });
    assert.is(github.code, 3, github.output);
    assert.match(
      github.stdout,
      /^::warning file=sql\/002_drop_a\.sql,line=1,col=1,title=tidemark drop::drops column "base\.a".*Safe: /,
    );
    const named = runCli(['lint', 'sql/001_base.sql'], { cwd });
    assert.is(named.code, 0, named.output);
    assert.match(named.stdout, 'lint: 0 findings in 1 file');
    const wrong = runCli(['lint', 'sql/009_nothing.sql'], { cwd });
    assert.is(wrong.code, 2, wrong.output);
    assert.match(wrong.stderr, 'sql/009_nothing.sql is not a forward migration file in sql/');
  } finally {
    removeProject(cwd);
  }
});

cli('with a database: the pending files only; --all for every file', async () => {
  const p = await project('sqlite', {
    ...HAZARDS,
    '003_more.sql': 'CREATE TABLE more (a INTEGER);\n',
    '003_more_rollback.sql': 'DROP TABLE more;\n',
  });
  try {
    assert.is(p.cli('migrate', '2').code, 0);
    const pending = p.cli('lint', '--json');
    assert.is(pending.code, 0, pending.output);
    assert.equal(JSON.parse(pending.stdout).files, ['sql/003_more.sql']);
    const all = p.cli('lint', '--all');
    assert.is(all.code, 3, all.output);
    assert.match(all.stdout, 'sql/002_drop_a.sql:1:1: [drop]');
  } finally {
    await dispose(p);
  }
});

const REAL = join(ROOT, 'test', 'fixtures', 'real');
const UNUSED_URL = { postgres: 'postgres://tidemark@127.0.0.1:1/never_connected', sqlite: 'sqlite:never_created.db' };

for (const name of readdirSync(REAL)) {
  const { dialects } = JSON.parse(readFileSync(join(REAL, name, 'expected.json'), 'utf8'));
  for (const dialect of dialects) {
    cli(
      `lint --all on the real set ${name} (${dialect}): every file read, findings well-formed, well under a second`,
      () => {
        const dir = join(REAL, name, 'sql');
        const r = runCli(['lint', '--all', '--json', '--dir', dir, '--url', UNUSED_URL[dialect]], { cwd: ROOT });
        assert.ok(r.code === 0 || r.code === 3, r.output);
        const { files, findings, ms } = JSON.parse(r.stdout);
        assert.ok(files.length > 0);
        for (const f of findings) {
          assert.ok(
            files.includes(f.file) && f.line >= 1 && f.column >= 1 && f.message && f.safe === RULES[f.rule].safe,
            JSON.stringify(f),
          );
        }
        // The goal is under a second on a quiet machine; the bound leaves room for a loaded CI runner.
        assert.ok(ms < 3000, `${name}: ${ms} ms`);
      },
    );
  }
}

cli.run();

const workflow = suite('lint in the workflow: migrate warns, --strict refuses, verify --lint, create');

for (const dialect of ['postgres', 'sqlite']) {
  workflow(`${dialect}: migrate warns and applies; --strict refuses with exit 2 before anything runs`, async () => {
    const p = await project(dialect, HAZARDS);
    try {
      const strict = p.cli('migrate', '--strict');
      assert.is(strict.code, 2, strict.output);
      assert.match(strict.stderr, 'sql/002_drop_a.sql:1:1: [drop]');
      assert.match(strict.stderr, /lint found \d lock hazards? in the pending files \(strict\); nothing was run/);
      assert.equal(await ledgerVersions(p.db), []);
      assert.equal(
        (await p.db.tables()).filter((t) => t === 'base'),
        [],
        'not even version 1 ran',
      );
      const warned = p.cli('migrate');
      assert.is(warned.code, 0, warned.output);
      assert.match(warned.stderr, 'warning: sql/002_drop_a.sql:1:1: [drop]');
      assert.equal(await ledgerVersions(p.db), [1, 2]);
    } finally {
      await dispose(p);
    }
  });
}

workflow(
  '"strict": true in package.json refuses; --no-strict overrides it; an allow comment lets it through',
  async () => {
    const p = await project('sqlite', HAZARDS);
    try {
      writeFileSync(join(p.cwd, 'package.json'), JSON.stringify({ name: 'app', tidemark: { strict: true } }));
      assert.is(p.cli('migrate').code, 2);
      assert.equal(await ledgerVersions(p.db), []);
      assert.is(p.cli('migrate', '--no-strict', '1').code, 0);
      writeFileSync(
        join(p.cwd, 'sql', '002_drop_a.sql'),
        'ALTER TABLE base DROP COLUMN a; -- tidemark:allow drop unused since release 3\n',
      );
      const allowed = p.cli('migrate');
      assert.is(allowed.code, 0, allowed.output);
      assert.not.match(allowed.stderr, '[drop]');
      assert.equal(await ledgerVersions(p.db), [1, 2]);
    } finally {
      await dispose(p);
    }
  },
);

workflow('verify --lint: exit 3 with the findings of every file; verify alone passes', async () => {
  const p = await project('sqlite', HAZARDS);
  try {
    assert.is(p.cli('migrate').code, 0);
    assert.is(p.cli('verify').code, 0);
    const linted = p.cli('verify', '--lint');
    assert.is(linted.code, 3, linted.output);
    assert.match(linted.stdout, 'sql/002_drop_a.sql:1:1: [drop]');
    const json = JSON.parse(p.cli('verify', '--lint', '--json').stdout);
    assert.equal(
      json.lint.map((f) => f.rule),
      ['drop'],
    );
  } finally {
    await dispose(p);
  }
});

workflow('create: the template shows the safe patterns, and lints clean', () => {
  const cwd = makeProject({});
  try {
    const created = runCli(['create', 'add_orders'], { cwd });
    assert.is(created.code, 0, created.output);
    const text = readFileSync(join(cwd, 'sql', '001_add_orders.sql'), 'utf8');
    for (const pattern of [
      'lock_timeout',
      'CONCURRENTLY',
      'NOT VALID',
      'VALIDATE CONSTRAINT',
      'tidemark:allow',
      'foreign-keys-off',
    ])
      assert.match(text, pattern);
    const linted = runCli(['lint'], { cwd });
    assert.is(linted.code, 0, linted.output);
  } finally {
    removeProject(cwd);
  }
});

workflow.run();

// Under pressure: an unwritable log, errors the server gives without a position, session state a
// migration leaves behind, refused connections, odd ledger names, a read-only SQLite file system,
// and text from the database or a file that would drive the terminal.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BASE, DIALECTS, dispose, ledgerVersions, makeProject, project, removeProject, runCli } from './helpers.mjs';

const TWO = {
  ...BASE,
  '002_more.sql': 'CREATE TABLE more (a INTEGER);\n',
  '002_more_rollback.sql': 'DROP TABLE more;\n',
};
const ESC = '\x1b';

/** No stack trace reached the user: every failure is an `error:` line with an exit code. */
function assertNoStack(result) {
  assert.not.match(result.output, /^\s+at .+:\d+:\d+\)?$/m, result.output);
  assert.not.match(result.output, /unexpected failure/, result.output);
}

// ---- the migration log ------------------------------------------------------------------------

const log = suite('the migration log, files and folders under pressure');

for (const [what, path] of [
  ['a path under /proc', () => '/proc/tidemark-nowhere/migration.log'],
  [
    'a path whose parent is a regular file',
    (cwd) => {
      writeFileSync(join(cwd, 'afile'), 'x');
      return 'afile/migration.log';
    },
  ],
]) {
  log(`an unwritable --log (${what}): one warning naming the path and the reason, and the run goes on`, async () => {
    const p = await project('sqlite', TWO);
    try {
      const logPath = path(p.cwd);
      const r = runCli(['migrate', '--log', logPath], { cwd: p.cwd, env: { DATABASE_URL: p.db.url } });
      assert.is(r.code, 0, r.output);
      const warnings = r.stderr.split('\n').filter((line) => line.startsWith('warning:'));
      assert.is(warnings.length, 1, r.stderr);
      assert.match(warnings[0], `cannot write the migration log ${logPath}: `);
      assert.match(warnings[0], /(ENOENT|ENOTDIR)/);
      assert.equal(await ledgerVersions(p.db), [1, 2]);
    } finally {
      await dispose(p);
    }
  });
}

log('a command that fails before it connects creates no logs/migration.log in the current folder', () => {
  const cwd = makeProject(TWO);
  try {
    const failures = [
      [{}, 2],
      [{ DATABASE_URL: 'mysql://localhost/app' }, 2],
      // Nothing listens on port 1: the connection is refused at once.
      [{ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/app' }, 4],
    ];
    for (const [env, code] of failures) {
      const r = runCli(['migrate'], { cwd, env });
      assert.is(r.code, code, r.output);
      assert.not.ok(existsSync(join(cwd, 'logs')), 'no log folder was created');
    }
    writeFileSync(join(cwd, 'sql', '3_typo.sq.sql'), 'select 1;\n');
    const r = runCli(['migrate'], { cwd, env: { DATABASE_URL: 'sqlite:data/app.db' } });
    assert.is(r.code, 2, r.output);
    assert.not.ok(existsSync(join(cwd, 'logs')), 'no log folder was created');
  } finally {
    removeProject(cwd);
  }
});

log('a file where a folder is expected (--dir, create) is exit 2 naming it, not a stack trace', () => {
  const cwd = makeProject(TWO);
  try {
    writeFileSync(join(cwd, 'afile'), 'x');
    for (const args of [
      ['migrate', '--dir', 'afile'],
      ['create', 'orders', '--dir', 'afile/sub'],
    ]) {
      const r = runCli(args, { cwd, env: { DATABASE_URL: 'sqlite:app.db' } });
      assert.is(r.code, 2, r.output);
      assertNoStack(r);
      assert.match(r.stderr, `${join(cwd, 'afile')}`);
      assert.match(r.stderr, /not a directory/);
    }
  } finally {
    removeProject(cwd);
  }
});

log.run();

// ---- PostgreSQL errors without a position -------------------------------------------------------

const where = suite('PostgreSQL errors are mapped to file:line:column');

/** Runs migrate on a project whose version 2 is `text`; returns the failed run. */
async function failing(text) {
  const p = await project('postgres', { ...BASE, '002_orders.sql': text, '002_orders_rollback.sql': 'select 1;\n' });
  try {
    const r = p.cli('migrate');
    assert.is(r.code, 1, r.output);
    assert.equal(await ledgerVersions(p.db), [1], 'version 2 was not recorded');
    return r;
  } finally {
    await dispose(p);
  }
}

where('an error without a position (CREATE INDEX on a missing column) names the failing statement', async () => {
  const r = await failing('create table orders (total int);\n\ncreate index orders_total on orders (totl);\n');
  assert.match(r.stderr, 'error: sql/002_orders.sql:3:1: column "totl" does not exist');
  assert.match(r.stderr, '3 | create index orders_total on orders (totl);');
});

where('an error inside a DO block points into the block (internal position)', async () => {
  const r = await failing('create table orders (total int);\ndo $$\nbegin\n  perform totl from orders;\nend $$;\n');
  assert.match(r.stderr, 'error: sql/002_orders.sql:4:11: column "totl" does not exist');
  assert.match(r.stderr, /4 \| {3}perform totl from orders;\n\s+\| {11}\^/);
});

where('an error inside a function called later points into its body', async () => {
  const r = await failing(
    'create table orders (total int);\ncreate function sum_orders() returns void language plpgsql as $$\nbegin\n  perform totl from orders;\nend $$;\nselect sum_orders();\n',
  );
  assert.match(r.stderr, 'error: sql/002_orders.sql:4:11: column "totl" does not exist');
});

where('RAISE in a DO block names the line of the RAISE', async () => {
  const r = await failing("create table orders (total int);\ndo $$\nbegin\n  raise exception 'no orders';\nend $$;\n");
  assert.match(r.stderr, 'error: sql/002_orders.sql:4:3: no orders');
});

where('a runtime error of a statement without a position names that statement', async () => {
  const r = await failing(
    'create table orders (total int unique);\ninsert into orders values (1);\n\ninsert into orders\n  values (1);\n',
  );
  assert.match(
    r.stderr,
    'error: sql/002_orders.sql:4:1: duplicate key value violates unique constraint "orders_total_key"',
  );
});

where.run();

// ---- session state ----------------------------------------------------------------------------

const session = suite('each PostgreSQL migration starts from the same session state');

const tablesBySchema = async (db) =>
  (
    await db.query(
      `select table_schema || '.' || table_name as name from information_schema.tables where table_schema in ('public', 'other') order by 1`,
    )
  ).map((r) => r.name);

session(
  'SET search_path and statement_timeout in one migration do not carry into the next or into the ledger',
  async () => {
    const p = await project('postgres', {
      ...BASE,
      '002_other.sql':
        'create schema other;\nset search_path = other;\ncreate table in_other (a int);\nset statement_timeout = 20;\n',
      '002_other_rollback.sql': 'drop schema other cascade;\n',
      '003_next.sql': 'select pg_sleep(0.1);\ncreate table next (a int);\n',
      '003_next_rollback.sql': 'drop table next;\n',
    });
    try {
      const r = p.cli('migrate');
      assert.is(r.code, 0, r.output);
      const tables = await tablesBySchema(p.db);
      assert.equal(tables, [
        'other.in_other',
        'public.base',
        'public.next',
        'public.schema_version',
        'public.schema_version_history',
      ]);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3]);
      const v = p.cli('verify');
      assert.is(v.code, 0, v.output);
    } finally {
      await dispose(p);
    }
  },
);

session(
  'a search_path that names no existing schema: exit 2 naming the setting, at once, in both lock modes',
  async () => {
    const p = await project('postgres', TWO);
    try {
      await p.db.query(`alter database "${new URL(p.db.url).pathname.slice(1)}" set search_path = nowhere`);
      for (const lock of ['advisory', 'table']) {
        const r = p.cli('migrate', '--lock', lock);
        assert.is(r.code, 2, r.output);
        assertNoStack(r);
        assert.match(r.stderr, /error: .*search_path.*names no schema that exists/);
        assert.match(r.stderr, /hint: .*--table <schema>\.schema_version/);
      }
      const withSchema = p.cli('status', '--table', 'public.schema_version');
      assert.is(withSchema.code, 0, withSchema.output);
      assert.match(withSchema.stdout, /version 0/);
    } finally {
      await dispose(p);
    }
  },
);

session.run();

// ---- exit codes and messages under pressure ----------------------------------------------------

const pressure = suite('exit codes and messages under pressure');

pressure('--table in a system schema is refused with exit 2', async () => {
  const p = await project('postgres', TWO);
  try {
    for (const table of ['pg_catalog.x', 'information_schema.x', 'pg_toast.schema_version']) {
      const r = p.cli('migrate', '--table', table);
      assert.is(r.code, 2, r.output);
      assertNoStack(r);
      assert.match(r.stderr, `error: the ledger cannot live in the system schema "${table.split('.')[0]}"`);
    }
    assert.equal(await p.db.tables(), [], 'nothing was created');
  } finally {
    await dispose(p);
  }
});

pressure('--table in a schema that does not exist is refused with exit 2; no schema is created', async () => {
  const p = await project('postgres', TWO);
  try {
    for (const args of [['migrate'], ['status'], ['migrate', '--lock', 'table'], ['force', '1', '--yes']]) {
      const r = p.cli(...args, '--table', 'typo.schema_version');
      assert.is(r.code, 2, r.output);
      assert.match(
        r.stderr,
        /error: the schema "typo" \(of the ledger table typo\.schema_version\) does not exist in postgres:\/\//,
      );
      assert.match(r.stderr, /hint: .*create schema typo/);
    }
    const [{ n }] = await p.db.query(`select count(*)::int as n from pg_namespace where nspname = 'typo'`);
    assert.is(n, 0, 'no schema was created');
    assert.equal(await p.db.tables(), []);
    await p.db.query('create schema ops');
    const r = p.cli('migrate', '--table', 'ops.schema_version');
    assert.is(r.code, 0, r.output);
    assert.equal(await ledgerVersions(p.db, 'schema_version'), [], 'the ledger is in ops, not public');
    assert.equal(
      (await p.db.query('select version from ops.schema_version order by 1')).map((row) => Number(row.version)),
      [1, 2],
    );
  } finally {
    await dispose(p);
  }
});

pressure("too many clients for the lock table's connection: exit 4 with the server's reason, no stack", async () => {
  const p = await project('postgres', TWO);
  const admin = postgres(process.env.TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  const role = `tidemark_limited_${process.pid}`;
  const name = new URL(p.db.url).pathname.slice(1);
  try {
    await admin.unsafe(`drop role if exists ${role}`);
    // A password: the embedded server checks passwords on TCP (the machine's server may trust).
    await admin.unsafe(`create role ${role} login password 'limited-secret-9' connection limit 1`);
    await admin.unsafe(`alter database "${name}" owner to ${role}`);
    const url = new URL(p.db.url);
    url.username = role;
    url.password = 'limited-secret-9';
    const r = runCli(['migrate', '--lock', 'table'], { cwd: p.cwd, env: { DATABASE_URL: url.toString() } });
    assert.not.match(r.output, 'limited-secret-9', 'the password is never printed');
    assert.is(r.code, 4, r.output);
    assertNoStack(r);
    assert.match(r.stderr, /error: .*too many connections for role/, r.stderr);
    assert.match(r.stderr, /hint: /);
    assert.equal(await ledgerVersions(p.db), []);
  } finally {
    await p.db.query(`alter database "${name}" owner to postgres`).catch(() => {});
    await dispose(p);
    await admin.unsafe(`drop role if exists ${role}`);
    await admin.end();
  }
});

/**
 * A folder that can be made read-only for real: a tmpfs remounted read-only when running as root
 * (chmod does not stop root), else plain permissions.
 */
function readOnlyFolder() {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-ro-'));
  const root = process.getuid?.() === 0;
  if (root) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]);
  return {
    dir,
    seal: () => {
      if (root) return execFileSync('mount', ['-o', 'remount,ro', dir]);
      chmodSync(join(dir, 'app.db'), 0o444);
      chmodSync(dir, 0o555);
    },
    remove: () => {
      if (root) execFileSync('umount', [dir]);
      else chmodSync(dir, 0o755);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

pressure(
  'SQLite on a read-only file system: migrate, rollback and force all exit 4 naming the database, blaming no file',
  async () => {
    const cwd = makeProject({
      ...TWO,
      '003_third.sql': 'CREATE TABLE third (a INTEGER);\n',
      '003_third_rollback.sql': 'DROP TABLE third;\n',
    });
    const folder = readOnlyFolder();
    try {
      const env = { DATABASE_URL: `sqlite:${folder.dir}/app.db` };
      assert.is(runCli(['migrate', '2'], { cwd, env }).code, 0);
      folder.seal();
      for (const args of [['migrate'], ['rollback'], ['force', '3', '--yes']]) {
        const r = runCli([...args, '--no-log'], { cwd, env });
        assert.is(r.code, 4, `${args.join(' ')}: ${r.output}`);
        assert.match(r.stderr, `error: could not write sqlite:${folder.dir}/app.db: `);
        // The run lock's file beside the database meets the read-only folder first, or SQLite does.
        assert.match(r.stderr, /readonly database|read-only file system|permission denied/);
        assert.not.match(r.stderr, /sql\/00\d_/, 'no migration file is blamed');
        assertNoStack(r);
      }
      const status = runCli(['status'], { cwd, env });
      assert.is(status.code, 0, 'reading still works');
      assert.match(status.stdout, /version 2/);
    } finally {
      folder.remove();
      removeProject(cwd);
    }
  },
);

pressure('text from the database is printed with its control characters escaped', async () => {
  const p = await project('postgres', {
    ...BASE,
    '002_evil.sql': `create table evil (a text unique);\ninsert into evil values (E'\\x1b[2J\\x1b[31mred');\ninsert into evil values (E'\\x1b[2J\\x1b[31mred');\n`,
    '002_evil_rollback.sql': 'drop table evil;\n',
  });
  try {
    const r = p.cli('migrate');
    assert.is(r.code, 1, r.output);
    assert.match(r.stderr, 'detail: Key (a)=(\\x1b[2J\\x1b[31mred) already exists.');
    assert.not.ok(r.output.includes(ESC), JSON.stringify(r.output));
    const history = p.cli('status', '--history');
    assert.not.ok(history.output.includes(ESC), JSON.stringify(history.output));
    const logText = readFileSync(join(p.cwd, 'logs', 'migration.log'), 'utf8');
    assert.not.ok(logText.includes(ESC), JSON.stringify(logText));
  } finally {
    await dispose(p);
  }
});

pressure.run();

for (const dialect of DIALECTS) {
  const test = suite(`text from a file is printed with its control characters escaped [${dialect}]`);
  test('an identifier holding an escape sequence', async () => {
    const p = await project(dialect, {
      ...BASE,
      '002_evil.sql': `select * from "${ESC}[2Jnowhere";\n`,
      '002_evil_rollback.sql': 'select 1;\n',
    });
    try {
      const r = p.cli('migrate');
      assert.is(r.code, 1, r.output);
      assert.match(r.stderr, '\\x1b[2Jnowhere');
      assert.not.ok(r.output.includes(ESC), JSON.stringify(r.output));
    } finally {
      await dispose(p);
    }
  });
  test.run();
}

// What an operator reads: plain lines in pm2 logs, a live elapsed time on a terminal, one JSON event
// per line with --json, and logs/migration.log appended on every run that changes something.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI, DIALECTS, EXAMPLE_VERSIONS, perTestDatabase, runCli, writeSql } from './helpers.mjs';

/** A password that must never reach the log, set where the dialect takes one. */
const SECRET = 'Tr0ub4dor&3xyz';

for (const dialect of DIALECTS) {
  const test = suite(`output [${dialect}]`);
  const ctx = perTestDatabase(test, dialect);
  /**
   * The database URL with a password in it, or PGPASSWORD set. A server that checks passwords (the
   * embedded one) already has one in its URL; a trusting server accepts SECRET.
   */
  let secret = SECRET;
  const cli = (...args) => {
    if (dialect === 'sqlite')
      return runCli(args, { cwd: ctx.cwd, env: { DATABASE_URL: ctx.db.url, PGPASSWORD: SECRET } });
    const url = new URL(ctx.db.url);
    if (url.password) secret = decodeURIComponent(url.password);
    else url.password = encodeURIComponent(SECRET);
    return runCli(args, { cwd: ctx.cwd, env: { DATABASE_URL: url.toString() } });
  };
  const logText = (path = 'logs/migration.log') => readFileSync(join(ctx.cwd, path), 'utf8');

  test('logs/migration.log gets one line per event, is appended to, and never holds a password', async () => {
    const versions = EXAMPLE_VERSIONS[dialect];
    assert.is(cli('migrate').code, 0);
    assert.is(cli('rollback').code, 0);
    writeSql(ctx.cwd, '009_broken.sql', 'CREATE TABLE broken (a INT);\nSELEC 1;\n');
    writeSql(ctx.cwd, '009_broken_rollback.sql', 'DROP TABLE broken;\n');
    assert.is(cli('migrate').code, 1);

    const lines = logText().trimEnd().split('\n');
    const iso = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';
    const database = dialect === 'sqlite' ? 'sqlite:\\S+' : 'postgres://postgres@\\S+';
    assert.match(lines[0], new RegExp(`^${iso} ${database} migrate - - - start ${versions.length} pending$`));
    assert.match(lines[1], new RegExp(`^${iso} ${database} up 001 create_users \\d+ms ok$`));
    assert.match(
      lines.find((l) => / down /.test(l)),
      new RegExp(` down 00${versions.at(-1)} \\S+ \\d+ms ok$`),
    );
    assert.match(
      lines.find((l) => / failed /.test(l)),
      / up 009 broken - failed sql\/009_broken\.sql:2/,
    );
    assert.match(lines.at(-1), / error sql\/009_broken\.sql:2.*\(hint: /);
    assert.is(lines.filter((l) => / start /.test(l)).length, 3, 'three runs, appended, none truncated');
    assert.not.ok(logText().includes(secret));
    assert.not.ok(logText().includes(encodeURIComponent(secret)));
  });

  test('--no-log writes nothing; --log puts it elsewhere; read-only commands and dry runs do not log', async () => {
    assert.is(cli('migrate', '--dry-run').code, 0);
    assert.is(cli('status').code, 0);
    assert.is(cli('migrate', '--no-log').code, 0);
    assert.not.ok(existsSync(join(ctx.cwd, 'logs')), 'no log folder was created');
    assert.is(cli('rollback', '--log', 'var/deploy/tidemark.log').code, 0);
    assert.match(logText('var/deploy/tidemark.log'), / down \d+ \S+ \d+ms ok\n/);
  });

  test('without a terminal, progress is plain lines: no colour, no cursor movement', async () => {
    const r = cli('migrate');
    assert.is(r.code, 0, r.output);
    assert.not.match(r.output, /\x1b|\r/);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^migrate \S+: \d migrations$/);
    assert.match(lines[1], /^↑ 001 create_users {2}\d+ ms$/);
    assert.match(
      lines.at(-1),
      new RegExp(
        `^${EXAMPLE_VERSIONS[dialect].length} applied in \\d+ ms, now at version ${EXAMPLE_VERSIONS[dialect].at(-1)}$`,
      ),
    );
  });

  test('--json prints one JSON event per line (start, applied, summary) and nothing else on stdout', async () => {
    const r = cli('migrate', '--json');
    assert.is(r.code, 0, r.output);
    const events = r.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.equal(
      events.map((e) => e.type),
      ['start', ...EXAMPLE_VERSIONS[dialect].map(() => 'applied'), 'summary'],
    );
    assert.is(events.at(-1).version, EXAMPLE_VERSIONS[dialect].at(-1));
    writeSql(ctx.cwd, '009_broken.sql', 'SELEC 1;\n');
    writeSql(ctx.cwd, '009_broken_rollback.sql', 'SELECT 1;\n');
    const failed = cli('migrate', '--json');
    assert.is(failed.code, 1);
    const types = failed.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line).type);
    assert.equal(types, ['start', 'failed', 'error']);
  });

  test('force over many versions names them in one short line; --json and the log keep every one', async () => {
    const added = Array.from({ length: 40 }, (_, i) => 100 + i);
    for (const v of added) {
      writeSql(ctx.cwd, `${v}_t${v}.sql`, `CREATE TABLE t${v} (id INTEGER);\n`);
      writeSql(ctx.cwd, `${v}_t${v}_rollback.sql`, `DROP TABLE t${v};\n`);
    }
    const all = [...EXAMPLE_VERSIONS[dialect], ...added];
    const r = cli('force', '139', '--yes');
    assert.is(r.code, 0, r.stderr);
    const shown = `recorded ${all.length} versions (1, 2, 3, … 137, 138, 139)`;
    assert.ok(r.stdout.includes(shown), `"${shown}" in: ${r.stdout}`);
    assert.ok(r.stdout.length < 300, r.stdout);
    const json = cli('force', '0', '--yes', '--json');
    const forced = JSON.parse(json.stdout.trim().split('\n').at(-1));
    assert.equal(forced.removed, all);
    assert.ok(logText().includes(`recorded [${all.join(',')}]`));
  });

  test.run();
}

const terminal = suite('output on a terminal');
const tty = perTestDatabase(terminal, 'postgres');

terminal('a migration running longer than a second shows a live elapsed time, then its final line', async () => {
  writeSql(tty.cwd, '005_slow.sql', 'SELECT pg_sleep(1.6);\n');
  writeSql(tty.cwd, '005_slow_rollback.sql', 'SELECT 1;\n');
  // `script` gives the CLI a real pseudo-terminal, as a person at a shell has.
  const command = `${process.execPath} ${CLI} migrate`;
  const r = spawnSync('script', ['-qec', command, '/dev/null'], {
    cwd: tty.cwd,
    env: { ...process.env, DATABASE_URL: tty.db.url, TERM: 'xterm' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\r\x1b\[K↑ 005 slow {2}(\x1b\[2m)?1\.\d s…/, 'the elapsed time is redrawn in place');
  assert.match(
    r.stdout,
    /\r\x1b\[K(\x1b\[32m)?↑(\x1b\[39m)? 005 slow(\x1b\[2m)? {2}1\d{3} ms/,
    'then replaced by the final line',
  );
});

terminal('a confirmed force on a terminal prints the question and its answer, no cursor control', async () => {
  assert.is(runCli(['migrate'], { cwd: tty.cwd, env: { DATABASE_URL: tty.db.url } }).code, 0);
  // The answer arrives once the prompt is up; NO_COLOR keeps kleur's colours out of the comparison.
  const command = `sleep 1.5; printf 'y\\r'`;
  const force = `${process.execPath} ${CLI} force 1`;
  const r = spawnSync('bash', ['-c', `(${command}) | script -qec ${JSON.stringify(force)} /dev/null`], {
    cwd: tty.cwd,
    env: withoutColour({ ...process.env, DATABASE_URL: tty.db.url, TERM: 'xterm' }),
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.not.match(r.stdout, /\x1b/, 'no escape sequences');
  assert.match(r.stdout, /^Make the ledger say version 1: .*\? \[y\/N\] y\r*\n/);
  assert.match(r.stdout, /now says version 1 /);
});

/** NO_COLOR set, and FORCE_COLOR (which the test runner sets) removed, since it overrides NO_COLOR. */
function withoutColour(env) {
  const { FORCE_COLOR: _, ...rest } = env;
  return { ...rest, NO_COLOR: '1' };
}

terminal.run();

// --version and --help as a user reads them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { CLI, makeProject, removeProject, ROOT, runCli } from './helpers.mjs';

const test = suite('--version and --help');

test('--version prints the package version alone and exits 0', () => {
  const r = runCli(['--version'], { cwd: ROOT });
  assert.is(r.code, 0, r.output);
  assert.is(r.stdout, `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
});

/** The help text with its wrapping undone: what a reader reads, whatever the width. */
const unwrapped = (text) => text.replace(/\s+/g, ' ');

test('--help piped is wrapped at 80 columns, never inside a word', () => {
  const r = runCli(['--help'], { cwd: ROOT });
  assert.is(r.code, 0, r.output);
  const lines = r.stdout.split('\n');
  assert.equal(
    lines.filter((l) => l.length > 80),
    [],
  );
  assert.match(
    unwrapped(r.stdout),
    'tidemark status list every version: applied, pending, out of order, not in this release, changed',
  );
  assert.match(unwrapped(r.stdout), '--table ledger table (default: MIGRATIONS_TABLE or schema_version)');
});

test('--help on a terminal fits its width, never inside a word', () => {
  // script(1) gives the CLI a terminal; stty sets its width to 60 columns.
  const command = `stty cols 60; node ${JSON.stringify(CLI)} migrate --help`;
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { cwd: ROOT, encoding: 'utf8' });
  assert.is(r.status, 0, r.stdout);
  const lines = r.stdout.replace(/\r/g, '').split('\n');
  assert.equal(
    lines.filter((l) => l.length > 60),
    [],
  );
  assert.match(unwrapped(r.stdout), "seconds to wait for another run's migration lock (default 60)");
});

test('output piped into a reader that stops early (| head -1) ends quietly with exit 0, no EPIPE stack', () => {
  const files = {};
  for (let v = 1; v <= 3000; v++) {
    files[`${v}_t${v}.sql`] = `create table t${v} (a integer);\n`;
    files[`${v}_t${v}_rollback.sql`] = `drop table t${v};\n`;
  }
  const cwd = makeProject(files);
  try {
    // 3,000 status lines are far more than a pipe holds, so the writes go on after head has gone.
    const command = `set -o pipefail; node ${JSON.stringify(CLI)} status --url sqlite:data/app.db | head -1`;
    const r = spawnSync('bash', ['-c', command], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, 'sqlite:data/app.db: version 0\n');
    assert.not.match(r.stderr, 'EPIPE');
  } finally {
    removeProject(cwd);
  }
});

test.run();

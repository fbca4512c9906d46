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

test('--help never splits a word across lines', () => {
  const r = runCli(['--help'], { cwd: ROOT });
  assert.is(r.code, 0, r.output);
  assert.match(
    r.stdout,
    /tidemark status +list every version: applied, pending, out of order, not in this release, changed\n/,
  );
  assert.match(r.stdout, /--table +ledger table \(default: MIGRATIONS_TABLE or schema_version\)/);
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

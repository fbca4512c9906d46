// --version and --help as a user reads them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ROOT, runCli } from './helpers.mjs';

const test = suite('--version and --help');

test('--version prints the package version alone and exits 0', () => {
  const r = runCli(['--version'], { cwd: ROOT });
  assert.is(r.code, 0, r.output);
  assert.is(r.stdout, `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
});

test('--help never splits a word across lines', () => {
  const r = runCli(['--help'], { cwd: ROOT });
  assert.is(r.code, 0, r.output);
  assert.match(r.stdout, /tidemark status +list every version: applied, pending, out of order, not in this release, changed\n/);
  assert.match(r.stdout, /--table +ledger table \(default: MIGRATIONS_TABLE or schema_version\)/);
});

test.run();

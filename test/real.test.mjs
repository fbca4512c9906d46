// Real projects' migrations, converted by `tidemark import` and pinned in test/fixtures/real/<project>/
// (NOTES.md there names the source, commit, licence and known defects). Each is migrated from empty on
// its dialects, verified (its known defects are the expected findings), rolled back as far as its downs
// allow, brought forward again by its `tidemark sql` script run through psql / sqlite3 (status and verify
// as after migrate), rolled back and migrated again. Without psql, migrate stands in for the hand run. openmeter's 269 run in full only with TIDEMARK_REAL=full (npm run test:real).
import { cpSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dispose, HAND_SHELL, project, ROOT, runByHand } from './helpers.mjs';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'real');
const full = process.env.TIDEMARK_REAL === 'full';
const test = suite('real migration sets');

/** The versions of a fixture's files that run on a dialect (its own variants and the portable files). */
function versionsFor(files, dialect) {
  const forward = files.filter(
    (f) =>
      !/_rollback(\.(postgres|sqlite))?\.sql$/.test(f) &&
      (!/\.(postgres|sqlite)\.sql$/.test(f) || f.endsWith(`.${dialect}.sql`)),
  );
  return [...new Set(forward.map((f) => Number(/^\d+/.exec(f)[0])))].sort((a, b) => a - b);
}

for (const name of readdirSync(FIXTURES)) {
  const expected = JSON.parse(readFileSync(join(FIXTURES, name, 'expected.json'), 'utf8'));
  const below = full ? Infinity : (expected.quickBelow ?? Infinity);
  const files = readdirSync(join(FIXTURES, name, 'sql')).filter((f) => Number(/^\d+/.exec(f)[0]) < below);
  for (const dialect of expected.dialects) {
    test(`${name} on ${dialect}: migrate, verify, rollback as far as its downs allow, migrate again`, async () => {
      const p = await project(dialect, {});
      try {
        for (const f of files) cpSync(join(FIXTURES, name, 'sql', f), join(p.cwd, 'sql', f));
        const versions = versionsFor(files, dialect);
        const newest = versions.at(-1);
        const noRollback = expected.noRollback[dialect].filter((v) => v < below);

        const up = p.cli('migrate', '--quiet');
        assert.is(up.code, 0, up.output);
        assert.match(up.output, `${versions.length} applied`);
        assertVerify(p, noRollback);

        // Down to the newest version that has no rollback (its own rollback is refused), or to empty.
        const floor = noRollback.at(-1);
        const rollback =
          floor === undefined ? ['rollback', '--all', '--quiet'] : ['rollback', '--to', String(floor), '--quiet'];
        const down = p.cli(...rollback);
        assert.is(down.code, 0, down.output);
        const undone = versions.filter((v) => floor === undefined || v > floor).length;
        assert.match(down.output, undone > 0 ? `${undone} rolled back in` : `(at version ${floor})`);
        assert.match(down.output, undone > 0 ? `now at version ${floor ?? 0}` : 'nothing to roll back');

        // What a DBA does instead: `tidemark sql` run by hand leaves status and verify as migrate does.
        const script = p.cli('sql');
        assert.is(script.code, 0, script.output);
        // Without psql on this machine, migrate stands in for the hand run (as sql.test.mjs skips it).
        if (dialect === 'postgres' && !HAND_SHELL.postgres) assert.is(p.cli('migrate', '--quiet').code, 0);
        else {
          const byHand = await runByHand(p.db, script.stdout);
          assert.is(byHand.code, 0, byHand.output);
        }
        const status = JSON.parse(p.cli('status', '--json').stdout);
        assert.equal(
          status.entries.filter((e) => e.state !== 'applied'),
          [],
        );
        assertVerify(p, noRollback);

        assert.is(p.cli(...rollback).code, 0);
        const again = p.cli('migrate', '--quiet');
        assert.is(again.code, 0, again.output);
        assert.match(again.output, undone > 0 ? `now at version ${newest}` : `is up to date at version ${newest}`);
      } finally {
        await dispose(p);
      }
    });
  }
}

/** verify finds exactly the known defects: the migrations without a rollback file, nothing else (no drift). */
function assertVerify(p, noRollback) {
  const verify = p.cli('verify', '--json');
  const report = JSON.parse(verify.stdout);
  assert.equal(
    report.findings.map((f) => [f.check, f.versions]),
    noRollback.length ? [['rollback-file', noRollback]] : [],
    verify.output,
  );
  assert.is(verify.code, noRollback.length ? 3 : 0);
  assert.is.not(report.reference.source, 'none');
}

test.run();

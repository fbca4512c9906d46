// migrate --sync: the post-deploy step that goes both ways. Deploying an older release (a revert)
// undoes the versions it has no files for, from the rollbacks stored in the ledger, then applies
// what is pending; anything it cannot undo exactly is refused before anything changes.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DIALECTS, dispose, ledgerVersions, project, removeSql, writeSql } from './helpers.mjs';

const RELEASE_1 = {
  '001_notes.sql': 'create table notes (id integer primary key, body text);\n',
  '001_notes_rollback.sql': 'drop table notes;\n',
};
const RELEASE_2 = {
  ...RELEASE_1,
  '002_tags.sql': 'create table tags (note_id integer, tag text);\n',
  '002_tags_rollback.sql': 'drop table tags;\n',
  '003_fees.sql': 'create table fees (amount integer);\n',
  '003_fees_rollback.sql': 'drop table fees;\n',
};

/** Takes the project's folder back to release 1's files, as `pm2 deploy production revert 1` does. */
function revertToRelease1(p) {
  for (const name of Object.keys(RELEASE_2)) if (!(name in RELEASE_1)) removeSql(p.cwd, name);
}

const appTables = async (db) => (await db.tables()).filter((t) => !t.startsWith('schema_version'));

for (const dialect of DIALECTS) {
  const test = suite(`migrate --sync [${dialect}]`);
  const TRUE = dialect === 'postgres' ? 'true' : '1';

  test('after a revert it undoes the versions the release has no files for, newest first, from the stored rollbacks', async () => {
    const p = await project(dialect, RELEASE_2);
    try {
      assert.is(p.cli('migrate').code, 0);
      revertToRelease1(p);
      const dry = p.cli('migrate', '--sync', '--dry-run');
      assert.is(dry.code, 0, dry.output);
      assert.match(dry.stdout, /^dry run: 2 would be rolled back, ending at version 1; nothing was changed$/m);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3], 'a dry run changes nothing');

      const r = p.cli('migrate', '--sync');
      assert.is(r.code, 0, r.output);
      assert.match(r.stdout, /^↓ 0*3 fees .*\n(.*\n)?↓ 0*2 tags /m);
      assert.match(
        r.stderr,
        'notice: 003 fees: its rollback file is not in this release; running the rollback stored in the ledger when it was applied',
      );
      assert.match(r.stdout, /^2 rolled back in .+, now at version 1$/m);
      assert.match(r.stdout, /is up to date at version 1$/m);
      assert.not.match(r.stderr, 'warning:', 'nothing is left ahead of the code');
      assert.equal(await ledgerVersions(p.db), [1]);
      assert.equal(await appTables(p.db), ['notes']);

      const again = p.cli('migrate', '--sync');
      assert.is(again.code, 0, again.output);
      assert.not.match(again.stdout, 'rolled back', 'a second run (another host) changes nothing');
      assert.equal(await ledgerVersions(p.db), [1]);
    } finally {
      await dispose(p);
    }
  });

  test('going forward it is migrate: pending versions are applied', async () => {
    const p = await project(dialect, RELEASE_2);
    try {
      const r = p.cli('migrate', '--sync');
      assert.is(r.code, 0, r.output);
      assert.match(r.stdout, /^3 applied in .+, now at version 3$/m);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3]);
    } finally {
      await dispose(p);
    }
  });

  test('refused before anything changes: no stored rollback, a dirty version, files missing below the newest', async () => {
    const p = await project(dialect, RELEASE_2);
    try {
      assert.is(p.cli('migrate').code, 0);
      revertToRelease1(p);
      await p.db.query('update schema_version set rollback_sql = null, rollback_checksum = null where version = 2');
      const unstored = p.cli('migrate', '--sync');
      assert.is(unstored.code, 2, unstored.output);
      assert.match(
        unstored.stderr,
        'version 002 (tags) is applied, but this release has no file for it and the ledger stored no rollback for it',
      );
      assert.equal(await ledgerVersions(p.db), [1, 2, 3], 'version 3 was not undone either');
      assert.equal(await appTables(p.db), ['fees', 'notes', 'tags']);

      await p.db.query(`update schema_version set dirty = ${TRUE} where version = 3`);
      const dirty = p.cli('migrate', '--sync');
      assert.is(dirty.code, 2, dirty.output);
      assert.match(dirty.stderr, /version 003 .*dirty|dirty.*version 003/);
      assert.equal(await ledgerVersions(p.db), [1, 2, 3]);
      await p.db.query(`update schema_version set dirty = ${dialect === 'postgres' ? 'false' : '0'} where version = 3`);

      writeSql(p.cwd, '004_later.sql', 'create table later (a integer);\n');
      writeSql(p.cwd, '004_later_rollback.sql', 'drop table later;\n');
      const hole = p.cli('migrate', '--sync');
      assert.is(hole.code, 2, hole.output);
      assert.match(
        hole.stderr,
        'migrate --sync: this release has no file for the applied versions 002 (tags), 003 (fees), below its newest file 4; nothing was changed',
      );
      assert.equal(await ledgerVersions(p.db), [1, 2, 3]);
      assert.equal(await appTables(p.db), ['fees', 'notes', 'tags']);
    } finally {
      await dispose(p);
    }
  });

  if (dialect === 'sqlite') {
    test('--sync --backup backs up before the rollback, which may drop data', async () => {
      const p = await project(dialect, RELEASE_2);
      try {
        assert.is(p.cli('migrate').code, 0);
        revertToRelease1(p);
        const r = p.cli('migrate', '--sync', '--backup');
        assert.is(r.code, 0, r.output);
        assert.ok(
          r.stdout.indexOf('backup of') >= 0 && r.stdout.indexOf('backup of') < r.stdout.indexOf('↓ '),
          r.stdout,
        );
        const files = readdirSync(join(p.cwd, 'backups'));
        assert.is(files.length, 1);
        assert.match(files[0], /-v3-\d{8}T\d{9}Z\.sqlite$/);
        assert.ok(existsSync(join(p.cwd, 'backups', files[0])));
      } finally {
        await dispose(p);
      }
    });
  }

  test.run();
}

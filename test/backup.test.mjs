// Backups before a deploy and restores after a rollback that lost data, on both dialects, as a
// user runs them: the CLI as a child process, real files, a real server.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { DIALECTS, dispose, ledgerVersions, project } from './helpers.mjs';

const FILES = {
  '001_notes.sql':
    "create table notes (id integer primary key, body text);\ninsert into notes values (1, 'kept by the backup');\n",
  '001_notes_rollback.sql': 'drop table notes;\n',
};
const SECOND = {
  '002_tags.sql': 'create table tags (note_id integer, tag text);\n',
  '002_tags_rollback.sql': 'drop table tags;\n',
};

/** The `backup` event of a --json run. */
const backupEvent = (r) => JSON.parse(r.stdout.split('\n').find((line) => line.includes('"type":"backup"')) ?? 'null');

const backups = (p) => (existsSync(join(p.cwd, 'backups')) ? readdirSync(join(p.cwd, 'backups')).sort() : []);

/** pg_dump older than the server refuses to dump it: then the error must say so (exit 2). */
async function pgDumpTooOld(db) {
  const [{ major }] = await db.query(`select current_setting('server_version_num')::int / 10000 as major`);
  const tool = spawnSync('pg_dump', ['--version'], { encoding: 'utf8' });
  if (tool.error) return 'missing';
  return Number(/(\d+)\.\d+/.exec(tool.stdout)?.[1]) < major ? 'old' : null;
}

for (const dialect of DIALECTS) {
  const test = suite(`backup and restore [${dialect}]`);
  const ext = dialect === 'sqlite' ? '.sqlite' : '.dump';

  test("migrate --backup backs up before applying, a no-op run takes none, and restore brings back a lossy rollback's rows", async () => {
    const p = await project(dialect, FILES);
    try {
      const unusable = dialect === 'postgres' ? await pgDumpTooOld(p.db) : null;
      const first = p.cli('migrate', '--backup');
      if (unusable) {
        assert.is(first.code, 2, first.output);
        assert.match(
          first.stderr,
          unusable === 'old' ? /pg_dump failed: .*version mismatch/ : /pg_dump is not installed/,
        );
        assert.equal(await ledgerVersions(p.db), [], 'nothing was applied without the backup');
        return;
      }
      assert.is(first.code, 0, first.output);
      const [v0] = backups(p);
      assert.ok(v0?.endsWith(ext), backups(p).join(', '));
      assert.match(first.stdout, new RegExp(`^backup of .+ at version 0: backups/${v0.replace('.', '\\.')} \\(`, 'm'));
      assert.ok(
        first.stdout.indexOf('backup of') < first.stdout.indexOf('↑ 001'),
        'the backup comes before the first migration',
      );

      const noop = p.cli('migrate', '--backup');
      assert.is(noop.code, 0, noop.output);
      assert.equal(backups(p).length, 1, 'a run with nothing pending takes no backup');

      const taken = p.cli('backup', '--json');
      assert.is(taken.code, 0, taken.output);
      const result = backupEvent(taken);
      assert.is(result.version, 1);
      assert.ok(existsSync(join(p.cwd, result.file)), result.file);
      assert.match(
        readFileSync(join(p.cwd, 'logs', 'migration.log'), 'utf8'),
        new RegExp(` backup 1 - \\d+ms ok ${result.file.replace('.', '\\.')}`),
      );

      const lossy = p.cli('rollback');
      assert.is(lossy.code, 0, lossy.output);
      assert.equal(await p.db.tables().then((t) => t.filter((n) => n === 'notes')), []);

      const refused = p.cli('restore', result.file);
      assert.is(refused.code, 2, refused.output);
      assert.match(refused.stderr, 'error: restore replaces the database; refusing to do it without confirmation');
      assert.match(refused.stderr, `tidemark restore ${result.file} --yes`);
      assert.equal(await ledgerVersions(p.db), [], 'nothing was restored');

      const restored = p.cli('restore', result.file, '--yes');
      assert.is(restored.code, 0, restored.output);
      assert.match(
        restored.stdout,
        new RegExp(`^restored .+ from ${result.file.replace('.', '\\.')} in .+: now at version 1$`, 'm'),
      );
      assert.equal(await ledgerVersions(p.db), [1]);
      assert.equal(await p.db.query('select id, body from notes'), [{ id: 1, body: 'kept by the backup' }]);
      assert.is(p.cli('verify').code, 0, 'the restored database is what the files say at version 1');
    } finally {
      await dispose(p);
    }
  });

  test('--keep N keeps the newest N backups of the database; a damaged backup is refused and nothing changes', async () => {
    const p = await project(dialect, { ...FILES, ...SECOND });
    try {
      if (dialect === 'postgres' && (await pgDumpTooOld(p.db))) return void assert.is(p.cli('backup').code, 2);
      assert.is(p.cli('migrate', '1').code, 0);
      const taken = [];
      for (let i = 0; i < 3; i++) {
        const r = p.cli('backup', '--keep', '2', '--json');
        assert.is(r.code, 0, r.output);
        taken.push(backupEvent(r).file.replace('backups/', ''));
      }
      assert.equal(backups(p), taken.slice(1).sort());

      const damaged = join(p.cwd, 'backups', `damaged${ext}`);
      writeFileSync(damaged, 'not a backup at all\n'.repeat(100));
      assert.is(p.cli('migrate').code, 0);
      const r = p.cli('restore', `backups/damaged${ext}`, '--yes');
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, /^error: .*damaged/m);
      assert.equal(await ledgerVersions(p.db), [1, 2], 'nothing was restored');
    } finally {
      await dispose(p);
    }
  });

  test.run();
}

// A no-op migrate (every deploy) compares the files with the ledger in one value, the ledger's
// fingerprint, instead of reading every row. Whatever differs between the two must still end in
// what the full plan says: an edited file refused, a missing checksum recorded, a version the
// release lacks warned about, a dirty row refused.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BASE, DIALECTS, dispose, project, writeSql } from './helpers.mjs';

const FILES = { ...BASE, '002_b.sql': 'CREATE TABLE b (a INTEGER);\n', '002_b_rollback.sql': 'DROP TABLE b;\n' };

for (const dialect of DIALECTS) {
  const test = suite(`no-op migrate: the ledger's fingerprint, and every difference it must not hide [${dialect}]`);
  const TRUE = dialect === 'postgres' ? 'true' : '1';

  /** A project with both files applied; `change` then alters the files or the ledger. */
  async function afterChange(change) {
    const p = await project(dialect, FILES);
    const first = p.cli('migrate');
    assert.is(first.code, 0, first.output);
    await change(p);
    return p;
  }

  test('nothing changed: up to date at the last version, nothing written', async () => {
    const p = await afterChange(async () => {});
    try {
      const r = p.cli('migrate');
      assert.is(r.code, 0, r.output);
      assert.match(r.stdout, 'up to date at version 2');
      assert.is(r.stderr, '');
      const history = await p.db.query('select count(*) as n from schema_version_history');
      assert.is(Number(history[0].n), 2, 'the no-op added no history row');
    } finally {
      await dispose(p);
    }
  });

  test('an applied rollback file edited: refused, naming it', async () => {
    const p = await afterChange(async (p) => writeSql(p.cwd, '002_b_rollback.sql', 'DROP TABLE b; -- edited\n'));
    try {
      const r = p.cli('migrate');
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, 'sql/002_b_rollback.sql: checksum differs');
    } finally {
      await dispose(p);
    }
  });

  test('a row without its checksum: the checksum is recorded', async () => {
    const p = await afterChange((p) => p.db.query('update schema_version set checksum = null where version = 1'));
    try {
      const r = p.cli('migrate');
      assert.is(r.code, 0, r.output);
      const [row] = await p.db.query('select checksum from schema_version where version = 1');
      assert.match(String(row.checksum), /^[0-9a-f]{64}$/);
      assert.match(p.cli('migrate').stdout, 'up to date at version 2');
    } finally {
      await dispose(p);
    }
  });

  test('a version the release has no file for: the warning', async () => {
    const p = await afterChange(async (p) => {
      const copy = 'migration_name, checksum, rollback_checksum, dirty';
      await p.db.query(`insert into schema_version (version, ${copy}) select 3, ${copy} from schema_version
        where version = 2`);
    });
    try {
      const r = p.cli('migrate');
      assert.is(r.code, 0, r.output);
      assert.match(r.stderr, 'version 3 (b) is applied but not in this release');
    } finally {
      await dispose(p);
    }
  });

  test('a dirty row: refused with its resolution', async () => {
    const p = await afterChange((p) => p.db.query(`update schema_version set dirty = ${TRUE} where version = 2`));
    try {
      const r = p.cli('migrate');
      assert.is(r.code, 2, r.output);
      assert.match(r.stderr, 'version 002 (b) is dirty');
    } finally {
      await dispose(p);
    }
  });

  test.run();
}

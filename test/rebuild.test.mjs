// SQLite table rebuilds with -- tidemark:foreign-keys-off: the 12-step rebuild of a referenced table
// keeps every row of its child tables; a rebuild that breaks a reference is caught by
// foreign_key_check before commit and rolled back. PostgreSQL refuses the directive.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { dispose, ledgerVersions, project } from './helpers.mjs';

const SCHEMA = {
  '001_shop.sql': `CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE trades (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE, amount REAL);
CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id), body TEXT);
INSERT INTO users VALUES (1, 'ann'), (2, 'bob'), (3, 'cy');
INSERT INTO trades VALUES (10, 1, 5.0), (11, 1, 6.0), (12, 2, 7.0), (13, 3, 8.0);
INSERT INTO notes VALUES (20, 2, 'hi'), (21, 3, 'yo');
`,
  '001_shop_rollback.sql': 'DROP TABLE notes;\nDROP TABLE trades;\nDROP TABLE users;\n',
  '002_rebuild_users_rollback.sqlite.sql': 'SELECT 1;\n',
};

/** The 12-step rebuild (sqlite.org/lang_altertable.html) of users, adding a column with a CHECK; `copy` picks the rows kept. */
function rebuild(directive, copy = 'SELECT id, name FROM users') {
  return `${directive ? '-- tidemark:foreign-keys-off\n' : ''}CREATE TABLE users_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT CHECK (email LIKE '%@%'));
INSERT INTO users_new (id, name) ${copy};
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE INDEX users_name ON users (name);
`;
}

async function counts(db) {
  const count = async (table) => (await db.query(`select count(*) as n from ${table}`))[0].n;
  return { users: await count('users'), trades: await count('trades'), notes: await count('notes') };
}

const sqlite = suite('SQLite: -- tidemark:foreign-keys-off');

sqlite('the 12-step rebuild of a referenced table loses no row of its child tables', async () => {
  const p = await project('sqlite', { ...SCHEMA, '002_rebuild_users.sqlite.sql': rebuild(true) });
  try {
    const r = p.cli('migrate');
    assert.is(r.code, 0, r.output);
    assert.equal(await ledgerVersions(p.db), [1, 2]);
    assert.equal(await counts(p.db), { users: 3, trades: 4, notes: 2 });
    assert.equal(await p.db.query('pragma foreign_key_check'), []);
    const [{ sql }] = await p.db.query("select sql from sqlite_schema where name = 'trades'");
    assert.match(sql, 'REFERENCES users (id)', 'the child still references the rebuilt table');
    assert.match((await p.db.query("select sql from sqlite_schema where name = 'users'"))[0].sql, 'email TEXT');
  } finally {
    await dispose(p);
  }
});

sqlite(
  'a rebuild that breaks a reference is rolled back: exit 1 naming the table and rowid, nothing changed',
  async () => {
    const p = await project('sqlite', {
      ...SCHEMA,
      '002_rebuild_users.sqlite.sql': rebuild(true, 'SELECT id, name FROM users WHERE id < 3'),
    });
    try {
      const r = p.cli('migrate');
      assert.is(r.code, 1, r.output);
      assert.match(r.stderr, 'sql/002_rebuild_users.sqlite.sql: 2 row(s) reference a missing row');
      assert.match(r.stderr, 'trades rowid 13 -> users');
      assert.match(r.stderr, 'notes rowid 21 -> users');
      assert.match(r.stderr, 'rolled back, nothing was changed');
      assert.equal(await ledgerVersions(p.db), [1]);
      assert.equal(await counts(p.db), { users: 3, trades: 4, notes: 2 });
      assert.equal(
        (await p.db.tables()).filter((t) => t === 'users_new'),
        [],
      );
      assert.not.match((await p.db.query("select sql from sqlite_schema where name = 'users'"))[0].sql, 'email');
    } finally {
      await dispose(p);
    }
  },
);

sqlite('without the directive the same broken rebuild commits, leaving rows that reference nothing', async () => {
  const p = await project('sqlite', {
    ...SCHEMA,
    '002_rebuild_users.sqlite.sql': rebuild(false, 'SELECT id, name FROM users WHERE id < 3'),
  });
  try {
    assert.is(p.cli('migrate').code, 0);
    assert.is((await p.db.query('pragma foreign_key_check')).length, 2);
  } finally {
    await dispose(p);
  }
});

sqlite('it cannot go with no-transaction or --single-transaction: exit 2 before anything runs', async () => {
  const both = await project('sqlite', {
    ...SCHEMA,
    '002_rebuild_users.sqlite.sql': `-- tidemark:no-transaction\n${rebuild(true)}`,
  });
  try {
    const r = both.cli('migrate');
    assert.is(r.code, 2, r.output);
    assert.match(r.stderr, 'needs the transaction that -- tidemark:no-transaction takes away');
    assert.equal(await ledgerVersions(both.db), []);
  } finally {
    await dispose(both);
  }
  const single = await project('sqlite', { ...SCHEMA, '002_rebuild_users.sqlite.sql': rebuild(true) });
  try {
    const r = single.cli('migrate', '--single-transaction');
    assert.is(r.code, 2, r.output);
    assert.match(r.stderr, 'is marked -- tidemark:foreign-keys-off and cannot run inside --single-transaction');
    assert.equal(await ledgerVersions(single.db), []);
  } finally {
    await dispose(single);
  }
});

sqlite.run();

const postgres = suite('PostgreSQL: -- tidemark:foreign-keys-off');

postgres('is refused with exit 2 naming the file and the SQLite variant to write', async () => {
  const files = {
    '001_base.sql': 'CREATE TABLE base (a INTEGER);\n',
    '001_base_rollback.sql': 'DROP TABLE base;\n',
    '002_rebuild.sql': '-- tidemark:foreign-keys-off\nALTER TABLE base ADD COLUMN b INTEGER;\n',
    '002_rebuild_rollback.sql': 'ALTER TABLE base DROP COLUMN b;\n',
  };
  const p = await project('postgres', files);
  try {
    const r = p.cli('migrate');
    assert.is(r.code, 2, r.output);
    assert.match(r.stderr, 'sql/002_rebuild.sql: -- tidemark:foreign-keys-off is for SQLite table rebuilds');
    assert.match(r.stderr, 'sql/002_rebuild.sqlite.sql');
    assert.equal(await ledgerVersions(p.db), []);
    assert.equal(await p.db.tables(), []);
  } finally {
    await dispose(p);
  }
});

postgres.run();

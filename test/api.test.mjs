// The public API as an application uses it: createMigrator with progress events, and
// assertSchemaVersion refusing to start on a schema the release was not written for.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { assertSchemaVersion, createMigrator, ExitCode, SchemaVersionError } from '../dist/index.js';
import { DIALECTS, EXAMPLE_VERSIONS, ledgerVersions, perTestDatabase, writeSql } from './helpers.mjs';

for (const dialect of DIALECTS) {
  const test = suite(`api [${dialect}]`);
  const ctx = perTestDatabase(test, dialect);
  const settings = () => ({ cwd: ctx.cwd, url: ctx.db.url, log: false });
  const versions = EXAMPLE_VERSIONS[dialect];
  const top = versions.at(-1);
  // The API's versions are bigints: exact up to the ledger's 9223372036854775807.
  const big = (v) => BigInt(v);

  test('createMigrator migrates, reports progress through events, and rolls back', async () => {
    const migrator = createMigrator(settings());
    const applied = [];
    const all = [];
    migrator.events.on('applied', (e) => applied.push(`${e.versionText} ${e.name}`));
    migrator.events.on('event', (e) => all.push(e.type));
    const result = await migrator.migrate();
    assert.equal(result, { applied: versions.length, version: big(top) });
    assert.equal(
      applied,
      ['001 create_users', '002 user_strategies', '003 create_trades', '004 price_cache'].slice(0, versions.length),
    );
    assert.equal(all[0], 'start');
    assert.equal(all.at(-1), 'summary');
    assert.equal(await ledgerVersions(ctx.db), versions);

    const report = await migrator.verify();
    assert.ok(report.ok, JSON.stringify(report.findings));
    assert.is(report.version, big(top));

    const status = await migrator.status();
    assert.equal(
      status.entries.map((e) => e.state),
      versions.map(() => 'applied'),
    );
    assert.equal(await migrator.rollback({ steps: 2 }), { reverted: 2, version: big(versions.at(-3)) });
    assert.is(await migrator.version(), big(versions.at(-3)));
  });

  test('a failing migration rejects with a MigrationError carrying file, line and exit code 1', async () => {
    writeSql(ctx.cwd, '009_broken.sql', 'SELECT 1;\nSELEC 2;\n');
    writeSql(ctx.cwd, '009_broken_rollback.sql', 'SELECT 1;\n');
    const failed = [];
    const migrator = createMigrator(settings(), (e) => e.type === 'failed' && failed.push(e.version));
    const error = await migrator.migrate().then(
      () => null,
      (e) => e,
    );
    assert.ok(error, 'migrate rejected');
    assert.is(error.exitCode, ExitCode.migrationFailed);
    assert.is(error.details.file, 'sql/009_broken.sql');
    assert.is(error.details.line, 2);
    assert.equal(failed, [9n]);
    assert.equal(await ledgerVersions(ctx.db), versions);
  });

  test('assertSchemaVersion resolves at or ahead of the expected version and refuses behind, lacking, dirty, or ahead when told', async () => {
    const behind = await assertSchemaVersion(settings()).catch((e) => e);
    assert.instance(behind, SchemaVersionError, `behind: ${behind?.stack ?? String(behind)}`);
    assert.is(behind.exitCode, 3);
    assert.match(behind.message, new RegExp(`is at version 0, but this release expects version ${top}`));
    assert.match(behind.details.hint, /npm run migrate/);
    assert.equal(await ctx.db.tables(), [], 'it never migrates');

    await createMigrator(settings()).migrate();
    assert.is(await assertSchemaVersion(settings()), big(top));

    // Ahead (old code after a revert, or during a rolling reload) starts by default; allowAhead: false refuses.
    // The expected version may be a bigint, a safe integer or a string of digits.
    assert.is(await assertSchemaVersion({ ...settings(), expected: 2 }), big(top));
    assert.is(await assertSchemaVersion({ ...settings(), expected: '2' }), big(top));
    assert.is(await assertSchemaVersion({ ...settings(), expected: 2n }), big(top));
    const rounded = await assertSchemaVersion({ ...settings(), expected: 2 ** 53 + 2 }).catch((e) => e);
    assert.match(
      rounded.message,
      /expected 9007199254740994 is not a whole number a JavaScript number can hold exactly/,
    );
    assert.match(rounded.details.hint, /bigint \(9007199254740994n\) or as a string of digits/);
    const ahead = await assertSchemaVersion({ ...settings(), expected: 2, allowAhead: false }).catch((e) => e);
    assert.instance(ahead, SchemaVersionError, `ahead: ${ahead?.stack ?? String(ahead)}`);
    assert.match(ahead.message, new RegExp(`is at version ${top}, ahead of this release, which expects version 2`));

    // A version this release needs, missing below the newest applied one (out of order), is behind.
    await ctx.db.query('delete from schema_version where version = 2');
    const lacking = await assertSchemaVersion(settings()).catch((e) => e);
    assert.instance(lacking, SchemaVersionError, `lacking: ${lacking?.stack ?? String(lacking)}`);
    assert.match(lacking.message, new RegExp(`lacks version 002, but this release expects version ${top}`));
    await ctx.db.query(`insert into schema_version (version, migration_name) values (2, 'restored')`);

    await ctx.db.query(
      `update schema_version set dirty = ${dialect === 'postgres' ? 'true' : '1'} where version = ${top}`,
    );
    const dirty = await assertSchemaVersion(settings()).catch((e) => e);
    assert.instance(dirty, SchemaVersionError, `dirty: ${dirty?.stack ?? String(dirty)}`);
    assert.match(dirty.message, new RegExp(`version 00${top} \\(\\w+\\) is dirty`));
  });

  test.run();
}

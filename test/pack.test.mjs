// A package that installs: `npm pack`, then install the tarball into a new project with its own sql/
// folder and run `npx tidemark` and npm scripts there, on SQLite and PostgreSQL, as a user would.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { freshDatabase, ledgerVersions, ROOT, sqliteAt } from './helpers.mjs';

const test = suite('npm pack, install the tarball, run it');

/** A source build of sqlite3 on a busy 2-core machine can take minutes. */
const INSTALL_TIMEOUT_MS = 10 * 60_000;

const work = mkdtempSync(join(tmpdir(), 'tidemark-pack-'));
const project = join(work, 'app');
let tarball = null;
let installed = false;

/**
 * The environment of a user's shell: nothing of the `npm test` that runs this suite (npm_* would
 * point npm at this checkout), no database settings, no node_modules/.bin of this checkout.
 */
function userEnv(extra = {}) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) =>
        !['DATABASE_URL', 'TEST_DATABASE_URL', 'MIGRATIONS_DIR', 'MIGRATIONS_TABLE', 'PGPASSWORD'].includes(k) &&
        !/^npm_/i.test(k),
    ),
  );
  env.PATH = (env.PATH ?? '')
    .split(':')
    .filter((p) => !p.includes('node_modules/.bin'))
    .join(':');
  return { ...env, NO_COLOR: '1', ...extra };
}

function run(command, args, { cwd = project, env = {}, timeout = 120_000 } = {}) {
  const r = spawnSync(command, args, {
    cwd,
    env: userEnv(env),
    encoding: 'utf8',
    timeout,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) throw r.error;
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}\n${r.stderr}` };
}

/** npm's own noise on this machine (an unknown `nodedir` user config) is not the command's output. */
const withoutNpmWarnings = (text) =>
  text
    .split('\n')
    .filter((line) => !/^npm warn /i.test(line))
    .join('\n');

const MIGRATIONS = {
  '001_create_notes.sql': 'create table notes (\n  id integer primary key,\n  body text not null\n);\n',
  '001_create_notes_rollback.sql': 'drop table notes;\n',
  '002_add_tags.sql':
    "create table tags (\n  note_id integer not null references notes (id),\n  tag text not null\n);\ninsert into notes (id, body) values (1, 'hello');\n",
  '002_add_tags_rollback.sql': 'drop table tags;\ndelete from notes where id = 1;\n',
};

test.before(() => {
  // --ignore-scripts: `npm test` has just built dist/; "prepare" (tsc) must not rebuild it here.
  const r = run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT });
  assert.is(r.code, 0, r.output);
  const [info] = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')));
  tarball = join(work, info.filename);
  assert.ok(existsSync(tarball), `${tarball} was not written`);
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test('the tarball holds dist/, README.md, LICENSE and package.json, and nothing from test/, sql/, scripts/ or src/', () => {
  const r = run('tar', ['-tzf', tarball], { cwd: work });
  assert.is(r.code, 0, r.output);
  const files = r.stdout
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));
  for (const required of ['dist/cli.js', 'dist/index.js', 'dist/index.d.ts', 'README.md', 'LICENSE', 'package.json']) {
    assert.ok(files.includes(required), `${required} is missing from the tarball: ${files.join(', ')}`);
  }
  const stray = files.filter(
    (f) => /^(test|sql|scripts|src)\//.test(f) || /(^|\/)\.env$|\.tgz$|^tsconfig\.json$/.test(f),
  );
  assert.equal(stray, [], `files that must not ship: ${stray.join(', ')}`);
  assert.ok(
    files.every((f) => f.startsWith('dist/') || ['README.md', 'LICENSE', 'package.json'].includes(f)),
    files.join(', '),
  );
  const x = run('tar', ['-xzf', tarball, '-C', work, 'package/dist/cli.js', 'package/package.json'], { cwd: work });
  assert.is(x.code, 0, x.output);
  assert.ok(
    readFileSync(join(work, 'package', 'dist', 'cli.js'), 'utf8').startsWith('#!/usr/bin/env node\n'),
    'dist/cli.js starts with a node shebang',
  );
  const manifest = JSON.parse(readFileSync(join(work, 'package', 'package.json'), 'utf8'));
  assert.equal(manifest.bin, { tidemark: 'dist/cli.js' });
  assert.not.ok(
    ['preinstall', 'install', 'postinstall'].some((s) => manifest.scripts?.[s]),
    'tidemark needs no install script of its own',
  );
});

/**
 * sqlite3 has no prebuilt binary reachable from here, so its install script compiles SQLite (a
 * minute or more). When this checkout's node_modules has the same sqlite3 version built, that binary
 * is offered to its install script as a local prebuild (prebuild-install's documented
 * npm_config_sqlite3_local_prebuilds), so the install script still runs, just without the compile.
 * Without it, or for another version, the install compiles as usual.
 */
function localSqlitePrebuild() {
  const pkg = join(ROOT, 'node_modules', 'sqlite3');
  const binary = join(pkg, 'build', 'Release', 'node_sqlite3.node');
  if (!existsSync(binary)) return {};
  const { version } = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
  const glibc = Boolean(process.report?.getReport().header.glibcVersionRuntime);
  const dir = join(work, 'prebuilds');
  mkdirSync(dir, { recursive: true });
  for (const napi of [3, 6]) {
    const name = `sqlite3-v${version}-napi-v${napi}-${process.platform}${glibc ? '' : 'musl'}-${process.arch}.tar.gz`;
    const r = run('tar', ['-czf', join(dir, name), '-C', pkg, 'build/Release/node_sqlite3.node'], { cwd: work });
    if (r.code !== 0) return {};
  }
  return { npm_config_sqlite3_local_prebuilds: dir };
}

/** npm install from the npm cache alone when it has every package, else from the registry as well. */
function install(cwd, packages, env = {}) {
  const args = ['--no-audit', '--no-fund', ...packages];
  const r = run('npm', ['install', '--offline', ...args], { cwd, env, timeout: INSTALL_TIMEOUT_MS });
  if (r.code === 0) return { r, how: 'offline' };
  return {
    r: run('npm', ['install', '--prefer-offline', ...args], { cwd, env, timeout: INSTALL_TIMEOUT_MS }),
    how: 'prefer-offline',
  };
}

test('the tarball installs into a new project (npm install <tarball> postgres sqlite3)', () => {
  mkdirSync(join(project, 'sql'), { recursive: true });
  for (const [name, text] of Object.entries(MIGRATIONS)) writeFileSync(join(project, 'sql', name), text);
  writeFileSync(
    join(project, 'package.json'),
    `${JSON.stringify({ name: 'pack-test-app', version: '1.0.0', private: true, scripts: { migrate: 'tidemark migrate', 'migrate:status': 'tidemark status' } }, null, 2)}\n`,
  );
  const env = localSqlitePrebuild();
  const started = Date.now();
  // Both database clients: they are optional peer dependencies, and this app uses both.
  const { r, how } = install(project, [tarball, 'postgres', 'sqlite3'], env);
  assert.is(r.code, 0, r.output);
  process.stdout.write(
    `  (npm install ${how}${env.npm_config_sqlite3_local_prebuilds ? ', sqlite3 from the local prebuild' : ', sqlite3 built from source'}: ${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
  );
  const installedPackage = join(project, 'node_modules', 'tidemark');
  assert.ok(existsSync(join(installedPackage, 'dist', 'cli.js')));
  assert.ok(existsSync(join(project, 'node_modules', '.bin', 'tidemark')), 'node_modules/.bin/tidemark links the CLI');
  assert.equal(
    readdirSync(installedPackage).sort(),
    ['LICENSE', 'README.md', 'dist', 'package.json'],
    'installed as packed: prepare did not run',
  );
  const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8'));
  assert.ok(lock.packages['node_modules/tidemark'], 'tidemark is in the lockfile');
  installed = true;
});

/** Runs a command in the installed project; the commands below make sense only after the install. */
function inProject(command, args, env) {
  assert.ok(installed, 'the tarball did not install (see the test above)');
  const r = run(command, args, { env });
  return { ...r, stdout: withoutNpmWarnings(r.stdout), stderr: withoutNpmWarnings(r.stderr) };
}

test('on SQLite (DATABASE_URL=sqlite:data/app.db): npx tidemark migrate, npm run migrate, npm run migrate:status', async () => {
  const env = { DATABASE_URL: 'sqlite:data/app.db' };
  const first = inProject('npx', ['tidemark', 'migrate'], env);
  assert.is(first.code, 0, first.output);
  assert.match(first.stdout, /^migrate sqlite:data\/app\.db: 2 migrations$/m);
  assert.match(first.stdout, /^↑ 001 create_notes\s+\d+ ms$/m);
  assert.match(first.stdout, /^↑ 002 add_tags\s+\d+ ms$/m);
  assert.match(first.stdout, /^2 applied in .+, now at version 2$/m);
  const db = sqliteAt(join(project, 'data', 'app.db'));
  assert.equal(await ledgerVersions(db), [1, 2]);
  const rows = await db.query('select version, migration_name, checksum, dirty from schema_version order by version');
  assert.equal(
    rows.map((r) => [r.version, r.migration_name, r.checksum.length, r.dirty]),
    [
      [1, 'create_notes', 64, 0],
      [2, 'add_tags', 64, 0],
    ],
  );
  assert.equal(await db.query('select body from notes'), [{ body: 'hello' }]);

  const again = inProject('npm', ['run', 'migrate'], env);
  assert.is(again.code, 0, again.output);
  assert.match(again.stdout, /^> tidemark migrate$/m, 'npm runs the script through the installed bin');
  assert.match(again.stdout, /^sqlite:data\/app\.db is up to date at version 2$/m);

  const status = inProject('npm', ['run', '--silent', 'migrate:status'], env);
  assert.is(status.code, 0, status.output);
  assert.match(status.stdout, /^sqlite:data\/app\.db: version 2$/m);
  assert.match(status.stdout, /^001\s+create_notes\s+applied\b/m);
  assert.match(status.stdout, /^002\s+add_tags\s+applied\b/m);
  rmSync(join(project, 'data'), { recursive: true, force: true });
});

test('on PostgreSQL (a new database): npx tidemark migrate, npm run migrate, npm run migrate:status', async () => {
  const db = await freshDatabase('postgres');
  try {
    const env = { DATABASE_URL: db.url };
    const first = inProject('npx', ['tidemark', 'migrate'], env);
    assert.is(first.code, 0, first.output);
    assert.match(first.stdout, /^migrate postgres:\/\/.+: 2 migrations$/m);
    assert.match(first.stdout, /^↑ 001 create_notes\s+\d+ ms$/m);
    assert.match(first.stdout, /^↑ 002 add_tags\s+\d+ ms$/m);
    assert.match(first.stdout, /^2 applied in .+, now at version 2$/m);
    assert.equal(await ledgerVersions(db), [1, 2]);
    const rows = await db.query(
      'select version::int as version, migration_name, length(checksum) as checksum, dirty from schema_version order by version',
    );
    assert.equal(
      rows.map((r) => [r.version, r.migration_name, r.checksum, r.dirty]),
      [
        [1, 'create_notes', 64, false],
        [2, 'add_tags', 64, false],
      ],
    );
    assert.equal(
      (await db.tables()).filter((t) => !t.startsWith('schema_version')),
      ['notes', 'tags'],
    );
    assert.not.ok(existsSync(join(project, 'data')), 'nothing written for SQLite');

    const again = inProject('npm', ['run', 'migrate'], env);
    assert.is(again.code, 0, again.output);
    assert.match(again.stdout, /^> tidemark migrate$/m);
    assert.match(again.stdout, /^postgres:\/\/.+ is up to date at version 2$/m);

    const status = inProject('npm', ['run', '--silent', 'migrate:status'], env);
    assert.is(status.code, 0, status.output);
    assert.match(status.stdout, /^postgres:\/\/.+: version 2$/m);
    assert.match(status.stdout, /^001\s+create_notes\s+applied\b/m);
    assert.match(status.stdout, /^002\s+add_tags\s+applied\b/m);

    const back = inProject('npx', ['tidemark', 'rollback', '--all'], env);
    assert.is(back.code, 0, back.output);
    assert.match(back.stdout, /^2 rolled back in .+, now at version 0$/m);
    assert.equal(await ledgerVersions(db), []);
    assert.equal(
      (await db.tables()).filter((t) => !t.startsWith('schema_version')),
      [],
    );
  } finally {
    await db.close();
  }
});

test('a PostgreSQL-only app installs no native module; SQLite then names the package to install', async () => {
  assert.ok(tarball, 'npm pack did not run');
  const app = join(work, 'pg-only');
  mkdirSync(join(app, 'sql'), { recursive: true });
  for (const [name, text] of Object.entries(MIGRATIONS)) writeFileSync(join(app, 'sql', name), text);
  writeFileSync(join(app, 'package.json'), '{ "name": "pg-only-app", "version": "1.0.0", "private": true }\n');
  const { r } = install(app, [tarball, 'postgres']);
  assert.is(r.code, 0, r.output);
  assert.not.ok(existsSync(join(app, 'node_modules', 'sqlite3')), 'sqlite3 was installed');
  assert.not.ok(/node-gyp|prebuild-install/.test(r.output), r.output);

  const db = await freshDatabase('postgres');
  try {
    const up = run('npx', ['tidemark', 'migrate'], { cwd: app, env: { DATABASE_URL: db.url } });
    assert.is(up.code, 0, up.output);
    assert.equal(await ledgerVersions(db), [1, 2]);
  } finally {
    await db.close();
  }
  const lite = run('npx', ['tidemark', 'migrate'], { cwd: app, env: { DATABASE_URL: 'sqlite:data/app.db' } });
  assert.is(lite.code, 2, lite.output);
  assert.match(lite.stderr, 'error: SQLite needs the `sqlite3` package, which is not installed');
  assert.match(lite.stderr, 'run `npm install sqlite3` in the app');
  assert.not.ok(existsSync(join(app, 'data', 'app.db')), 'no database file was created');
});

test.run();

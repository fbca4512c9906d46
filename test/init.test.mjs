// `tidemark init` in an existing app, as a user runs it: the CLI as a child process, then the app's own npm scripts.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { CLI, ledgerVersions, ROOT, runCli, sqliteAt } from './helpers.mjs';

const test = suite('tidemark init');
let app;

const APP_PACKAGE =
  '{\n    "name": "shop",\n    "main": "server.js",\n    "scripts": {\n        "start": "node server.js"\n    }\n}\n';
const read = (path) => readFileSync(join(app, path), 'utf8');
const scriptsOf = () => JSON.parse(read('package.json')).scripts;

test.before.each(() => {
  app = mkdtempSync(join(tmpdir(), 'tidemark-app-'));
  writeFileSync(join(app, 'package.json'), APP_PACKAGE);
});
test.after.each(() => rmSync(app, { recursive: true, force: true }));

test("adds the npm scripts, DATABASE_URL in .env and a first migration pair, keeping the app's indentation", () => {
  const r = runCli(['init'], { cwd: app });
  assert.is(r.code, 0, r.output);
  assert.equal(scriptsOf(), {
    start: 'node server.js',
    migrate: 'tidemark migrate',
    'migrate:rollback': 'tidemark rollback',
    'migrate:status': 'tidemark status',
    'migrate:version': 'tidemark version',
    'migrate:force-version': 'tidemark force',
    'migrate:create': 'tidemark create',
    'migrate:resolve': 'tidemark resolve',
    'verify:schema': 'tidemark verify',
  });
  assert.match(read('package.json'), /^ {4}"name": "shop",$/m);
  assert.match(read('.env'), /^DATABASE_URL=sqlite:data\/app\.db$/m);
  assert.ok(existsSync(join(app, 'sql', '001_first_migration.sql')));
  assert.ok(existsSync(join(app, 'sql', '001_first_migration_rollback.sql')));
  assert.match(r.stdout, /added package\.json: script "migrate": "tidemark migrate"/);
  assert.match(r.stdout, /added \.env: DATABASE_URL=sqlite:data\/app\.db/);
  assert.match(r.stdout, /added sql\/001_first_migration\.sql: write your first migration here/);
  assert.not.ok(existsSync(join(app, 'ecosystem.config.cjs')), 'no pm2 file without --pm2');
});

test('a second run changes nothing and says so', () => {
  assert.is(runCli(['init', '--pm2'], { cwd: app }).code, 0);
  const before = ['package.json', '.env', 'ecosystem.config.cjs', 'sql/001_first_migration.sql'].map(read);
  const r = runCli(['init', '--pm2'], { cwd: app });
  assert.is(r.code, 0, r.output);
  assert.match(r.stdout, /nothing to change: tidemark is already set up here/);
  assert.equal(['package.json', '.env', 'ecosystem.config.cjs', 'sql/001_first_migration.sql'].map(read), before);
  assert.not.ok(existsSync(join(app, 'sql', '002_first_migration.sql')), 'no second pair');
});

test('never overwrites: a script of the same name, an existing DATABASE_URL and existing migrations are kept', () => {
  writeFileSync(join(app, 'package.json'), '{"name":"shop","scripts":{"migrate":"knex migrate:latest"}}');
  writeFileSync(join(app, '.env'), 'PORT=3000\nexport DATABASE_URL=postgres://app@db/shop');
  mkdirSync(join(app, 'sql'));
  writeFileSync(join(app, 'sql', '007_orders.sql'), 'CREATE TABLE orders (id INTEGER);\n');
  const r = runCli(['init'], { cwd: app });
  assert.is(r.code, 0, r.output);
  assert.is(scriptsOf().migrate, 'knex migrate:latest');
  assert.is(scriptsOf()['migrate:rollback'], 'tidemark rollback');
  assert.match(
    r.stdout,
    /kept package\.json: script "migrate": "knex migrate:latest" \(tidemark's would be "tidemark migrate"\)/,
  );
  assert.is(read('.env'), 'PORT=3000\nexport DATABASE_URL=postgres://app@db/shop');
  assert.match(r.stdout, /kept \.env: DATABASE_URL/);
  assert.equal(
    spawnSync('ls', [join(app, 'sql')], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n'),
    ['007_orders.sql'],
  );
});

test('--url goes into .env (appended after a last line without newline) and its password is never printed', () => {
  writeFileSync(join(app, '.env'), 'PORT=3000');
  const r = runCli(['init', '--url', 'postgres://app:s3cret-pw@db.internal/shop'], { cwd: app });
  assert.is(r.code, 0, r.output);
  assert.match(read('.env'), /^PORT=3000\n# .*\nDATABASE_URL=postgres:\/\/app:s3cret-pw@db\.internal\/shop\n$/);
  assert.not.match(r.output, /s3cret-pw/);
  assert.match(r.stdout, /added \.env: DATABASE_URL \(the --url given\)/);
});

test('--dry-run says what it would add and writes nothing', () => {
  const r = runCli(['init', '--pm2', '--dry-run'], { cwd: app });
  assert.is(r.code, 0, r.output);
  assert.match(r.stdout, /would add package\.json: script "migrate": "tidemark migrate"/);
  assert.match(r.stdout, /would add ecosystem\.config\.cjs/);
  assert.is(read('package.json'), APP_PACKAGE);
  for (const path of ['.env', 'sql', 'ecosystem.config.cjs']) assert.not.ok(existsSync(join(app, path)), path);
});

test('without a package.json: exit 2 naming the fix, nothing written', () => {
  rmSync(join(app, 'package.json'));
  const r = runCli(['init'], { cwd: app });
  assert.is(r.code, 2, r.output);
  assert.match(r.stderr, /error: no package\.json in .*tidemark init adds tidemark to an npm project/);
  assert.match(r.stderr, /hint: .*npm init -y/);
  for (const path of ['.env', 'sql']) assert.not.ok(existsSync(join(app, path)), path);
});

test('--pm2 writes an ecosystem file that pm2 can load: the app from package.json, in cluster mode', () => {
  const r = runCli(['init', '--pm2'], { cwd: app });
  assert.is(r.code, 0, r.output);
  const ecosystem = createRequire(join(app, 'x.js'))('./ecosystem.config.cjs');
  assert.equal(ecosystem.apps, [{ name: 'shop', script: 'server.js', instances: 2, exec_mode: 'cluster' }]);
  const hook =
    "'npm ci && npm run migrate -- --backup && pm2 startOrReload ecosystem.config.cjs && npm run migrate -- --sync --backup',";
  assert.ok(read('ecosystem.config.cjs').includes(`  //     'post-deploy': ${hook}\n`), read('ecosystem.config.cjs'));
});

test('--pm2 turns strict lint on: "strict": true in package.json\'s "tidemark" (or tidemark.config.json); kept on a second run', () => {
  const r = runCli(['init', '--pm2'], { cwd: app });
  assert.is(r.code, 0, r.output);
  assert.match(r.stdout, 'added package.json: "strict": true');
  assert.equal(JSON.parse(read('package.json')).tidemark, { strict: true });
  assert.match(read('package.json'), /^ {4}"tidemark": \{$/m);
  const again = runCli(['init', '--pm2'], { cwd: app });
  assert.match(again.stdout, 'kept package.json: "strict": true');
  rmSync(join(app, 'package.json'));
  writeFileSync(join(app, 'package.json'), APP_PACKAGE);
  writeFileSync(join(app, 'tidemark.config.json'), '{ "dir": "sql" }\n');
  assert.is(runCli(['init', '--pm2'], { cwd: app }).code, 0);
  assert.equal(JSON.parse(read('tidemark.config.json')), { dir: 'sql', strict: true });
  assert.is(JSON.parse(read('package.json')).tidemark, undefined);
});

test("tidemark's own package.json has the scripts init writes, under the same names", () => {
  const own = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts;
  const r = runCli(['init', '--dry-run', '--json'], { cwd: app });
  const added = JSON.parse(r.stdout)
    .steps.filter((s) => s.path === 'package.json')
    .map((s) => /^script "(.+)": "tidemark (.+)"$/.exec(s.what));
  assert.ok(added.length >= 7);
  for (const [, name, command] of added) assert.is(own[name], `node dist/cli.js ${command}`, name);
});

test("after init, the app's own `npm run migrate` applies the first migration once it is written", async () => {
  assert.is(runCli(['init'], { cwd: app }).code, 0);
  writeFileSync(join(app, 'sql', '001_first_migration.sql'), 'CREATE TABLE customers (id INTEGER PRIMARY KEY);\n');
  writeFileSync(join(app, 'sql', '001_first_migration_rollback.sql'), 'DROP TABLE customers;\n');
  // What `npm install tidemark` puts on the app's PATH, pointing at this build.
  mkdirSync(join(app, 'node_modules', '.bin'), { recursive: true });
  writeFileSync(join(app, 'node_modules', '.bin', 'tidemark'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
  chmodSync(join(app, 'node_modules', '.bin', 'tidemark'), 0o755);
  const env = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !k.startsWith('npm_') && !['DATABASE_URL', 'TEST_DATABASE_URL'].includes(k),
    ),
  );
  const r = spawnSync('npm', ['run', '--silent', 'migrate'], {
    cwd: app,
    env: { ...env, NO_COLOR: '1' },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /↑ 001 first_migration/);
  assert.equal(await ledgerVersions(sqliteAt(join(app, 'data', 'app.db'))), [1]);
});

test.run();

// The two-command set-up as a newcomer runs it: npm scripts in a fresh checkout, positional arguments through npm.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { EXAMPLE_VERSIONS, freshDatabase, ledgerVersions, ROOT, sqliteAt } from './helpers.mjs';

const test = suite('npm scripts in a fresh checkout');
let checkout;

/** What a clone holds after `npm install`: the tracked files, plus node_modules and the built dist/. */
function freshCheckout() {
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-checkout-'));
  for (const file of ['package.json', '.env']) copyFileSync(join(ROOT, file), join(dir, file));
  cpSync(join(ROOT, 'sql'), join(dir, 'sql'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  symlinkSync(join(ROOT, 'dist'), join(dir, 'dist'));
  return dir;
}

function npmRun(args, env = {}) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !['DATABASE_URL', 'TEST_DATABASE_URL', 'npm_config_nodedir'].includes(k) && !k.startsWith('npm_'),
    ),
  );
  const r = spawnSync('npm', ['run', '--silent', ...args], {
    cwd: checkout,
    env: { ...clean, NO_COLOR: '1', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, output: r.stdout + r.stderr };
}

test.before.each(() => {
  checkout = freshCheckout();
});
test.after.each(() => rmSync(checkout, { recursive: true, force: true }));

/** The README's Quick start output blocks (the first run, then the second), times masked. */
function readmeQuickStart() {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = text.slice(text.indexOf('## Quick start'), text.indexOf('## Add tidemark to your app'));
  // Every fence, language or not, so a closing fence is never read as an opening one; output has none.
  const blocks = [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] === '').map((m) => m[2]);
  const first = blocks[0]
    .split('\n')
    .filter((line) => !line.startsWith('>') && line !== '')
    .join('\n');
  return { first: maskTimes(first), second: blocks[1].trim() };
}

const maskTimes = (text) =>
  text
    .replace(/in [\d.]+ m?s,/g, 'in T,')
    .replace(/\d+ ms\b/g, 'N ms')
    .trim();

test('npm run migrate uses the shipped .env: creates data/app.db, then is up to date', async () => {
  const first = npmRun(['migrate']);
  assert.is(first.code, 0, first.output);
  // What the README's Quick start shows is what a newcomer sees (npm's header lines aside, --silent here).
  const readme = readmeQuickStart();
  assert.is(maskTimes(first.stdout), readme.first);
  assert.ok(existsSync(join(checkout, 'data', 'app.db')));
  assert.match(first.stdout, /4 applied/);
  const app = sqliteAt(join(checkout, 'data', 'app.db'));
  assert.equal(await ledgerVersions(app), EXAMPLE_VERSIONS.sqlite);
  assert.equal(
    (await app.tables()).filter((t) => !t.startsWith('schema_version')),
    ['price_cache', 'trades', 'user_strategies', 'users'],
  );
  const second = npmRun(['migrate']);
  assert.is(second.code, 0, second.output);
  assert.match(second.stdout, /sqlite:data\/app\.db is up to date at version 4/);
  assert.is(second.stdout.trim(), readme.second);
});

test('positional arguments pass through npm: migrate:rollback 2, migrate:version, migrate:force-version', async () => {
  assert.is(npmRun(['migrate']).code, 0);
  const r = npmRun(['migrate:rollback', '2']);
  assert.is(r.code, 0, r.output);
  assert.match(r.stdout, /2 rolled back in \d+ ms, now at version 2/);
  const v = npmRun(['migrate:version']);
  assert.is(v.stdout.trim(), '2');
  const f = npmRun(['migrate:force-version', '--', '1', '--yes']);
  assert.is(f.code, 0, f.output);
  assert.is(npmRun(['migrate:version']).stdout.trim(), '1');
  const s = npmRun(['migrate:status']);
  assert.match(s.stdout, /001\s+create_users\s+applied/);
  const c = npmRun(['migrate:create', 'add_orders']);
  assert.is(c.code, 0, c.output);
  assert.ok(existsSync(join(checkout, 'sql', '005_add_orders.sql')));
});

test('the same with DATABASE_URL=postgres://…', async () => {
  const db = await freshDatabase('postgres');
  try {
    const r = npmRun(['migrate'], { DATABASE_URL: db.url });
    assert.is(r.code, 0, r.output);
    assert.match(r.stdout, /3 applied/);
    assert.not.ok(existsSync(join(checkout, 'data')), 'the environment wins over .env');
    assert.equal(await ledgerVersions(db), EXAMPLE_VERSIONS.postgres);
    assert.equal(await db.types(), ['exchange_type']);
    assert.is(npmRun(['migrate:rollback', '--', '--all'], { DATABASE_URL: db.url }).code, 0);
    assert.equal(await db.types(), []);
  } finally {
    await db.close();
  }
});

test('npm run verify:schema: exit 0 on the migrated example database, 3 after a hand change', async () => {
  assert.is(npmRun(['migrate']).code, 0);
  const clean = npmRun(['verify:schema']);
  assert.is(clean.code, 0, clean.output);
  assert.match(clean.stdout, /^verified: matches the migration files at version 4, built on a scratch database$/m);
  await sqliteAt(join(checkout, 'data', 'app.db')).query('ALTER TABLE users ADD COLUMN phone TEXT');
  const drift = npmRun(['verify:schema']);
  assert.is(drift.code, 3, drift.output);
  assert.match(drift.stdout, /^ {2}\+ column users\.phone: text$/m);
});

test.run();

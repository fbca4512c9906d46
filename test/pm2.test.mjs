// The pm2 release cycle, end to end, with a real pm2: an http app in cluster mode (2 workers) that
// checks its schema at start-up and serves a query on its release's newest table, deployed the way
// `pm2 deploy` does it (a `current` link switched to the release, then the post-deploy hook run in
// it), while a probe hits the app every 50 ms. Release 1, release 2, a release 3 whose migration
// fails halfway, a revert to release 2, a revert to release 1, and a restore of the rows release
// 1's revert dropped. No probe may fail at any point, but for one request lost in Node's cluster as
// pm2 reloads it (see lostInReload), which is pm2's and is printed.
import { spawn, spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { POST_DEPLOY } from '../dist/init.js';
import { DIALECTS, freePort, freshDatabase, ledgerVersions, ROOT } from './helpers.mjs';

const PM2 = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

/** The post-deploy hook `init --pm2` writes and the docs give, with this checkout's pm2 (npm ci ran already). */
const HOOK = POST_DEPLOY.replace('npm ci && ', '').replace('pm2 startOrReload', 'node "$PM2" startOrReload');
const HOOK_WITHOUT_BACKUPS = HOOK.replaceAll(' -- --backup', '').replaceAll(' --backup', '');

const MIGRATIONS = {
  1: {
    '001_notes.sql':
      "create table notes (id integer primary key, body text);\ninsert into notes values (1, 'first');\n",
    '001_notes_rollback.sql': 'drop table notes;\n',
  },
  2: {
    '002_tags.sql':
      "create table tags (note_id integer, tag text);\ninsert into tags values (1, 'kept by the backup');\n",
    '002_tags_rollback.sql': 'drop table tags;\n',
  },
  3: {
    '003_fees.sql': 'create table fees (amount integer);\n',
    '003_fees_rollback.sql': 'drop table fees;\n',
    '004_broken.sql': 'create table half (a integer);\ninsert into no_such_table values (1);\n',
    '004_broken_rollback.sql': 'drop table half;\n',
  },
};
/** The table each release's code reads on every request. */
const READS = { 1: 'notes', 2: 'tags', 3: 'fees' };

function serverSource(release) {
  return `import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { assertSchemaVersion } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'index.js')).href)};

const require = createRequire(${JSON.stringify(join(ROOT, 'package.json'))});
const url = process.env.DATABASE_URL;
try {
  await assertSchemaVersion({ url, cwd: process.cwd() });
} catch (error) {
  console.error(error.message);
  process.exit(1);
}
let query;
if (url.startsWith('sqlite:')) {
  const sqlite3 = require('sqlite3');
  const db = new sqlite3.Database(url.slice('sqlite:'.length));
  db.configure('busyTimeout', 10000);
  query = (text) => new Promise((resolve, reject) => db.all(text, (error, rows) => (error ? reject(error) : resolve(rows))));
} else {
  const sql = require('postgres')(url, { max: 2, onnotice: () => {} });
  query = (text) => sql.unsafe(text);
}
const server = createServer(async (_, res) => {
  try {
    const [row] = await query('select count(*) as n from ${READS[release]}');
    res.end(JSON.stringify({ release: ${release}, rows: Number(row.n) }));
  } catch (error) {
    res.statusCode = 500;
    res.end(String(error.message));
  }
}).listen(Number(process.env.PORT));
// pm2's graceful stop: a reload sends SIGINT; finish what is in flight, take no more.
process.on('SIGINT', () => server.close(() => process.exit(0)));
`;
}

/** A release folder as a checkout of that commit would be: its migrations, its code, its pm2 file. */
function writeRelease(app, release, env) {
  const dir = join(app, 'releases', `r${release}`);
  mkdirSync(join(dir, 'sql'), { recursive: true });
  for (let r = 1; r <= release; r++)
    for (const [name, text] of Object.entries(MIGRATIONS[r])) writeFileSync(join(dir, 'sql', name), text);
  writeFileSync(join(dir, 'server.mjs'), serverSource(release));
  const scripts = { migrate: `node ${JSON.stringify(join(ROOT, 'dist', 'cli.js'))} migrate` };
  writeFileSync(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'pm2-app', private: true, type: 'module', scripts }, null, 2)}\n`,
  );
  const apps = [
    { name: 'app', script: 'server.mjs', cwd: join(app, 'current'), instances: 2, exec_mode: 'cluster', env },
  ];
  writeFileSync(join(dir, 'ecosystem.config.cjs'), `module.exports = ${JSON.stringify({ apps }, null, 2)};\n`);
}

/** The environment of a deploy user's shell: nothing of the `npm test` running this suite. */
function deployEnv(extra) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_|^(TEST_)?DATABASE_URL$/i.test(k)));
  return { ...env, NO_COLOR: '1', ...extra };
}

/** Runs a shell command without blocking the event loop, so the probe keeps probing meanwhile. */
function sh(command, { cwd, env }) {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c));
    child.stderr.on('data', (c) => (output += c));
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** One request on a new connection, as each visitor's would be (keep-alive is the proxy's business). */
function get(port) {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Hits the app every 50 ms until stopped; keeps every failure with its time. */
/** What the cycle is doing, kept with each failed probe (a deploy's hook, or waiting between them). */
let probePhase = 'starting';

function startProbe(port) {
  const failures = [];
  let last = null;
  let running = true;
  const loop = (async () => {
    while (running) {
      const at = Date.now();
      // The phase the request started in: a timeout is recorded 5 s later, maybe in the next phase.
      const phase = probePhase;
      try {
        const { status, body } = await get(port);
        if (status === 200) last = JSON.parse(body);
        else failures.push({ at, phase, error: `${status} ${body}` });
      } catch (error) {
        if (last !== null) failures.push({ at, phase, error: error.code ?? error.message });
      }
      await new Promise((r) => setTimeout(r, Math.max(0, 50 - (Date.now() - at))));
    }
  })();
  return {
    failures,
    latest: () => last,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

/**
 * Node's cluster can lose a connection that its primary hands to an old worker in the instant that
 * worker exits in a `pm2 reload`: the request hangs (pm2 issues #2573 and #2729, with the graceful
 * SIGINT handler in place). A timed-out request is that race only when pm2's own log shows an old
 * worker stopped while the request was in flight (the log counts whole seconds).
 */
function lostInReload(failure, pm2Log) {
  const stops = [...pm2Log.matchAll(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d): PM2 log: Stopping app:app id:_old_\d+$/gm)];
  const times = stops.map((m) => new Date(m[1]).getTime());
  return failure.error === 'timeout' && times.some((t) => t >= failure.at - 1200 && t <= failure.at + 1500);
}

async function until(what, check, limitMs = 30_000) {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.unreachable(`timed out waiting for ${what}`);
}

/** pg_dump older than the server cannot back it up: then the cycle runs without --backup (see backup.test.mjs). */
async function backupsPossible(db) {
  if (db.dialect === 'sqlite') return true;
  const [{ major }] = await db.query(`select current_setting('server_version_num')::int / 10000 as major`);
  const tool = spawnSync('pg_dump', ['--version'], { encoding: 'utf8' });
  return !tool.error && Number(/(\d+)\.\d+/.exec(tool.stdout)?.[1]) >= major;
}

for (const dialect of DIALECTS) {
  const test = suite(`pm2 release cycle [${dialect}]`);

  test('deploy 1, 2, a failing 3, revert to 2, revert to 1, restore: no request fails', async () => {
    const work = mkdtempSync(join(tmpdir(), 'tidemark-pm2-'));
    const app = join(work, 'app');
    const db = await freshDatabase(dialect, work);
    const port = await freePort();
    const env = deployEnv({ PM2_HOME: join(work, 'pm2'), PM2: PM2 });
    // Backups go beside the releases, not into one: pm2 deploy's shared folder.
    const shared = join(app, 'shared', 'backups');
    const appEnv = { DATABASE_URL: db.url, PORT: String(port), NO_COLOR: '1', BACKUP_DIR: shared };
    const withBackups = await backupsPossible(db);
    const hook = withBackups ? HOOK : HOOK_WITHOUT_BACKUPS;
    if (!withBackups) process.stdout.write('  (pg_dump is older than the server: the cycle runs without --backup)\n');
    for (const release of [1, 2, 3]) writeRelease(app, release, appEnv);
    const cwd = join(app, 'current');
    const probe = startProbe(port);
    const windows = [];
    let pm2Log = '';

    /** What `pm2 deploy` does: point `current` at the release (atomically), run the post-deploy hook there. */
    async function deploy(release) {
      probePhase = `the hook of release ${release} (deploy ${windows.length + 1})`;
      const link = join(app, `current-${release}`);
      symlinkSync(join(app, 'releases', `r${release}`), link);
      renameSync(link, cwd);
      const started = Date.now();
      const r = await sh(hook, { cwd, env: { ...env, ...appEnv } });
      windows.push(`${release}: ${Date.now() - started} ms`);
      probePhase = `after deploy ${windows.length}`;
      return r;
    }
    const serving = (release) => until(`release ${release} to serve`, () => probe.latest()?.release === release);
    const backups = () => readdirSync(shared).sort();
    const tables = async () => (await db.tables()).filter((t) => !t.startsWith('schema_version'));

    try {
      const first = await deploy(1);
      assert.is(first.code, 0, first.output);
      await serving(1);
      assert.equal(await ledgerVersions(db), [1]);

      const second = await deploy(2);
      assert.is(second.code, 0, second.output);
      await serving(2);
      assert.equal(await ledgerVersions(db), [1, 2]);

      const third = await deploy(3);
      assert.is(third.code, 1, third.output);
      assert.match(third.output, 'sql/004_broken.sql:2');
      assert.equal(await ledgerVersions(db), [1, 2, 3], '003 stays applied, 004 left nothing');
      assert.equal(await tables(), ['fees', 'notes', 'tags']);
      assert.is(probe.latest().release, 2, 'the failed deploy reloaded nothing: release 2 serves on');

      const backToTwo = await deploy(2);
      assert.is(backToTwo.code, 0, backToTwo.output);
      assert.match(backToTwo.output, /↓ 0*3 fees/);
      assert.equal(await ledgerVersions(db), [1, 2]);
      assert.equal(await tables(), ['notes', 'tags']);
      await serving(2);

      const backToOne = await deploy(1);
      assert.is(backToOne.code, 0, backToOne.output);
      await serving(1);
      assert.equal(await ledgerVersions(db), [1]);
      assert.equal(await tables(), ['notes'], 'the rollback of 002 dropped tags and its row');

      if (withBackups) {
        // Deploys that changed the database took one backup each, before they changed it.
        assert.equal(
          backups().map((f) => /-v(\d+)-/.exec(f)[1]),
          ['0', '1', '2', '3', '2'].sort(),
        );
        const beforeRevert = backups()
          .filter((f) => f.includes('-v2-'))
          .at(-1);
        probePhase = 'the restore';
        const restore = await sh(
          `node ${JSON.stringify(join(ROOT, 'dist', 'cli.js'))} restore ${JSON.stringify(join(shared, beforeRevert))} --yes`,
          { cwd, env: { ...env, ...appEnv } },
        );
        assert.is(restore.code, 0, restore.output);
        assert.equal(await ledgerVersions(db), [1, 2]);
        assert.equal(await db.query('select tag from tags'), [{ tag: 'kept by the backup' }]);
      }
      await new Promise((r) => setTimeout(r, 500));
      assert.is(probe.latest().release, 1);
      process.stdout.write(`  [${dialect}] post-deploy hook durations: ${windows.join(', ')}\n`);
    } finally {
      await probe.stop();
      await sh(`node "$PM2" kill`, { cwd: work, env });
      await db.close();
      pm2Log = readFileSync(join(work, 'pm2', 'pm2.log'), 'utf8');
      rmSync(work, { recursive: true, force: true });
    }
    // One request lost to that race is pm2's; any other failure, or a second one, is the cycle's.
    const lost = probe.failures.find((f) => lostInReload(f, pm2Log));
    if (lost) process.stdout.write(`  [${dialect}] one request lost in a pm2 reload: ${JSON.stringify(lost)}\n`);
    assert.equal(
      probe.failures.filter((f) => f !== lost),
      [],
      'failed probes',
    );
  });

  test.run();
}

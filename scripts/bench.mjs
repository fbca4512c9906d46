// `npm run bench`: how fast tidemark is next to the floor a DBA gets from psql / the sqlite3 shell.
// Generates workloads in temporary folders, runs each on PostgreSQL (TEST_DATABASE_URL, else an
// embedded server) and on SQLite, interleaving every tidemark run with its baseline run, and prints
// medians, min–max, the ratio to the baseline and tidemark's peak RSS; also writes bench-results.json.
//
//   node scripts/bench.mjs [--runs N] [--quick] [--only W1,W2,W3,W4] [--dialect postgres|sqlite] [--peers]
//
// W1 apply 1,000 one-table migrations from empty   baseline: psql -q -1 -f all.sql / sqlite3 < all.sql
// W2 no-op migrate with 100, 1,000, 10,000 applied  baselines: node + one query, psql/sqlite3 select 1, node -e 0
// W3 rollback --all of those 1,000                  baseline: all rollback files in one transaction
// W4 apply 100 migrations of 50 statements each     baseline: as W1
// W1, W3 and W4 also show the shell running each file in its own transaction, as tidemark does: the
// floor for per-migration atomicity. The ratio is always tidemark's median over that row's baseline;
// peak RSS is the largest of tidemark's runs. With --quick: 100 migrations, W2 at 100 and 1,000, 2 runs.
// Needs nothing beyond the repo (built), psql and sqlite3; a missing shell skips only its baselines.
// --peers also runs other migrators on the same files, interleaved like the baselines (W1 and W2):
// dbmate (both dialects), node-pg-migrate and postgrator (PostgreSQL), pinned in PEERS below and
// installed with npm into the bench's temporary folder, never into the project.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import sqlite3 from 'sqlite3';
import { postgresServer } from './postgres-server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BUILT = join(ROOT, 'dist', 'cli.js');

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    dialect: { type: 'string' },
    peers: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (flags.help) {
  process.stdout.write(
    'usage: node scripts/bench.mjs [--runs N] [--quick] [--only W1,W2,W3,W4] [--dialect postgres|sqlite] [--peers]\n',
  );
  process.exit(0);
}
const QUICK = flags.quick;
const RUNS = flags.runs ? Number(flags.runs) : QUICK ? 2 : 5;
if (!Number.isInteger(RUNS) || RUNS < 1) fail(`--runs takes a whole number ≥ 1, not "${flags.runs}"`);
const ONLY = new Set((flags.only ?? 'W1,W2,W3,W4').toUpperCase().split(','));
const DIALECTS = flags.dialect ? [flags.dialect] : ['postgres', 'sqlite'];
for (const d of DIALECTS) if (!['postgres', 'sqlite'].includes(d)) fail(`--dialect is postgres or sqlite, not "${d}"`);
const SIZES = QUICK
  ? { w1: 100, w2: [100, 1000], w4: 10, w4Statements: 50 }
  : { w1: 1000, w2: [100, 1000, 10000], w4: 100, w4Statements: 50 };
if (!existsSync(BUILT)) fail(`${BUILT} does not exist: run \`npm run bench\` (it builds first) or \`npm run build\``);

function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const log = (line) => process.stderr.write(`${line}\n`);

// ---------------------------------------------------------------- tools: time, psql, sqlite3

function available(command, args) {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return r.error ? null : (r.stdout || r.stderr).trim().split('\n')[0];
}

/** GNU time reports a child's peak RSS; without it, node children report their own through --import. */
const GNU_TIME =
  existsSync('/usr/bin/time') && available('/usr/bin/time', ['-f', '%M', 'true']) !== null ? '/usr/bin/time' : null;
const RSS_HOOK = `data:text/javascript,${encodeURIComponent(
  "import{writeFileSync}from'node:fs';process.on('exit',()=>{if(process.env.BENCH_RSS_FILE)writeFileSync(process.env.BENCH_RSS_FILE,String(process.resourceUsage().maxRSS))})",
)}`;
const PSQL = available('psql', ['--version']);
const SQLITE_SHELL = available('sqlite3', ['-version']);
const missingShell = {
  postgres: PSQL
    ? null
    : 'psql not found: the PostgreSQL baselines (psql) are skipped; install the PostgreSQL client (apt-get install postgresql-client)',
  sqlite: SQLITE_SHELL
    ? null
    : 'sqlite3 shell not found: the SQLite shell baselines are skipped; install it (apt-get install sqlite3)',
};

const work = mkdtempSync(join(tmpdir(), 'tidemark-bench-'));

/**
 * The build is copied once, so that a rebuild of dist/ during the (long) run cannot change or break
 * what is measured halfway; node_modules is linked, so the copy resolves the same packages.
 */
function snapshotBuild() {
  const copy = join(work, 'tidemark');
  mkdirSync(copy);
  cpSync(join(ROOT, 'dist'), join(copy, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'), 'dir');
  return join(copy, 'dist', 'cli.js');
}
const CLI = snapshotBuild();

// ---------------------------------------------------------------- peers (--peers)

/** Other migrators, pinned; each gets the same migrations in its own file format. */
const PEER_PACKAGES = ['dbmate@2.36.0', 'node-pg-migrate@9.0.0', 'postgrator@8.0.0', 'pg@8.23.1'];
const POSTGRATOR_RUNNER = `import pg from 'pg';
import Postgrator from 'postgrator';
const [url, dir] = process.argv.slice(2);
const client = new pg.Client({ connectionString: url });
await client.connect();
try {
  const database = new URL(url).pathname.slice(1);
  await new Postgrator({ migrationPattern: dir + '/*', driver: 'pg', database, execQuery: (query) => client.query(query) }).migrate();
} finally {
  await client.end();
}
`;

/** npm install into the bench's own folder: the project's package.json and node_modules stay untouched. */
function installPeers() {
  const dir = join(work, 'peers');
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), '{ "private": true }\n');
  log(`installing ${PEER_PACKAGES.join(', ')} into ${dir}`);
  const npm = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', ...PEER_PACKAGES], {
    cwd: dir,
    encoding: 'utf8',
  });
  if (npm.status !== 0) fail(`npm install of the peers failed:\n${npm.stdout}${npm.stderr}`);
  writeFileSync(join(dir, 'postgrator-run.mjs'), POSTGRATOR_RUNNER);
  const bin = (name) => join(dir, 'node_modules', '.bin', name);
  const version = (name) => JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version;
  const postgresUrl = (db) => {
    const url = new URL(db.url);
    url.searchParams.set('sslmode', 'disable');
    return url.toString();
  };
  const dbmateUrl = (db) => (db.dialect === 'sqlite' ? `sqlite:${db.file}` : postgresUrl(db));
  return [
    {
      name: `dbmate ${version('dbmate')}`,
      dialects: ['postgres', 'sqlite'],
      migrate: (project, db) =>
        measure(bin('dbmate'), [
          '--url',
          dbmateUrl(db),
          '--migrations-dir',
          join(project.dir, 'dbmate'),
          '--no-dump-schema',
          'up',
        ]),
    },
    {
      name: `node-pg-migrate ${version('node-pg-migrate')}`,
      dialects: ['postgres'],
      // A transaction per migration, as tidemark and dbmate run them (its default, one transaction for
      // all, runs out of lock slots at 10,000 tables).
      migrate: (project, db) =>
        measure(bin('node-pg-migrate'), ['up', '--no-single-transaction', '-m', join(project.dir, 'node-pg-migrate')], {
          env: { DATABASE_URL: db.url },
        }),
    },
    {
      name: `postgrator ${version('postgrator')}`,
      dialects: ['postgres'],
      migrate: (project, db) =>
        measure(process.execPath, [join(dir, 'postgrator-run.mjs'), db.url, join(project.dir, 'postgrator')]),
    },
  ];
}
const PEERS = flags.peers ? installPeers() : [];
const peersFor = (dialect) => PEERS.filter((p) => p.dialects.includes(dialect));

/** The same migration in each peer's own format: dbmate's and node-pg-migrate's markers, postgrator's do/undo pair. */
function writePeerFiles(dir, id, { up, down }) {
  const write = (folder, name, text) => {
    mkdirSync(join(dir, folder), { recursive: true });
    writeFileSync(join(dir, folder, name), text);
  };
  write('dbmate', `${id}_m${id}.sql`, `-- migrate:up\n${up}\n-- migrate:down\n${down}`);
  write('node-pg-migrate', `${id}_m${id}.sql`, `-- Up Migration\n${up}\n-- Down Migration\n${down}`);
  write('postgrator', `${id}.do.m${id}.sql`, up);
  write('postgrator', `${id}.undo.m${id}.sql`, down);
}
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    ([k]) =>
      !['DATABASE_URL', 'MIGRATIONS_DIR', 'MIGRATIONS_TABLE', 'TEST_DATABASE_URL', 'NODE_OPTIONS'].includes(k) &&
      !k.startsWith('npm_'),
  ),
);

/**
 * Runs one command to completion and measures its wall time (spawn to exit) and peak RSS.
 * stdout and stderr are collected (a pm2 deploy reads them through pipes too).
 */
function measure(command, args, { cwd = work, env = {}, stdinFile } = {}) {
  const rssFile = join(work, `rss-${randomBytes(4).toString('hex')}`);
  let argv = [command, ...args];
  const extraEnv = { ...env };
  if (GNU_TIME) argv = [GNU_TIME, '-f', '%M', '-o', rssFile, ...argv];
  else if (command === process.execPath) {
    argv = [command, `--import=${RSS_HOOK}`, ...args];
    extraEnv.BENCH_RSS_FILE = rssFile;
  }
  const stdin = stdinFile ? openSync(stdinFile, 'r') : 'ignore';
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(argv[0], argv.slice(1), {
      cwd,
      env: { ...childEnv, ...extraEnv },
      stdio: [stdin, 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (typeof stdin === 'number') closeSync(stdin);
      let rssKB = null;
      if (existsSync(rssFile)) {
        // GNU time writes "Command exited with non-zero status N" before the number on a failure.
        const last = readFileSync(rssFile, 'utf8').trim().split('\n').pop();
        rssKB = /^\d+$/.test(last) ? Number(last) : null;
        rmSync(rssFile, { force: true });
      }
      resolve({ ms, rssKB, code, stdout, stderr });
    });
  });
}

function check(result, what) {
  if (result.code !== 0)
    throw new Error(`${what} exited ${result.code}\n${result.stdout.slice(-2000)}\n${result.stderr.slice(-2000)}`);
  return result;
}

// ---------------------------------------------------------------- workloads (files)

const pad = (n, width) => String(n).padStart(width, '0');

/**
 * A migrations folder with `count` migrations, each with a rollback, plus all.sql and rollback.sql:
 * the same files concatenated (rollbacks newest first) in one transaction, for the shells.
 */
function generate(name, count, body) {
  const dir = join(work, name);
  const sql = join(dir, 'sql');
  mkdirSync(sql, { recursive: true });
  const width = Math.max(4, String(count).length);
  const forward = [];
  const rollback = [];
  for (let i = 1; i <= count; i++) {
    const id = pad(i, width);
    const { up, down } = body(id);
    writeFileSync(join(sql, `${id}_m${id}.sql`), up);
    writeFileSync(join(sql, `${id}_m${id}_rollback.sql`), down);
    if (PEERS.length > 0) writePeerFiles(dir, id, { up, down });
    forward.push(up);
    rollback.unshift(down);
  }
  writeFileSync(join(dir, 'all.sql'), forward.join('\n'));
  writeFileSync(join(dir, 'rollback.sql'), rollback.join('\n'));
  // The sqlite3 shell has no -1: the transaction is written around the script.
  writeFileSync(join(dir, 'all.sqlite.sql'), `BEGIN;\n${forward.join('\n')}\nCOMMIT;\n`);
  writeFileSync(join(dir, 'rollback.sqlite.sql'), `BEGIN;\n${rollback.join('\n')}\nCOMMIT;\n`);
  // What per-migration atomicity costs in the shells themselves: one transaction per file.
  const perFile = (texts) => texts.map((t) => `BEGIN;\n${t}COMMIT;\n`).join('');
  writeFileSync(join(dir, 'all.per-file.sql'), perFile(forward));
  writeFileSync(join(dir, 'rollback.per-file.sql'), perFile(rollback));
  return { dir, count };
}

/** W1 / W2 / W3: one tiny table per migration. */
const tinyTable = (id) => ({
  up: `-- ${id}: one table\ncreate table t${id} (id integer primary key, name text not null, created_at text);\n`,
  down: `drop table t${id};\n`,
});

/** W4: a table, 40 rows, 5 indexes and 4 added columns: 50 statements. */
function fiftyStatements(statements) {
  return (id) => {
    const lines = [`create table w${id} (id integer primary key, a integer not null, b text);`];
    const indexes = 5;
    const columns = 4;
    const inserts = statements - 1 - indexes - columns;
    for (let k = 1; k <= inserts; k++)
      lines.push(`insert into w${id} (id, a, b) values (${k}, ${k * 7}, 'row ${k} of w${id}');`);
    for (let k = 1; k <= columns; k++) lines.push(`alter table w${id} add column c${k} integer;`);
    for (let k = 1; k <= indexes; k++)
      lines.push(`create index w${id}_i${k} on w${id} (${k === 1 ? 'a' : k === 2 ? 'b' : `c${k - 2}`});`);
    return { up: `-- ${id}: ${statements} statements\n${lines.join('\n')}\n`, down: `drop table w${id};\n` };
  };
}

// ---------------------------------------------------------------- databases

let server = null;
let admin = null;

async function freshDatabase(dialect, project) {
  if (dialect === 'sqlite') {
    const file = join(project.dir, `db-${randomBytes(4).toString('hex')}.db`);
    return {
      dialect,
      url: `sqlite:${file}`,
      file,
      count: (sql) => sqliteCount(file, sql),
      drop: async () => {
        for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(file + suffix, { force: true });
      },
    };
  }
  const name = `tidemark_bench_${randomBytes(6).toString('hex')}`;
  await admin.unsafe(`create database ${name}`);
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  return {
    dialect,
    url: url.toString(),
    count: async (sql) => {
      const client = postgres(url.toString(), { max: 1, onnotice: () => {} });
      try {
        return Number((await client.unsafe(sql))[0].count);
      } finally {
        await client.end({ timeout: 5 });
      }
    },
    drop: () => admin.unsafe(`drop database if exists ${name} with (force)`),
  };
}

function sqliteCount(file, sql) {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (error) => {
      if (error) return reject(error);
      db.get(sql, (queryError, row) => db.close(() => (queryError ? reject(queryError) : resolve(Number(row.count)))));
    });
  });
}

const userTables = {
  postgres: `select count(*) as count from pg_tables where schemaname = 'public' and tablename not like 'schema_version%'`,
  sqlite: `select count(*) as count from sqlite_schema where type = 'table' and name not like 'schema_version%' and name not like 'sqlite_%'`,
};
const ledgerRows = `select count(*) as count from schema_version`;

async function expectCounts(db, { tables, ledger }, what) {
  if (tables !== undefined) {
    const n = await db.count(userTables[db.dialect]);
    if (n !== tables) throw new Error(`${what}: expected ${tables} tables, found ${n}`);
  }
  if (ledger !== undefined) {
    const n = await db.count(ledgerRows);
    if (n !== ledger) throw new Error(`${what}: expected ${ledger} ledger rows, found ${n}`);
  }
}

// ---------------------------------------------------------------- the commands

const tidemark = (project, db, ...args) =>
  measure(process.execPath, [CLI, ...args], { cwd: project.dir, env: { DATABASE_URL: db.url } });

/**
 * The shell runs a script: all files in one transaction (`one`), or each file in its own
 * transaction (`per-file`), stopping at the first error either way.
 */
function shellScript(project, db, script, mode) {
  const file = (suffix) => join(project.dir, `${script}${suffix}.sql`);
  if (db.dialect === 'postgres') {
    const single = mode === 'one' ? ['-1'] : [];
    return measure('psql', [
      '-X',
      '-q',
      ...single,
      '-v',
      'ON_ERROR_STOP=1',
      '-d',
      db.url,
      '-f',
      mode === 'one' ? file('') : file('.per-file'),
    ]);
  }
  return measure('sqlite3', ['-bail', db.file], { stdinFile: mode === 'one' ? file('.sqlite') : file('.per-file') });
}

const SHELL = { postgres: 'psql', sqlite: 'sqlite3' };
const baselineName = (dialect, mode) =>
  `${SHELL[dialect]}, ${mode === 'one' ? 'one transaction' : 'a transaction per file'}`;

/** Each measured group starts from a quiet server: no checkpoint left over from the last DROP DATABASE. */
async function settle(dialect) {
  if (dialect === 'postgres') await admin.unsafe('checkpoint').catch(() => {});
}

/** Runs the steps of one round in an order that rotates from run to run; returns results by name. */
async function rotated(run, steps) {
  const present = steps.filter(([, f]) => f);
  const results = {};
  for (let i = 0; i < present.length; i++) {
    const [name, f] = present[(i + run) % present.length];
    results[name] = await f();
  }
  return results;
}

function shellSelect1(db) {
  if (db.dialect === 'postgres') return measure('psql', ['-X', '-q', '-At', '-d', db.url, '-c', 'select 1']);
  return measure('sqlite3', [db.file, 'select 1']);
}

/** The floor for a whole-process no-op: start node, load the database client, connect, one query. */
function writeNodeQueryScript() {
  const file = join(work, 'node-select-1.mjs');
  writeFileSync(
    file,
    `const url = process.argv[2];
if (url.startsWith('sqlite:')) {
  const { default: sqlite3 } = await import(${JSON.stringify(import.meta.resolve('sqlite3'))});
  const db = await new Promise((resolve, reject) => { const d = new sqlite3.Database(url.slice(7), sqlite3.OPEN_READWRITE, (e) => (e ? reject(e) : resolve(d))); });
  await new Promise((resolve, reject) => db.get('select 1 as one', (e) => (e ? reject(e) : resolve())));
  await new Promise((resolve) => db.close(resolve));
} else {
  const { default: postgres } = await import(${JSON.stringify(import.meta.resolve('postgres'))});
  const sql = postgres(url, { max: 1 });
  await sql\`select 1 as one\`;
  await sql.end({ timeout: 5 });
}
`,
  );
  return file;
}

// ---------------------------------------------------------------- statistics and results

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const summary = (samples) =>
  samples.length === 0
    ? null
    : {
        medianMs: round(median(samples.map((s) => s.ms))),
        minMs: round(Math.min(...samples.map((s) => s.ms))),
        maxMs: round(Math.max(...samples.map((s) => s.ms))),
        samplesMs: samples.map((s) => round(s.ms)),
        peakRssMB: samples.some((s) => s.rssKB != null)
          ? round(Math.max(...samples.map((s) => s.rssKB ?? 0)) / 1024, 1)
          : null,
      };
const round = (x, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

const rows = [];
/** Collected samples, keyed by workload and dialect; baselines are listed in the order shown. */
function series(workload, dialect, baselines, note) {
  const s = { workload, dialect, note, tidemark: [], baselines: Object.fromEntries(baselines.map((b) => [b, []])) };
  rows.push(s);
  return s;
}

const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);

function progress(s, run, tm, base) {
  const parts = Object.entries(base)
    .filter(([, r]) => r)
    .map(([name, r]) => `${name} ${fmtMs(r.ms)}`);
  log(
    `  ${s.workload} ${s.dialect} run ${run + 1}/${RUNS}: tidemark ${fmtMs(tm.ms)}${tm.rssKB ? ` (${(tm.rssKB / 1024).toFixed(0)} MB)` : ''}${parts.length ? `; ${parts.join('; ')}` : ''}`,
  );
}

// ---------------------------------------------------------------- the workloads

/**
 * W1 and W3 share their databases: each run applies on fresh databases (one for tidemark, one per
 * shell baseline), then rolls everything back on the same ones.
 */
async function w1w3(dialect, project) {
  const modes = missingShell[dialect] ? [] : ['one', 'per-file'];
  const names = modes.map((m) => baselineName(dialect, m));
  const peers = peersFor(dialect);
  const w1 = ONLY.has('W1')
    ? series(
        'W1',
        dialect,
        [...names, ...peers.map((p) => p.name)],
        `apply ${project.count.toLocaleString('en')} one-table migrations`,
      )
    : null;
  const w3 = ONLY.has('W3')
    ? series('W3', dialect, names, `rollback --all of ${project.count.toLocaleString('en')}`)
    : null;
  for (let run = 0; run < RUNS; run++) {
    const mine = await freshDatabase(dialect, project);
    const theirs = {};
    try {
      for (const m of modes) theirs[m] = await freshDatabase(dialect, project);
      const up = await applyAll(dialect, project, run, mine, theirs, modes, w1 ? peers : []);
      if (w1) record(w1, run, up);
      if (!w3) continue;
      await settle(dialect);
      const down = await rotated(run, [
        [
          'tidemark',
          () => tidemark(project, mine, 'rollback', '--all').then((r) => check(r, 'tidemark rollback --all')),
        ],
        ...modes.map((m) => [
          baselineName(dialect, m),
          () =>
            shellScript(project, theirs[m], 'rollback', m).then((r) =>
              check(r, `${baselineName(dialect, m)}: rollback`),
            ),
        ]),
      ]);
      await expectCounts(mine, { tables: 0, ledger: 0 }, 'tidemark rollback --all');
      for (const m of modes) await expectCounts(theirs[m], { tables: 0 }, `${baselineName(dialect, m)}: rollback`);
      record(w3, run, down);
    } finally {
      await mine.drop();
      for (const db of Object.values(theirs)) await db.drop();
    }
  }
}

/**
 * `tidemark migrate`, each shell baseline and each peer on their fresh databases, in this run's order;
 * every result checked (a peer's database also holds the peer's own ledger table).
 */
async function applyAll(dialect, project, run, mine, theirs, modes, peers = []) {
  const peerDbs = [];
  try {
    for (const _ of peers) peerDbs.push(await freshDatabase(dialect, project));
    await settle(dialect);
    const results = await rotated(run, [
      ['tidemark', () => tidemark(project, mine, 'migrate').then((r) => check(r, 'tidemark migrate'))],
      ...modes.map((m) => [
        baselineName(dialect, m),
        () => shellScript(project, theirs[m], 'all', m).then((r) => check(r, `${baselineName(dialect, m)}: all`)),
      ]),
      ...peers.map((p, i) => [p.name, () => p.migrate(project, peerDbs[i]).then((r) => check(r, p.name))]),
    ]);
    await expectCounts(mine, { tables: project.count, ledger: project.count }, 'tidemark migrate');
    for (const m of modes) await expectCounts(theirs[m], { tables: project.count }, `${baselineName(dialect, m)}: all`);
    for (const [i, p] of peers.entries()) await expectCounts(peerDbs[i], { tables: project.count + 1 }, p.name);
    return results;
  } finally {
    for (const db of peerDbs) await db.drop();
  }
}

function record(s, run, results) {
  s.tidemark.push(results.tidemark);
  for (const name of Object.keys(s.baselines)) if (results[name]) s.baselines[name].push(results[name]);
  progress(s, run, results.tidemark, Object.fromEntries(Object.keys(s.baselines).map((name) => [name, results[name]])));
}

/**
 * W2: a no-op `migrate` as a whole process, what every deploy pays. The ledger is filled by
 * `tidemark force N --yes` (rows with checksums, no SQL), once per size: a no-op writes nothing,
 * so every run sees the same database.
 */
async function w2(dialect, project, nodeQuery, main) {
  const shell = dialect === 'postgres' ? "psql -c 'select 1'" : "sqlite3 'select 1'";
  const peers = peersFor(dialect);
  const baselines = [
    ...(main ? ['node + connect + select 1', shell, 'node -e 0'] : ['node + connect + select 1']),
    ...peers.map((p) => p.name),
  ];
  const s = series(`W2`, dialect, baselines, `no-op migrate, ${project.count.toLocaleString('en')} applied`);
  s.applied = project.count;
  const db = await freshDatabase(dialect, project);
  const peerDbs = [];
  try {
    check(await tidemark(project, db, 'force', String(project.count), '--yes'), `tidemark force ${project.count}`);
    await expectCounts(db, { ledger: project.count }, 'tidemark force');
    // Each peer applies everything once (not timed): its no-op runs then read a ledger it wrote itself.
    for (const p of peers) {
      const peerDb = await freshDatabase(dialect, project);
      peerDbs.push(peerDb);
      check(await p.migrate(project, peerDb), `${p.name}: apply ${project.count}`);
    }
    await settle(dialect);
    for (let run = 0; run < RUNS; run++) {
      const results = await rotated(run, [
        ['tidemark', () => tidemark(project, db, 'migrate').then((r) => check(r, 'tidemark migrate'))],
        [
          'node + connect + select 1',
          () => measure(process.execPath, [nodeQuery, db.url]).then((r) => check(r, 'node + select 1')),
        ],
        [shell, main && !missingShell[dialect] ? () => shellSelect1(db).then((r) => check(r, shell)) : null],
        ['node -e 0', main ? () => measure(process.execPath, ['-e', '0']).then((r) => check(r, 'node -e 0')) : null],
        ...peers.map((p, i) => [
          p.name,
          () => p.migrate(project, peerDbs[i]).then((r) => check(r, `${p.name}: no-op`)),
        ]),
      ]);
      if (!/up to date/.test(results.tidemark.stdout))
        throw new Error(`W2: expected "up to date", got:\n${results.tidemark.stdout}`);
      record(s, run, results);
    }
    await expectCounts(db, { ledger: project.count }, 'W2 (nothing written)');
  } finally {
    await db.drop();
    for (const peerDb of peerDbs) await peerDb.drop();
  }
}

async function w4(dialect, project) {
  const modes = missingShell[dialect] ? [] : ['one', 'per-file'];
  const names = modes.map((m) => baselineName(dialect, m));
  const s = series('W4', dialect, names, `apply ${project.count} migrations of ${SIZES.w4Statements} statements`);
  for (let run = 0; run < RUNS; run++) {
    const mine = await freshDatabase(dialect, project);
    const theirs = {};
    try {
      for (const m of modes) theirs[m] = await freshDatabase(dialect, project);
      record(s, run, await applyAll(dialect, project, run, mine, theirs, modes));
    } finally {
      await mine.drop();
      for (const db of Object.values(theirs)) await db.drop();
    }
  }
}

// ---------------------------------------------------------------- main

const loadBefore = loadavg();
let exitCode = 0;
try {
  log(
    `tidemark bench: ${RUNS} run(s) each${QUICK ? ' (quick)' : ''}, ${cpus().length} CPUs, load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`,
  );
  log(
    `peak RSS via ${GNU_TIME ? `${GNU_TIME} -f %M` : "node's process.resourceUsage().maxRSS (no /usr/bin/time; baselines' RSS unknown)"}`,
  );
  for (const d of DIALECTS) if (missingShell[d]) log(`note: ${missingShell[d]}`);
  if (DIALECTS.includes('postgres')) {
    server = await postgresServer({ log: (line) => process.stderr.write(line) });
    admin = postgres(server.url, { max: 1, onnotice: () => {} });
  }
  log(`generating workloads in ${work}`);
  const projects = {};
  if (ONLY.has('W1') || ONLY.has('W3')) projects.w1 = generate('w1', SIZES.w1, tinyTable);
  if (ONLY.has('W2')) projects.w2 = SIZES.w2.map((n) => generate(`w2-${n}`, n, tinyTable));
  if (ONLY.has('W4')) projects.w4 = generate('w4', SIZES.w4, fiftyStatements(SIZES.w4Statements));
  const nodeQuery = writeNodeQueryScript();

  for (const dialect of DIALECTS) {
    log(`\n== ${dialect}`);
    if (projects.w1) await w1w3(dialect, projects.w1);
    if (projects.w2) {
      const mainSize = SIZES.w2.includes(SIZES.w1) ? SIZES.w1 : SIZES.w2[SIZES.w2.length - 1];
      for (const p of projects.w2) await w2(dialect, p, nodeQuery, p.count === mainSize);
    }
    if (projects.w4) await w4(dialect, projects.w4);
  }
} catch (error) {
  log(`\nbench failed: ${error.stack ?? error}`);
  exitCode = 1;
} finally {
  await admin?.end({ timeout: 5 }).catch(() => {});
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
}
const loadAfter = loadavg();

// One line per (workload, dialect, baseline); the W2 rows name how many migrations were applied.
const table = [];
for (const s of rows) {
  const tm = summary(s.tidemark);
  if (!tm) continue;
  const names = Object.keys(s.baselines);
  for (const [i, name] of names.entries()) {
    const base = summary(s.baselines[name]);
    table.push({
      workload: s.workload,
      what: s.note,
      dialect: s.dialect,
      applied: s.applied,
      tidemark: tm,
      baseline: name,
      baselineResult: base,
      ratio: base ? round(tm.medianMs / base.medianMs, 2) : null,
      repeat: i > 0,
    });
  }
}

const range = (r) => `${fmtMs(r.medianMs)} [${fmtMs(r.minMs)}–${fmtMs(r.maxMs)}]`;
const lines = [
  '| workload | dialect | tidemark median [min–max] | baseline | baseline median [min–max] | ratio | peak RSS MB |',
  '|---|---|---|---|---|---|---|',
];
for (const r of table) {
  lines.push(
    `| ${r.workload} ${r.what} | ${r.dialect} | ${range(r.tidemark)} | ${r.baseline} | ${r.baselineResult ? range(r.baselineResult) : 'skipped'} | ${r.ratio == null ? '–' : `${r.ratio.toFixed(2)}×`} | ${r.tidemark.peakRssMB ?? '–'} |`,
  );
}
const growth = [];
for (const dialect of DIALECTS) {
  const w2rows = rows.filter((s) => s.workload === 'W2' && s.dialect === dialect && s.tidemark.length > 0);
  if (w2rows.length < 2) continue;
  const [lo, hi] = [w2rows[0], w2rows[w2rows.length - 1]];
  const delta = median(hi.tidemark.map((x) => x.ms)) - median(lo.tidemark.map((x) => x.ms));
  growth.push(
    `W2 ${dialect}: ${w2rows.map((s) => `${s.applied.toLocaleString('en')} applied ${fmtMs(median(s.tidemark.map((x) => x.ms)))}`).join(', ')}; ` +
      `${delta >= 0 ? '+' : ''}${fmtMs(delta)} from ${lo.applied.toLocaleString('en')} to ${hi.applied.toLocaleString('en')} (${round((delta * 1000) / (hi.applied - lo.applied), 0)} µs per applied migration)`,
  );
}
const machine = `tidemark ${available('git', ['-C', ROOT, 'describe', '--always', '--dirty']) ?? '(no git)'}, node ${process.version}; ${cpus().length} CPUs; load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`;

if (table.length > 0) {
  process.stdout.write(
    `\n${lines.join('\n')}\n\n${growth.map((g) => `${g}\n`).join('')}${machine}; ${RUNS} run(s) each, interleaved with the baselines\n`,
  );
  const results = {
    date: new Date().toISOString(),
    commit: available('git', ['-C', ROOT, 'describe', '--always', '--dirty']),
    node: process.version,
    psql: PSQL,
    sqlite3Shell: SQLITE_SHELL,
    sqlite3Module: sqlite3.VERSION,
    postgresServer: server ? (server.embedded ? 'embedded' : 'TEST_DATABASE_URL') : null,
    cpus: cpus().length,
    loadAverageBefore: loadBefore,
    loadAverageAfter: loadAfter,
    runs: RUNS,
    quick: QUICK,
    peakRss: GNU_TIME ? 'GNU time %M' : 'process.resourceUsage().maxRSS',
    skipped: Object.values(missingShell).filter(Boolean),
    peers: PEERS.map((p) => p.name),
    rows: table.map(({ repeat, ...r }) => r),
    w2Growth: growth,
  };
  writeFileSync(join(ROOT, 'bench-results.json'), `${JSON.stringify(results, null, 2)}\n`);
  log(`\nwrote bench-results.json`);
}
process.exit(exitCode);

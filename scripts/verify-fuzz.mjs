// The randomized truth check of `verify`: random sequences of hand DDL, migrate, rollback, force, resolve,
// baseline and hand runs of `tidemark sql` scripts against a real database; after every step,
// verify's verdict is compared with the truth computed independently: the forward files of the
// ledger's applied versions, in apply order, run directly (no tidemark) on a fresh database, and the
// two schemas taken with `schema` (what `tidemark schema --json` prints) compared.
//
//   node scripts/verify-fuzz.mjs [--dialect sqlite|postgres] [--sequences 200] [--steps 6] [--seed 12]
//
// PostgreSQL comes from TEST_DATABASE_URL (else an embedded server, as `npm test` does). The test
// suite runs a few sequences of it (test/fuzz.test.mjs); `npm run fuzz:verify` runs 200 per dialect.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import postgres from 'postgres';
import sqlite3 from 'sqlite3';
import { createMigrator, TidemarkError } from '../dist/index.js';

/** The migrations every sequence works with: portable SQL, run by both dialects. */
export const FUZZ_FILES = {
  '001_users.sql': 'CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n',
  '001_users_rollback.sql': 'DROP TABLE users;\n',
  '002_users_email.sql': 'CREATE UNIQUE INDEX users_email_idx ON users (email);\n',
  '002_users_email_rollback.sql': 'DROP INDEX users_email_idx;\n',
  '003_orders.sql':
    'CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id), total NUMERIC NOT NULL DEFAULT 0);\n' +
    'CREATE INDEX orders_user_idx ON orders (user_id);\n',
  '003_orders_rollback.sql': 'DROP INDEX orders_user_idx;\nDROP TABLE orders;\n',
  '004_users_name.sql': 'ALTER TABLE users ADD COLUMN name TEXT;\n',
  '004_users_name_rollback.sql': 'ALTER TABLE users DROP COLUMN name;\n',
  '005_audit.sql': 'CREATE TABLE audit (id INTEGER PRIMARY KEY, note TEXT);\n',
  '005_audit_rollback.sql': 'DROP TABLE audit;\n',
  '006_orders_note.sql': "ALTER TABLE orders ADD COLUMN note TEXT DEFAULT 'none';\n",
  '006_orders_note_rollback.sql': 'ALTER TABLE orders DROP COLUMN note;\n',
  '007_user_orders.sql':
    'CREATE VIEW user_orders AS SELECT u.id, count(o.id) AS n FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id;\n',
  '007_user_orders_rollback.sql': 'DROP VIEW user_orders;\n',
};
const FORWARD = Object.fromEntries(
  Object.entries(FUZZ_FILES)
    .filter(([name]) => !name.includes('_rollback'))
    .map(([name, text]) => [Number(name.slice(0, 3)), text]),
);
const VERSIONS = Object.keys(FORWARD).map(Number);

/** mulberry32: a small seeded generator, so a sequence can be replayed from its seed. */
function random(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  return { next, int, pick: (items) => items[int(items.length)] };
}

/** A database of one dialect: a URL for tidemark, raw SQL for hand changes, and reset() to start it over empty. */
async function database(dialect, adminUrl, folder) {
  if (dialect === 'sqlite') {
    let file = '';
    const db = {
      url: '',
      exec: (sql) =>
        new Promise((resolve, reject) => {
          const handle = new sqlite3.Database(file, (error) => {
            if (error) return reject(error);
            handle.exec(sql, (execError) => handle.close(() => (execError ? reject(execError) : resolve())));
          });
        }),
      query: (sql) =>
        new Promise((resolve, reject) => {
          const handle = new sqlite3.Database(file, (error) => {
            if (error) return reject(error);
            handle.all(sql, (queryError, rows) =>
              handle.close(() => (queryError ? reject(queryError) : resolve(rows))),
            );
          });
        }),
      reset: async () => {
        if (file) rmSync(file, { force: true });
        file = join(folder, `db-${randomBytes(4).toString('hex')}.db`);
        db.url = `sqlite:${file}`;
        await db.exec('select 1');
      },
      close: async () => rmSync(file, { force: true }),
    };
    await db.reset();
    return db;
  }
  const name = `tidemark_fuzz_${randomBytes(5).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let client = null;
  const db = {
    url: url.toString(),
    exec: async (sql) => void (await client.unsafe(sql)),
    query: async (sql) => [...(await client.unsafe(sql))],
    // Much faster than a new database, and as empty: every object of the fuzz files and steps lives in public.
    reset: async () => {
      if (!client) {
        await admin.unsafe(`create database ${name}`);
        client = postgres(db.url, { max: 1, onnotice: () => {} });
      }
      await client.unsafe('drop schema if exists public cascade; create schema public');
    },
    close: async () => {
      await client?.end({ timeout: 5 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end({ timeout: 5 });
    },
  };
  await db.reset();
  return db;
}

/** The ledger's versions in apply order (id order), read directly; [] before the table exists. */
async function appliedInOrder(db) {
  try {
    return (await db.query('select version from schema_version order by id')).map((r) => Number(r.version));
  } catch {
    return [];
  }
}

/** Runs a tidemark call; a TidemarkError is a refused or failed step (part of the game), anything else a bug. */
async function attempt(what, run) {
  try {
    await run();
    return `${what}: ok`;
  } catch (error) {
    if (!(error instanceof TidemarkError)) throw error;
    return `${what}: refused or failed (exit ${error.exitCode})`;
  }
}

/** The steps a sequence picks from, by weight. Each returns a line for the replay log. */
const ACTIONS = [
  { name: 'hand DDL', weight: 4, run: handDdl },
  { name: 'migrate', weight: 4, run: migrate },
  { name: 'rollback', weight: 2, run: rollback },
  { name: 'force', weight: 1, run: force },
  { name: 'baseline', weight: 1, run: baselineFresh },
  { name: 'sql script by hand', weight: 2, run: sqlScriptByHand },
  { name: 'unrecord', weight: 1, run: unrecord },
  { name: 'resolve', weight: 1, run: resolveDirty },
];

function migrate(s) {
  const target = s.rng.pick([...VERSIONS, undefined]);
  return attempt(`migrate ${target ?? ''} --allow-out-of-order`, () =>
    s.tidemark.migrate({ target, allowOutOfOrder: true }),
  );
}

function rollback(s) {
  const steps = 1 + s.rng.int(3);
  return attempt(`rollback ${steps}`, () => s.tidemark.rollback({ steps }));
}

function force(s) {
  const version = s.rng.pick([0, ...VERSIONS]);
  return attempt(`force ${version} --yes`, () => s.tidemark.force(version));
}

/** A change a DBA makes by hand, on objects that exist now; it may fail (a dependency), which is fine. */
async function handDdl(s) {
  const schema = await s.tidemark.schema();
  const n = s.counter++;
  const table = schema.tables.length ? s.rng.pick(schema.tables) : null;
  const choices = [`CREATE TABLE h${n} (id INTEGER PRIMARY KEY, v TEXT)`];
  if (table) {
    choices.push(
      `ALTER TABLE ${table.name} ADD COLUMN h${n} TEXT`,
      `DROP TABLE ${table.name}`,
      `CREATE INDEX h${n}_idx ON ${table.name} (id)`,
    );
    const column = s.rng.pick(table.columns.filter((c) => c.name !== 'id'));
    if (column) choices.push(`ALTER TABLE ${table.name} DROP COLUMN ${column.name}`);
  }
  if (schema.indexes.length) choices.push(`DROP INDEX ${s.rng.pick(schema.indexes).name}`);
  const sql = s.rng.pick(choices);
  try {
    await s.db.exec(sql);
    return `hand: ${sql}`;
  } catch (error) {
    return `hand: ${sql} (failed: ${error.message.split('\n')[0]})`;
  }
}

/** A fresh database built by hand up to some version (maybe not the one then recorded), adopted with baseline. */
async function baselineFresh(s) {
  await s.db.reset();
  s.tidemark = s.migratorFor(s.db.url);
  const built = s.rng.int(VERSIONS.length + 1);
  for (const v of VERSIONS.slice(0, built)) await s.db.exec(FORWARD[v]);
  const v = s.rng.pick(VERSIONS);
  return `fresh database built by hand to ${VERSIONS[built - 1] ?? 0}; ${await attempt(`baseline ${v}`, () => s.tidemark.baseline(v))}`;
}

/** `tidemark sql` (migrate or rollback) run by hand: psql -v ON_ERROR_STOP=1 -f, or the sqlite3 package's exec. */
async function sqlScriptByHand(s) {
  const rollback = s.rng.int(3) === 0;
  const options = rollback
    ? { rollback: true, steps: 1 + s.rng.int(2) }
    : { target: s.rng.pick([...VERSIONS, undefined]), allowOutOfOrder: true };
  let script;
  try {
    script = await s.tidemark.sql(options);
  } catch (error) {
    if (!(error instanceof TidemarkError)) throw error;
    return `sql ${JSON.stringify(options)}: refused (exit ${error.exitCode})`;
  }
  if (s.dialect === 'postgres') {
    const file = join(s.folder, 'script.sql');
    writeFileSync(file, script);
    const r = spawnSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file, s.db.url], { encoding: 'utf8' });
    return `sql ${JSON.stringify(options)} | psql: exit ${r.status}${r.status ? ` (${r.stderr.trim().split('\n')[0]})` : ''}`;
  }
  // `.bail on` is the sqlite3 shell's; exec stops at the first error anyway.
  const sql = script
    .split('\n')
    .filter((line) => !line.startsWith('.'))
    .join('\n');
  try {
    await s.db.exec(sql);
    return `sql ${JSON.stringify(options)} | sqlite3 exec: ok`;
  } catch (error) {
    return `sql ${JSON.stringify(options)} | sqlite3 exec: failed (${error.message})`;
  }
}

/** A DBA deletes a ledger row below the top by hand: the next migrate applies it out of order. */
async function unrecord(s) {
  const versions = (await appliedInOrder(s.db)).sort((a, b) => a - b).slice(0, -1);
  if (versions.length === 0) return 'unrecord: nothing below the top';
  const v = s.rng.pick(versions);
  await s.db.exec(`delete from schema_version where version = ${v}`);
  return `hand: delete from schema_version where version = ${v}`;
}

/**
 * A no-transaction step interrupted (its row marked dirty by hand, on its way up or down), then
 * settled as the hint says, with `resolve <V> --applied` or `--not-applied` chosen at random.
 */
async function resolveDirty(s) {
  const versions = await appliedInOrder(s.db);
  if (versions.length === 0) return 'resolve: nothing applied';
  const v = s.rng.pick(versions);
  const direction = s.rng.pick(['up', 'down']);
  const applied = s.rng.pick([true, false]);
  const dirty = s.dialect === 'postgres' ? 'true' : '1';
  await s.db.exec(`update schema_version set dirty = ${dirty}, dirty_action = '${direction}' where version = ${v}`);
  const command = `resolve ${v} ${applied ? '--applied' : '--not-applied'}`;
  return `hand: mark ${v} dirty (${direction}); ${await attempt(command, () => s.tidemark.resolve(v, applied))}`;
}

/**
 * The truth, without tidemark's verify: the applied versions' forward files run directly, in apply
 * order, on a fresh database, and its schema compared with the live one.
 */
async function truth(s) {
  const applied = await appliedInOrder(s.db);
  await s.truthDb.reset();
  for (const v of applied) {
    try {
      await s.truthDb.exec(FORWARD[v]);
    } catch (error) {
      return { applied, buildable: false, why: `${v}: ${error.message}` };
    }
  }
  const expected = JSON.stringify(await s.migratorFor(s.truthDb.url).schema());
  const live = JSON.stringify(await s.tidemark.schema());
  const pending = VERSIONS.filter((v) => !applied.includes(v));
  return { applied, buildable: true, drift: expected !== live, pending, expected, live };
}

/** One verdict: verify's report against the truth. Returns null when they agree, else what differs. */
function judge(report, t) {
  const drift = report.findings.some((f) => f.check === 'drift');
  const reference = report.findings.some((f) => f.check === 'reference');
  if (!t.buildable)
    return reference && !report.ok
      ? null
      : `the files do not build (${t.why}), yet verify ${report.ok ? 'said verified' : 'compared'}`;
  const ok = !t.drift && t.pending.length === 0;
  if (report.ok === ok && drift === t.drift && !reference) return null;
  const findings = report.findings.map((f) => `${f.check}: ${f.message} ${f.details.join('; ')}`);
  return `truth: drift ${t.drift}, pending [${t.pending}]; verify: ok ${report.ok}, ${findings.join(' | ') || 'no findings'}`;
}

/**
 * Runs `sequences` sequences of `steps` random steps on one dialect and checks every verdict.
 * Sequence i uses seed `seed + i`, so any failure replays alone with --seed and --sequences 1.
 */
export async function fuzzVerify({ dialect, sequences, steps, seed, adminUrl, onSequence = () => {} }) {
  const folder = mkdtempSync(join(tmpdir(), 'tidemark-fuzz-'));
  mkdirSync(join(folder, 'sql'));
  for (const [name, text] of Object.entries(FUZZ_FILES)) writeFileSync(join(folder, 'sql', name), text);
  const migratorFor = (url) => createMigrator({ url, cwd: folder, dir: 'sql' });
  const totals = { dialect, sequences: 0, steps: 0, verdicts: 0, drift: 0, clean: 0, unbuildable: 0, wrong: [] };
  const db = await database(dialect, adminUrl, folder);
  const truthDb = await database(dialect, adminUrl, folder);
  try {
    for (let i = 0; i < sequences; i++) {
      const s = { dialect, folder, db, truthDb, migratorFor, rng: random(seed + i), counter: 0, log: [] };
      await db.reset();
      s.tidemark = migratorFor(db.url);
      for (let step = 0; step < steps; step++) {
        const action = weighted(s.rng);
        s.log.push(await action.run(s));
        totals.steps++;
        const report = await s.tidemark.verify();
        const t = await truth(s);
        totals.verdicts++;
        if (!t.buildable) totals.unbuildable++;
        else if (t.drift) totals.drift++;
        else totals.clean++;
        const wrong = judge(report, t);
        if (wrong) totals.wrong.push({ seed: seed + i, step, log: [...s.log], wrong });
      }
      totals.sequences++;
      onSequence(totals, s.log);
    }
  } finally {
    await db.close();
    await truthDb.close();
    rmSync(folder, { recursive: true, force: true });
  }
  return totals;
}

function weighted(rng) {
  const total = ACTIONS.reduce((sum, a) => sum + a.weight, 0);
  let roll = rng.int(total);
  for (const action of ACTIONS) {
    roll -= action.weight;
    if (roll < 0) return action;
  }
  return ACTIONS[0];
}

/** The command line: both dialects (or one), 200 sequences each, a report of the counts. */
async function main() {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const { postgresServer } = await import('./postgres-server.mjs');
  const env = { ...process.env };
  const server = await postgresServer({ env });
  let failed = false;
  try {
    const dialects = arg('dialect') ? [arg('dialect')] : ['sqlite', 'postgres'];
    for (const dialect of dialects) {
      const started = Date.now();
      const totals = await fuzzVerify({
        dialect,
        sequences: Number(arg('sequences', 200)),
        steps: Number(arg('steps', 6)),
        seed: Number(arg('seed', 12)),
        adminUrl: server.url,
        onSequence: (t) =>
          t.sequences % 20 === 0 &&
          process.stderr.write(`${dialect}: ${t.sequences} sequences, ${t.wrong.length} wrong\n`),
      });
      for (const w of totals.wrong)
        process.stdout.write(`WRONG seed ${w.seed} step ${w.step}: ${w.wrong}\n  ${w.log.join('\n  ')}\n`);
      const { sequences, steps, verdicts, drift, clean, unbuildable, wrong } = totals;
      process.stdout.write(
        `${dialect}: ${sequences} sequences, ${steps} steps, ${verdicts} verdicts checked (${drift} with drift, ${clean} without, ` +
          `${unbuildable} where the files do not build), ${wrong.length} wrong, ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
      );
      failed ||= wrong.length > 0;
    }
  } finally {
    await server?.stop();
  }
  process.exit(failed ? 1 : 0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();

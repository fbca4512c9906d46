// The differential fuzz of how tidemark reads SQL files, against the real servers: files generated
// from a grammar of tricky tokens (quotes of every kind, E'' strings, dollar tags, nested and
// unclosed comments, quoted identifiers, semicolons inside all of these, transaction keywords with
// comments and blanks in every gap, psql meta-commands, NUL and invalid UTF-8) are migrated, and the
// verdict is checked against what the database holds afterwards:
//   - exit 0 (applied)  => the ledger row exists and every marker table the file creates is there;
//   - exit 1 (failed) or 2 (refused) => no ledger row and no table of the file at all.
// Each top-level statement of a file creates a marker table (m1, m2, ...); decoy statements inside
// strings and comments would create d1, d2, ... if read as SQL. A third of the files end in a
// statement that fails, so a COMMIT that slipped through leaves tables without a row and is caught.
//
//   node scripts/sql-fuzz.mjs [--dialect sqlite|postgres] [--files 5000] [--seed 7] [--dist path/to/dist/index.js]
//
// The PostgreSQL database has standard_conforming_strings = off as its default, as some servers do.
// PostgreSQL comes from TEST_DATABASE_URL (else an embedded server, as `npm test` does). The test
// suite runs a fast subset (test/sqlfuzz.test.mjs); `npm run fuzz:sql` runs 5,000 files per dialect.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import postgres from 'postgres';
import sqlite3 from 'sqlite3';

/** mulberry32: a small seeded generator, so every file can be made again from its seed. */
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
  return { next, int, chance: (p) => next() < p, pick: (items) => items[int(items.length)] };
}

// ---- the grammar ------------------------------------------------------------------------------

/** What may stand between two tokens: blanks and comments of every kind. */
const GAPS = [
  ' ',
  '  ',
  '\n',
  '\t',
  '/**/',
  '/* ; */',
  '/* commit; */',
  '-- ; rollback;\n',
  ' /* a /* b */ c */ ',
  '\n-- x\n',
];

/** Transaction control as people write it; `[dialect]` limits one to where it parses. */
const CONTROL = [
  ['commit'],
  ['COMMIT', 'WORK'],
  ['rollback'],
  ['ROLLBACK', 'TRANSACTION'],
  ['end'],
  ['begin'],
  ['BEGIN', 'TRANSACTION'],
  ['abort', '[postgres]'],
  ['start', 'transaction', '[postgres]'],
  ['commit', 'and', 'chain', '[postgres]'],
  ['prepare', 'transaction', "'fz'", '[postgres]'],
  ['begin', 'immediate', '[sqlite]'],
  ['end', 'transaction', '[sqlite]'],
];

/** Text that is harmless inside a quote or comment, and dangerous if read as SQL. */
function payload(g, ctx) {
  const decoy = `CREATE TABLE d${ctx.decoy++} (a INTEGER)`;
  return g.pick([
    `;commit;`,
    `; ${decoy};`,
    `x;rollback;${decoy}`,
    `;end;`,
    ` begin; `,
    `\\`,
    `-- ;`,
    `/* ;`,
    `*/;`,
    `$$;`,
    `';commit;`,
  ]);
}

function gap(g) {
  return g.chance(0.5) ? ' ' : g.pick(GAPS);
}

/** A statement that creates the next marker table, its names written in every quoting. */
function marker(g, ctx) {
  const name = `m${ctx.markers.length + 1}`;
  ctx.markers.push(name);
  const sqliteOnly = ctx.dialect === 'sqlite' || g.chance(0.05);
  const table = g.pick([name, `"${name}"`, ...(sqliteOnly ? [`[${name}]`, `\`${name}\``] : [])]);
  const columns = g.pick([
    'a INTEGER',
    'begin INTEGER, x INTEGER',
    '"a;b" INTEGER',
    '"c""d;" INTEGER',
    'a INTEGER, "end" INTEGER',
    ...(sqliteOnly ? ['[a;b] INTEGER', '`a;b` INTEGER'] : []),
  ]);
  return `CREATE${gap(g)}TABLE${gap(g)}${table}${gap(g)}(${columns})`;
}

/** A statement that holds a quoted run with semicolons and keywords inside. */
function quoted(g, ctx) {
  const text = payload(g, ctx);
  const plain = text.replace(/'/g, "''");
  return g.pick([
    `SELECT${gap(g)}'${plain}'${gap(g)}AS x`,
    `SELECT 'it''s;' || '${plain}' AS x`,
    `SELECT E'a\\';${plain.replace(/\\/g, '\\\\')}' AS x`,
    `SELECT e'\\\\' AS x`,
    `SELECT 'a\\' AS x`,
    `SELECT $$${text.replace(/\$\$/g, '')}$$ AS x`,
    `SELECT $q$${text.replace(/\$q\$/g, '')}$q$ AS x`,
    `SELECT $a$ $b$ ${text.replace(/\$[ab]\$/g, '')} $b$ $a$ AS x`,
    `SELECT "${text.replace(/"/g, '""')}" FROM (SELECT 1 AS "${text.replace(/"/g, '""')}") s`,
    `SELECT 1 AS [${text.replace(/]/g, '')}]`,
    `SELECT 1 AS \`${text.replace(/`/g, '``')}\``,
    `SELECT X'00ff' AS x`,
  ]);
}

/** A transaction keyword with a gap of any kind wherever one may stand. */
function control(g, dialect) {
  const words = g.pick(
    CONTROL.filter((c) => !c.at(-1).startsWith('[') || c.at(-1) === `[${dialect}]` || g.chance(0.2)),
  );
  return words.filter((w) => !w.startsWith('[')).join(g.pick([' ', '/**/', '\n', ' -- c\n', '/* x */']));
}

/**
 * A comment holding the payload. It ends its line: where a dialect reads a `--` inside the other's
 * comment (SQLite in `/* a /* b *\/ -- ...`), the rest of the line is a comment there, and must not
 * hold the next marker.
 */
function comment(g, ctx) {
  const text = payload(g, ctx).replace(/\*\//g, '').replace(/\/\*/g, '');
  return `${g.pick([`-- ${text}`, `/* ${text} */`, `/* outer /* ${text} */ still */`, `/* a /* b */ ${text} /* c */`])}\n`;
}

function metaCommand(g) {
  return `\n${g.pick(['\\set ON_ERROR_STOP on', '\\echo hi; commit;', '\\timing', "\\echo '", '\\i other.sql', '  \\set ON_ERROR_STOP 1'])}\n`;
}

function routine(g, ctx) {
  const name = `m${ctx.markers.length}`;
  return g.pick([
    `CREATE TRIGGER t${ctx.markers.length} AFTER INSERT ON ${name} BEGIN INSERT INTO ${name} VALUES (CASE WHEN new.a > 0 THEN 1 END); DELETE FROM ${name} WHERE 0; END`,
    `CREATE FUNCTION f${ctx.markers.length}() RETURNS integer LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END`,
    `CREATE FUNCTION g${ctx.markers.length}() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN COMMIT; RETURN ';'; END $body$`,
    `SAVEPOINT s1;${gap(g)}SELECT 1;${gap(g)}RELEASE${gap(g)}s1`,
    `SAVEPOINT s2; ROLLBACK${gap(g)}TO s2`,
  ]);
}

/** One migration file: its bytes, the marker tables it creates when it runs, and a line saying how it was made. */
export function generateFile(seed, dialect) {
  const g = random(seed);
  const ctx = { markers: [], decoy: 1, dialect };
  const parts = [];
  const count = 1 + g.int(5);
  for (let i = 0; i < count; i++) {
    parts.push(`${marker(g, ctx)};`);
    const extra = g.int(10);
    if (extra === 0) parts.push(`${control(g, dialect)}${gap(g)};`);
    else if (extra <= 3) parts.push(`${quoted(g, ctx)}${gap(g)};`);
    else if (extra === 4) parts.push(comment(g, ctx));
    else if (extra === 5) parts.push(metaCommand(g));
    else if (extra === 6) parts.push(`${routine(g, ctx)};`);
  }
  if (g.chance(0.1)) {
    parts.unshift(`${g.pick(['BEGIN', 'begin', 'BEGIN TRANSACTION', 'START TRANSACTION'])}${gap(g)};`);
    parts.push(`${g.pick(['COMMIT', 'end', 'commit/* done */'])}${gap(g)};`);
  }
  if (g.chance(0.3)) parts.push('INSERT INTO nowhere VALUES (1);');
  let text = parts.join(g.pick(['\n', '\n\n', ' ', '\n-- between\n']));
  if (g.chance(0.04))
    text += g.pick(["\nSELECT 'never closed;", '\n/* never closed', '\nSELECT $z$ never closed', '\nSELECT "never']);
  let bytes = Buffer.from(text, 'utf8');
  if (g.chance(0.04)) {
    const at = g.int(bytes.length + 1);
    bytes = Buffer.concat([
      bytes.subarray(0, at),
      Buffer.from(g.pick([[0x00], [0xff], [0xc3], [0xe2, 0x82]])),
      bytes.subarray(at),
    ]);
  }
  return { bytes, markers: ctx.markers };
}

// ---- running and judging ----------------------------------------------------------------------

/** The database the fuzz runs in, emptied between files. */
async function fuzzDatabase(dialect, adminUrl, folder) {
  if (dialect === 'sqlite') {
    const file = join(folder, 'fuzz.db');
    const all = (text) =>
      new Promise((done, fail) => {
        const db = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (error) => {
          if (error) return fail(error);
          db.all(text, (queryError, rows) => db.close(() => (queryError ? fail(queryError) : done(rows))));
        });
      });
    return {
      url: `sqlite:${file}`,
      tables: async () =>
        existsSync(file)
          ? (await all(`select name from sqlite_schema where type = 'table' and name not like 'sqlite_%'`)).map(
              (r) => r.name,
            )
          : [],
      ledger: async () => (await all('select version from schema_version')).map((r) => Number(r.version)),
      reset: async () => rmSync(file, { force: true }),
      close: async () => rmSync(file, { force: true }),
    };
  }
  const name = `tidemark_sqlfuzz_${randomBytes(5).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  // Some servers still default to off: the session tidemark opens must read strings as its lexer does anyway.
  await admin.unsafe(`alter database ${name} set standard_conforming_strings = off`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
  return {
    url: url.toString(),
    tables: async () =>
      (await sql`select table_name from information_schema.tables where table_schema = 'public'`).map(
        (r) => r.table_name,
      ),
    ledger: async () => (await sql`select version from schema_version`).map((r) => Number(r.version)),
    reset: () => sql.unsafe('drop schema public cascade; create schema public'),
    close: async () => {
      await sql.end({ timeout: 5 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end({ timeout: 5 });
    },
  };
}

/** What the database holds against what the verdict says; null when they agree. */
function disagreement(verdict, ledger, tables, markers) {
  const own = tables.filter((t) => /^[md]\d+$/.test(t));
  if (verdict === 'applied') {
    if (!ledger.includes(1)) return 'exit 0 without a ledger row';
    const missing = markers.filter((m) => !tables.includes(m));
    return missing.length > 0 ? `applied with ${missing.join(', ')} missing` : null;
  }
  if (ledger.includes(1)) return `${verdict} with a ledger row`;
  return own.length > 0 ? `${verdict}, yet ${own.sort().join(', ')} stayed` : null;
}

/**
 * Migrates `files` generated files (seeds seed, seed+1, ...) one at a time on one database of the
 * dialect, emptied between them; `dist` is the build of tidemark to test (another build: its index.js).
 */
export async function fuzzSql({ dialect, files, seed, adminUrl, dist = '../dist/index.js', onFile = () => {} }) {
  const { createMigrator } = await import(dist.startsWith('.') ? dist : pathToFileURL(resolve(dist)).href);
  const folder = mkdtempSync(join(tmpdir(), 'tidemark-sqlfuzz-'));
  const sqlDir = join(folder, 'sql');
  mkdirSync(sqlDir);
  writeFileSync(join(sqlDir, '001_fuzz_rollback.sql'), 'SELECT 1;\n');
  const db = await fuzzDatabase(dialect, adminUrl, folder);
  const totals = { files: 0, applied: 0, failed: 0, refused: 0, disagreements: [] };
  try {
    for (let n = 0; n < files; n++) {
      const fileSeed = seed + n;
      const { bytes, markers } = generateFile(fileSeed, dialect);
      writeFileSync(join(sqlDir, '001_fuzz.sql'), bytes);
      const verdict = await migrate(createMigrator, db.url, folder);
      const tables = await db.tables();
      const ledger = tables.includes('schema_version') ? await db.ledger() : [];
      const wrong =
        verdict === 'other' ? 'an exit code other than 0, 1 or 2' : disagreement(verdict, ledger, tables, markers);
      totals.files++;
      if (verdict !== 'other') totals[verdict]++;
      if (wrong) totals.disagreements.push({ seed: fileSeed, verdict, wrong, text: bytes.toString('latin1') });
      onFile(totals);
      await db.reset();
    }
  } finally {
    await db.close();
    rmSync(folder, { recursive: true, force: true });
  }
  return totals;
}

async function migrate(createMigrator, url, cwd) {
  try {
    await createMigrator({ url, cwd, dir: 'sql', log: false, quiet: true }, () => {}).migrate();
    return 'applied';
  } catch (error) {
    const code = error?.exitCode;
    return code === 1 ? 'failed' : code === 2 ? 'refused' : 'other';
  }
}

/** The command line: both dialects (or one), 5,000 files each, the counts and every disagreement. */
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
    for (const dialect of arg('dialect') ? [arg('dialect')] : ['sqlite', 'postgres']) {
      const started = Date.now();
      const totals = await fuzzSql({
        dialect,
        files: Number(arg('files', 5000)),
        seed: Number(arg('seed', 7)),
        adminUrl: server.url,
        dist: arg('dist', '../dist/index.js'),
        onFile: (t) =>
          t.files % 500 === 0 &&
          process.stderr.write(`${dialect}: ${t.files} files, ${t.disagreements.length} disagreements\n`),
      });
      for (const d of totals.disagreements.slice(0, 20))
        process.stdout.write(`DISAGREE seed ${d.seed} (${d.verdict}): ${d.wrong}\n  ${JSON.stringify(d.text)}\n`);
      const { files, applied, failed: failedFiles, refused, disagreements } = totals;
      process.stdout.write(
        `${dialect}: ${files} files: ${applied} applied, ${failedFiles} failed, ${refused} refused; ` +
          `${disagreements.length} disagreements; ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
      );
      failed ||= disagreements.length > 0;
    }
  } finally {
    await server?.stop();
  }
  process.exit(failed ? 1 : 0);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main();

// How much memory a migration that returns many rows costs tidemark: a migration SELECTs --rows rows
// (default 3,000,000) of about 100 bytes; prints the peak RSS of `tidemark migrate` (from the child's
// own process.resourceUsage()). tidemark keeps no result rows, so it stays near a no-op run's.
//
//   TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres node scripts/result-rows.mjs [--rows N] [--cli dist/cli.js]
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import postgres from 'postgres';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: flags } = parseArgs({
  options: {
    rows: { type: 'string', default: '3000000' },
    cli: { type: 'string', default: join(ROOT, 'dist', 'cli.js') },
  },
});
const adminUrl = process.env.TEST_DATABASE_URL;
if (!adminUrl) throw new Error('set TEST_DATABASE_URL to a PostgreSQL server where a scratch database can be created');

/** The child writes its own peak RSS (kilobytes) on exit. */
const RSS_HOOK = `data:text/javascript,${encodeURIComponent(
  "import{writeFileSync}from'node:fs';process.on('exit',()=>writeFileSync(process.env.RSS_FILE,String(process.resourceUsage().maxRSS)))",
)}`;

const work = mkdtempSync(join(tmpdir(), 'tidemark-rows-'));
const name = `tidemark_rows_${randomBytes(4).toString('hex')}`;
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${name}`);
try {
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  mkdirSync(join(work, 'sql'));
  writeFileSync(join(work, 'sql', '001_base.sql'), 'create table base (a int);\n');
  writeFileSync(join(work, 'sql', '001_base_rollback.sql'), 'drop table base;\n');
  writeFileSync(
    join(work, 'sql', '002_rows.sql'),
    `select g, repeat('x', 100) as filler from generate_series(1, ${Number(flags.rows)}) as g;\n`,
  );
  writeFileSync(join(work, 'sql', '002_rows_rollback.sql'), 'select 1;\n');
  const run = (target) => {
    const rssFile = join(work, 'rss');
    const r = spawnSync(process.execPath, [`--import=${RSS_HOOK}`, resolve(flags.cli), 'migrate', target, '--no-log'], {
      cwd: work,
      env: { ...process.env, DATABASE_URL: url.toString(), RSS_FILE: rssFile },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`migrate ${target} failed: ${r.stdout}${r.stderr}`);
    return Math.round(Number(readFileSync(rssFile, 'utf8')) / 1024);
  };
  const small = run('1');
  const large = run('2');
  process.stdout.write(
    `peak RSS: ${small} MB for a one-table migration, ${large} MB for a migration returning ${flags.rows} rows\n`,
  );
} finally {
  await admin.unsafe(`drop database if exists ${name} with (force)`);
  await admin.end();
  rmSync(work, { recursive: true, force: true });
}

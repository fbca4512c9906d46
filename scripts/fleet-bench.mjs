// `npm run bench:fleet`: a fleet against the same work one database at a time.
//   SQLite:     N tenant files (default 1,000) x 20 migrations from empty, concurrency 8 and 1, and the no-op
//   PostgreSQL: D databases (default 100) and S schemas of one database (default 500) x 20 migrations,
//               concurrency 8 and 1, and the no-op
// Prints wall seconds, the speed-up over concurrency 1 and each run's peak RSS. PostgreSQL comes from
// TEST_DATABASE_URL, else an embedded server.
//
//   node scripts/fleet-bench.mjs [--sqlite N] [--databases D] [--schemas S]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { postgresServer } from './postgres-server.mjs';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'cli.js');
const { values: flags } = parseArgs({
  options: { sqlite: { type: 'string' }, databases: { type: 'string' }, schemas: { type: 'string' } },
});
const SIZES = {
  sqlite: Number(flags.sqlite ?? 1000),
  databases: Number(flags.databases ?? 100),
  schemas: Number(flags.schemas ?? 500),
};
// The child reports its own peak RSS on exit: the fleet's memory, not the bench's.
const PEAK = `data:text/javascript,process.on('exit',()=>process.stderr.write('peak-rss '+process.resourceUsage().maxRSS+'\\n'))`;

function project() {
  const cwd = mkdtempSync(join(tmpdir(), 'tidemark-fleet-bench-'));
  mkdirSync(join(cwd, 'sql'));
  writeFileSync(join(cwd, 'package.json'), '{}');
  for (let i = 1; i <= 20; i++) {
    const v = String(i).padStart(3, '0');
    writeFileSync(
      join(cwd, 'sql', `${v}_t${i}.sql`),
      `CREATE TABLE t${i} (id integer primary key, x integer not null default 0, note text);\nCREATE INDEX t${i}_x ON t${i} (x);\n`,
    );
    writeFileSync(join(cwd, 'sql', `${v}_t${i}_rollback.sql`), `DROP TABLE t${i};\n`);
  }
  return cwd;
}

/** One CLI run: wall seconds and peak RSS in MB; a failed run stops the bench. */
function timed(cwd, args, env = {}) {
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, ['--import', PEAK, CLI, ...args, '--quiet', '--no-log'], {
    cwd,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (run.status !== 0) throw new Error(`${args.join(' ')} exited ${run.status}:\n${run.stdout}${run.stderr}`);
  const rss = Number(/peak-rss (\d+)/.exec(run.stderr)?.[1] ?? 0) / 1024;
  return { seconds, rss };
}

const rows = [];
function row(what, result, sequential) {
  rows.push([
    what,
    `${result.seconds.toFixed(2)} s`,
    sequential ? `${(sequential.seconds / result.seconds).toFixed(1)}x` : '',
    `${result.rss.toFixed(0)} MB`,
  ]);
}

/** From empty at concurrency 1 (the sequential baseline), again from empty at 8, then the no-op. */
function compare(label, cwd, fleet, reset, env) {
  const sequential = timed(cwd, ['migrate', '--fleet', fleet, '--concurrency', '1'], env);
  row(`${label}: concurrency 1 (sequential)`, sequential);
  reset();
  row(`${label}: concurrency 8`, timed(cwd, ['migrate', '--fleet', fleet, '--concurrency', '8'], env), sequential);
  row(`${label}: no-op, concurrency 8`, timed(cwd, ['migrate', '--fleet', fleet, '--concurrency', '8'], env));
}

const sqliteCwd = project();
const server = await postgresServer({ env: process.env });
const admin = postgres(server.url, { max: 1, onnotice: () => {} });
const databases = Array.from({ length: SIZES.databases }, (_, i) => `tidemark_fleet_bench_${i}`);
try {
  mkdirSync(join(sqliteCwd, 'tenants'));
  const emptyTenants = () => {
    for (let i = 0; i < SIZES.sqlite; i++) writeFileSync(join(sqliteCwd, 'tenants', `t${i}.db`), '');
  };
  emptyTenants();
  compare(`SQLite, ${SIZES.sqlite} files x 20`, sqliteCwd, 'sqlite:tenants/*.db', emptyTenants);

  const urlOf = (name) => Object.assign(new URL(server.url), { pathname: `/${name}` }).toString();
  for (const name of databases) {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.unsafe(`create database ${name}`);
  }
  writeFileSync(join(sqliteCwd, 'databases.txt'), databases.map(urlOf).join('\n'));
  // Between the sequential and the parallel run, PostgreSQL's fleets are emptied by a rollback --all over them.
  const rollbackAll = (fleet, env) => () =>
    timed(sqliteCwd, ['rollback', '--all', '--fleet', fleet, '--concurrency', '8'], env);
  compare(
    `PostgreSQL, ${SIZES.databases} databases x 20`,
    sqliteCwd,
    'urls:databases.txt',
    rollbackAll('urls:databases.txt', {}),
    {},
  );

  await admin.unsafe('drop database if exists tidemark_fleet_bench_schemas with (force)');
  await admin.unsafe('create database tidemark_fleet_bench_schemas');
  const schemasUrl = urlOf('tidemark_fleet_bench_schemas');
  const inSchemas = postgres(schemasUrl, { max: 1, onnotice: () => {} });
  for (let i = 0; i < SIZES.schemas; i++) await inSchemas.unsafe(`create schema tenant_${i}`);
  await inSchemas.end();
  const schemasFleet = "schemas:select nspname from pg_namespace where nspname like 'tenant\\_%' order by 1";
  const env = { DATABASE_URL: schemasUrl };
  compare(`PostgreSQL, ${SIZES.schemas} schemas x 20`, sqliteCwd, schemasFleet, rollbackAll(schemasFleet, env), env);

  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), 8));
  process.stdout.write(`${['run', 'time', 'speed-up', 'peak RSS'].map((h, i) => h.padEnd(widths[i])).join('  ')}\n`);
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd()}\n`,
    );
} finally {
  for (const name of [...databases, 'tidemark_fleet_bench_schemas'])
    await admin.unsafe(`drop database if exists ${name} with (force)`).catch(() => {});
  await admin.end({ timeout: 5 });
  await server.stop();
  rmSync(sqliteCwd, { recursive: true, force: true });
}

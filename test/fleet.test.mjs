// Fleets: one command over many databases, run by the CLI as a child process against real SQLite files,
// real PostgreSQL databases and real PostgreSQL schemas.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import postgres from 'postgres';
import {
  freshDatabase,
  ledgerVersions,
  makeProject,
  poll,
  removeProject,
  runCli,
  runCliAsync,
  sqliteAt,
  startCli,
} from './helpers.mjs';

const FILES = {
  '001_a.sql': 'CREATE TABLE a (x INTEGER);\n',
  '001_a_rollback.sql': 'DROP TABLE a;\n',
  '002_b.sql': 'CREATE TABLE b (x INTEGER);\n',
  '002_b_rollback.sql': 'DROP TABLE b;\n',
};
const GLOB = 'sqlite:data/tenants/*.db';
const TENANTS = Array.from({ length: 20 }, (_, i) => `t${String(i + 1).padStart(2, '0')}`);

/** A project with 20 empty tenant files; `broken` tenants already hold table b, so their 002 fails. */
async function sqliteFleet(broken = []) {
  const cwd = makeProject(FILES);
  mkdirSync(join(cwd, 'data', 'tenants'), { recursive: true });
  const dbs = Object.fromEntries(TENANTS.map((t) => [t, sqliteAt(join(cwd, 'data', 'tenants', `${t}.db`))]));
  for (const t of TENANTS) writeFileSync(dbs[t].file, '');
  for (const t of broken) await dbs[t].query('CREATE TABLE b (y INTEGER)');
  const cli = (...args) => runCli(['--fleet', GLOB, ...args], { cwd });
  return { cwd, dbs, cli };
}

const versionsOf = async (dbs, names) => Promise.all(names.map((t) => ledgerVersions(dbs[t])));
const jsonLines = (stdout) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

const sqlite = suite('fleet: SQLite tenant files');

sqlite('a broken tenant stops the fleet by default; --keep-going runs all; --only-failed retries just it', async () => {
  const { cwd, dbs, cli } = await sqliteFleet(['t07']);
  try {
    const stopped = cli('migrate', '--concurrency', '1');
    assert.is(stopped.code, 1, stopped.output);
    assert.match(
      stopped.stdout,
      /FAILED\s+sqlite:data\/tenants\/t07\.db\s+sql\/002_b\.sql:1: .*table b already exists/,
    );
    assert.match(stopped.stdout, /migrate over 20 databases: 6 ok, 1 failed, 13 not run/);
    assert.equal(await versionsOf(dbs, TENANTS.slice(0, 6)), Array(6).fill([1, 2]));
    assert.equal(await ledgerVersions(dbs.t07), [1]);
    assert.equal(
      await versionsOf(dbs, TENANTS.slice(7)),
      Array(13).fill([]),
      'no database is started after the failure',
    );
    assert.match(
      stopped.stdout,
      /retry only the failed and not run: tidemark --fleet 'sqlite:data\/tenants\/\*\.db' migrate --concurrency 1 --only-failed/,
    );

    const all = cli('migrate', '--keep-going', '--json');
    assert.is(all.code, 1, all.output);
    const lines = jsonLines(all.stdout);
    const failed = lines.filter((l) => l.type === 'database' && l.state === 'failed').map((l) => l.name);
    assert.equal(failed, ['sqlite:data/tenants/t07.db']);
    assert.equal(lines.at(-1), { ...lines.at(-1), type: 'fleet', databases: 20, ok: 19, failed: 1, notRun: 0 });
    assert.equal(
      await versionsOf(
        dbs,
        TENANTS.filter((t) => t !== 't07'),
      ),
      Array(19).fill([1, 2]),
    );
    const report = JSON.parse(readFileSync(join(cwd, 'logs', 'fleet-last.json'), 'utf8'));
    assert.equal(
      report.migrate.results.filter((r) => r.state !== 'ok').map((r) => r.name),
      ['sqlite:data/tenants/t07.db'],
    );

    await dbs.t07.query('DROP TABLE b');
    const retried = cli('migrate', '--only-failed');
    assert.is(retried.code, 0, retried.output);
    assert.match(retried.stdout, /ok\s+sqlite:data\/tenants\/t07\.db\s+1 applied, at 2/);
    assert.match(retried.stdout, /migrate over 1 databases: 1 ok/);
    assert.equal(await ledgerVersions(dbs.t07), [1, 2]);
    const nothing = cli('migrate', '--only-failed');
    assert.is(nothing.code, 0, nothing.output);
    assert.match(
      nothing.stdout,
      /^nothing to retry: the last migrate over this fleet left no database failed or not run$/m,
    );

    const rerun = cli('migrate', '--json');
    assert.is(rerun.code, 0, rerun.output);
    const summaries = jsonLines(rerun.stdout)
      .filter((l) => l.type === 'database')
      .map((l) => l.summary);
    assert.equal(summaries, Array(20).fill('0 applied, at 2'), 'a rerun over an up-to-date fleet applies nothing');
  } finally {
    removeProject(cwd);
  }
});

sqlite('a failing canary stops the fleet before any other database is touched', async () => {
  const { cwd, dbs, cli } = await sqliteFleet(['t02']);
  try {
    const run = cli('migrate', '--canary', '3', '--keep-going');
    assert.is(run.code, 1, run.output);
    assert.match(run.stdout, /FAILED\s+sqlite:data\/tenants\/t02\.db/);
    assert.match(run.stdout, /17 not run/);
    assert.equal(await versionsOf(dbs, TENANTS.slice(3)), Array(17).fill([]));
  } finally {
    removeProject(cwd);
  }
});

sqlite(
  'sql writes a script per database; --shard K/N: the N shards cover every database exactly once; status sums up versions; rollback',
  async () => {
    const { cwd, dbs, cli } = await sqliteFleet();
    try {
      const scripts = cli('sql', '--out', 'scripts');
      assert.is(scripts.code, 0, scripts.output);
      assert.equal(
        readdirSync(join(cwd, 'scripts')).sort(),
        TENANTS.map((t) => `sqlite_data_tenants_${t}.db.sql`),
      );
      assert.match(
        readFileSync(join(cwd, 'scripts', 'sqlite_data_tenants_t20.db.sql'), 'utf8'),
        /CREATE TABLE b \(x INTEGER\);/,
      );
      assert.equal(await ledgerVersions(dbs.t20), [], 'sql changes nothing');
      assert.is(cli('migrate', '--quiet').code, 0);
      const shards = [1, 2, 3].map((k) => {
        const run = cli('status', '--shard', `${k}/3`, '--json');
        assert.is(run.code, 0, run.output);
        return jsonLines(run.stdout)
          .filter((l) => l.type === 'database')
          .map((l) => l.name)
          .sort();
      });
      const all = shards.flat().sort();
      assert.equal(
        all,
        TENANTS.map((t) => `sqlite:data/tenants/${t}.db`),
      );
      assert.ok(
        shards.every((s) => s.length > 0 && s.length < 20),
        `uneven shards: ${shards.map((s) => s.length)}`,
      );
      const again = jsonLines(cli('status', '--shard', '1/3', '--json').stdout)
        .filter((l) => l.type === 'database')
        .map((l) => l.name)
        .sort();
      assert.equal(again, shards[0], 'a shard is the same slice on every run');

      const undo = cli('rollback', '--canary', '2');
      assert.is(undo.code, 0, undo.output);
      const status = cli('status');
      assert.match(status.stdout, /at version 1: 20/);
      assert.equal(await versionsOf(dbs, TENANTS), Array(20).fill([1]));
    } finally {
      removeProject(cwd);
    }
  },
);

sqlite(
  'two fleet runs at once migrate each database once; a tenant added later is the only one a rerun changes',
  async () => {
    const { cwd, dbs, cli } = await sqliteFleet();
    try {
      const runs = await Promise.all(
        [1, 2].map(() => runCliAsync(['migrate', '--fleet', GLOB, '--json', '--concurrency', '8'], { cwd })),
      );
      for (const run of runs) assert.is(run.code, 0, run.output);
      for (const t of TENANTS) {
        const ups = await dbs[t].query(
          `select version from schema_version_history where action = 'up' and outcome = 'ok' order by version`,
        );
        assert.equal(
          ups.map((r) => r.version),
          [1, 2],
          `${t} has each migration applied once`,
        );
      }
      const added = sqliteAt(join(cwd, 'data', 'tenants', 't21.db'));
      writeFileSync(added.file, '');
      const rerun = cli('migrate', '--json');
      assert.is(rerun.code, 0, rerun.output);
      const changed = jsonLines(rerun.stdout)
        .filter((l) => l.type === 'database' && l.summary !== '0 applied, at 2')
        .map((l) => l.name);
      assert.equal(changed, ['sqlite:data/tenants/t21.db'], rerun.stdout);
      assert.equal(await ledgerVersions(added), [1, 2]);
    } finally {
      removeProject(cwd);
    }
  },
);

sqlite(
  'the fleet from package.json: a urls: file whose lines take URLs from the environment; a warning shown once for all',
  async () => {
    const { cwd, dbs } = await sqliteFleet();
    try {
      writeFileSync(join(cwd, 'package.json'), JSON.stringify({ tidemark: { fleet: { source: 'urls:tenants.txt' } } }));
      writeFileSync(join(cwd, 'tenants.txt'), '# two tenants\nsqlite:data/tenants/t01.db\n\nenv:SECOND_TENANT\n');
      writeFileSync(join(cwd, 'sql', '003_c.sql'), 'CREATE TABLE c (x INTEGER);\n');
      const run = runCli(['migrate'], { cwd, env: { SECOND_TENANT: 'sqlite:data/tenants/t02.db' } });
      assert.is(run.code, 0, run.output);
      assert.match(run.stdout, /migrate over 2 databases: 2 ok/);
      const warnings = run.stderr.split('\n').filter((l) => l.startsWith('warning:'));
      assert.equal(warnings.length, 1, 'the same warning from every database is shown once');
      assert.match(warnings[0], /sql\/003_c\.sql has no rollback file.*\(2 databases\)$/);
      assert.equal(await versionsOf(dbs, ['t01', 't02', 't03']), [[1, 2, 3], [1, 2, 3], []]);
      const missing = runCli(['status'], { cwd });
      assert.is(missing.code, 2, missing.output);
      assert.match(missing.stderr, /error: tenants\.txt:4: takes its URL from SECOND_TENANT, which is not set/);
      const one = runCli(['status', '--no-fleet', '--url', 'sqlite:data/tenants/t03.db'], { cwd });
      assert.is(one.code, 0, one.output);
      assert.match(one.stdout, /sqlite:data\/tenants\/t03\.db: version 0/);
    } finally {
      removeProject(cwd);
    }
  },
);

sqlite(
  'bad fleet input: a wildcard folder, an empty pattern, --shard 4/3, --fleet with a one-database command',
  async () => {
    const cwd = makeProject(FILES);
    try {
      const cases = [
        [['migrate', '--fleet', 'sqlite:data/*/x.db'], /wildcard in its folder part/],
        [['migrate', '--fleet', 'sqlite:sql/*.db'], /lists no databases/],
        [['migrate', '--fleet', 'sqlite:sql/*.sql', '--shard', '4/3'], /--shard takes K\/N/],
        [['migrate', '--fleet', 'tenants.txt'], /is not a fleet source/],
        [['force', '1', '--fleet', 'sqlite:sql/*.sql'], /--fleet works with migrate, rollback, status, verify and sql/],
      ];
      for (const [args, message] of cases) {
        const run = runCli(args, { cwd });
        assert.is(run.code, 2, run.output);
        assert.match(run.stderr, message);
      }
    } finally {
      removeProject(cwd);
    }
  },
);

sqlite.run();

const pg = suite('fleet: PostgreSQL databases and schemas');

const SLOW = {
  '001_a.sql': 'CREATE TABLE a (x integer);\nSELECT pg_sleep(0.4);\n',
  '001_a_rollback.sql': 'DROP TABLE a;\n',
};

pg(
  'a query on a control database lists the fleet; never more than N + 1 connections; passwords never printed',
  async () => {
    const cwd = makeProject(SLOW);
    const control = await freshDatabase('postgres');
    const tenants = await Promise.all(Array.from({ length: 6 }, () => freshDatabase('postgres')));
    const watcher = postgres(control.url, { max: 1, onnotice: () => {} });
    try {
      const withPassword = (url) => url.replace('postgres://postgres@', 'postgres://postgres:Sup3rSecretPw@');
      const broken = withPassword(tenants[0].url.replace(/\/[^/]*$/, '/tidemark_no_such_database'));
      await control.query('create table tenants (position int, url text)');
      await control.query(
        `insert into tenants values ${[...tenants.map((t) => withPassword(t.url)), broken].map((u, i) => `(${i}, '${u}')`).join(', ')}`,
      );
      const names = tenants.map((t) => new URL(t.url).pathname.slice(1));
      /** The run's output, and the most connections it held to the tenants at once. */
      const counted = async (args) => {
        let most = 0;
        let sampling = true;
        const sample = (async () => {
          while (sampling) {
            const [{ n }] = await watcher`select count(*)::int as n from pg_stat_activity
            where application_name like 'tidemark%' and datname = any(${names})`;
            most = Math.max(most, n);
            await new Promise((r) => setTimeout(r, 30));
          }
        })();
        const fleet = ['--fleet', 'query:select url from tenants order by position', '--keep-going'];
        const run = await runCliAsync([...args, ...fleet], { cwd, env: { DATABASE_URL: withPassword(control.url) } });
        sampling = false;
        await sample;
        return { ...run, most };
      };
      const run = await counted(['migrate', '--concurrency', '2']);
      assert.is(run.code, 4, run.output);
      assert.is(run.most, 2, `--concurrency 2: 2 tenant connections at once, never more; saw ${run.most}`);
      assert.match(run.output, /migrate over 7 databases: 6 ok, 1 failed/);
      assert.match(run.output, /tidemark_no_such_database/);
      assert.not.match(run.output, /Sup3rSecretPw/);
      assert.not.match(readFileSync(join(cwd, 'logs', 'fleet-last.json'), 'utf8'), /Sup3rSecretPw/);
      for (const tenant of tenants) assert.equal(await ledgerVersions(tenant), [1]);

      // --lock table holds a second connection per database: --concurrency 2 runs one database at a time.
      writeFileSync(join(cwd, 'sql', '002_b.sql'), 'CREATE TABLE b (x integer);\nSELECT pg_sleep(0.3);\n');
      writeFileSync(join(cwd, 'sql', '002_b_rollback.sql'), 'DROP TABLE b;\n');
      const table = await counted(['migrate', '--concurrency', '2', '--lock', 'table']);
      assert.is(table.code, 4, table.output);
      assert.is(
        table.most,
        2,
        `--lock table --concurrency 2: one database's 2 connections at a time; saw ${table.most}`,
      );
      for (const tenant of tenants) assert.equal(await ledgerVersions(tenant), [1, 2]);
    } finally {
      await watcher.end({ timeout: 5 });
      await Promise.all([control, ...tenants].map((db) => db.close()));
      removeProject(cwd);
    }
  },
);

pg('kill -9 in the middle of a fleet: the rerun converges, each migration applied once', async () => {
  const cwd = makeProject({
    ...SLOW,
    '002_b.sql': 'CREATE TABLE b (x integer);\nSELECT pg_sleep(0.3);\n',
    '002_b_rollback.sql': 'DROP TABLE b;\n',
  });
  const tenants = await Promise.all(Array.from({ length: 4 }, () => freshDatabase('postgres')));
  try {
    writeFileSync(join(cwd, 'tenants.txt'), tenants.map((t) => t.url).join('\n'));
    const run = startCli(['migrate', '--fleet', 'urls:tenants.txt', '--concurrency', '2'], cwd, '');
    await poll('the first database done', () => /^ok /m.test(run.stdout), { limitMs: 20_000, everyMs: 20 });
    run.child.kill('SIGKILL');
    const killed = await run.done;
    assert.is(killed.signal, 'SIGKILL');
    const rerun = runCli(['migrate', '--fleet', 'urls:tenants.txt', '--lock-timeout', '20'], { cwd });
    assert.is(rerun.code, 0, rerun.output);
    for (const tenant of tenants) {
      assert.equal(await ledgerVersions(tenant), [1, 2]);
      const ups = await tenant.query(
        `select version from schema_version_history where action = 'up' and outcome = 'ok' order by version`,
      );
      assert.equal(
        ups.map((r) => Number(r.version)),
        [1, 2],
      );
    }
  } finally {
    await Promise.all(tenants.map((db) => db.close()));
    removeProject(cwd);
  }
});

pg(
  'schemas: each tenant schema gets its own ledger and tables, other schemas are untouched; verify finds drift in one schema',
  async () => {
    const cwd = makeProject(FILES);
    const db = await freshDatabase('postgres');
    try {
      await db.query('create schema tenant_a; create schema tenant_b; create schema "Tenant C"; create schema other');
      const fleet = "schemas:select nspname from pg_namespace where nspname ilike 'tenant%' order by 1";
      const env = { DATABASE_URL: db.url };
      const run = runCli(['migrate', '--fleet', fleet], { cwd, env });
      assert.is(run.code, 0, run.output);
      assert.match(run.stdout, /migrate over 3 databases: 3 ok/);
      const tables = await db.query(
        `select table_schema || '.' || table_name as t from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema') order by 1`,
      );
      const expected = ['Tenant C', 'tenant_a', 'tenant_b'].flatMap((s) =>
        ['a', 'b', 'schema_version', 'schema_version_history'].map((t) => `${s}.${t}`),
      );
      assert.equal(tables.map((r) => r.t).sort(), expected.sort());
      const undo = runCli(['rollback', '--fleet', fleet, '--json'], { cwd, env });
      assert.is(undo.code, 0, undo.output);
      const status = runCli(['status', '--fleet', fleet], { cwd, env });
      assert.match(status.stdout, /at version 1: 3/);
      assert.equal(
        (await db.query('select version from tenant_b.schema_version')).map((r) => Number(r.version)),
        [1],
      );
      assert.is(runCli(['migrate', '--fleet', fleet], { cwd, env }).code, 0);
      const clean = runCli(['verify', '--fleet', fleet], { cwd, env });
      assert.is(clean.code, 0, clean.output);
      assert.match(clean.stdout, /verify over 3 databases: 3 ok/);
      await db.query('alter table tenant_b.a add column by_hand integer');
      const verify = runCli(['verify', '--fleet', fleet, '--keep-going', '--json'], { cwd, env });
      assert.is(verify.code, 3, verify.output);
      const failed = jsonLines(verify.stdout).filter((l) => l.type === 'database' && l.state === 'failed');
      assert.equal(
        failed.map((l) => l.name),
        ['tenant_b'],
      );
      assert.match(failed[0].error, /\+ column a\.by_hand: integer/);
    } finally {
      await db.close();
      removeProject(cwd);
    }
  },
);

pg.run();

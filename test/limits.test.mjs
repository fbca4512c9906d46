// Operating limits: the lock timeout and who holds the lock, statement and lock timeouts inside
// migrations, --wait for a server that is still starting, and the history behind `status --history`.
import { createConnection, createServer } from 'node:net';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DIALECTS,
  EXAMPLE_VERSIONS,
  freePort,
  ledgerVersions,
  perTestDatabase,
  runCli,
  runCliAsync,
  writeSql,
} from './helpers.mjs';

for (const dialect of DIALECTS) {
  const test = suite(`history [${dialect}]`);
  const ctx = perTestDatabase(test, dialect);

  test('status --history lists every up, down, force and failed attempt with who, when, duration and error', async () => {
    assert.is(ctx.cli('migrate').code, 0);
    assert.is(ctx.cli('rollback').code, 0);
    writeSql(ctx.cwd, '009_broken.sql', 'CREATE TABLE broken (a INT);\nSELEC 1;\n');
    writeSql(ctx.cwd, '009_broken_rollback.sql', 'DROP TABLE broken;\n');
    assert.is(ctx.cli('migrate').code, 1);
    assert.is(ctx.cli('force', '1', '--yes').code, 0);

    const r = ctx.cli('status', '--history');
    assert.is(r.code, 0, r.output);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[1], /^at\s+action\s+version\s+name\s+outcome\s+took\s+by\s+error$/);
    const actions = lines.slice(2).map((line) =>
      line
        .split(/\s{2,}/)
        .slice(1, 5)
        .join(' '),
    );
    // Each version as its file names it.
    const versions = EXAMPLE_VERSIONS[dialect].map((v) => String(v).padStart(3, '0'));
    const top = versions.at(-1);
    assert.equal(actions, [
      ...versions.map((v) => `up ${v} ${nameOf(v)} ok`),
      `down ${top} ${nameOf(top)} ok`,
      `up ${top} ${nameOf(top)} ok`,
      'up 009 broken failed',
      'force 001 create_users ok',
    ]);
    assert.match(r.stdout, /up\s+009\s+broken\s+failed\s+\d+ ms\s+\S+@\S+\s+sql\/009_broken\.sql:2/);

    const json = JSON.parse(ctx.cli('status', '--history', '--json').stdout);
    const failed = json.entries.find((e) => e.outcome === 'failed');
    assert.is(failed.version, 9);
    assert.match(failed.error, /009_broken\.sql:2/);
    assert.match(failed.at, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
  });

  test('status --history on a database with no ledger says so and creates nothing', async () => {
    const r = ctx.cli('status', '--history');
    assert.is(r.code, 0, r.output);
    assert.match(r.stdout, /no history yet/);
    assert.equal(await ctx.db.tables(), []);
  });

  test.run();
}

function nameOf(version) {
  return { 1: 'create_users', 2: 'user_strategies', 3: 'create_trades', 4: 'price_cache' }[Number(version)];
}

const pgLimits = suite('limits on PostgreSQL');
const pg = perTestDatabase(pgLimits, 'postgres');

pgLimits(
  '--lock-timeout: a run that cannot get the lock exits 4 naming the holder (pid, user, application, since when)',
  async () => {
    const holder = postgres(pg.db.url, {
      max: 1,
      onnotice: () => {},
      connection: { application_name: 'deploy-host-7' },
    });
    const [{ pid }] =
      await holder`select pg_backend_pid() as pid, pg_advisory_lock(${0x746d}, hashtext('public.schema_version'))`;
    try {
      const r = pg.cli('migrate', '--lock-timeout', '1');
      assert.is(r.code, 4, r.output);
      assert.match(r.stderr, /could not get the migration lock on postgres:\/\/\S+ within 1 s/);
      assert.match(
        r.stderr,
        new RegExp(
          `held by pid ${pid} \\(user postgres, application deploy-host-7, from \\S+\\) since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d`,
        ),
      );
      assert.match(r.stderr, new RegExp(`pg_terminate_backend\\(${pid}\\)`));
      assert.equal(await pg.db.tables(), [], 'nothing ran');
    } finally {
      await holder.end({ timeout: 5 });
    }
    const after = pg.cli('migrate', '--lock-timeout', '1');
    assert.is(after.code, 0, after.output);
  },
);

pgLimits('another ledger table in the same database uses another lock', async () => {
  const holder = postgres(pg.db.url, { max: 1, onnotice: () => {} });
  await holder`select pg_advisory_lock(${0x746d}, hashtext('public.schema_version'))`;
  try {
    const r = pg.cli('migrate', '--table', 'other_app_versions', '--lock-timeout', '1');
    assert.is(r.code, 0, r.output);
    assert.equal(await ledgerVersions(pg.db, 'other_app_versions'), [1, 2, 3]);
  } finally {
    await holder.end({ timeout: 5 });
  }
});

pgLimits('--statement-timeout stops a long migration, rolls it back and names the fix', async () => {
  writeSql(pg.cwd, '005_slow.sql', 'CREATE TABLE slow (a INT);\nSELECT pg_sleep(5);\n');
  writeSql(pg.cwd, '005_slow_rollback.sql', 'DROP TABLE slow;\n');
  const r = pg.cli('migrate', '--statement-timeout', '300ms');
  assert.is(r.code, 1, r.output);
  assert.match(r.stderr, /sql\/005_slow\.sql: canceling statement due to statement timeout/);
  assert.match(r.stderr, /raise it, or split the work/);
  assert.not.ok((await pg.db.tables()).includes('slow'));
  assert.equal(await ledgerVersions(pg.db), [1, 2, 3], 'the migrations before it stay applied');
});

pgLimits('--lock-retries 0: a migration waiting for a busy table gives up at its first lock timeout', async () => {
  assert.is(pg.cli('migrate').code, 0);
  const app = postgres(pg.db.url, { max: 1, onnotice: () => {} });
  const reserved = await app.reserve();
  await reserved`begin`;
  await reserved`select * from trades`;
  try {
    writeSql(pg.cwd, '005_trades_note.sql', 'ALTER TABLE trades ADD COLUMN note TEXT;\n');
    writeSql(pg.cwd, '005_trades_note_rollback.sql', 'ALTER TABLE trades DROP COLUMN note;\n');
    const r = pg.cli('migrate', '--pg-lock-timeout', '500ms', '--lock-retries', '0');
    assert.is(r.code, 1, r.output);
    assert.not.match(r.stderr, /retry \d of/);
    assert.match(r.stderr, /005_trades_note\.sql:1:1: canceling statement due to lock timeout/);
    assert.match(r.stderr, /--pg-lock-timeout/);
    assert.equal(await ledgerVersions(pg.db), [1, 2, 3]);
  } finally {
    await reserved`rollback`;
    reserved.release();
    await app.end({ timeout: 5 });
  }
  assert.is(pg.cli('migrate', '--pg-lock-timeout', '500ms').code, 0);
});

pgLimits('a malformed duration is refused before connecting', async () => {
  const r = pg.cli('migrate', '--statement-timeout', "1s'; drop table users; --");
  assert.is(r.code, 2, r.output);
  assert.match(r.stderr, /--statement-timeout must be a duration like 500ms, 30s, 5min or 1h/);
  assert.equal(await pg.db.tables(), []);
});

pgLimits('--wait retries until the server answers (a deploy right after a database restart)', async () => {
  const server = new URL(pg.db.url);
  const port = await freePort();
  const late = new URL(pg.db.url);
  late.port = String(port);
  // The "database" comes up 1.5 s after the runner starts: a proxy to the real server opens then.
  const runner = runCliAsync(['migrate', '--wait', '20'], { cwd: pg.cwd, env: { DATABASE_URL: late.toString() } });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const proxy = createServer((client) => {
    const upstream = createConnection(Number(server.port || 5432), server.hostname);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  }).listen(port, '127.0.0.1');
  try {
    const r = await runner;
    assert.is(r.code, 0, r.output);
    assert.match(r.output, /does not answer yet; retrying for up to 20 s \(--wait\)/);
    assert.equal(await ledgerVersions(pg.db), [1, 2, 3]);
  } finally {
    proxy.close();
  }
});

pgLimits('without --wait a closed port fails at once with exit 4; a refused login is not retried', async () => {
  const closed = new URL(pg.db.url);
  closed.port = String(await freePort());
  const r = runCli(['migrate'], { cwd: pg.cwd, env: { DATABASE_URL: closed.toString() } });
  assert.is(r.code, 4, r.output);
  assert.match(r.stderr, /connection refused/);
  assert.not.match(r.output, /retrying/);

  const missing = new URL(pg.db.url);
  missing.pathname = '/tidemark_no_such_database';
  const refused = runCli(['migrate', '--wait', '30'], { cwd: pg.cwd, env: { DATABASE_URL: missing.toString() } });
  assert.is(refused.code, 4, refused.output);
  assert.match(refused.stderr, /does not exist/);
  assert.not.match(refused.output, /retrying/, 'a server that answered "no" is not waited for');
});

pgLimits.run();

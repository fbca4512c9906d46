// Every block of README.md and docs/*.md that shows output is run and compared with what the CLI
// really prints (times, durations, dates, pids, hosts, ports, databases and temporary paths masked).
// The marker on the line above a block links it to its setup here: `<!-- example: <key> -->`; blocks
// that are not output say so (`<!-- not output: … -->`). A block with `$ ` lines is run as a shell
// transcript: `npm run x` as the `node dist/cli.js …` it stands for (npm's header lines left out, as
// the docs say), `npx tidemark` as `node dist/cli.js`.
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  readdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createMigrator } from '../dist/index.js';
import { COMPILED, compare, exampleBlocks, fencedBlocks, PAGES } from './doc-blocks.mjs';
import {
  BASE,
  CLI,
  freePort,
  freshDatabase,
  HAND_SHELL,
  makeProject,
  poll,
  ROOT,
  removeProject,
  sleepingBackend,
  sqliteAt,
  startCli,
} from './helpers.mjs';

const test = suite('docs: shown output is real output');
const BLOCKS = exampleBlocks();
const checked = new Set();
const SCRIPTS = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts;
const ADMIN_URL = new URL(process.env.TEST_DATABASE_URL);

/** The runner's environment without database settings or npm's variables, plus the project's own. */
function cleanEnv(extra = {}) {
  const drop = [
    'DATABASE_URL',
    'MIGRATIONS_DIR',
    'MIGRATIONS_TABLE',
    'TIDEMARK_LOCK',
    'TEST_DATABASE_URL',
    'PGPASSWORD',
  ];
  const kept = Object.entries(process.env).filter(([k]) => !drop.includes(k) && !k.startsWith('npm_'));
  return { ...Object.fromEntries(kept), NO_COLOR: '1', ...extra };
}

/** Runs a program with stdout and stderr into one file, so their lines keep the order a terminal shows. */
const TIMEOUT_MS = 120_000;

function runCombined(file, args, { cwd, env, input = '' }) {
  const out = join(tmpdir(), `tidemark-docs-${process.pid}-${Math.random().toString(36).slice(2)}.out`);
  const fd = openSync(out, 'w');
  try {
    const r = spawnSync(file, args, { cwd, env, input, stdio: ['pipe', fd, fd], timeout: TIMEOUT_MS });
    // A run cut off by the timeout says so, instead of showing as output that merely stops.
    const cut = r.error?.code === 'ETIMEDOUT' ? `[killed: still running after ${TIMEOUT_MS / 1000} s]\n` : '';
    return { code: r.status, output: readFileSync(out, 'utf8') + cut };
  } finally {
    closeSync(fd);
    unlinkSync(out);
  }
}

const quote = (s) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A documented command line as the shell runs it here. */
function translate(command, p, { npm = false } = {}) {
  let line = command;
  if (!npm)
    line = line.replace(/\bnpm run ([\w:-]+)(?: --(?= |$))?/g, (_, script) =>
      SCRIPTS[script].replace(/^node dist\/cli\.js/, 'npx tidemark'),
    );
  line = line.replace(
    /\bnpx tidemark\b|\bnode dist\/cli\.js\b|^tidemark\b/g,
    `${quote(process.execPath)} ${quote(CLI)}`,
  );
  return p.db?.dialect === 'postgres' ? line.replace(/postgres:\/\/\S+/g, p.db.url) : line;
}

/** Without the sqlite3 shell, `sqlite3 <file> "<sql>"` runs through the sqlite3 package. */
const SQLITE3_SHIM =
  HAND_SHELL.sqlite === 'sqlite3 shell'
    ? ''
    : `sqlite3() { NODE_PATH=${quote(join(ROOT, 'node_modules'))} node -e ` +
      `'new (require("sqlite3").Database)(process.argv[1]).exec(process.argv[2], ` +
      `(e) => e && (console.error(e.message), process.exit(1)))' "$@"; }\n`;

/** A block's `$ ` lines run in one shell, each echoed before its output, as a terminal shows them. */
function transcript(block, p, options) {
  const commands = block.text.split('\n').filter((line) => line.startsWith('$ '));
  assert.ok(commands.length > 0, `${block.page}:${block.line} has no $ line and no setup runs it`);
  // The echo keeps the previous command's exit status, for an `echo $?` line.
  const script = commands
    .map((c) => `__status=$?\necho ${quote(c)}\n(exit $__status)\n${translate(c.slice(2), p, options)}`)
    .join('\n');
  return runCombined('bash', ['-c', `exec 2>&1\n${SQLITE3_SHIM}${script}`], { cwd: p.cwd, env: p.env }).output;
}

/**
 * A project folder with migration files and a database: SQLite at data/app.db through .env (as the
 * docs show it), or a fresh PostgreSQL database in DATABASE_URL.
 */
async function openProject(dialect, files) {
  const cwd = makeProject(files);
  const p = { cwd, failures: [] };
  if (dialect === 'sqlite') {
    writeFileSync(join(cwd, '.env'), 'DATABASE_URL=sqlite:data/app.db\n');
    p.db = sqliteAt(join(cwd, 'data', 'app.db'));
    p.env = cleanEnv();
  } else {
    p.db = await freshDatabase('postgres');
    p.env = cleanEnv({ DATABASE_URL: p.db.url });
  }
  p.cli = (...args) => runCombined(process.execPath, [CLI, ...args], { cwd, env: p.env });
  p.must = (command, version) => setUp(p, command, version);
  p.stderr = (...args) => spawnSync(process.execPath, [CLI, ...args], { cwd, env: p.env, encoding: 'utf8' }).stderr;
  p.sh = (command) => runCombined('bash', ['-c', `exec 2>&1\n${command}`], { cwd, env: p.env });
  p.write = (name, text) => writeFileSync(join(cwd, 'sql', name), text);
  p.remove = (...names) => {
    for (const name of names) rmSync(join(cwd, 'sql', name));
  };
  p.check = (key, how, options) => check(p, key, how, options);
  return p;
}

/**
 * A set-up step through the library in this process: what `tidemark migrate [target]`, `force V --yes`
 * and `resolve V --not-applied` do, without a process start (and PostgreSQL's parser loaded) each time.
 */
async function setUp(p, command, version) {
  const url = p.db.dialect === 'sqlite' ? `sqlite:${p.db.file}` : p.env.DATABASE_URL;
  const migrator = createMigrator({ cwd: p.cwd, url, log: false });
  if (command === 'migrate') await migrator.migrate(version === undefined ? {} : { target: Number(version) });
  else if (command === 'force') await migrator.force(Number(version));
  else if (command === 'resolve') await migrator.resolve(Number(version), false);
  else throw new Error(`no set-up step ${command}`);
}

async function closeProject(p) {
  await p.db.close();
  removeProject(p.cwd);
}

/**
 * Compares the block keyed `key` with real output: `how` is the CLI's arguments, a function that
 * resolves with the output, or nothing for a block of `$ ` lines. stream 'stderr': stderr alone.
 */
async function check(p, key, how, { stream, npm } = {}) {
  const block = BLOCKS.get(key);
  assert.ok(block, `no block in the docs is marked <!-- example: ${key} -->`);
  checked.add(key);
  let actual;
  if (typeof how === 'function') actual = await how();
  else if (Array.isArray(how) && stream === 'stderr') actual = p.stderr(...how);
  else if (Array.isArray(how)) actual = p.cli(...how).output;
  else actual = transcript(block, p, { npm });
  const difference = compare(block, actual, p.cwd);
  if (difference) p.failures.push({ key, block, ...difference });
}

async function runScenario(name, dialect, files, steps) {
  const started = Date.now();
  const p = await openProject(dialect, files);
  try {
    await steps(p);
  } finally {
    await closeProject(p);
  }
  if (process.env.DOCS_OUTPUT_TIME) console.log(`  ${Date.now() - started} ms: ${name}`);
  return p;
}

/**
 * One test per scenario: a project, steps that set the situation up, and the blocks checked on the
 * way. Scenarios run one at a time, in their own test: most of their commands run through spawnSync,
 * which stops this process's event loop, so a scenario (or a suite) running beside one would have its
 * connection and poll timers fire late (a CONNECT_TIMEOUT, a poll that gives up).
 */
function scenario(name, dialect, files, steps) {
  test(name, async () => {
    const p = await runScenario(name, dialect, files, steps);
    // DOCS_OUTPUT_RAW=1 shows the real output unmasked too, to copy into the page.
    const report = p.failures.map(
      (f) =>
        `${f.block.page}:${f.block.line} (${f.key})\n--- docs\n${f.expected}\n--- real\n${f.real}` +
        (process.env.DOCS_OUTPUT_RAW ? `\n--- real, unmasked\n${f.raw}` : ''),
    );
    assert.ok(report.length === 0, `\n${report.join('\n\n')}\n`);
  });
}

/** A dba.md scenario: PostgreSQL and psql, which the page is about; without psql it is skipped, saying so. */
function dba(name, files, steps) {
  if (HAND_SHELL.postgres) return scenario(name, 'postgres', files, steps);
  test(name, () => console.log(`  skipped (no psql on PATH): ${name}`));
}

/** An example this run cannot reproduce; it says why, and the key counts as seen. */
function skip(key, why) {
  checked.add(key);
  console.log(`  not checked here: ${key}: ${why}`);
}

// ---- the markers ---------------------------------------------------------------------------------

test('every block that is not js/ts says what it is: an example key, or not output and why', () => {
  const unmarked = PAGES.flatMap(fencedBlocks)
    .filter((b) => !COMPILED.has(b.lang) && !b.marker)
    .map((b) => `${b.page}:${b.line}: ${b.text.split('\n')[0]}`);
  assert.equal(unmarked, [], 'put <!-- example: <key> --> or <!-- not output: <why> --> on the line above');
});

// ---- shared pieces ---------------------------------------------------------------------------------

const EXAMPLE = readdirSync(join(ROOT, 'sql'));

/** The example migration files of the given versions, as a files object for a project. */
function exampleFiles(...versions) {
  const wanted = EXAMPLE.filter((name) => versions.includes(Number(name.split('_')[0])));
  return Object.fromEntries(wanted.map((name) => [name, readFileSync(join(ROOT, 'sql', name), 'utf8')]));
}
const ALL = exampleFiles(1, 2, 3, 4);

/** A folder that looks like a checkout after npm install, for the examples that run npm itself. */
function asCheckout(p) {
  writeFileSync(join(p.cwd, 'package.json'), readFileSync(join(ROOT, 'package.json')));
  symlinkSync(join(ROOT, 'node_modules'), join(p.cwd, 'node_modules'));
  symlinkSync(join(ROOT, 'dist'), join(p.cwd, 'dist'));
  // npm's occasional "new version" notice is not what the examples show.
  p.env.npm_config_update_notifier = 'false';
}

/** tidemark's stderr, run in a folder of its own (no project, no .env). */
const stderrIn = (cwd, args) =>
  spawnSync(process.execPath, [CLI, ...args], { cwd, env: cleanEnv(), encoding: 'utf8' }).stderr;

/** npm's stderr alone: where tidemark's refusal goes, without npm's header lines on stdout. */
const npmStderr = (p, args) => spawnSync('npm', args, { cwd: p.cwd, env: p.env, encoding: 'utf8' }).stderr;

/** The migrations errors.md and dba.md show failing. */
const ORDERS_TYPO = `-- Orders placed by a strategy.
CREATE TABLE orders (
  id          BIGSERIAL PRIMARY KEY,
  strategy_id BIGINT NOT NULL REFERENCES user_strategies (id),
  side        TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
  quantity    NUMERIC NOT NULL CHECK (quantity > 0),
  placed_at   TIMESTAMP NOT NULL DEFAULT now()
);

INSERT INTO orders (strategy_id, side, quantity) SELECT id, 'buy', 1 FROM user_strategys;
`;
const ORDERS_DAY_INDEX = `-- Orders placed by a strategy, with an index per day.
CREATE TABLE orders (
  id          BIGSERIAL PRIMARY KEY,
  side        TEXT NOT NULL,
  placed_at   TIMESTAMP NOT NULL DEFAULT now()
);

CREATE INDEX orders_day_idx ON orders (date_trunc(placed_at));
`;
const TRADES_FEE =
  'ALTER TABLE trades ADD COLUMN fee NUMERIC;\n' +
  "UPDATE trades SET fee = quantity * price * 0.001 WHERE symbol <> 'TEST/USD';\n";

/** Runs real npm in the project (npm's own variables kept out, as a user's shell has none). */
const npm = (p, args) => runCombined('npm', args, { cwd: p.cwd, env: p.env }).output;

/**
 * Holds advisory lock `key` so that migrations running `SELECT pg_advisory_xact_lock_shared(key)` wait
 * at that point until release(): runners that must overlap do, however slowly they start.
 */
async function barrier(db, key) {
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const session = await sql.reserve();
  await session`select pg_advisory_lock(${key})`;
  const waiting = async () =>
    (
      await db.query(
        `select count(*)::int as n from pg_locks where locktype = 'advisory' and objid = $1 and not granted`,
        [key],
      )
    )[0].n;
  return {
    reached: (n) => poll(`${n} runners to wait at the barrier`, async () => (await waiting()) >= n),
    release: async () => {
      await session`select pg_advisory_unlock(${key})`;
      session.release();
      await sql.end({ timeout: 5 });
    },
  };
}

/** A PostgreSQL login role for one scenario (a password where the server checks them); drop() removes it. */
async function loginRole(db, { createdb = false } = {}) {
  const name = `tidemark_docs_${Math.random().toString(36).slice(2, 8)}`;
  const password = 'docs-example-pw';
  await db.query(`create role ${name} login password '${password}' ${createdb ? 'createdb' : ''}`);
  const url = new URL(db.url);
  url.username = name;
  url.password = password;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      await db.query(`drop owned by ${name}`).catch(() => {});
      await db.query(`drop role if exists ${name}`).catch(() => {});
    },
  };
}

// ---- README.md and docs/commands.md on the SQLite example set ------------------------------------

scenario('README: the Quick start through npm, then a run with nothing to do', 'sqlite', undefined, async (p) => {
  asCheckout(p);
  await p.check('readme/quick-start', () => npm(p, ['run', 'migrate']));
  await p.check('readme/up-to-date', ['migrate']);
});

scenario(
  'commands.md: status, dry run, --json, version, verify, sql, force, rollback, create',
  'sqlite',
  ALL,
  async (p) => {
    await p.must('migrate', '1');
    await p.check('commands/status');
    await p.check('commands/dry-run');
    await p.must('migrate', '3');
    await p.check('commands/json');
    await p.check('commands/version');
    await p.check('commands/verify');
    await p.check('verify/json');
    await p.check('commands/sql-rollback');
    await p.check('commands/force');
    await p.check('commands/rollback');
    await p.check('commands/create');
  },
);

scenario(
  'commands.md: a database ahead of the code, and status showing it',
  'sqlite',
  {
    ...ALL,
    '005_trades_fee.sql': 'ALTER TABLE trades ADD COLUMN fee NUMERIC;\n',
    '005_trades_fee_rollback.sql': 'ALTER TABLE trades DROP COLUMN fee;\n',
  },
  async (p) => {
    await p.must('migrate');
    p.remove('005_trades_fee.sql', '005_trades_fee_rollback.sql');
    await p.check('commands/ahead');
    await p.check('errors/ahead', ['migrate'], { stream: 'stderr' });
    await p.check('commands/status-not-in-release');
  },
);

scenario(
  'commands.md: status --history after a failed migration and a force',
  'postgres',
  {
    ...exampleFiles(1, 2),
    '005_slow.sql': 'SELECT pg_sleep(1);\n',
    '005_slow_rollback.sql': 'SELECT 1;\n',
  },
  async (p) => {
    await p.must('migrate', '2');
    assert.is(p.cli('migrate', '--statement-timeout', '100ms').code, 1);
    await p.must('force', '1');
    await p.check('commands/status-history');
  },
);

scenario(
  'commands.md: a migration added below the applied version',
  'sqlite',
  {
    ...ALL,
    '006_orders.sql': 'CREATE TABLE orders (id INTEGER);\n',
    '006_orders_rollback.sql': 'DROP TABLE orders;\n',
  },
  async (p) => {
    await p.must('migrate');
    p.write('005_coupons.sql', 'CREATE TABLE coupons (code TEXT);\n');
    p.write('005_coupons_rollback.sql', 'DROP TABLE coupons;\n');
    await p.check('commands/out-of-order');
  },
);

scenario(
  'commands.md, errors.md: a dirty no-transaction migration, resolved',
  'sqlite',
  {
    ...ALL,
    '005_idx.sql': '-- tidemark:no-transaction\nCREATE INDEX trades_symbol_idx ON trades (symbol);\nSELEC 1;\n',
    '005_idx_rollback.sql': '-- tidemark:no-transaction\nDROP INDEX trades_symbol_idx;\n',
  },
  async (p) => {
    assert.is(p.cli('migrate').code, 1);
    await p.check('commands/resolve');
    p.remove('005_idx.sql', '005_idx_rollback.sql');
    p.write('011_nt.sql', '-- tidemark:no-transaction\nCREATE TABLE nt (a INTEGER);\nSELEC 1;\n');
    p.write('011_nt_rollback.sql', '-- tidemark:no-transaction\nDROP TABLE nt;\n');
    assert.is(p.cli('migrate').code, 1);
    await p.check('errors/dirty', ['migrate'], { stream: 'stderr' });
  },
);

scenario('commands.md: baseline an empty ledger, and the refusal once it has rows', 'sqlite', ALL, async (p) => {
  await p.check('commands/baseline');
  await p.must('force', '3');
  await p.check('commands/baseline-refused', ['baseline', '3'], { stream: 'stderr' });
});

scenario('commands.md, errors.md, ledger.md: a flag npm keeps for itself', 'sqlite', ALL, async (p) => {
  asCheckout(p);
  await p.must('migrate');
  await p.check('commands/npm-flag', undefined, { npm: true });
  const dryRun = npmStderr(p, ['run', 'migrate:rollback', '--dry-run']);
  await p.check('errors/npm-flag', () => dryRun);
  await p.check('ledger/npm-flag', () => dryRun);
});

scenario('commands.md: the migration log', 'postgres', exampleFiles(1, 2, 3), async (p) => {
  await p.must('migrate');
  p.write('005_backfill.sql', 'SELECT pg_sleep(0.1);\n');
  p.write('005_backfill_rollback.sql', 'SELECT 1;\n');
  assert.is(p.cli('migrate').code, 0, 'the CLI writes the log');
  p.write('006_bad.sql', 'CREATE TABLE bad (a INTEGER);\nselec 1;\n');
  p.write('006_bad_rollback.sql', 'DROP TABLE bad;\n');
  assert.is(p.cli('migrate').code, 1);
  await p.check('commands/log', () => readFileSync(join(p.cwd, 'logs', 'migration.log'), 'utf8'));
});

scenario('commands.md, zero-downtime.md: lint; commands.md: schema', 'postgres', exampleFiles(1, 2, 3), async (p) => {
  await p.must('migrate');
  p.write('005_users_email.sql', 'ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n');
  await p.check('commands/lint');
  p.remove('005_users_email.sql');
  p.write('006_orders.sql', 'CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id TEXT);\n');
  p.write('006_orders_rollback.sql', 'DROP TABLE orders;\n');
  p.write('007_orders_index.sql', '-- orders by user\nCREATE INDEX orders_user_id_idx ON orders (user_id);\n');
  p.write('007_orders_index_rollback.sql', 'DROP INDEX orders_user_id_idx;\n');
  await p.check('zero-downtime/lint');
  await p.check('commands/schema');
});

// ---- docs/configuration.md -------------------------------------------------------------------------

scenario('configuration.md: migrate on PostgreSQL', 'postgres', exampleFiles(1, 2, 3, 4), async (p) => {
  await p.check('configuration/postgres');
});

scenario('configuration.md: two databases in one project, with the configuration shown', 'postgres', {}, async (p) => {
  const config = fencedBlocks('docs/configuration.md').find((b) => b.lang === 'json' && b.text.includes('"databases"'));
  writeFileSync(join(p.cwd, 'tidemark.config.json'), config.text);
  mkdirSync(join(p.cwd, 'sql', 'main'));
  mkdirSync(join(p.cwd, 'sql', 'trades'));
  for (const [name, text] of Object.entries(exampleFiles(1))) writeFileSync(join(p.cwd, 'sql', 'main', name), text);
  const trades = {
    '001_fills.sql': 'CREATE TABLE fills (id INTEGER PRIMARY KEY, symbol TEXT NOT NULL);\n',
    '001_fills_rollback.sql': 'DROP TABLE fills;\n',
    '002_fills_price.sql': 'ALTER TABLE fills ADD COLUMN price NUMERIC;\n',
    '002_fills_price_rollback.sql': 'ALTER TABLE fills DROP COLUMN price;\n',
  };
  for (const [name, text] of Object.entries(trades)) writeFileSync(join(p.cwd, 'sql', 'trades', name), text);
  p.env.TRADES_DATABASE_URL = 'sqlite:data/trades.db';
  await p.check('configuration/databases');
});

// ---- docs/errors.md ------------------------------------------------------------------------------

scenario('errors.md: configuration and usage errors', 'sqlite', ALL, async (p) => {
  const empty = mkdtempSync(join(tmpdir(), 'tidemark-docs-empty-'));
  try {
    await p.check('errors/no-database', () => stderrIn(empty, ['migrate']));
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
  await p.check('errors/unknown-scheme', ['migrate', '--url', 'mysql://app:secret@db/app'], { stream: 'stderr' });
  await p.check(
    'errors/malformed-url',
    () =>
      p.stderr('migrate', '--url', 'postgres://app:p@ss@db:5432/app') +
      p.stderr('migrate', '--url', 'postgres://app@db:5432/app?sslmode=bogus'),
  );
  await p.check('errors/table-name', ['migrate', '--table', 'bad-name'], { stream: 'stderr' });
  await p.check('errors/create-name', ['create', 'add orders'], { stream: 'stderr' });
  const closed = `postgres://app@127.0.0.1:${await freePort()}/app`;
  await p.check('errors/connection-refused', ['migrate', '--url', closed], { stream: 'stderr' });
});

scenario('errors.md: bad migration files, refused before anything runs', 'sqlite', ALL, async (p) => {
  await p.must('migrate');
  const refused = async (key, files) => {
    for (const [name, text] of Object.entries(files)) p.write(name, text);
    await p.check(key, ['migrate'], { stream: 'stderr' });
    p.remove(...Object.keys(files));
  };
  await refused('errors/file-name', { '5_add-orders.sql': 'SELECT 1;\n' });
  await refused('errors/transaction-control', {
    '005_x.sql': 'CREATE TABLE x (a INTEGER);\nROLLBACK;\n',
    '005_x_rollback.sql': 'DROP TABLE x;\n',
  });
  await refused('errors/two-files', { '3_create_trades.sql': 'SELECT 1;\n' });
  await refused('errors/two-names', { '003_trades.sqlite.sql': 'SELECT 1;\n' });
  await refused('errors/version-too-large', { '20240101120000000000001_add_orders.sql': 'SELECT 1;\n' });
  await refused('errors/rollback-without-forward', { '005_orders_rollback.sql': 'DROP TABLE orders;\n' });
  const nul = 'CREATE TABLE x (a TEXT);\0\n';
  const quote = "INSERT INTO x VALUES ('open);\n";
  p.write('005_x_rollback.sql', 'DROP TABLE x;\n');
  await p.check('errors/nul-and-quote', () => {
    p.write('005_x.sql', nul);
    const first = p.stderr('migrate');
    p.write('005_x.sql', quote);
    const second = p.stderr('migrate');
    p.remove('005_x.sql', '005_x_rollback.sql');
    return first + second;
  });
});

scenario('errors.md: refusals on an applied ledger', 'sqlite', ALL, async (p) => {
  await p.must('migrate');
  await p.check('errors/force-without-yes', ['force', '3'], { stream: 'stderr' });
  const original = readFileSync(join(p.cwd, 'sql', '001_create_users.sql'), 'utf8');
  p.write('001_create_users.sql', `${original}-- an edit\n`);
  await p.check('errors/edited', ['migrate'], { stream: 'stderr' });
  p.write('001_create_users.sql', original);
  p.write('005_orders.sql', 'CREATE TABLE orders (id INTEGER);\n');
  await p.must('migrate');
  await p.check('errors/no-rollback-file', ['rollback'], { stream: 'stderr' });
  await p.must('force', '2');
  await p.check('errors/target-below', ['migrate', '1'], { stream: 'stderr' });
});

scenario(
  'errors.md: a version below the applied one',
  'sqlite',
  {
    ...BASE,
    '010_late.sql': 'CREATE TABLE late (a INTEGER);\n',
    '010_late_rollback.sql': 'DROP TABLE late;\n',
  },
  async (p) => {
    await p.must('migrate');
    p.write('007_mid.sql', 'CREATE TABLE mid (a INTEGER);\n');
    p.write('007_mid_rollback.sql', 'DROP TABLE mid;\n');
    await p.check('errors/out-of-order', ['migrate'], { stream: 'stderr' });
  },
);

scenario(
  'errors.md: an irreversible migration in a rollback',
  'sqlite',
  {
    '001_t1.sql': 'CREATE TABLE t1 (a INTEGER);\n',
    '001_t1_rollback.sql': 'DROP TABLE t1;\n',
    '002_t2.sql': 'CREATE TABLE t2 (a INTEGER);\n',
    '002_t2_rollback.sql': '-- tidemark:irreversible\n',
  },
  async (p) => {
    await p.must('migrate');
    await p.check('errors/irreversible', ['rollback'], { stream: 'stderr' });
  },
);

scenario('errors.md: a table that is not a ledger', 'sqlite', ALL, async (p) => {
  mkdirSync(join(p.cwd, 'data'));
  await p.db.query('CREATE TABLE schema_version (x INTEGER)');
  await p.check('errors/not-a-ledger', ['migrate'], { stream: 'stderr' });
});

scenario(
  'errors.md: SQL errors on PostgreSQL: the position, the server hint, the detail',
  'postgres',
  exampleFiles(1, 2, 3),
  async (p) => {
    await p.must('migrate');
    p.write('005_orders_rollback.sql', 'DROP TABLE IF EXISTS orders;\n');
    p.write('005_orders.sql', ORDERS_TYPO);
    await p.check('errors/sql-error', ['migrate']);
    p.write('005_orders.sql', ORDERS_DAY_INDEX);
    await p.check('errors/sql-error-hint', ['migrate'], { stream: 'stderr' });
    p.write(
      '005_orders.sql',
      "INSERT INTO users (id, email) VALUES ('u1', 'ops@example.com');\n" +
        "INSERT INTO users (id, email) VALUES ('u2', 'ops@example.com');\n",
    );
    await p.check('errors/sql-error-detail', ['migrate'], { stream: 'stderr' });
    p.remove('005_orders.sql', '005_orders_rollback.sql');
    p.write('005_x.sql', 'CREATE INDEX CONCURRENTLY t_a ON t (a);\n');
    p.write('005_x_rollback.sql', 'DROP INDEX t_a;\n');
    await p.check('errors/concurrently', ['migrate'], { stream: 'stderr' });
  },
);

scenario('errors.md: a SQL error on SQLite names the line', 'sqlite', ALL, async (p) => {
  await p.must('migrate');
  const rows = Array.from(
    { length: 39 },
    (_, i) => `INSERT INTO users (id, email) VALUES ('u${i}', 'u${i}@example.com');`,
  );
  const bad = "INSERT INTO users (id, email) VALUES ('u39', 'u39@example.com') RETURNIN id;";
  p.write('005_seed.sql', `${rows.join('\n')}\n${bad}\n`);
  p.write('005_seed_rollback.sql', 'DELETE FROM users;\n');
  await p.check('errors/sqlite-error', ['migrate']);
});

scenario(
  'errors.md: could not connect, not a database, missing privileges',
  'postgres',
  exampleFiles(1, 2, 3),
  async (p) => {
    await p.must('migrate');
    const noSuch = new URL(p.db.url);
    noSuch.pathname = '/no_such_db';
    await p.check('errors/no-such-database', ['migrate', '--url', noSuch.toString()], { stream: 'stderr' });
    const role = await loginRole(p.db);
    try {
      mkdirSync(join(p.cwd, 'data'));
      writeFileSync(join(p.cwd, 'data', 'app.db'), 'not a database file, only text\n'.repeat(100));
      await p.check(
        'errors/not-a-database',
        () => p.stderr('migrate', '--url', 'sqlite:data/app.db') + p.stderr('migrate', '--url', role.url),
      );
      if (!ADMIN_URL.password) return skip('errors/password', 'the server at TEST_DATABASE_URL trusts every password');
      const wrong = new URL(ADMIN_URL);
      wrong.password = 'wrong-password';
      await p.check('errors/password', ['migrate', '--url', wrong.toString()], { stream: 'stderr' });
    } finally {
      await role.drop();
    }
  },
);

scenario(
  'errors.md, running.md: the migration lock is busy (advisory, then table)',
  'postgres',
  {
    ...BASE,
    '002_nap.sql': 'SELECT pg_sleep(60);\n',
    '002_nap_rollback.sql': 'SELECT 1;\n',
  },
  async (p) => {
    for (const mode of ['advisory', 'table']) {
      const holder = startCli(['migrate', '--lock', mode], p.cwd, p.db.url);
      try {
        await poll('the holder to run 002', () => sleepingBackend(p.db, 'pg_sleep(60)'));
        const busy = ['migrate', '--lock', mode, '--lock-timeout', '1'];
        if (mode === 'advisory') await p.check('errors/lock-busy', busy, { stream: 'stderr' });
        await p.check(`running/lock-busy-${mode}`, busy, { stream: 'stderr' });
      } finally {
        holder.child.kill('SIGTERM');
        await holder.done;
      }
    }
  },
);

scenario(
  'errors.md: the migration lock taken over while a run was paused',
  'postgres',
  {
    '001_nap.sql': 'CREATE TABLE nap_t (a INTEGER);\nSELECT pg_advisory_xact_lock_shared(4243);\n',
    '001_nap_rollback.sql': 'DROP TABLE nap_t;\n',
  },
  async (p) => {
    const gate = await barrier(p.db, 4243);
    // --pg-lock-timeout 0: the wait at the barrier is the test's, not a table lock to give up on.
    const args = ['migrate', '--lock', 'table', '--lock-ttl', '3', '--pg-lock-timeout', '0'];
    const holder = startCli(args, p.cwd, p.db.url);
    await gate.reached(1);
    // What a runner that found the row expired does (a real pause is `npm run faults`' job).
    await p.db.query(`update schema_version_lock set holder = 'thief', host = 'web-2', pid = 31337`);
    await gate.release();
    const r = await holder.done;
    await p.check('errors/lock-lost', () => r.stderr);
  },
);

scenario('errors.md: statement and lock timeouts on PostgreSQL', 'postgres', BASE, async (p) => {
  await p.must('migrate');
  p.write('005_slow.sql', 'SELECT pg_sleep(30);\n');
  p.write('005_slow_rollback.sql', 'SELECT 1;\n');
  await p.check('errors/statement-timeout', ['migrate', '--statement-timeout', '100ms']);
  p.remove('005_slow.sql', '005_slow_rollback.sql');
  p.write('002_widen.sql', 'ALTER TABLE base ADD COLUMN b INTEGER;\n');
  p.write('002_widen_rollback.sql', 'ALTER TABLE base DROP COLUMN b;\n');
  const other = postgres(p.db.url, { max: 1, onnotice: () => {} });
  try {
    const session = await other.reserve();
    await session`begin`;
    await session`lock table base in access share mode`;
    const args = ['migrate', '--pg-lock-timeout', '300ms', '--lock-retries', '1'];
    await p.check('errors/lock-timeout', args, { stream: 'stderr' });
    await session`rollback`;
    session.release();
  } finally {
    await other.end({ timeout: 5 });
  }
});

// ---- docs/faults.md ------------------------------------------------------------------------------

scenario(
  'faults.md: a lost connection, SIGTERM, a dirty row in progress, overlapping runners',
  'postgres',
  {
    ...BASE,
    '002_long.sql': 'SELECT pg_sleep(60);\n',
    '002_long_rollback.sql': 'SELECT 1;\n',
  },
  async (p) => {
    await p.must('migrate', '1');
    const sleeping = () => poll('002 to run', () => sleepingBackend(p.db, 'pg_sleep(60)'));
    let run = startCli(['migrate'], p.cwd, p.db.url);
    await p.db.query('select pg_terminate_backend($1)', [await sleeping()]);
    const lost = await run.done;
    await p.check('faults/connection-lost', () => lost.output);
    run = startCli(['migrate'], p.cwd, p.db.url);
    await sleeping();
    run.child.kill('SIGTERM');
    const stopped = await run.done;
    await p.check('faults/sigterm', () => stopped.output);

    p.remove('002_long.sql', '002_long_rollback.sql');
    p.write('002_build_index.sql', '-- tidemark:no-transaction\nSELECT pg_sleep(60);\n');
    p.write('002_build_index_rollback.sql', '-- tidemark:no-transaction\nSELECT 1;\n');
    run = startCli(['migrate'], p.cwd, p.db.url);
    await sleeping();
    await p.check('faults/in-progress', ['version'], { stream: 'stderr' });
    run.child.kill('SIGTERM');
    await run.done;
    await p.must('resolve', '2');

    p.write('002_build_index.sql', 'SELECT pg_advisory_xact_lock_shared(4242);\n');
    const gate = await barrier(p.db, 4242);
    const overlapping = ['migrate', '--lock', 'none', '--pg-lock-timeout', '0'];
    const runners = [0, 1].map(() => startCli(overlapping, p.cwd, p.db.url));
    await gate.reached(2);
    await gate.release();
    const results = await Promise.all(runners.map((r) => r.done));
    const loser = results.find((r) => r.code !== 0);
    await p.check('faults/recorded-by-another', () => loser?.stderr ?? 'both runners exited 0');
  },
);

scenario(
  'faults.md: a full disk on SQLite',
  'sqlite',
  {
    ...BASE,
    // max_page_count makes SQLite answer SQLITE_FULL exactly as a full disk does.
    '002_big.sql':
      'PRAGMA max_page_count = 40;\nCREATE TABLE big (a BLOB);\n' +
      'INSERT INTO big SELECT randomblob(4000) FROM ' +
      '(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) SELECT x FROM c);\n',
    '002_big_rollback.sql': 'DROP TABLE big;\n',
  },
  async (p) => {
    await p.check('faults/disk-full', ['migrate'], { stream: 'stderr' });
  },
);

scenario(
  "running.md: SQLite's run lock held by another run",
  'sqlite',
  {
    ...BASE,
    '002_count.sql':
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) SELECT count(*) FROM c;\n',
    '002_count_rollback.sql': 'SELECT 1;\n',
  },
  async (p) => {
    await p.must('migrate', '1');
    const holder = startCli(['migrate'], p.cwd, 'sqlite:data/app.db');
    try {
      await poll('the lock file', () => existsSync(join(p.cwd, 'data', 'app.db.tidemark-lock')));
      await p.check('running/sqlite-lock-busy', ['migrate', '--lock-timeout', '1'], { stream: 'stderr' });
    } finally {
      holder.child.kill('SIGTERM');
      await holder.done;
    }
  },
);

// ---- docs/dba.md: psql and the ledger ---------------------------------------------------------------

const ORDERS_007 =
  '-- Orders placed by a strategy.\nCREATE TABLE orders (\n  id          BIGSERIAL PRIMARY KEY,\n' +
  '  strategy_id BIGINT NOT NULL REFERENCES user_strategies (id),\n  quantity    NUMERIC NOT NULL\n);\n';

dba(
  'dba.md: a file run by hand, then force, and its checksum',
  {
    ...exampleFiles(1, 2, 3),
    '007_orders.sql': ORDERS_007,
    '007_orders_rollback.sql': 'DROP TABLE orders;\n',
  },
  async (p) => {
    await p.must('migrate', '3');
    await p.check('dba/hand-run');
    await p.check('dba/force-after-hand-run');
    await p.check('dba/checksum');
  },
);

dba('dba.md: the release script for an empty database, run with psql', exampleFiles(1, 2, 3), async (p) => {
  await p.check('dba/sql');
  p.sh(translate('npx tidemark sql > release.sql', p));
  await p.check('dba/after-script');
});

dba('dba.md: a failed script, a failed no-transaction migration, and settling it', exampleFiles(1, 2, 3), async (p) => {
  await p.must('migrate');
  p.write('005_trades_fee.sql', TRADES_FEE.replace('symbol <>', 'symbl <>'));
  p.write('005_trades_fee_rollback.sql', 'ALTER TABLE trades DROP COLUMN fee;\n');
  p.sh(translate('npx tidemark sql > release.sql', p));
  await p.check('dba/script-failed');
  p.write('005_trades_fee.sql', TRADES_FEE);
  p.write(
    '006_trades_symbol_time_key.sql',
    '-- tidemark:no-transaction\n' +
      'CREATE UNIQUE INDEX CONCURRENTLY trades_symbol_time_key ON trades (symbol, executed_at);\n',
  );
  p.write(
    '006_trades_symbol_time_key_rollback.sql',
    '-- tidemark:no-transaction\nDROP INDEX CONCURRENTLY trades_symbol_time_key;\n',
  );
  await p.db.query(
    `insert into trades (id, symbol, side, quantity, price, executed_at) values
     ('t1', 'BTC/USD', 'buy', 1, 100, '2026-01-01 10:00:00'), ('t2', 'BTC/USD', 'sell', 1, 101, '2026-01-01 10:00:00')`,
  );
  p.sh(translate('npx tidemark sql > release.sql', p));
  await p.check('dba/no-transaction-failed');
  await p.check('dba/invalid-index');
  await p.check('dba/settle');
});

// ---- docs/verify.md --------------------------------------------------------------------------------

scenario('verify.md: drift after a hand change', 'sqlite', ALL, async (p) => {
  await p.must('migrate');
  await p.check('verify/drift');
});

scenario(
  'verify.md: a rollback that forgets DROP TYPE',
  'postgres',
  {
    ...exampleFiles(1, 2, 3),
    '002_user_strategies_rollback.postgres.sql': 'DROP TABLE user_strategies;\n',
  },
  async (p) => {
    await p.must('migrate');
    await p.check('verify/rollbacks');
  },
);

scenario('verify.md: a user who may not create the scratch database', 'postgres', exampleFiles(1, 2, 3), async (p) => {
  const role = await loginRole(p.db);
  try {
    await p.db.query(`grant all on schema public to ${role.name}`);
    p.env.DATABASE_URL = role.url;
    await p.must('migrate');
    await p.check('verify/no-createdb', ['verify']);
  } finally {
    await role.drop();
  }
});

// ---- fleets, pm2, the API, adopting ------------------------------------------------------------------

scenario(
  'fleets.md: a fleet of SQLite files with one failure',
  'sqlite',
  {
    '001_a.sql': 'CREATE TABLE a (x INTEGER);\n',
    '001_a_rollback.sql': 'DROP TABLE a;\n',
    '002_b.sql': 'CREATE TABLE b (x INTEGER);\n',
    '002_b_rollback.sql': 'DROP TABLE b;\n',
  },
  async (p) => {
    mkdirSync(join(p.cwd, 'data', 'tenants'), { recursive: true });
    for (let i = 1; i <= 20; i++)
      writeFileSync(join(p.cwd, 'data', 'tenants', `t${String(i).padStart(2, '0')}.db`), '');
    await sqliteAt(join(p.cwd, 'data', 'tenants', 't07.db')).query('CREATE TABLE b (x INTEGER)');
    await p.check('fleets/failure');
  },
);

scenario(
  'pm2.md: --sync undoes a version this release has no files for',
  'sqlite',
  {
    '001_notes.sql': 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\n',
    '001_notes_rollback.sql': 'DROP TABLE notes;\n',
    '002_tags.sql': 'CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT);\n',
    '002_tags_rollback.sql': 'DROP TABLE tags;\n',
    '003_fees.sql': 'CREATE TABLE fees (id INTEGER PRIMARY KEY, amount NUMERIC);\n',
    '003_fees_rollback.sql': 'DROP TABLE fees;\n',
  },
  async (p) => {
    await p.must('migrate');
    p.remove('003_fees.sql', '003_fees_rollback.sql');
    await p.check('pm2/revert-sync', ['migrate', '--sync']);
  },
);

scenario('api.md: the server example refuses a database behind the release', 'sqlite', ALL, async (p) => {
  await p.must('migrate', '3');
  const server = fencedBlocks('docs/api.md').find((b) => b.text.startsWith('// server.js'));
  const index = JSON.stringify(join(ROOT, 'dist', 'index.js'));
  writeFileSync(join(p.cwd, 'server.mjs'), server.text.replace("from 'tidemark'", `from ${index}`));
  await p.check('api/behind', () => runCombined(process.execPath, ['server.mjs'], { cwd: p.cwd, env: p.env }).output);
});

scenario('adopting.md: a dirty golang-migrate ledger is refused', 'sqlite', {}, async (p) => {
  const from = join(p.cwd, 'db', 'migrations');
  mkdirSync(from, { recursive: true });
  writeFileSync(join(from, '20250201000000_add_orders.up.sql'), 'CREATE TABLE orders (id INTEGER);\n');
  writeFileSync(join(from, '20250201000000_add_orders.down.sql'), 'DROP TABLE orders;\n');
  mkdirSync(join(p.cwd, 'data'));
  await p.db.query(
    'CREATE TABLE schema_migrations (version INTEGER NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL);' +
      'INSERT INTO schema_migrations VALUES (20250201000000, 1);',
  );
  const args = ['import', '--from', 'golang-migrate', 'db/migrations'];
  await p.check('adopting/golang-migrate-dirty', args, { stream: 'stderr' });
});

test('every example key in the docs is checked by a scenario above', () => {
  const unchecked = [...BLOCKS.keys()].filter((key) => !checked.has(key));
  assert.equal(unchecked, [], 'these examples have a marker but no scenario here checks them');
});

test.run();

// flags + process environment + .env + package.json "tidemark" -> one Config.
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { UsageError } from './errors.js';
import { versionInput, type Version } from './version.js';

export interface ConfigFlags {
  url?: string;
  dir?: string;
  table?: string;
  json?: boolean;
  quiet?: boolean;
  /** Seconds to wait for another runner's lock (PostgreSQL) or write lock (SQLite busy timeout). */
  lockTimeout?: string | number;
  /** How runners keep apart on PostgreSQL: advisory (default), table or none. */
  lock?: string;
  /** Table mode: seconds a lock row lives unless its holder renews it. */
  lockTtl?: string | number;
  /** Seconds to keep retrying the first connection; true means the default wait. */
  wait?: string | number | boolean;
  /** PostgreSQL statement_timeout for each migration, e.g. 30s, 5min, 500ms. */
  statementTimeout?: string;
  /** PostgreSQL lock_timeout for each migration: how long a statement may wait for a table lock (0: no limit). */
  pgLockTimeout?: string;
  /** PostgreSQL: how many times a migration that hit its lock_timeout is tried again, with back-off. */
  lockRetries?: string | number;
  /** The migration log's path, or false (`--no-log`) for none. */
  log?: string | false;
  /** With several databases configured: work on this one only. */
  db?: string;
  /** verify: where to build the expected schema when the user may not create a database on the target's server. */
  scratchUrl?: string;
  /** Where backups are written (default backups/, or backups/<name>/ with several databases). */
  backupDir?: string;
  /** A fleet source (see src/fleet/sources.ts): work over many databases. */
  fleet?: string | false;
  /** migrate refuses files the lint finds lock hazards in (--strict; --no-strict turns a configured one off). */
  strict?: boolean;
}

export interface TableName {
  /** PostgreSQL schema, or null for the search path (always null on SQLite). */
  schema: string | null;
  name: string;
}

export interface Config {
  cwd: string;
  /** The database's name in a "databases" configuration; null for the one-database set-up. */
  name: string | null;
  /** The database URL as given; undefined when none is configured (fine for `create`). */
  url: string | undefined;
  /** The migrations folder, as given (relative paths are shown relative to cwd). */
  dir: string;
  table: TableName;
  json: boolean;
  quiet: boolean;
  lockTimeoutSeconds: number;
  /** How runners keep apart (--lock, TIDEMARK_LOCK, "lock"); on SQLite, none or the run lock file. */
  lock: LockMode;
  /** --lock table: seconds the lock row lives unless its holder renews it. */
  lockTtlSeconds: number;
  /** 0: fail on the first refused connection. */
  waitSeconds: number;
  /** Set (with SET LOCAL) in each PostgreSQL migration; null leaves the server's setting. */
  statementTimeout: string | null;
  pgLockTimeout: string | null;
  /** Retries of a migration whose lock_timeout expired (PostgreSQL). */
  lockRetries: number;
  /** Where commands that change the database append their log lines; null: no log. */
  log: string | null;
  /** SCHEMA_VERSION (environment or .env): the version the application expects; null when unset. */
  schemaVersion: Version | null;
  /** verify --scratch-url: the server (or empty database) to build the expected schema on; null: the target's. */
  scratchUrl: string | null;
  /** Strings that must never be printed (passwords). */
  secrets: string[];
  /** The folder backups go to (--backup-dir, BACKUP_DIR); relative to cwd. */
  backupDir: string;
  /** migrate refuses pending files with lint findings (--strict, or "strict": true in the project settings). */
  strict: boolean;
}

/**
 * advisory: a session advisory lock. table: a row in `<ledger>_lock`, for transaction-mode poolers
 * (PgBouncer), where a session lock does not hold. none: deploys are serialized some other way.
 * SQLite: advisory and table both mean its run lock file (drivers/sqlite-lock.ts); none takes none.
 */
const LOCK_MODES = ['advisory', 'table', 'none'] as const;
export type LockMode = (typeof LOCK_MODES)[number];

export type Target =
  | { dialect: 'sqlite'; file: string; description: string }
  | { dialect: 'postgres'; url: string; description: string };

interface DatabaseSettings {
  /** A URL, or `env:NAME` for the value of the environment variable NAME. */
  url?: string;
  dir?: string;
  table?: string;
  lock?: string;
}

interface ProjectSettings extends DatabaseSettings {
  log?: string;
  strict?: boolean;
  databases?: Record<string, DatabaseSettings>;
  /** A fleet source, or { "source", "url" } with the control database's URL (`env:NAME` allowed). */
  fleet?: string | { source?: unknown; url?: unknown };
}

/** A fleet to work over: the source as written, and the database its query runs on (when it has one). */
export interface FleetSetting {
  spec: string;
  url: string | undefined;
}

export const CONFIG_FILE = 'tidemark.config.json';

const DEFAULT_LOCK_TIMEOUT_SECONDS = 60;
const DEFAULT_LOCK_TTL_SECONDS = 30;
/**
 * A migration waits at most this long for a table lock, then retries: waiting longer would queue the
 * application's own queries on that table behind it (PostgreSQL grants locks in order).
 */
const DEFAULT_PG_LOCK_TIMEOUT = '5s';
const DEFAULT_LOCK_RETRIES = 3;
const DEFAULT_WAIT_SECONDS = 60;
const DEFAULT_LOG = 'logs/migration.log';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * One Config per database to work on, in the order configured. Precedence: flags, then the process
 * environment, then `.env` in cwd, then tidemark.config.json or package.json's "tidemark" field,
 * then defaults. `.env` is loaded into process.env with Node's own loader, which never overwrites a
 * variable the environment already has. With a "databases" map, `--db` picks one of them.
 */
export function loadConfigs(
  flags: ConfigFlags,
  cwd: string = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): Config[] {
  const envFile = join(cwd, '.env');
  if (env === process.env && existsSync(envFile)) process.loadEnvFile(envFile);
  const settings = readProjectSettings(cwd);
  if (!settings.databases) {
    if (flags.db)
      throw new UsageError(`--db ${flags.db}: this project configures no named databases`, { hint: DATABASES_HINT });
    const url = flags.url || env.DATABASE_URL || settings.url || undefined;
    return [configFor(null, { ...settings, url }, flags, cwd, env, { strict: settings.strict })];
  }
  const named = Object.entries(settings.databases).filter(([name]) => !flags.db || name === flags.db);
  if (named.length === 0) {
    const names = Object.keys(settings.databases).join(', ') || 'none';
    throw new UsageError(`--db ${flags.db}: no such database; configured: ${names}`, {
      hint: `e.g. --db ${Object.keys(settings.databases)[0] ?? 'main'}`,
    });
  }
  if (named.length > 1 && (flags.url || flags.dir)) {
    throw new UsageError('--url and --dir name one database, and this project configures several', {
      hint: `add --db, e.g. --db ${named[0]![0]}`,
    });
  }
  return named.map(([name, database]) =>
    configFor(
      name,
      { lock: settings.lock, ...database, url: flags.url || resolveUrl(name, database.url, env) },
      flags,
      cwd,
      env,
      settings,
    ),
  );
}

/**
 * `--fleet`, else the project's "fleet" setting, else null. Call after loadConfigs (which loads .env).
 * The control database: --url, else the setting's "url", else DATABASE_URL, else the project's "url".
 */
export function loadFleetSetting(
  flags: ConfigFlags,
  cwd: string = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): FleetSetting | null {
  const settings = readProjectSettings(cwd);
  const fleet = settings.fleet;
  if (flags.fleet === false || (flags.fleet === undefined && fleet === undefined)) return null;
  if (settings.databases) {
    throw new UsageError('a fleet and a "databases" map cannot be combined', {
      hint: 'remove "databases", or pass --db to work on one of them without the fleet',
    });
  }
  const configured = typeof fleet === 'string' ? { source: fleet } : (fleet ?? {});
  const spec = flags.fleet ?? configured.source;
  if (typeof spec !== 'string' || (configured.url !== undefined && typeof configured.url !== 'string')) {
    throw new UsageError('"fleet" must be a source, or { "source": "...", "url": "env:NAME" }', { hint: FLEET_HINT });
  }
  const url =
    flags.url ||
    resolveUrl('fleet', configured.url as string | undefined, env) ||
    env.DATABASE_URL ||
    settings.url ||
    undefined;
  return { spec, url };
}

const FLEET_HINT =
  'e.g. "tidemark": { "fleet": "sqlite:data/tenants/*.db" } or { "fleet": { "source": "query:select url from ' +
  'tenants", "url": "env:CONTROL_URL" } }';

/** Exactly one database: the API's and single-database commands' view. */
export function loadConfig(
  flags: ConfigFlags,
  cwd: string = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const configs = loadConfigs(flags, cwd, env);
  if (configs.length > 1) {
    throw new UsageError(
      `this project configures several databases (${configs.map((c) => c.name).join(', ')}); name one`,
      { hint: `pass --db (API: { db: '${configs[0]!.name}' })` },
    );
  }
  return configs[0]!;
}

function configFor(
  name: string | null,
  database: DatabaseSettings,
  flags: ConfigFlags,
  cwd: string,
  env: NodeJS.ProcessEnv,
  project: Pick<ProjectSettings, 'log' | 'strict'>,
): Config {
  const url = database.url;
  const suffix = name === null ? '' : `_${name.toUpperCase()}`;
  const schemaVersion = env[`SCHEMA_VERSION${suffix}`];
  return {
    cwd,
    name,
    url,
    dir:
      flags.dir ||
      (name === null ? env.MIGRATIONS_DIR : undefined) ||
      database.dir ||
      (name === null ? 'sql' : `sql/${name}`),
    table: parseTableName(
      flags.table || (name === null ? env.MIGRATIONS_TABLE : undefined) || database.table || 'schema_version',
    ),
    json: Boolean(flags.json),
    quiet: Boolean(flags.quiet),
    lockTimeoutSeconds: seconds(flags.lockTimeout ?? DEFAULT_LOCK_TIMEOUT_SECONDS, '--lock-timeout'),
    lock: lockMode(flags, env, database),
    lockTtlSeconds: seconds(flags.lockTtl ?? DEFAULT_LOCK_TTL_SECONDS, '--lock-ttl', 1),
    waitSeconds: waitSeconds(flags.wait),
    statementTimeout:
      flags.statementTimeout === undefined ? null : duration(flags.statementTimeout, '--statement-timeout'),
    pgLockTimeout: duration(flags.pgLockTimeout ?? DEFAULT_PG_LOCK_TIMEOUT, '--pg-lock-timeout'),
    lockRetries: count(flags.lockRetries ?? DEFAULT_LOCK_RETRIES, '--lock-retries'),
    log: flags.log === false ? null : flags.log || env.MIGRATIONS_LOG || project.log || DEFAULT_LOG,
    schemaVersion: schemaVersion ? versionInput(schemaVersion, `SCHEMA_VERSION${suffix}`) : null,
    scratchUrl: flags.scratchUrl || null,
    secrets: [passwordOf(url), passwordOf(flags.scratchUrl), env.PGPASSWORD].filter((s): s is string => Boolean(s)),
    backupDir: flags.backupDir || env.BACKUP_DIR || (name === null ? 'backups' : `backups/${name}`),
    strict: flags.strict ?? project.strict === true,
  };
}

const DATABASES_HINT =
  'name databases in tidemark.config.json or package.json "tidemark": { "databases": { "main": { "url": ' +
  '"env:DATABASE_URL", "dir": "sql/main" } } }';

/** `env:NAME` reads the variable, so a committed config never holds a password. */
function resolveUrl(name: string, url: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  if (!url?.startsWith('env:')) return url;
  const variable = url.slice('env:'.length);
  const value = env[variable];
  if (!value) {
    throw new UsageError(`database "${name}" takes its URL from ${variable}, which is not set`, {
      hint: `set ${variable} in the environment or .env, e.g. ${variable}=sqlite:data/${name}.db`,
    });
  }
  return value;
}

/** tidemark.config.json when it exists, else package.json's "tidemark" field, else nothing. */
function readProjectSettings(cwd: string): ProjectSettings {
  const configFile = join(cwd, CONFIG_FILE);
  const settings = existsSync(configFile) ? readJson(configFile) : readPackageField(join(cwd, 'package.json'));
  if (settings === undefined) return {};
  const where = existsSync(configFile) ? configFile : `${join(cwd, 'package.json')} "tidemark"`;
  if (!isObject(settings))
    throw new UsageError(`${where}: must be an object`, {
      hint: 'write it as { "dir": "sql", "table": "schema_version" }',
    });
  const { databases } = settings as ProjectSettings;
  if (databases !== undefined && (!isObject(databases) || !Object.values(databases).every(isObject))) {
    throw new UsageError(`${where}: "databases" must map names to { "url", "dir", "table" } objects`, {
      hint: DATABASES_HINT,
    });
  }
  for (const name of Object.keys(databases ?? {})) {
    if (!IDENTIFIER.test(name))
      throw new UsageError(`${where}: "${name}" cannot be a database name`, {
        hint: 'use letters, digits and underscores, e.g. "trades"',
      });
  }
  return settings as ProjectSettings;
}

function readPackageField(path: string): unknown {
  return existsSync(path) ? (readJson(path) as { tidemark?: unknown }).tidemark : undefined;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new UsageError(`${path}: not valid JSON (${(error as Error).message})`, {
      file: path,
      hint: 'fix the JSON syntax',
    });
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function seconds(value: string | number, flag: string, least = 0): number {
  const text = String(value);
  if (!/^\d+$/.test(text) || Number(text) < least) {
    throw new UsageError(`${flag} takes whole seconds${least > 0 ? ` (at least ${least})` : ''}, not "${text}"`, {
      hint: `e.g. ${flag} 30`,
    });
  }
  return Number(text);
}

function count(value: string | number, flag: string): number {
  const text = String(value);
  if (!/^\d+$/.test(text))
    throw new UsageError(`${flag} takes a whole number, not "${text}"`, { hint: `e.g. ${flag} 3 (0: no retry)` });
  return Number(text);
}

/** --lock, else TIDEMARK_LOCK, else "lock" in the project settings, else advisory. */
function lockMode(flags: ConfigFlags, env: NodeJS.ProcessEnv, database: DatabaseSettings): LockMode {
  const [source, value] =
    flags.lock !== undefined
      ? ['--lock', flags.lock]
      : env.TIDEMARK_LOCK
        ? ['TIDEMARK_LOCK', env.TIDEMARK_LOCK]
        : ['"lock" in the project settings', database.lock ?? 'advisory'];
  if ((LOCK_MODES as readonly unknown[]).includes(value)) return value as LockMode;
  throw new UsageError(`${source} must be one of ${LOCK_MODES.join(', ')}, not "${value}"`, {
    hint:
      'advisory (the default) suits direct connections; table suits PgBouncer in transaction mode; none only ' +
      'when deploys are serialized some other way',
  });
}

/** `--wait` alone waits the default time; `--wait 30` that many seconds; no flag does not retry. */
function waitSeconds(flag: ConfigFlags['wait']): number {
  if (flag === undefined || flag === false) return 0;
  if (flag === true || flag === '') return DEFAULT_WAIT_SECONDS;
  return seconds(flag, '--wait');
}

/**
 * A PostgreSQL duration (`500ms`, `30s`, `5min`, `1h`; a bare number is milliseconds). It is spliced into SET, so
 * nothing else passes.
 */
function duration(value: string, flag: string): string {
  const text = String(value).trim();
  if (!/^\d+\s*(ms|s|min|h|d)?$/.test(text)) {
    throw new UsageError(`${flag} must be a duration like 500ms, 30s, 5min or 1h, not "${text}"`, {
      hint: `e.g. ${flag} 30s (0 turns the limit off)`,
    });
  }
  return text.replace(/\s+/g, '');
}

/** `schema_version` or, on PostgreSQL, `schema.schema_version`; anything else could inject SQL. */
export function parseTableName(text: string): TableName {
  const parts = text.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw new UsageError(`"${text}" is not a valid ledger table name`, {
      hint:
        'use letters, digits and underscores, starting with a letter (at most 63), optionally schema.table on ' +
        'PostgreSQL; e.g. --table schema_version',
    });
  }
  return parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : { schema: null, name: parts[0]! };
}

/** Works out which database a URL names, with a description that is safe to print. */
export function parseTarget(url: string | undefined, cwd: string): Target {
  if (!url) {
    throw new UsageError('no database is configured', {
      hint:
        'set DATABASE_URL (in the environment or .env), e.g. DATABASE_URL=sqlite:data/app.db or ' +
        'postgres://user@localhost:5432/app, or pass --url',
    });
  }
  if (url.startsWith('sqlite:')) {
    // sqlite:data/app.db (relative to cwd), sqlite:///abs/path.db, sqlite://data/app.db
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '')
      throw new UsageError('the sqlite: URL has no file path', { hint: 'write it as sqlite:data/app.db' });
    const file = isAbsolute(path) ? path : resolve(cwd, path);
    return { dialect: 'sqlite', file, description: `sqlite:${path}` };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const malformed = new UsageError(`the PostgreSQL URL is malformed: ${describeUrl(url)}`, {
      hint:
        'write it as postgres://user:password@host:5432/database, percent-encoding @ / : ? # % in the password ' +
        '(@ is %40)',
    });
    // A second @ means an unencoded one in the password: the URL would parse with part of it as the host.
    if ((userInfoOf(url)?.split('@').length ?? 1) > 1) throw malformed;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw malformed;
    }
    const sslmode = parsed.searchParams.get('sslmode');
    if (sslmode !== null && !SSL_MODES.includes(sslmode)) {
      throw new UsageError(`sslmode=${sslmode} is not a TLS mode`, {
        hint: `use one of ${SSL_MODES.join(', ')} (e.g. ?sslmode=require)`,
      });
    }
    // The same defaults postgres.js applies, so the description names where it really connects.
    const env = process.env;
    const user = decodeURIComponent(parsed.username) || env.PGUSERNAME || env.PGUSER || userInfo().username;
    const host = parsed.hostname || parsed.searchParams.get('host') || env.PGHOST || 'localhost';
    const port = parsed.port || env.PGPORT || '5432';
    const database = decodeURIComponent(parsed.pathname.slice(1)) || env.PGDATABASE || user;
    return { dialect: 'postgres', url, description: `postgres://${user}@${host}:${port}/${database}` };
  }
  throw new UsageError(`unknown database URL scheme in ${describeUrl(url)}`, {
    hint: 'DATABASE_URL must start with postgres://, postgresql:// or sqlite: (e.g. sqlite:data/app.db)',
  });
}

/** The URL's scheme and host only: enough to recognise it, never a password. */
function describeUrl(url: string): string {
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(url)?.[0];
  return scheme ? `"${scheme}…"` : 'the configured URL';
}

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/**
 * `user:password` of `scheme://user:password@host…`, taken up to the last @ before any ? or #, so an unencoded @ or /
 * in a password is still all of it.
 */
function userInfoOf(url: string): string | undefined {
  const rest = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^?#]*)/.exec(url)?.[1] ?? '';
  const at = rest.lastIndexOf('@');
  return at < 0 ? undefined : rest.slice(0, at);
}

export function passwordOf(url: string | undefined): string | undefined {
  const info = url ? userInfoOf(url) : undefined;
  const colon = info?.indexOf(':') ?? -1;
  if (!info || colon < 0 || colon === info.length - 1) return undefined;
  const password = info.slice(colon + 1);
  try {
    return decodeURIComponent(password);
  } catch {
    return password;
  }
}

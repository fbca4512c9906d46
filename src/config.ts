// flags + process environment + .env + package.json "tidemark" -> one Config.
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { UsageError } from './errors.js';

export interface ConfigFlags {
  url?: string;
  dir?: string;
  table?: string;
  json?: boolean;
  quiet?: boolean;
  /** Seconds to wait for another runner's lock (PostgreSQL) or write lock (SQLite busy timeout). */
  lockTimeout?: string | number;
  /** Seconds to keep retrying the first connection; true means the default wait. */
  wait?: string | number | boolean;
  /** PostgreSQL statement_timeout for each migration, e.g. 30s, 5min, 500ms. */
  statementTimeout?: string;
  /** PostgreSQL lock_timeout for each migration: how long a statement may wait for a table lock. */
  pgLockTimeout?: string;
  /** The migration log's path, or false (`--no-log`) for none. */
  log?: string | false;
}

export interface TableName {
  /** PostgreSQL schema, or null for the search path (always null on SQLite). */
  schema: string | null;
  name: string;
}

export interface Config {
  cwd: string;
  /** The database URL as given; undefined when none is configured (fine for `create`). */
  url: string | undefined;
  /** The migrations folder, as given (relative paths are shown relative to cwd). */
  dir: string;
  table: TableName;
  json: boolean;
  quiet: boolean;
  lockTimeoutSeconds: number;
  /** 0: fail on the first refused connection. */
  waitSeconds: number;
  /** Set (with SET LOCAL) in each PostgreSQL migration; null leaves the server's setting. */
  statementTimeout: string | null;
  pgLockTimeout: string | null;
  /** Where commands that change the database append their log lines; null: no log. */
  log: string | null;
  /** SCHEMA_VERSION (environment or .env): the version the application expects; null when unset. */
  schemaVersion: number | null;
  /** Strings that must never be printed (passwords). */
  secrets: string[];
}

export type Target =
  | { dialect: 'sqlite'; file: string; description: string }
  | { dialect: 'postgres'; url: string; description: string };

interface PackageSettings {
  url?: string;
  dir?: string;
  table?: string;
  log?: string;
}

const DEFAULT_LOCK_TIMEOUT_SECONDS = 60;
const DEFAULT_WAIT_SECONDS = 60;
const DEFAULT_LOG = 'logs/migration.log';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/**
 * Precedence: flags, then the process environment, then `.env` in cwd, then package.json's
 * "tidemark" field, then defaults. `.env` is loaded into process.env with Node's own loader,
 * which never overwrites a variable the environment already has.
 */
export function loadConfig(flags: ConfigFlags, cwd: string = process.cwd(), env: NodeJS.ProcessEnv = process.env): Config {
  const envFile = join(cwd, '.env');
  if (env === process.env && existsSync(envFile)) process.loadEnvFile(envFile);
  const settings = readPackageSettings(cwd);
  const url = flags.url || env.DATABASE_URL || settings.url || undefined;
  const tableText = flags.table || env.MIGRATIONS_TABLE || settings.table || 'schema_version';
  return {
    cwd,
    url,
    dir: flags.dir || env.MIGRATIONS_DIR || settings.dir || 'sql',
    table: parseTableName(tableText),
    json: Boolean(flags.json),
    quiet: Boolean(flags.quiet),
    lockTimeoutSeconds: seconds(flags.lockTimeout ?? DEFAULT_LOCK_TIMEOUT_SECONDS, '--lock-timeout'),
    waitSeconds: waitSeconds(flags.wait),
    statementTimeout: flags.statementTimeout === undefined ? null : duration(flags.statementTimeout, '--statement-timeout'),
    pgLockTimeout: flags.pgLockTimeout === undefined ? null : duration(flags.pgLockTimeout, '--pg-lock-timeout'),
    log: flags.log === false ? null : flags.log || env.MIGRATIONS_LOG || settings.log || DEFAULT_LOG,
    schemaVersion: env.SCHEMA_VERSION ? versionNumber(env.SCHEMA_VERSION, 'SCHEMA_VERSION') : null,
    secrets: [passwordOf(url), env.PGPASSWORD].filter((s): s is string => Boolean(s)),
  };
}

function readPackageSettings(cwd: string): PackageSettings {
  const path = join(cwd, 'package.json');
  if (!existsSync(path)) return {};
  let settings: unknown;
  try {
    settings = (JSON.parse(readFileSync(path, 'utf8')) as { tidemark?: unknown }).tidemark;
  } catch (error) {
    throw new UsageError(`${path}: not valid JSON (${(error as Error).message})`, { file: path, hint: 'fix the JSON syntax' });
  }
  if (settings === undefined) return {};
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
    throw new UsageError(`${path}: the "tidemark" field must be an object`, {
      file: path,
      hint: 'write it as "tidemark": { "dir": "sql", "table": "schema_version" }',
    });
  }
  return settings as PackageSettings;
}

function seconds(value: string | number, flag: string): number {
  const text = String(value);
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} takes whole seconds, not "${text}"`, { hint: `e.g. ${flag} 30` });
  return Number(text);
}

function versionNumber(text: string, name: string): number {
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${name} must be a version number, not "${text}"`, { hint: `e.g. ${name}=3` });
  return Number(text.trim());
}

/** `--wait` alone waits the default time; `--wait 30` that many seconds; no flag does not retry. */
function waitSeconds(flag: ConfigFlags['wait']): number {
  if (flag === undefined || flag === false) return 0;
  if (flag === true || flag === '') return DEFAULT_WAIT_SECONDS;
  return seconds(flag, '--wait');
}

/** A PostgreSQL duration (`500ms`, `30s`, `5min`, `1h`; a bare number is milliseconds). It is spliced into SET, so nothing else passes. */
function duration(value: string, flag: string): string {
  const text = String(value).trim();
  if (!/^\d+\s*(ms|s|min|h|d)?$/.test(text)) {
    throw new UsageError(`${flag} must be a duration like 500ms, 30s, 5min or 1h, not "${text}"`, { hint: `e.g. ${flag} 30s (0 turns the limit off)` });
  }
  return text.replace(/\s+/g, '');
}

/** `schema_version` or, on PostgreSQL, `schema.schema_version`; anything else could inject SQL. */
export function parseTableName(text: string): TableName {
  const parts = text.split('.');
  if (parts.length > 2 || !parts.every((p) => IDENTIFIER.test(p))) {
    throw new UsageError(`"${text}" is not a valid ledger table name`, {
      hint: 'use letters, digits and underscores, starting with a letter (at most 63), optionally schema.table on PostgreSQL; e.g. --table schema_version',
    });
  }
  return parts.length === 2 ? { schema: parts[0]!, name: parts[1]! } : { schema: null, name: parts[0]! };
}

/** Works out which database a URL names, with a description that is safe to print. */
export function parseTarget(url: string | undefined, cwd: string): Target {
  if (!url) {
    throw new UsageError('no database is configured', {
      hint: 'set DATABASE_URL (in the environment or .env), e.g. DATABASE_URL=sqlite:data/app.db or postgres://user@localhost:5432/app, or pass --url',
    });
  }
  if (url.startsWith('sqlite:')) {
    // sqlite:data/app.db (relative to cwd), sqlite:///abs/path.db, sqlite://data/app.db
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    if (path === '') throw new UsageError('the sqlite: URL has no file path', { hint: 'write it as sqlite:data/app.db' });
    const file = isAbsolute(path) ? path : resolve(cwd, path);
    return { dialect: 'sqlite', file, description: `sqlite:${path}` };
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`the PostgreSQL URL is malformed: ${describeUrl(url)}`, {
        hint: 'write it as postgres://user:password@host:5432/database (percent-encode special characters in the password)',
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

function passwordOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const match = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/@]*?:([^@/]*)@/.exec(url);
  if (!match?.[1]) return undefined;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

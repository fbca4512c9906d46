// Loads only the driver the URL names: the other database's client is never imported.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config, Target } from '../config.js';
import { ConnectionError, UsageError } from '../errors.js';
import type { Driver } from './driver.js';

export interface ConnectOptions {
  /** The command writes: a missing SQLite file (and its folder) is created. */
  create: boolean;
  /** Server notices (PostgreSQL NOTICE messages) go here. */
  onNotice: (message: string) => void;
}

/**
 * With `config.waitSeconds`, a server that does not answer yet (a deploy right after a database
 * restart) is retried until the deadline; a refused login or a missing database fails at once.
 */
export async function connect(target: Target, config: Config, options: ConnectOptions): Promise<Driver> {
  const deadline = Date.now() + config.waitSeconds * 1000;
  for (let pause = 250; ; pause = Math.min(pause * 2, 2000)) {
    try {
      return await open(target, config, options);
    } catch (error) {
      if (!(error instanceof ConnectionError && error.unreachable) || Date.now() + pause > deadline) throw error;
      if (pause === 250) options.onNotice(`${target.description} does not answer yet; retrying for up to ${config.waitSeconds} s (--wait)`);
      await sleep(pause);
    }
  }
}

async function open(target: Target, config: Config, options: ConnectOptions): Promise<Driver> {
  if (target.dialect === 'postgres') {
    const { connectPostgres } = await loadDriver('postgres', () => import('./postgres.js'));
    return connectPostgres({ url: target.url, description: target.description, table: config.table, onNotice: options.onNotice, timeouts: config });
  }
  const { connectSqlite } = await loadDriver('sqlite3', () => import('./sqlite.js'));
  return connectSqlite({ file: target.file, description: target.description, table: config.table, create: options.create, busyTimeoutMs: config.lockTimeoutSeconds * 1000 });
}

/**
 * The database clients are optional peer dependencies: an app installs the one it uses (a
 * PostgreSQL-only app compiles no native SQLite module). A missing one is a setup error with its fix.
 */
async function loadDriver<T>(client: 'postgres' | 'sqlite3', load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(`'${client}'`);
    if (!missing) throw error;
    const database = client === 'postgres' ? 'PostgreSQL' : 'SQLite';
    throw new UsageError(`${database} needs the \`${client}\` package, which is not installed`, {
      hint: `run \`npm install ${client}\` in the app, then run the command again`,
    });
  }
}

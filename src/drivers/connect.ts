// The one place that picks a dialect's module: the driver, a scratch database, a backup tool. Only the
// dialect the URL names is loaded: the other database's client is never imported.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config, TableName, Target } from '../config.js';
import { ConnectionError, UsageError } from '../errors.js';
import type { BackupTool } from './backup.js';
import type { Driver } from './driver.js';
import type { ScratchResult } from './scratch.js';

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
      if (pause === 250)
        options.onNotice(
          `${target.description} does not answer yet; retrying for up to ${config.waitSeconds} s (--wait)`,
        );
      await sleep(pause);
    }
  }
}

async function open(target: Target, config: Config, options: ConnectOptions): Promise<Driver> {
  if (target.dialect === 'postgres') {
    const { connectPostgres } = await loadDriver('postgres', () => import('./postgres.js'));
    return connectPostgres({
      url: target.url,
      description: target.description,
      table: config.table,
      onNotice: options.onNotice,
      timeouts: config,
    });
  }
  const { connectSqlite } = await loadDriver('sqlite3', () => import('./sqlite.js'));
  return connectSqlite({
    file: target.file,
    description: target.description,
    table: config.table,
    create: options.create,
    busyTimeoutMs: config.lockTimeoutSeconds * 1000,
  });
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

/**
 * PostgreSQL: a new database on the target's server, or with `given` (--scratch-url) on that server;
 * when the user may not create one there, the given database itself, but only while it holds no
 * objects. SQLite: a file in a new temporary folder, or the given file while it is empty or absent.
 */
export async function createScratch(target: Target, given: Target | null): Promise<ScratchResult> {
  if (target.dialect === 'postgres') {
    const { createPostgresScratch } = await import('./postgres-schema.js');
    const server = given?.dialect === 'postgres' ? { ...given, given: true } : { ...target, given: false };
    return createPostgresScratch(server);
  }
  const { createSqliteScratch } = await import('./sqlite-schema.js');
  return createSqliteScratch(given?.dialect === 'sqlite' ? given.file : null);
}

/** `ledger`: tidemark's tables; a lock row of the run that took the backup is not kept in it. */
export async function backupTool(target: Target, ledger: TableName, secrets: string[]): Promise<BackupTool> {
  if (target.dialect === 'sqlite') {
    const { sqliteBackupTool } = await import('./sqlite-backup.js');
    return sqliteBackupTool(target.file);
  }
  const { postgresBackupTool } = await import('./postgres-backup.js');
  return postgresBackupTool(target.url, ledger, secrets);
}

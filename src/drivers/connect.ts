// Loads only the driver the URL names: the other database's client is never imported.
import type { Config, Target } from '../config.js';
import type { Driver } from './driver.js';

export interface ConnectOptions {
  /** The command writes: a missing SQLite file (and its folder) is created. */
  create: boolean;
  /** Server notices (PostgreSQL NOTICE messages) go here. */
  onNotice: (message: string) => void;
}

const BUSY_TIMEOUT_MS = 60_000;

export async function connect(target: Target, config: Config, options: ConnectOptions): Promise<Driver> {
  if (target.dialect === 'postgres') {
    const { connectPostgres } = await import('./postgres.js');
    return connectPostgres({ url: target.url, description: target.description, table: config.table, onNotice: options.onNotice });
  }
  const { connectSqlite } = await import('./sqlite.js');
  return connectSqlite({ file: target.file, description: target.description, table: config.table, create: options.create, busyTimeoutMs: BUSY_TIMEOUT_MS });
}

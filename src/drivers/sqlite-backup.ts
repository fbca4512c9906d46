// SQLite backups: VACUUM INTO for a consistent copy while the app writes (a plain file copy can
// catch a half-written page or miss the WAL); restore through SQLite's backup API, which takes the
// database's locks, so no connection ever sees a half-restored file.
import { existsSync } from 'node:fs';
import { basename, extname } from 'node:path';
import sqlite3 from 'sqlite3';
import type { TableName } from '../config.js';
import { UsageError } from '../errors.js';
import type { BackupTool } from './backup.js';
import type { Version } from '../version.js';

/** node-sqlite3's backup object (not in its type definitions). */
interface SqliteBackup {
  step(pages: number, callback: (error: Error | null) => void): void;
  finish(callback?: (error: Error | null) => void): void;
  readonly completed: boolean;
}

type BackupDatabase = sqlite3.Database & {
  backup(
    file: string,
    destName: string,
    sourceName: string,
    fileIsDestination: boolean,
    callback: (error: Error | null) => void,
  ): SqliteBackup;
};

const BUSY_TIMEOUT_MS = 60_000;

export function sqliteBackupTool(database: string): BackupTool {
  return {
    name: basename(database, extname(database)),
    extension: '.sqlite',
    backup: (file) => withDatabase(database, sqlite3.OPEN_READONLY, (db) => run(db, 'vacuum into ?', [file])),
    check: (file, ledger) => checkBackup(file, ledger),
    restore: (file) => withDatabase(database, sqlite3.OPEN_READWRITE, (db) => restoreInto(db as BackupDatabase, file)),
  };
}

async function checkBackup(file: string, { name: ledger }: TableName): Promise<Version> {
  return withDatabase(file, sqlite3.OPEN_READONLY, async (db) => {
    const [integrity] = await all(db, 'pragma integrity_check');
    const verdict = Object.values(integrity ?? {})[0];
    if (verdict !== 'ok') throw new UsageError(`${file} is not an intact SQLite database: ${String(verdict)}`);
    const tables = await all(db, `select 1 from sqlite_schema where type = 'table' and name = ?`, [ledger]);
    if (tables.length === 0) return 0n;
    // As text: the client reads integers as JavaScript numbers, which round above 2^53.
    const [row] = await all(db, `select cast(coalesce(max(version), 0) as text) as version from "${ledger}"`);
    return BigInt(String(row?.version ?? 0));
  });
}

function restoreInto(db: BackupDatabase, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const backup = db.backup(file, 'main', 'main', false, (error) => {
      if (error) return reject(error);
      // -1: every page in one step, so the database is never left half-restored between steps.
      backup.step(-1, (stepError) => backup.finish(() => (stepError ? reject(stepError) : resolve())));
    });
  });
}

async function withDatabase<T>(file: string, mode: number, work: (db: sqlite3.Database) => Promise<T>): Promise<T> {
  if (!existsSync(file)) throw new UsageError(`${file} does not exist`);
  const db = await new Promise<sqlite3.Database>((resolve, reject) => {
    const opened: sqlite3.Database = new sqlite3.Database(file, mode, (error) =>
      error ? reject(error) : resolve(opened),
    );
  });
  db.configure('busyTimeout', BUSY_TIMEOUT_MS);
  try {
    return await work(db);
  } finally {
    await new Promise<void>((resolve) => db.close(() => resolve()));
  }
}

function run(db: sqlite3.Database, sql: string, params: unknown[] = []): Promise<void> {
  return new Promise((resolve, reject) => db.run(sql, params, (error) => (error ? reject(error) : resolve())));
}

function all(db: sqlite3.Database, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) =>
    db.all(sql, params, (error, rows) => (error ? reject(error) : resolve(rows as Record<string, unknown>[]))),
  );
}

// A fleet's list from a control database: one query, read-only, its first column as text.
import type { Target } from '../config.js';
import { ConnectionError, UsageError } from '../errors.js';

/**
 * Runs `query` on the control database in a read-only transaction (PostgreSQL) or a read-only
 * handle (SQLite), so a fleet's listing query can never change anything, and returns the first
 * column of every row. The connection is closed before the fleet starts.
 */
export async function readFirstColumn(target: Target, query: string): Promise<string[]> {
  const rows =
    target.dialect === 'postgres'
      ? await readPostgres(target.url, query, target.description)
      : await readSqlite(target.file, query);
  return rows.map((row) => {
    const value = Object.values(row)[0];
    if (typeof value !== 'string' || value === '') {
      throw new UsageError(
        `the fleet query on ${target.description} returned ${JSON.stringify(value ?? null)}, not a name or URL`,
        {
          hint: 'make its first column text, one database URL (or schema name) per row, with no nulls',
        },
      );
    }
    return value;
  });
}

async function readPostgres(url: string, query: string, description: string): Promise<Record<string, unknown>[]> {
  const { default: postgres } = await import('postgres');
  const sql = postgres(url, {
    max: 1,
    onnotice: () => {},
    fetch_types: false,
    connection: { application_name: 'tidemark fleet' },
  });
  try {
    return await sql.begin('read only', (tx) => tx.unsafe(query));
  } catch (error) {
    throw queryError(error, description);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function readSqlite(file: string, query: string): Promise<Record<string, unknown>[]> {
  const { default: sqlite3 } = await import('sqlite3');
  const db = await new Promise<InstanceType<typeof sqlite3.Database>>((resolve, reject) => {
    const opened = new sqlite3.Database(file, sqlite3.OPEN_READONLY, (error) =>
      error ? reject(error) : resolve(opened),
    );
  }).catch((error) => {
    throw new ConnectionError(`cannot open the fleet's control database ${file}: ${(error as Error).message}`, {
      hint: 'check the path in the fleet source',
    });
  });
  try {
    return await new Promise((resolve, reject) =>
      db.all(query, (error, rows) =>
        error ? reject(queryError(error, file)) : resolve(rows as Record<string, unknown>[]),
      ),
    );
  } finally {
    db.close();
  }
}

function queryError(error: unknown, description: string): Error {
  const e = error as { code?: string; message?: string };
  if (
    /^(08|53|57P0)/.test(e.code ?? '') ||
    ['ECONNREFUSED', 'ENOTFOUND', 'CONNECTION_CLOSED', 'CONNECT_TIMEOUT'].includes(e.code ?? '')
  ) {
    return new ConnectionError(`cannot read the fleet from ${description}: ${e.message ?? String(error)}`, {
      hint: 'check the control database URL and that the server is running',
    });
  }
  return new UsageError(`the fleet query failed on ${description}: ${e.message ?? String(error)}`, {
    hint: 'fix the query in the fleet source; it must return one URL (or schema name) per row in its first column',
  });
}

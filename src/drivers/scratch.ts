// Scratch databases for verify: an empty database of the target's dialect, removed after use.
import type { Target } from '../config.js';

export interface ScratchDatabase {
  /** A database URL tidemark can be pointed at, like DATABASE_URL. */
  url: string;
  /** Where it is, safe to print. */
  description: string;
  /** Removes it; safe to call more than once. */
  drop(): Promise<void>;
}

/** PostgreSQL: a new database on the target's server. SQLite: a file in a new temporary folder. */
export async function createScratch(target: Target): Promise<ScratchDatabase> {
  if (target.dialect === 'postgres') {
    const { createPostgresScratch } = await import('./postgres-schema.js');
    return createPostgresScratch(target.url, target.description);
  }
  const { createSqliteScratch } = await import('./sqlite-schema.js');
  return createSqliteScratch();
}

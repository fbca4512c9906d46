// Scratch databases for verify: an empty database of the target's dialect, removed (or emptied) after use.
import type { Target } from '../config.js';

export interface ScratchDatabase {
  /** A database URL tidemark can be pointed at, like DATABASE_URL. */
  url: string;
  /** Where it is, safe to print. */
  description: string;
  /** What drop() does to it, for the notice: `removed afterwards`, or `emptied afterwards` for a given one. */
  afterwards: string;
  /** Removes it (or, for a database given with --scratch-url, empties it); safe to call more than once. */
  drop(): Promise<void>;
}

/** Why no scratch database could be had, and what a person does about it: verify reports it as a finding. */
export interface ScratchUnavailable {
  unavailable: string;
  fix: string;
}

export type ScratchResult = ScratchDatabase | ScratchUnavailable;

export function isUnavailable(value: unknown): value is ScratchUnavailable {
  return typeof value === 'object' && value !== null && 'unavailable' in value;
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

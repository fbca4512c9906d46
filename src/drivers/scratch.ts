// Scratch databases for verify: an empty database of the target's dialect, removed (or emptied) after use.
// connect.ts makes one; each dialect's schema module implements it.

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

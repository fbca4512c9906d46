// Versions are exact integers: bigint from the file name to the ledger and back, never a float in
// between. The ledger's column is a PostgreSQL bigint or a SQLite integer, so the largest version is
// 2^63 - 1 (19 digits): room for 18-digit timestamps (popx, diesel) and a little more.
import { UsageError } from './errors.js';

/** A migration's version: the number at the start of its file name. */
export type Version = bigint;

/** What the public API accepts where a version is asked for: a bigint, a safe integer, or its digits. */
export type VersionInput = bigint | number | string;

/** The largest PostgreSQL bigint and SQLite integer: the ledger's version column cannot hold more. */
export const MAX_VERSION = 9223372036854775807n;

/** The limit in words, for messages. */
export const VERSION_LIMIT = `the largest version ${MAX_VERSION} (PostgreSQL bigint, SQLite integer)`;

/** The version that digits spell, or null when it is above MAX_VERSION. */
export function versionOf(digits: string): Version | null {
  // Longer than 19 digits (leading zeros aside) is above the limit without parsing the rest.
  const significant = digits.replace(/^0+(?=\d)/, '');
  if (significant.length > 19) return null;
  const version = BigInt(significant);
  return version <= MAX_VERSION ? version : null;
}

/**
 * A version given on the command line, in the environment or through the API, checked: a whole number
 * from 0 to MAX_VERSION. A JavaScript number above 2^53 is refused: it has already been rounded.
 */
export function versionInput(value: VersionInput, what: string): Version {
  const text = typeof value === 'string' ? value.trim() : String(value);
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new UsageError(`${what} ${value} is not a whole number a JavaScript number can hold exactly`, {
      hint: `pass it as a bigint (${text.split('.')[0]}n) or as a string of digits`,
    });
  }
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`${what} must be a whole number (a version), not "${text}"`, {
      hint: `e.g. ${what.startsWith('SCHEMA_VERSION') ? `${what}=3` : 'tidemark migrate 3'}`,
    });
  }
  const version = versionOf(text);
  if (version === null) {
    throw new UsageError(`${what} ${text} is above ${VERSION_LIMIT}`, {
      hint: 'use the version of a migration file (see `tidemark status`)',
    });
  }
  return version;
}

/** versionInput() of an optional value. */
export function optionalVersion(value: VersionInput | undefined, what: string): Version | undefined {
  return value === undefined ? undefined : versionInput(value, what);
}

/** For sort(): ascending. */
export function compareVersions(a: Version, b: Version): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The highest of the versions, 0 when there are none. */
export function highestVersion(versions: Iterable<Version>): Version {
  let top = 0n;
  for (const v of versions) if (v > top) top = v;
  return top;
}

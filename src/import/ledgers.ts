// Another migrator's ledger -> the versions it applied, checked against the converted files. Pure:
// the rows come from the driver (src/drivers/ reads the table), as text.
import type { Dialect } from '../files.js';
import { UsageError } from '../errors.js';
import type { Conversion, SourceFormat } from './convert.js';
import { compareVersions, highestVersion, MAX_VERSION, versionOf, type Version } from '../version.js';

/** Where a tool keeps its ledger and what tidemark reads of it, in order. */
export interface ForeignTable {
  table: string;
  columns: string[];
  orderBy: string;
}

/** A row of a ForeignTable as text (booleans as PostgreSQL or SQLite write them), null for NULL. */
export type ForeignRow = Record<string, string | null>;

export const FOREIGN_LEDGERS: Record<SourceFormat, ForeignTable> = {
  'golang-migrate': { table: 'schema_migrations', columns: ['version', 'dirty'], orderBy: 'version' },
  dbmate: { table: 'schema_migrations', columns: ['version'], orderBy: 'version' },
  goose: { table: 'goose_db_version', columns: ['id', 'version_id', 'is_applied'], orderBy: 'id' },
  flyway: {
    table: 'flyway_schema_history',
    columns: ['installed_rank', 'version', 'type', 'success', 'script'],
    orderBy: 'installed_rank',
  },
  'node-pg-migrate': { table: 'pgmigrations', columns: ['id', 'name'], orderBy: 'id' },
};

/** The other tool's ledger says these versions ran, and every version with a file up to `upTo` too. */
export interface ForeignApplied {
  versions: Version[];
  /** golang-migrate's one version; Flyway's baseline (which needs no file of its own). */
  upTo: Version | null;
}

/** A table name given with --from-table: one plain identifier, read as written. */
export function foreignTableName(name: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return name;
  throw new UsageError(`--from-table ${JSON.stringify(name)} is not a plain table name`, {
    hint: 'give the name alone (letters, digits, underscores; on the search path), e.g. --from-table migrations',
  });
}

const truthy = (value: string | null) => value !== null && /^(1|t|true)$/i.test(value.trim());

/** Reads the rows the way the tool itself does; a migration it left half done is refused, naming it. */
export function appliedByTool(format: SourceFormat, rows: ForeignRow[], table: string): ForeignApplied {
  switch (format) {
    case 'golang-migrate': {
      if (rows.length > 1) throw notTheToolsTable(table, `${rows.length} rows; golang-migrate keeps exactly one`);
      const [row] = rows;
      if (row && truthy(row.dirty)) {
        const what = `${table} says version ${row.version} is dirty: a golang-migrate migration failed halfway`;
        throw new UsageError(`${what}; nothing was imported`, {
          hint:
            "check the database by hand, then mark it clean with golang-migrate's own `migrate force <version>` " +
            'and run this import again',
        });
      }
      const version = row ? foreignVersion(row.version, table) : -1n;
      // Its one version ran (so it needs a file), and so did every version below it; -1 is none.
      return version < 0n ? { versions: [], upTo: null } : { versions: [version], upTo: version };
    }
    case 'dbmate':
      return { versions: rows.map((r) => foreignVersion(r.version, table)), upTo: null };
    case 'goose': {
      // goose appends a row per up (is_applied true) and per down (false); version 0 is its own first row.
      const applied = new Set<Version>();
      for (const row of rows) {
        const version = foreignVersion(row.version_id, table);
        if (version === 0n) continue;
        if (truthy(row.is_applied)) applied.add(version);
        else applied.delete(version);
      }
      return { versions: [...applied], upTo: null };
    }
    case 'flyway':
      return flywayApplied(rows, table);
    case 'node-pg-migrate':
      return { versions: rows.map((r) => foreignVersion(/^\d+/.exec(r.name ?? '')?.[0] ?? r.name, table)), upTo: null };
  }
}

function flywayApplied(rows: ForeignRow[], table: string): ForeignApplied {
  const applied = new Set<Version>();
  let upTo: Version | null = null;
  for (const row of rows) {
    if (!truthy(row.success)) {
      const what = `${table} records a failed migration (${row.script}, version ${row.version})`;
      throw new UsageError(`${what}; nothing was imported`, {
        hint: "check the database by hand, clear the failed row with Flyway's own `flyway repair`, then import again",
      });
    }
    if (row.version === null || row.type === 'SCHEMA') continue;
    const version = foreignVersion(row.version, table);
    if (row.type === 'BASELINE') upTo = highestVersion([upTo ?? 0n, version]);
    else if (row.type?.startsWith('UNDO')) applied.delete(version);
    else if (row.type !== 'DELETE') applied.add(version);
  }
  return { versions: [...applied], upTo };
}

/** A version in another tool's ledger; negative only as golang-migrate's -1 (nothing applied). */
function foreignVersion(text: string | null, table: string): Version {
  const digits = text?.trim() ?? '';
  if (/^-\d+$/.test(digits)) return BigInt(digits);
  const version = /^\d+$/.test(digits) ? versionOf(digits) : null;
  if (version === null) {
    const limit = `whole numbers up to ${MAX_VERSION}`;
    throw new UsageError(`${table} holds the version ${JSON.stringify(text)}, which tidemark cannot hold (${limit})`, {
      hint: 'renumber that migration (its file and its ledger row) with the other tool first, then import again',
    });
  }
  return version;
}

function notTheToolsTable(table: string, why: string): UsageError {
  return new UsageError(`${table} does not look like golang-migrate's ledger: ${why}; nothing was imported`, {
    hint: `check --from (dbmate also names its table schema_migrations, with one row per version)`,
  });
}

/**
 * The versions to record in tidemark's ledger, in order. Refuses an applied version with no converted
 * file for this dialect, and a converted version below the newest applied one that the tool never
 * applied (a gap): recording around it would hide that it never ran.
 */
export function versionsToAdopt(
  applied: ForeignApplied,
  conversion: Conversion,
  dialect: Dialect,
  table: string,
): Version[] {
  const forward = conversion.files.filter((f) => f.kind === 'forward' && (f.dialect === dialect || f.dialect === null));
  const available = new Set(forward.map((f) => f.version));
  const adopted = new Set(applied.versions);
  if (applied.upTo !== null) for (const v of available) if (v <= applied.upTo) adopted.add(v);
  const orphans = [...adopted].filter((v) => !available.has(v)).sort(compareVersions);
  if (orphans.length > 0) {
    const versions = orphans.map((v) => whyNoFile(v, conversion)).join('; ');
    const what = `${table} records versions with no converted ${dialect} file: ${versions}`;
    throw new UsageError(`${what}; nothing was imported`, {
      hint: "write those migrations as SQL files in the other tool's layout (or restore them), then import again",
    });
  }
  const newest = highestVersion(adopted);
  const gaps = [...available].filter((v) => v < newest && !adopted.has(v)).sort(compareVersions);
  if (gaps.length > 0) {
    const what = `${table} never applied ${gaps.join(', ')}, below its newest applied version ${newest}`;
    throw new UsageError(`${what}; nothing was imported`, {
      hint: 'apply them with the other tool first (it is still in charge until the import), then run this import again',
    });
  }
  return [...adopted].sort(compareVersions);
}

/** A version with no file, and the source file the report skipped for it, if any (a Go migration). */
function whyNoFile(version: Version, conversion: Conversion): string {
  const versionOfPath = (path: string) => /^[VU]?(\d+)/.exec(path.split('/').at(-1)!)?.[1];
  const skipped = conversion.skipped.find((s) => {
    const digits = versionOfPath(s.path);
    return digits !== undefined && BigInt(digits) === version;
  });
  return skipped ? `${version} (${skipped.path}: ${skipped.reason})` : String(version);
}

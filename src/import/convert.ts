// Another migrator's files -> tidemark's layout. Pure: file names and bytes in, file names and bytes out.
// Bodies are carried byte for byte (as latin1 strings, one character per byte); only the other tool's
// marker lines are dropped and tidemark's no-transaction directive is put on the first line where needed.
import type { Dialect } from '../files.js';
import { fileWrapper } from '../script.js';
import { lexPostgres } from '../sql/postgres-lexer.js';
import { lexSqlite } from '../sql/sqlite-lexer.js';
import { controlsTransaction, type LexedSql } from '../sql/statements.js';
import { UnclosedError } from '../sql/tokens.js';
import type { SourceFormat } from './formats.js';
import { compareVersions, VERSION_LIMIT, versionOf, type Version } from '../version.js';

export { SOURCE_FORMATS, type SourceFormat } from './formats.js';

/** A file of the other tool's folder: its path below that folder (with `/`) and its bytes as latin1. */
export interface SourceFile {
  path: string;
  text: string;
}

/** A tidemark migration file to write, with the source it came from. */
export interface ConvertedFile {
  fileName: string;
  /** Bytes as latin1. */
  text: string;
  /** The source file it was made from. */
  from: string;
  version: Version;
  versionText: string;
  name: string;
  kind: 'forward' | 'rollback';
  dialect: Dialect | null;
  noTransaction: boolean;
}

/** A source file that was not converted, or converted with a caveat, and why. */
export interface ImportNote {
  path: string;
  reason: string;
}

export interface Conversion {
  files: ConvertedFile[];
  /** Not converted at all. */
  skipped: ImportNote[];
  /** Converted, with something the team should know (a renamed version, a missing down). */
  notes: ImportNote[];
}

export const NO_TRANSACTION_LINE = '-- tidemark:no-transaction\n';

/** One migration (one version, one dialect) before it becomes files. */
interface Parsed {
  versionText: string;
  rawName: string;
  dialect: Dialect | null;
  up: Section;
  down: Section | null;
}

interface Section {
  text: string;
  /** The other tool says so (its marker), or, once the dialect is known, its statements do. */
  noTransaction: boolean;
  /** The source file it was read from. */
  source: string;
}

type Parser = (file: SourceFile, baseName: string, siblings: Map<string, SourceFile>) => Parsed | ImportNote | null;

/** Converts every file of the other tool's folder; nothing is dropped without a note saying why. */
export function convert(format: SourceFormat, files: SourceFile[]): Conversion {
  const skipped: ImportNote[] = [];
  const parsed: Parsed[] = [];
  const byPath = new Map(files.map((f) => [f.path, f]));
  const otherDatabases = new Map<string, number>();
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    const folder = dialectOf(file.path);
    if (typeof folder === 'object' && folder !== null) {
      otherDatabases.set(folder.other, (otherDatabases.get(folder.other) ?? 0) + 1);
      continue;
    }
    const baseName = file.path.split('/').at(-1)!;
    const result = PARSERS[format](file, baseName, byPath);
    if (result === null) continue;
    if ('reason' in result) skipped.push(result);
    else parsed.push(withStatementsRead({ ...result, dialect: folder }));
  }
  for (const [folder, count] of otherDatabases) {
    const reason = `${count} files for a database tidemark does not run; tidemark runs PostgreSQL and SQLite`;
    skipped.push({ path: `${folder}/`, reason });
  }
  return assemble(parsed, skipped);
}

const OTHER_DATABASES =
  /^(mysql|mariadb|mssql|sqlserver|clickhouse|cockroach(db)?|oracle|redshift|spanner|tidb|vertica|ydb|turso|libsql)$/;

/** The dialect a file's folder names (`postgres/`, `db_sqlite3/`), null for none, or the folder of another database. */
function dialectOf(path: string): Dialect | null | { other: string } {
  const folders = path.split('/').slice(0, -1);
  for (let i = folders.length - 1; i >= 0; i--) {
    const bare = folders[i]!.toLowerCase().replace(/^(db|migrations?)[_-]|[_-](db|migrations?)$/g, '');
    if (/^(postgres|postgresql|pg|psql|pgsql)$/.test(bare)) return 'postgres';
    if (/^(sqlite|sqlite3)$/.test(bare)) return 'sqlite';
    if (OTHER_DATABASES.test(bare)) return { other: folders.slice(0, i + 1).join('/') };
  }
  return null;
}

const SQL_ONLY = 'tidemark runs SQL files only: port it to SQL by hand';
const CODE_MIGRATION: [RegExp, string][] = [
  [/\.go$/, `a Go-code migration; ${SQL_ONLY}`],
  [/\.(js|cjs|mjs|ts|cts|mts)$/, `a JavaScript/TypeScript migration; ${SQL_ONLY}`],
  [/\.(java|kt|class|scala)$/, `a Java-code migration; ${SQL_ONLY}`],
];

/** A file that is not one of the format's SQL migrations: code migrations are named as such. */
function notAMigration(file: SourceFile, expected: string): ImportNote {
  const code = CODE_MIGRATION.find(([pattern]) => pattern.test(file.path));
  return { path: file.path, reason: code ? code[1] : `not a migration file (expected ${expected})` };
}

const PARSERS: Record<SourceFormat, Parser> = {
  'golang-migrate': (file, baseName, siblings) => {
    const match = /^(\d+)_(.*)\.(up|down)\.sql$/.exec(baseName);
    if (!match) return notAMigration(file, '<version>_<name>.up.sql / .down.sql');
    const [, versionText, rawName, direction] = match as unknown as [string, string, string, string];
    const downPath = file.path.replace(/\.up\.sql$/, '.down.sql');
    if (direction === 'down') {
      // Converted with its up file; a down with no up is reported.
      const up = file.path.replace(/\.down\.sql$/, '.up.sql');
      return siblings.has(up) ? null : { path: file.path, reason: 'a down file with no up file' };
    }
    const down = siblings.get(downPath);
    // golang-migrate runs a file as it is, outside any transaction unless the file has its own.
    const sections = { up: declared(file, false), down: down ? declared(down, false) : null };
    return { versionText, rawName, dialect: null, ...sections };
  },
  flyway: (file, baseName, siblings) => {
    if (/^R__/.test(baseName) && baseName.endsWith('.sql')) {
      const reason = 'a repeatable migration (R__), rerun whenever it changes; tidemark has none: make it versioned';
      return { path: file.path, reason };
    }
    if (baseName.endsWith('.sql.conf')) return null;
    const match = /^([VU])(\d+(?:[._]\d+)*)__(.+)\.sql$/.exec(baseName);
    if (!match) return notAMigration(file, 'V<version>__<description>.sql');
    const [, prefix, versionText, rawName] = match as unknown as [string, string, string, string];
    if (!/^\d+$/.test(versionText)) {
      const reason =
        `version ${versionText} has parts; tidemark versions are whole numbers: give it one that keeps ` +
        "Flyway's order (renumbering the versions above it if needed), in its file name and flyway_schema_history";
      return { path: file.path, reason };
    }
    // An undo file goes with the V file of its version in the same folder.
    const partner = (prefix: string) =>
      [...siblings.keys()].find((p) => sameFolder(p, file.path) && flywayVersion(p, prefix) === BigInt(versionText));
    if (prefix === 'U') {
      return partner('V') ? null : { path: file.path, reason: 'an undo file with no V file of its version' };
    }
    const undoPath = partner('U');
    const section = (f: SourceFile): Section => {
      const conf = siblings.get(`${f.path}.conf`);
      const own = conf !== undefined && /^\s*executeInTransaction\s*=\s*false\s*$/m.test(conf.text);
      return declared(f, own);
    };
    const undo = undoPath ? siblings.get(undoPath)! : null;
    return { versionText, rawName, dialect: null, up: section(file), down: undo ? section(undo) : null };
  },
  dbmate: (file, baseName) => {
    const match = /^(\d+)_(.*)\.sql$/.exec(baseName);
    if (!match) return notAMigration(file, '<version>_<name>.sql');
    const marker = (line: string) => {
      const m = /^--\s*migrate:(up|down)\b(.*)$/.exec(line.trim());
      return m ? { up: m[1] === 'up', noTransaction: /\btransaction:false\b/.test(m[2]!) } : null;
    };
    return splitFile(file, match[1]!, match[2]!, marker, '-- migrate:up');
  },
  goose: (file, baseName) => {
    const match = /^(\d+)_(.*)\.sql$/.exec(baseName);
    if (!match) return notAMigration(file, '<version>_<name>.sql');
    const noTransaction = /^--\s*\+goose\s+NO\s+TRANSACTION\s*$/im.test(file.text);
    const marker = (line: string) => {
      const m = /^--\s*\+goose\s+(up|down)\s*$/i.exec(line.trim());
      return m ? { up: m[1]!.toLowerCase() === 'up', noTransaction } : null;
    };
    return splitFile(file, match[1]!, match[2]!, marker, '-- +goose Up');
  },
  'node-pg-migrate': (file, baseName) => {
    const match = /^(\d+)[_-](.*)\.sql$/.exec(baseName);
    if (!match) return notAMigration(file, '<timestamp>_<name>.sql');
    const marker = (line: string) => {
      const m = /^--\s*(up|down)\s+migration\s*$/i.exec(line.trim());
      return m ? { up: m[1]!.toLowerCase() === 'up', noTransaction: false } : null;
    };
    return splitFile(file, match[1]!, match[2]!, marker, '-- Up Migration');
  },
};

/** The version of a Flyway V or U file (by prefix) with a whole-number version, else null. */
function flywayVersion(path: string, prefix: string): Version | null {
  const match = new RegExp(`^${prefix}(\\d+)__.+\\.sql$`).exec(path.split('/').at(-1)!);
  return match ? BigInt(match[1]!) : null;
}

function sameFolder(a: string, b: string): boolean {
  return a.slice(0, a.lastIndexOf('/') + 1) === b.slice(0, b.lastIndexOf('/') + 1);
}

type Marker = (line: string) => { up: boolean; noTransaction: boolean } | null;

/**
 * A single-file migration cut at its up and down marker lines. What comes before the up marker is
 * the other tool's header (its own annotations, comments) and is left out.
 */
function splitFile(
  file: SourceFile,
  versionText: string,
  rawName: string,
  marker: Marker,
  upMarker: string,
): Parsed | ImportNote {
  const sections: { up: boolean; noTransaction: boolean; start: number; end: number }[] = [];
  let offset = 0;
  for (const line of file.text.split('\n')) {
    const next = offset + line.length + 1;
    // A UTF-8 byte order mark (read as latin1) must not hide a marker on the first line.
    const found = marker(offset === 0 ? line.replace(/^\xEF\xBB\xBF/, '') : line);
    if (found) {
      if (sections.length > 0) sections.at(-1)!.end = offset;
      sections.push({ ...found, start: Math.min(next, file.text.length), end: file.text.length });
    }
    offset = next;
  }
  const up = sections.find((s) => s.up);
  const down = sections.find((s) => !s.up);
  if (!up) return { path: file.path, reason: `no ${upMarker} line, so there is nothing to run` };
  if (sections.filter((s) => s.up).length > 1 || sections.filter((s) => !s.up).length > 1) {
    return { path: file.path, reason: 'more than one up or down marker; split it by hand' };
  }
  const section = (s: typeof up): Section => {
    return declared({ path: file.path, text: file.text.slice(s.start, s.end) }, s.noTransaction);
  };
  return { versionText, rawName, dialect: null, up: section(up), down: down ? section(down) : null };
}

function declared({ path, text }: SourceFile, noTransaction: boolean): Section {
  return { text, noTransaction, source: path };
}

/** A migration with its sections' no-transaction flags completed from their statements. */
function withStatementsRead(p: Parsed): Parsed {
  const read = (section: Section): Section => ({
    ...section,
    noTransaction: section.noTransaction || ownsTransaction(section.text, p.dialect),
  });
  return { ...p, up: read(p.up), down: p.down && read(p.down) };
}

/**
 * Whether a section must run outside tidemark's transaction: it has transaction control of its own
 * that is more than a BEGIN ... COMMIT around the whole text (which tidemark replaces by its own
 * transaction), or a statement that cannot run in a transaction block (CREATE INDEX CONCURRENTLY,
 * VACUUM). A portable section is read on both dialects' rules; where they differ (a $$ body, a
 * trigger's BEGIN ... END) one of them splits the text wrongly, so its own transaction control must
 * be seen on both.
 */
function ownsTransaction(text: string, dialect: Dialect | null): boolean {
  const bodies = lexed(text, dialect).map(({ statements }) =>
    fileWrapper(statements) ? statements.slice(1, -1) : statements,
  );
  const control = bodies.length > 0 && bodies.every((body) => body.some(controlsTransaction));
  return control || bodies.some((body) => body.some((st) => st.kind === 'no-transaction'));
}

/** A section with no statement at all (blank, or comments only). */
function isEmpty(text: string, dialect: Dialect | null): boolean {
  const readings = lexed(text, dialect);
  return readings.length > 0 && readings.every(({ statements }) => statements.length === 0);
}

/**
 * The text read on each dialect it runs on. A dialect's rules that find a quote or comment never
 * closed are left out here: tidemark names that file:line when the migration is run.
 */
function lexed(text: string, dialect: Dialect | null): LexedSql[] {
  const lexers = dialect === 'sqlite' ? [lexSqlite] : dialect === 'postgres' ? [lexPostgres] : [lexPostgres, lexSqlite];
  return lexers.flatMap((lex) => {
    try {
      return [lex(text)];
    } catch (error) {
      if (error instanceof UnclosedError) return [];
      throw error;
    }
  });
}

/** tidemark's name for a migration: letters, digits and underscores, not ending in _rollback. */
export function migrationName(raw: string): string {
  const name = raw.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '') || 'migration';
  return name.endsWith('_rollback') || name === 'rollback' ? `${name}_migration` : name;
}

/** Parsed migrations -> files: one name per version, one file per slot, versions tidemark can hold. */
function assemble(parsed: Parsed[], skipped: ImportNote[]): Conversion {
  const notes: ImportNote[] = [];
  const files: ConvertedFile[] = [];
  const byVersion = new Map<Version, Parsed[]>();
  for (const p of parsed) {
    const version = versionOf(p.versionText);
    if (version === null) {
      const reason = `version ${p.versionText} is above ${VERSION_LIMIT}; renumber`;
      skipped.push({ path: p.up.source, reason });
      continue;
    }
    byVersion.set(version, [...(byVersion.get(version) ?? []), p]);
  }
  for (const [version, group] of [...byVersion].sort(([a], [b]) => compareVersions(a, b))) {
    const slots = new Set(group.map((p) => p.dialect ?? 'portable'));
    if (slots.size < group.length) {
      const sources = group.map((g) => g.up.source).join(', ');
      const reason = `version ${version} has ${group.length} files (${sources}); give each its own version`;
      for (const p of group) skipped.push({ path: p.up.source, reason });
      continue;
    }
    // Variants of one version share one name in tidemark: the portable (else PostgreSQL) file's.
    const first = group.find((p) => p.dialect === null) ?? group.find((p) => p.dialect === 'postgres') ?? group[0]!;
    const name = migrationName(first.rawName);
    for (const p of group) {
      if (migrationName(p.rawName) !== name) {
        const reason = `named ${name} like ${first.up.source}: every variant of version ${version} shares one name`;
        notes.push({ path: p.up.source, reason });
      }
      const base = { version, versionText: p.versionText, name, dialect: p.dialect };
      const suffix = p.dialect ? `.${p.dialect}` : '';
      files.push({ ...base, kind: 'forward', fileName: `${p.versionText}_${name}${suffix}.sql`, ...fileText(p.up) });
      if (!p.down || isEmpty(p.down.text, p.dialect)) {
        const why = p.down ? 'its down is empty' : 'no down';
        const reason = `${why}: no rollback file written, so tidemark will not roll it back`;
        notes.push({ path: p.up.source, reason });
        continue;
      }
      const rollbackName = `${p.versionText}_${name}_rollback${suffix}.sql`;
      files.push({ ...base, kind: 'rollback', fileName: rollbackName, ...fileText(p.down) });
    }
  }
  return { files, skipped, notes };
}

function fileText(section: Section): { text: string; noTransaction: boolean; from: string } {
  const text = section.noTransaction ? NO_TRANSACTION_LINE + section.text : section.text;
  return { text, noTransaction: section.noTransaction, from: section.source };
}

import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import { closeSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { UsageError } from './errors.js';
import { readSqlFile } from './sql/text.js';
import { compareVersions, MAX_VERSION, VERSION_LIMIT, type Version } from './version.js';

export { normalizeText } from './sql/text.js';

export const dialects = ['postgres', 'sqlite'] as const;
export type Dialect = (typeof dialects)[number];

export const FILE_PATTERN = '<version>_<name>[_rollback][.postgres|.sqlite].sql';
const FILE_NAME = /^(\d+)_([A-Za-z0-9][A-Za-z0-9_]*?)(_rollback)?(?:\.(postgres|sqlite))?\.sql$/;
const MIGRATION_NAME = /^[A-Za-z0-9][A-Za-z0-9_]*$/;
const KNOWN_DIRECTIVES = ['no-transaction', 'irreversible', 'foreign-keys-off'] as const;
/**
 * `-- tidemark:allow <rule> <reason>` suppresses a lint finding on its statement: a comment for the lint, not a
 * directive.
 */
export const ALLOW_COMMENT = 'allow';

/** A `-- tidemark:<name>` comment line (trimmed), with the name it gives. */
export const DIRECTIVE_LINE = /^--\s*tidemark\s*:\s*(\S*)/i;

/** One .sql file whose name follows the pattern. */
export interface SqlFile {
  /** Path as shown to people: the migrations folder joined with the file name. */
  path: string;
  /** Where the file is read from. */
  fullPath: string;
  /** Exact, whatever its width; checked against MAX_VERSION by discover(). */
  version: Version;
  /** The version as written in the file name (`003`), for display. */
  versionText: string;
  name: string;
  kind: 'forward' | 'rollback';
  /** null for a portable file that serves both dialects. */
  dialect: Dialect | null;
}

/** One version as it applies to one dialect. */
export interface Migration {
  version: Version;
  versionText: string;
  name: string;
  forward: SqlFile;
  rollback: SqlFile | null;
}

/** Every migration file in a folder, validated across both dialects. */
export class Catalog {
  constructor(readonly files: readonly SqlFile[]) {}

  /** The migrations that exist for one dialect, ordered by version. */
  migrationsFor(dialect: Dialect): Migration[] {
    const byVersion = groupByVersion(this.files);
    const migrations: Migration[] = [];
    for (const [version, files] of byVersion) {
      const forward = chooseVariant(files, 'forward', dialect);
      if (!forward) continue;
      migrations.push({
        version,
        versionText: forward.versionText,
        name: forward.name,
        forward,
        rollback: chooseVariant(files, 'rollback', dialect),
      });
    }
    return migrations.sort((a, b) => compareVersions(a.version, b.version));
  }

  /**
   * The version `create` should use next: one more than the highest, padded like the existing files;
   * with `timestamp`, or in a project that already numbers by timestamp (20260223143052_x.sql), the
   * UTC time as YYYYMMDDhhmmss, unless that is not above the highest version (then one more).
   */
  nextVersionText(now: Date = new Date(), timestamp = false): string {
    const highest = this.files.reduce<SqlFile | undefined>(
      (top, f) => (!top || f.version > top.version ? f : top),
      undefined,
    );
    if (timestamp || (highest && highest.versionText.length >= 12)) {
      const stamp = now.toISOString().replace(/\D/g, '').slice(0, 14);
      return !highest || BigInt(stamp) > highest.version ? stamp : String(highest.version + 1n);
    }
    const next = (highest?.version ?? 0n) + 1n;
    return String(next).padStart(Math.max(3, highest?.versionText.length ?? 0), '0');
  }
}

/** Reads the folder's file names and checks them; any problem is one UsageError listing every bad file. */
export function discover(dir: string, cwd: string = process.cwd()): Catalog {
  const folder = resolve(cwd, dir);
  let entries: { name: string; link: boolean }[];
  try {
    entries = readdirSync(folder, { withFileTypes: true })
      // A symbolic link counts as what it points at: a linked migration must not be skipped silently.
      .filter((entry) => (entry.isFile() || entry.isSymbolicLink()) && entry.name.toLowerCase().endsWith('.sql'))
      .map((entry) => ({ name: entry.name, link: entry.isSymbolicLink() }));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UsageError(`migrations folder ${dir}/ does not exist`, {
        hint:
          `create it with \`tidemark create <name>\`, or point --dir (MIGRATIONS_DIR) at the folder that holds ` +
          `your .sql files`,
      });
    }
    throw error;
  }
  const problems: string[] = [];
  const files: SqlFile[] = [];
  const places = { shown: folderPrefix(dir), full: folderPrefix(folder) };
  for (const { name: fileName, link } of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    // Only links need a stat: readdir already says what everything else is (10,000 stats cost 120 ms).
    const kind = link ? linkTarget(places.full + fileName) : 'file';
    if (kind === 'other') continue;
    if (kind === 'broken') {
      problems.push(
        `${places.shown + fileName}: a symbolic link to a file that does not exist; fix or remove the link`,
      );
      continue;
    }
    const file = fileFromName(fileName, places);
    if (file) files.push(file);
    else
      problems.push(
        `${places.shown + fileName}: not a migration file name; expected ${FILE_PATTERN}, e.g. 004_add_orders.sql`,
      );
  }
  problems.push(...checkConsistency(files));
  if (problems.length > 0) {
    throw new UsageError(
      `${problems.length === 1 ? 'a problem' : `${problems.length} problems`} with the migration files in ${dir}/`,
      {
        context: problems,
        hint: 'rename or remove the files named above; nothing was run',
      },
    );
  }
  return new Catalog(files);
}

/** What a directory entry is once symbolic links are followed. */
function linkTarget(path: string): 'file' | 'broken' | 'other' {
  try {
    return statSync(path).isFile() ? 'file' : 'other';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ELOOP')
      return 'broken';
    throw error;
  }
}

/**
 * What path.join(folder, name) gives for a plain file name, as a prefix: joined once per folder, not
 * once per file (at 10,000 migrations, 40,000 joins cost about 40 ms).
 */
function folderPrefix(folder: string): string {
  const normalized = join(folder);
  if (normalized === '.') return '';
  return normalized.endsWith(sep) ? normalized : normalized + sep;
}

export function parseFileName(dir: string, fileName: string, folder: string = dir): SqlFile | null {
  return fileFromName(fileName, { shown: folderPrefix(dir), full: folderPrefix(folder) });
}

function fileFromName(fileName: string, places: { shown: string; full: string }): SqlFile | null {
  const match = FILE_NAME.exec(fileName);
  if (!match) return null;
  const [, versionText, name, rollback, dialect] = match as unknown as [string, string, string, string?, Dialect?];
  return {
    path: places.shown + fileName,
    fullPath: places.full + fileName,
    version: BigInt(versionText),
    versionText,
    name,
    kind: rollback ? 'rollback' : 'forward',
    dialect: dialect ?? null,
  };
}

/** Rules that need all files at once: one name per version, one file per slot, no orphan rollbacks. */
function checkConsistency(files: SqlFile[]): string[] {
  const problems: string[] = [];
  for (const [version, group] of groupByVersion(files)) {
    if (isPlainPair(group)) continue;
    const list = (fs: SqlFile[]) => fs.map((f) => f.path).join(', ');
    if (version > MAX_VERSION) {
      problems.push(
        `${list(group)}: version ${group[0]!.versionText} is above ${VERSION_LIMIT}; renumber it ` +
          '(a 14-digit YYYYMMDDhhmmss timestamp fits)',
      );
      continue;
    }
    const names = new Set(group.map((f) => f.name));
    if (names.size > 1) {
      problems.push(
        `${list(group)}: version ${version} has ${names.size} names (${[...names].join(', ')}); every variant of one ` +
          `version must share one name`,
      );
      continue;
    }
    const slots = new Map<string, SqlFile[]>();
    for (const f of group) {
      const slot = `${f.kind}.${f.dialect ?? 'portable'}`;
      slots.set(slot, [...(slots.get(slot) ?? []), f]);
    }
    for (const same of slots.values()) {
      if (same.length > 1)
        problems.push(`${list(same)}: two files for version ${version}; give each migration its own version`);
    }
    for (const dialect of dialects) {
      const rollback = chooseVariant(group, 'rollback', dialect);
      if (rollback && !chooseVariant(group, 'forward', dialect)) {
        const forwardElsewhere = group.some((f) => f.kind === 'forward');
        const id = `${group[0]!.versionText}_${group[0]!.name}`;
        // Name the dialect only when the forward file exists for the other one; otherwise it is missing everywhere.
        problems.push(
          forwardElsewhere
            ? `${rollback.path}: rollback with no forward migration for ${dialect}; ` +
                (rollback.dialect
                  ? `add ${id}.${dialect}.sql, or remove the rollback`
                  : `rename it to ${id}_rollback.${dialects.find((d) => d !== dialect)}.sql, or add ` +
                    `${id}.${dialect}.sql`)
            : `${rollback.path}: rollback with no forward migration; add ${id}.sql, or remove the rollback`,
        );
        break;
      }
    }
  }
  return problems;
}

/**
 * The common case, checked without the general rules: one portable forward file, at most one portable rollback of the
 * same name.
 */
function isPlainPair(group: SqlFile[]): boolean {
  const [first, second] = group;
  if (group.length > 2 || first!.version > MAX_VERSION || first!.dialect !== null) return false;
  if (!second) return first!.kind === 'forward';
  return second.dialect === null && second.name === first!.name && first!.kind !== second.kind;
}

function groupByVersion(files: readonly SqlFile[]): Map<Version, SqlFile[]> {
  const groups = new Map<Version, SqlFile[]>();
  for (const f of files) {
    const group = groups.get(f.version);
    if (group) group.push(f);
    else groups.set(f.version, [f]);
  }
  return groups;
}

/** The dialect's own variant wins over the portable file. */
function chooseVariant(files: SqlFile[], kind: SqlFile['kind'], dialect: Dialect): SqlFile | null {
  const candidates = files.filter((f) => f.kind === kind);
  return candidates.find((f) => f.dialect === dialect) ?? candidates.find((f) => f.dialect === null) ?? null;
}

/**
 * A file's text as recorded (BOM removed, LF line ends) with its checksum: what the ledger stores of a rollback file.
 */
export interface SourceText {
  text: string;
  checksum: string;
}

export function readSourceText(file: SqlFile): SourceText {
  const text = readMigrationText(file);
  return { text, checksum: checksumOf(text) };
}

/**
 * The checksum alone, without splitting the file into statements: all an applied file needs. Every
 * applied file is hashed on every run, so the common file (UTF-8, no BOM, no CR) is hashed as the
 * bytes read into one shared buffer, which are exactly its normalized text: no string, no allocation
 * per file. Any other file takes the full read, with its errors (a byte that is not UTF-8).
 */
export function fileChecksum(file: SqlFile): string {
  const bytes = readIntoShared(file.fullPath);
  if (isUtf8(bytes) && bytes.indexOf(CR) < 0 && !(bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)) {
    return hash('sha256', bytes, 'hex');
  }
  return checksumOf(readMigrationText(file));
}

const CR = 0x0d;
let shared = Buffer.allocUnsafe(64 * 1024);

/**
 * The file's bytes, in the shared buffer (valid until the next call); the buffer grows for a larger file.
 * A read that leaves room in the buffer reached the end of the (regular) file: no second read asks for
 * the end (one system call fewer per file, 10,000 at 5,000 migrations).
 */
function readIntoShared(fullPath: string): Buffer {
  const fd = openSync(fullPath, 'r');
  try {
    let length = 0;
    for (;;) {
      if (length === shared.length) {
        const larger = Buffer.allocUnsafe(shared.length * 2);
        shared.copy(larger);
        shared = larger;
      }
      const room = shared.length - length;
      const read = readSync(fd, shared, length, room, null);
      length += read;
      if (read < room) return shared.subarray(0, length);
    }
  } finally {
    closeSync(fd);
  }
}

/** Checksums of the forward and rollback files as they are now, by version. */
export interface Checksums {
  forward: Map<Version, string>;
  /** Only versions that have a rollback file. */
  rollback: Map<Version, string>;
}

/** The checksums of the given versions' files (all, when no filter): what change detection compares. */
export function fileChecksums(migrations: Migration[], only?: Set<Version>): Checksums {
  const chosen = migrations.filter((m) => !only || only.has(m.version));
  return {
    forward: new Map(chosen.map((m) => [m.version, fileChecksum(m.forward)])),
    rollback: rollbackChecksums(chosen),
  };
}

/** The rollback files' checksums of the given versions (all, when no filter), by version. */
export function rollbackChecksums(migrations: Migration[], only?: Set<Version>): Map<Version, string> {
  return new Map(
    migrations.flatMap((m) =>
      m.rollback && (!only || only.has(m.version)) ? [[m.version, fileChecksum(m.rollback)] as const] : [],
    ),
  );
}

/**
 * Where a rollback stored in the ledger came from, as a file that is not on disk: its path names
 * the stored copy, so an error in it reads `stored 004_add_fee_rollback.sql:3: ...`.
 */
export function storedRollbackFile(version: Version, name: string, versionText: string): SqlFile {
  const fileName = `${versionText}_${name}_rollback.sql`;
  return { path: `stored ${fileName}`, fullPath: '', version, versionText, name, kind: 'rollback', dialect: null };
}

/** The file's text as checksummed and run: UTF-8 (or an error naming the bad byte), no BOM, LF line ends. */
export function readMigrationText(file: SqlFile): string {
  return readSqlFile(file.path, file.fullPath);
}

export function checksumOf(normalizedText: string): string {
  // crypto.hash, one call: three times faster than createHash().update().digest() on small files.
  return hash('sha256', normalizedText, 'hex');
}

/** `-- tidemark:<directive>` comments in the leading comment block of a file. */
export function parseDirectives(path: string, text: string): Set<string> {
  const found = new Set<string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    if (!line.startsWith('--')) break;
    const directive = DIRECTIVE_LINE.exec(line);
    if (!directive) continue;
    const name = directive[1]!.toLowerCase();
    if (name === ALLOW_COMMENT) continue;
    if (!(KNOWN_DIRECTIVES as readonly string[]).includes(name)) {
      throw new UsageError(`${path}:${i + 1}: unknown directive "-- tidemark:${directive[1]}"`, {
        file: path,
        line: i + 1,
        hint:
          `the known directives are ${KNOWN_DIRECTIVES.map((d) => `-- tidemark:${d}`).join(', ')}; fix the ` +
          `spelling or remove the line`,
      });
    }
    found.add(name);
  }
  return found;
}

/** Checks a name given to `create`: it becomes part of a file name. */
export function validateMigrationName(name: string): void {
  if (!MIGRATION_NAME.test(name) || name.endsWith('_rollback')) {
    throw new UsageError(`"${name}" cannot be a migration name`, {
      hint:
        'use letters, digits and underscores only (no spaces, "/", "." or "-"), not ending in _rollback; e.g. ' +
        'add_orders',
    });
  }
}

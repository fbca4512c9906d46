// Whether a migration can be undone. Its rollback file says it cannot on purpose, by the directive
// `-- tidemark:irreversible` or by holding no statement while the migration holds some (real projects
// keep empty down files to mean just that); or it was never written (still create's template).
// An empty rollback of an empty migration is a placeholder: a harmless no-op, not irreversible.
// Read with the small lexer only (no parser): whether a file holds a statement is all it needs.
import { parseDirectives, readSourceText, type Dialect, type Migration, type SqlFile } from './files.js';
import { lexSql } from './sql/reader.js';
import { isUntouchedTemplate } from './templates.js';
import type { Version } from './version.js';

export interface Irreversible {
  version: Version;
  versionText: string;
  name: string;
  /** Starts with the rollback file's path: what makes it irreversible. */
  reason: string;
  /** false: the rollback file is create's template, never written, rather than a decision. */
  onPurpose: boolean;
}

/** A file's text (normalized), or a rollback's copy stored in the ledger, with where it comes from. */
export interface SourceFile {
  file: SqlFile;
  text: string;
}

/** Why a rollback cannot undo its migration, or null when it can. `forward` is read only if needed. */
export function irreversibleRollback(
  migration: Pick<Migration, 'version' | 'versionText' | 'name'>,
  rollback: SourceFile,
  forward: () => SourceFile | null,
  dialect: Dialect,
): Irreversible | null {
  const { version, versionText, name } = migration;
  const { path } = rollback.file;
  const verdict = (onPurpose: boolean, reason: string) => ({ version, versionText, name, onPurpose, reason });
  const marked = parseDirectives(path, rollback.text).has('irreversible');
  if (marked) return verdict(true, `${path}: marked -- tidemark:irreversible`);
  if (hasStatement(rollback, dialect)) return null;
  const source = forward();
  // With the migration's file gone (a reverted release), nothing shows it was empty too: an empty stored copy counts.
  if (source && !hasStatement(source, dialect)) return null;
  if (isUntouchedTemplate(rollback.file, rollback.text)) {
    const fix = 'write the rollback, or make its first line -- tidemark:irreversible';
    return verdict(false, `${path}: still the template \`tidemark create\` wrote: ${fix}`);
  }
  const forwardPath = source?.file.path ?? 'its migration';
  return verdict(true, `${path}: no statement, while ${forwardPath} has some: the migration is irreversible`);
}

function hasStatement({ file, text }: SourceFile, dialect: Dialect): boolean {
  return lexSql(file.path, text, dialect).statements.length > 0;
}

/** A file as the check reads it. */
export function sourceFile(file: SqlFile): SourceFile {
  return { file, text: readSourceText(file).text };
}

/** The migrations among these whose rollback file cannot undo them (those without one are not counted here). */
export function irreversibleMigrations(migrations: Migration[], dialect: Dialect): Irreversible[] {
  return migrations.flatMap((m) => {
    if (!m.rollback) return [];
    const found = irreversibleRollback(m, sourceFile(m.rollback), () => sourceFile(m.forward), dialect);
    return found ? [found] : [];
  });
}

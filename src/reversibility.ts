// Whether a migration can be undone. Its rollback file says it cannot on purpose, by the directive
// `-- tidemark:irreversible` or by holding no statement while the migration holds some (real projects
// keep empty down files to mean just that); or it was never written (still create's template).
// An empty rollback of an empty migration is a placeholder: a harmless no-op, not irreversible.
import { loadScript, type Migration, type Script } from './files.js';
import { isUntouchedTemplate } from './templates.js';

export interface Irreversible {
  version: number;
  versionText: string;
  name: string;
  /** Starts with the rollback file's path: what makes it irreversible. */
  reason: string;
  /** false: the rollback file is create's template, never written, rather than a decision. */
  onPurpose: boolean;
}

/** Why a rollback script cannot undo its migration, or null when it can. `forward` is read only if needed. */
export function irreversibleRollback(
  migration: Pick<Migration, 'version' | 'versionText' | 'name'>,
  rollback: Script,
  forward: () => Script | null,
): Irreversible | null {
  const { version, versionText, name } = migration;
  const { path } = rollback.file;
  const verdict = (onPurpose: boolean, reason: string) => ({ version, versionText, name, onPurpose, reason });
  if (rollback.irreversible) return verdict(true, `${path}: marked -- tidemark:irreversible`);
  if (rollback.statements.length > 0) return null;
  const source = forward();
  // With the migration's file gone (a reverted release), nothing shows it was empty too: an empty stored copy counts.
  if (source && source.statements.length === 0) return null;
  if (isUntouchedTemplate(rollback.file, rollback.text)) {
    const fix = 'write the rollback, or make its first line -- tidemark:irreversible';
    return verdict(false, `${path}: still the template \`tidemark create\` wrote: ${fix}`);
  }
  const forwardPath = source?.file.path ?? 'its migration';
  return verdict(true, `${path}: no statement, while ${forwardPath} has some: the migration is irreversible`);
}

/** The migrations among these whose rollback file cannot undo them (those without one are not counted here). */
export function irreversibleMigrations(migrations: Migration[]): Irreversible[] {
  return migrations.flatMap((m) => {
    if (!m.rollback) return [];
    const found = irreversibleRollback(m, loadScript(m.rollback), () => loadScript(m.forward));
    return found ? [found] : [];
  });
}

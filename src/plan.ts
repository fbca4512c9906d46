// Pure planning: ledger rows + migration files -> what a command must do. No I/O here.
import { SchemaVersionError, UsageError } from './errors.js';
import type { Migration } from './files.js';

/** One row of the ledger table, as tidemark reads it (legacy rows have nulls where columns were added). */
export interface LedgerRow {
  version: number;
  name: string;
  appliedAt: string | null;
  checksum: string | null;
  executionMs: number | null;
  appliedBy: string | null;
  dirty: boolean;
}

export type VersionState = 'applied' | 'pending' | 'missing-file' | 'changed' | 'dirty';

export interface StatusEntry {
  version: number;
  versionText: string;
  name: string;
  state: VersionState;
  appliedAt: string | null;
  executionMs: number | null;
  /** null when the version has no file to judge by. */
  hasRollback: boolean | null;
}

/** `checksums` maps a version to its forward file's current checksum (only needed for applied versions). */
export function planStatus(migrations: Migration[], ledger: LedgerRow[], checksums: Map<number, string>): StatusEntry[] {
  const files = new Map(migrations.map((m) => [m.version, m]));
  const rows = new Map(ledger.map((r) => [r.version, r]));
  const versions = [...new Set([...files.keys(), ...rows.keys()])].sort((a, b) => a - b);
  return versions.map((version) => {
    const file = files.get(version);
    const row = rows.get(version);
    return {
      version,
      versionText: file?.versionText ?? String(version),
      name: file?.name ?? row!.name,
      state: stateOf(row, file, checksums.get(version)),
      appliedAt: row?.appliedAt ?? null,
      executionMs: row?.executionMs ?? null,
      hasRollback: file ? Boolean(file.rollback) : null,
    };
  });
}

function stateOf(row: LedgerRow | undefined, file: Migration | undefined, checksum: string | undefined): VersionState {
  if (!row) return 'pending';
  if (row.dirty) return 'dirty';
  if (!file) return 'missing-file';
  if (row.checksum !== null && checksum !== undefined && row.checksum !== checksum) return 'changed';
  return 'applied';
}

/** The highest applied version, 0 when nothing is applied. */
export function currentVersion(ledger: LedgerRow[]): number {
  return ledger.reduce((top, r) => Math.max(top, r.version), 0);
}

/** Refuses to go on while a no-transaction migration is half done: only `force` may resolve it. */
export function assertNotDirty(ledger: LedgerRow[]): void {
  const dirty = ledger.find((r) => r.dirty);
  if (!dirty) return;
  throw new UsageError(`version ${dirty.version} (${dirty.name}) is dirty: a no-transaction migration started and did not finish`, {
    hint: dirtyResolution(ledger, dirty.version),
  });
}

/** What a person does about a dirty version: look, then tell the ledger what is true. */
export function dirtyResolution(ledger: LedgerRow[], version: number): string {
  return (
    `check the database by hand, then run \`tidemark force ${version} --yes\` if the change took effect, ` +
    `or \`tidemark force ${previousVersion(ledger, version)} --yes\` if it did not`
  );
}

function previousVersion(ledger: LedgerRow[], version: number): number {
  return ledger.reduce((best, r) => (r.version < version && r.version > best ? r.version : best), 0);
}

export interface MigratePlan {
  /** Pending migrations to apply, in order. */
  pending: Migration[];
  /** Applied rows adopted from a legacy ledger (no checksum) whose checksum can now be recorded. */
  backfill: Migration[];
  current: number;
  /** The version once the pending migrations are applied. */
  version: number;
}

export interface MigrateOptions {
  target?: number;
  /** Versions whose applied file was edited, accepted by `--allow-changed`. */
  allowChanged?: boolean;
}

export function planMigrate(migrations: Migration[], ledger: LedgerRow[], checksums: Map<number, string>, options: MigrateOptions = {}): MigratePlan {
  assertNotDirty(ledger);
  const applied = new Map(ledger.map((r) => [r.version, r]));
  const current = currentVersion(ledger);
  const { target } = options;
  if (target !== undefined && target < current) {
    throw new UsageError(`the database is at version ${current}, above the target ${target}`, {
      hint: `migrate only moves forward; run \`tidemark rollback --to ${target}\` to go back`,
    });
  }
  if (!options.allowChanged) {
    const changed = migrations.filter((m) => {
      const row = applied.get(m.version);
      return row?.checksum != null && row.checksum !== checksums.get(m.version);
    });
    if (changed.length > 0) {
      throw new UsageError(`${changed.length === 1 ? 'an applied migration was' : `${changed.length} applied migrations were`} edited after it ran`, {
        context: changed.map((m) => `${m.forward.path}: checksum differs from the one recorded when it was applied`),
        hint: 'restore the files as they were applied and put the change in a new migration (`tidemark create <name>`), or pass --allow-changed to record the new checksums',
      });
    }
  }
  const pending = migrations.filter((m) => !applied.has(m.version) && (target === undefined || m.version <= target));
  const late = pending.filter((m) => m.version < current);
  if (late.length > 0) {
    throw new UsageError(`${late.map((m) => m.forward.path).join(', ')}: version ${late[0]!.version} is older than the applied version ${current}`, {
      hint: `give the file a version above ${current} (rename it) so it runs in order`,
    });
  }
  const backfill = migrations.filter((m) => {
    const row = applied.get(m.version);
    return row !== undefined && (row.checksum === null || (options.allowChanged && row.checksum !== checksums.get(m.version)));
  });
  return { pending, backfill, current, version: Math.max(current, ...pending.map((m) => m.version)) };
}

/** A run with nothing to apply or backfill writes nothing, not even the ledger's tables. */
export function writesLedger(plan: MigratePlan): boolean {
  return plan.pending.length > 0 || plan.backfill.length > 0;
}

export interface RollbackOptions {
  steps?: number;
  to?: number;
  all?: boolean;
}

export interface RollbackStep {
  migration: Migration & { rollback: NonNullable<Migration['rollback']> };
  row: LedgerRow;
}

/** The version the database is at once the steps are undone. */
export function versionAfterRollback(ledger: LedgerRow[], steps: RollbackStep[]): number {
  const undone = new Set(steps.map((s) => s.row.version));
  return currentVersion(ledger.filter((r) => !undone.has(r.version)));
}

/** The applied migrations to undo, newest first; every one must have its rollback file. */
export function planRollback(migrations: Migration[], ledger: LedgerRow[], options: RollbackOptions): RollbackStep[] {
  assertNotDirty(ledger);
  const newestFirst = [...ledger].sort((a, b) => b.version - a.version);
  let chosen: LedgerRow[];
  if (options.all) chosen = newestFirst;
  else if (options.to !== undefined) chosen = newestFirst.filter((r) => r.version > options.to!);
  else chosen = newestFirst.slice(0, options.steps ?? 1);

  const files = new Map(migrations.map((m) => [m.version, m]));
  const problems: string[] = [];
  const steps: RollbackStep[] = [];
  for (const row of chosen) {
    const migration = files.get(row.version);
    if (!migration) problems.push(`version ${row.version} (${row.name}) is applied but has no migration file in this folder`);
    else if (!migration.rollback) problems.push(`${migration.forward.path}: no rollback file; write ${migration.versionText}_${migration.name}_rollback.sql`);
    else steps.push({ migration: migration as RollbackStep['migration'], row });
  }
  if (problems.length > 0) {
    throw new UsageError('cannot roll back: nothing was changed', {
      context: problems,
      hint: 'add the missing rollback files (or restore the migration files) and run the rollback again',
    });
  }
  return steps;
}

export interface ForcePlan {
  /** Ledger rows to delete: above the version, or no longer backed by a file for this dialect. */
  remove: LedgerRow[];
  /** Migrations to record as applied without running them. */
  add: Migration[];
  /** Dirty rows at or below the version that are kept and marked clean. */
  clean: LedgerRow[];
}

/** Makes the ledger hold exactly the versions <= target that exist for the dialect. */
export function planForce(migrations: Migration[], ledger: LedgerRow[], target: number): ForcePlan {
  if (target !== 0) assertVersionExists(migrations, target, ', or 0 to empty the ledger');
  const wanted = migrations.filter((m) => m.version <= target);
  const wantedVersions = new Set(wanted.map((m) => m.version));
  const rows = new Map(ledger.map((r) => [r.version, r]));
  return {
    remove: ledger.filter((r) => !wantedVersions.has(r.version)),
    add: wanted.filter((m) => !rows.has(m.version)),
    clean: ledger.filter((r) => r.dirty && wantedVersions.has(r.version)),
  };
}

/**
 * The migrations to record as applied, without running them, on a database whose schema was built
 * by hand or by another tool up to `target`. Only on an empty ledger: rewriting one is force's job.
 */
export function planBaseline(migrations: Migration[], ledger: LedgerRow[], target: number): Migration[] {
  assertVersionExists(migrations, target, '');
  if (ledger.length > 0) {
    throw new UsageError(`the ledger already records ${ledger.length === 1 ? '1 version' : `${ledger.length} versions`} (up to ${currentVersion(ledger)}); baseline is for a database whose ledger is empty`, {
      hint: `see what it holds with \`tidemark status\`; to make it say version ${target} anyway, run \`tidemark force ${target} --yes\``,
    });
  }
  return migrations.filter((m) => m.version <= target);
}

/** force and baseline take a version that has a file for this dialect. */
function assertVersionExists(migrations: Migration[], version: number, orElse: string): void {
  if (migrations.some((m) => m.version === version)) return;
  throw new UsageError(`there is no migration with version ${version} for this database`, {
    hint: `use one of the versions \`tidemark status\` lists${orElse}`,
  });
}

/**
 * Refuses unless the database is exactly at `expected` with nothing dirty: what an application
 * checks at start-up so that it never runs against a schema it was not written for.
 */
export function assertAtVersion(database: string, current: number, entries: StatusEntry[], expected: number): void {
  const dirty = entries.find((e) => e.state === 'dirty');
  if (dirty) {
    throw new SchemaVersionError(`${database}: version ${dirty.version} (${dirty.name}) is dirty: a no-transaction migration did not finish`, {
      hint: 'see `tidemark status`, check the database by hand and resolve it with `tidemark force`',
    });
  }
  if (current < expected) {
    throw new SchemaVersionError(`${database} is at version ${current}, but this release expects version ${expected}`, {
      hint: 'run `npm run migrate` before starting the application',
    });
  }
  if (current > expected) {
    throw new SchemaVersionError(`${database} is at version ${current}, ahead of this release, which expects version ${expected}`, {
      hint: 'deploy the release that matches the database, or roll the database back with `npm run migrate:rollback -- --to ' + expected + '`',
    });
  }
}

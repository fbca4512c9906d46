// Pure planning: ledger rows + migration files -> what a command must do. No I/O here.
import { SchemaVersionError, UsageError } from './errors.js';
import type { Checksums, Migration, SqlFile } from './files.js';
import { compareVersions, highestVersion, type Version } from './version.js';

export type DirtyAction = 'up' | 'down';

/** One row of the ledger table, as tidemark reads it (legacy rows have nulls where columns were added). */
export interface LedgerRow {
  /** The row's id: the order versions were applied in (null in a legacy table without one). */
  id: number | null;
  version: Version;
  /** The version as its file named it when it was applied (`003`); null in rows written before it was stored. */
  versionText: string | null;
  name: string;
  appliedAt: string | null;
  checksum: string | null;
  executionMs: number | null;
  appliedBy: string | null;
  dirty: boolean;
  /** The step that left the row dirty: a migration on its way up, or its rollback; null when unknown or clean. */
  dirtyAction: DirtyAction | null;
  /** Checksum of the rollback stored with the row when it was applied; null when none was stored. */
  rollbackChecksum: string | null;
}

/**
 * `out-of-order`: pending, but below the applied version (a branch merged late). `not-in-release`:
 * applied, but this release has no file for it (the code was reverted, the database was not).
 * `rollback-changed`: the rollback file differs from the one stored when the version was applied.
 */
export type VersionState =
  | 'applied'
  | 'pending'
  | 'out-of-order'
  | 'not-in-release'
  | 'changed'
  | 'rollback-changed'
  | 'dirty';

/** How an applied version can be undone: by its rollback file, by the copy stored in the ledger, or not at all. */
export type RollbackSource = 'file' | 'stored' | null;

export interface StatusEntry {
  version: Version;
  versionText: string;
  name: string;
  state: VersionState;
  appliedAt: string | null;
  executionMs: number | null;
  /** What `rollback` would run to undo it; for a pending version, whether it has a rollback file. */
  rollback: RollbackSource;
}

/** `checksums` holds the current files' checksums (only needed for applied versions). */
export function planStatus(migrations: Migration[], ledger: LedgerRow[], checksums: Checksums): StatusEntry[] {
  const files = new Map(migrations.map((m) => [m.version, m]));
  const rows = new Map(ledger.map((r) => [r.version, r]));
  const current = currentVersion(ledger);
  const versions = [...new Set([...files.keys(), ...rows.keys()])].sort(compareVersions);
  return versions.map((version) => {
    const file = files.get(version);
    const row = rows.get(version);
    return {
      version,
      versionText: versionLabel(version, file, row),
      name: file?.name ?? row!.name,
      state: stateOf(version, row, file, checksums, current),
      appliedAt: row?.appliedAt ?? null,
      executionMs: row?.executionMs ?? null,
      rollback: file?.rollback ? 'file' : row?.rollbackChecksum ? 'stored' : null,
    };
  });
}

function stateOf(
  version: Version,
  row: LedgerRow | undefined,
  file: Migration | undefined,
  checksums: Checksums,
  current: Version,
): VersionState {
  if (!row) return version < current ? 'out-of-order' : 'pending';
  if (row.dirty) return 'dirty';
  if (!file) return 'not-in-release';
  if (differs(row.checksum, checksums.forward.get(version))) return 'changed';
  if (differs(row.rollbackChecksum, checksums.rollback.get(version))) return 'rollback-changed';
  return 'applied';
}

/** A recorded checksum against a file's: null (not recorded) or no file is unknown, not different. */
function differs(recorded: string | null | undefined, now: string | undefined): boolean {
  return recorded != null && now !== undefined && recorded !== now;
}

/** The highest applied version, 0 when nothing is applied. */
export function currentVersion(ledger: LedgerRow[]): Version {
  return highestVersion(ledger.map((r) => r.version));
}

/**
 * How a version is printed wherever a migration is named: as its file names it (`003`) when the file
 * is known, else as the ledger stored it when it was applied, else the number.
 */
export function versionLabel(
  version: Version,
  file?: { versionText: string } | null,
  row?: { versionText: string | null } | null,
): string {
  return file?.versionText ?? row?.versionText ?? String(version);
}

/** The applied rows in the order they were applied: by id, the version breaking ties (legacy rows have none). */
export function inApplyOrder(ledger: LedgerRow[]): LedgerRow[] {
  return [...ledger].sort((a, b) => (a.id ?? Infinity) - (b.id ?? Infinity) || compareVersions(a.version, b.version));
}

/**
 * What no serial run of tidemark could have written into the ledger, one line each: a version
 * recorded twice (its unique constraint was dropped by hand), more than one dirty row (a run stops
 * at the first). Empty for a ledger tidemark could have written.
 */
export function ledgerAnomalies(ledger: LedgerRow[]): string[] {
  const counts = new Map<Version, LedgerRow[]>();
  for (const r of ledger) counts.set(r.version, [...(counts.get(r.version) ?? []), r]);
  const lines = [...counts.values()]
    .filter((rows) => rows.length > 1)
    .map((rows) => `version ${versionLabel(rows[0]!.version, null, rows[0])} is recorded ${rows.length} times`);
  const dirty = ledger.filter((r) => r.dirty).map((r) => versionLabel(r.version, null, r));
  if (dirty.length > 1) lines.push(`versions ${dirty.join(', ')} are ${dirty.length === 2 ? 'both' : 'all'} dirty`);
  return lines;
}

/** How to repair a ledger with anomalies: by hand, since no command can know which row is the true one. */
export const LEDGER_REPAIR =
  'look at the rows (`tidemark status`, and `tidemark status --history`) and fix the ledger table by hand: ' +
  'delete the extra row of each version recorded twice (keep the lowest id) and put back the unique ' +
  'constraint on version; resolve the dirty versions one by one';

/** Commands that act on the ledger refuse one that no serial run could have written: their plan would rest on a lie. */
export function assertSerialLedger(ledger: LedgerRow[]): void {
  const anomalies = ledgerAnomalies(ledger);
  if (anomalies.length === 0) return;
  const message = 'the ledger is not one a serial run could have written; nothing was changed';
  throw new UsageError(message, { context: anomalies, hint: LEDGER_REPAIR });
}

/** Refuses to go on while a no-transaction migration or rollback is half done: `resolve` says what happened. */
export function assertNotDirty(ledger: LedgerRow[]): void {
  const dirty = ledger.find((r) => r.dirty);
  if (!dirty) return;
  const label = versionLabel(dirty.version, null, dirty);
  throw new UsageError(`version ${label} (${dirty.name}) is dirty: ${dirtyStory(dirty.dirtyAction)}`, {
    hint: dirtyResolution(label, dirty.dirtyAction),
  });
}

/** What a dirty row means, by the step that left it. */
export function dirtyStory(action: DirtyAction | null): string {
  if (action === 'down') return 'the rollback of a no-transaction migration started and did not finish';
  return 'a no-transaction migration started and did not finish';
}

/**
 * What a person does about a dirty version: look, then tell the ledger what happened with `resolve`,
 * which changes only that version's row. The meaning of --applied follows the step that was
 * interrupted; when the ledger does not know it (a row marked by an older tidemark or by hand),
 * --applied and --not-applied say whether the migration's change is in the database.
 */
export function dirtyResolution(version: string, action: DirtyAction | null): string {
  const keep = `keeps version ${version} applied`;
  const remove = `deletes the row of version ${version} only`;
  const [applied, notApplied] =
    action === 'down'
      ? [`if the rollback took effect (${remove})`, `if it did not (${keep})`]
      : action === 'up'
        ? [`if the migration took effect (${keep})`, `if it did not (${remove})`]
        : [`if the migration's change is in the database (${keep})`, `if it is not (${remove})`];
  const command = (flag: string) => `\`tidemark resolve ${version} ${flag}\``;
  const choice = `${command('--applied')} ${applied}, or ${command('--not-applied')} ${notApplied}`;
  return `check the database by hand, then run ${choice}`;
}

/** What `resolve` does to the one row it changes. */
export interface ResolvePlan {
  version: Version;
  name: string;
  /** clean: keep the row, no longer dirty; delete: remove the row. */
  change: 'clean' | 'delete';
  direction: DirtyAction | null;
}

/**
 * `resolve V --applied | --not-applied`: the interrupted step took effect, or did not. Only row V
 * changes, whatever lies above it (a dirty out-of-order version must not take later ones with it).
 */
export function planResolve(ledger: LedgerRow[], version: Version, applied: boolean): ResolvePlan {
  const row = ledger.find((r) => r.version === version);
  if (!row) {
    const hint = 'see the dirty version in `tidemark status`';
    throw new UsageError(`version ${version} is not in the ledger; nothing was changed`, { hint });
  }
  if (!row.dirty) {
    throw new UsageError(`version ${version} is not dirty; resolve only settles a dirty version; nothing was changed`, {
      hint: 'to make the ledger say another version, run `tidemark force <version>` (it lists the rows it deletes)',
    });
  }
  const stepTookEffect = applied;
  // A rollback that took effect means the migration is gone: its row goes.
  const migrationApplied = row.dirtyAction === 'down' ? !stepTookEffect : stepTookEffect;
  return { version, name: row.name, change: migrationApplied ? 'clean' : 'delete', direction: row.dirtyAction };
}

export interface MigratePlan {
  /** Pending migrations to apply, in order. */
  pending: Migration[];
  /** Pending versions below the applied version, applied because --allow-out-of-order said so. */
  outOfOrder: Set<Version>;
  /** Applied versions whose ledger row needs the files' checksums (or rollback text) recorded. */
  backfill: Backfill[];
  /** Applied versions this release has no file for: the database is ahead of the code. */
  notInRelease: LedgerRow[];
  current: Version;
  /** The version once the pending migrations are applied. */
  version: Version;
}

/**
 * What to record for an applied version: the forward checksum (a row adopted from a legacy ledger,
 * or an edit accepted by --allow-changed), and the rollback file's text (none stored yet, or an edit
 * accepted), so that a later release without the file can still roll it back.
 */
export interface Backfill {
  migration: Migration;
  checksum: boolean;
  rollback: boolean;
}

export interface MigrateOptions {
  target?: Version;
  /** Versions whose applied file (or rollback file) was edited, accepted by `--allow-changed`. */
  allowChanged?: boolean;
  /** Apply pending versions below the applied version (`--allow-out-of-order`). */
  allowOutOfOrder?: boolean;
}

export function planMigrate(
  migrations: Migration[],
  ledger: LedgerRow[],
  checksums: Checksums,
  options: MigrateOptions = {},
): MigratePlan {
  assertSerialLedger(ledger);
  assertNotDirty(ledger);
  const applied = new Map(ledger.map((r) => [r.version, r]));
  const current = currentVersion(ledger);
  const { target } = options;
  if (target !== undefined && target < current) {
    throw new UsageError(`the database is at version ${current}, above the target ${target}`, {
      hint: `migrate only moves forward; run \`tidemark rollback --to ${target}\` to go back`,
    });
  }
  const edits = editedFiles(migrations, ledger, checksums);
  if (!options.allowChanged && edits.length > 0) {
    throw new UsageError(
      `${edits.length === 1 ? 'an applied migration file was' : `${edits.length} applied migration files were`} ` +
        `edited after the migration ran`,
      {
        context: edits.map(
          ({ file, versionText }) =>
            `${file.path}: checksum differs from the one recorded when ${versionText} was applied`,
        ),
        hint:
          'restore the files as they were applied and put the change in a new migration (`tidemark create <name>`), ' +
          'or pass --allow-changed to record the new checksums (for an edited rollback file: its new text, which a ' +
          'later rollback runs)',
      },
    );
  }
  const pending = migrations.filter((m) => !applied.has(m.version) && (target === undefined || m.version <= target));
  const late = pending.filter((m) => m.version < current);
  if (late.length > 0 && !options.allowOutOfOrder) {
    const top = migrations.find((m) => m.version === current);
    throw outOfOrderError(late, current, versionLabel(current, top, applied.get(current)));
  }
  const backfill = migrations.flatMap((m): Backfill[] => {
    const row = applied.get(m.version);
    if (!row) return [];
    const accept = (recorded: string | null, now: string | undefined) =>
      now !== undefined && (recorded === null || (Boolean(options.allowChanged) && recorded !== now));
    const entry = {
      migration: m,
      checksum: accept(row.checksum, checksums.forward.get(m.version)),
      rollback: accept(row.rollbackChecksum, checksums.rollback.get(m.version)),
    };
    return entry.checksum || entry.rollback ? [entry] : [];
  });
  return {
    pending,
    outOfOrder: new Set(late.map((m) => m.version)),
    backfill,
    notInRelease: notInRelease(migrations, ledger),
    current,
    version: highestVersion([current, ...pending.map((m) => m.version)]),
  };
}

/** Applied versions' forward and rollback files that differ from what was recorded when they ran. */
export function editedFiles(
  migrations: Migration[],
  ledger: LedgerRow[],
  checksums: Checksums,
): { version: Version; versionText: string; file: SqlFile }[] {
  const applied = new Map(ledger.map((r) => [r.version, r]));
  return migrations.flatMap((m) => {
    const row = applied.get(m.version);
    if (!row) return [];
    const edited = [];
    const { version, versionText } = m;
    if (differs(row.checksum, checksums.forward.get(version))) edited.push({ version, versionText, file: m.forward });
    if (m.rollback && differs(row.rollbackChecksum, checksums.rollback.get(version)))
      edited.push({ version, versionText, file: m.rollback });
    return edited;
  });
}

/** Never applied silently, never skipped silently: the person chooses. */
function outOfOrderError(late: Migration[], current: Version, currentText: string): UsageError {
  const [first] = late;
  const versions = late.map((m) => m.versionText).join(', ');
  const renumbered = String(current + 1n).padStart(first!.versionText.length, '0');
  return new UsageError(
    `${late.length === 1 ? `version ${versions} is` : `versions ${versions} are`} pending but below the applied ` +
      `version ${currentText}: out of order (a migration added after later ones ran)`,
    {
      context: late.map((m) => `${m.forward.path}: not applied, while version ${currentText} is`),
      hint:
        `either apply ${late.length === 1 ? 'it' : 'them'} anyway with --allow-out-of-order (npm run migrate -- ` +
        `--allow-out-of-order; the history records it as up-out-of-order), ` +
        `or renumber ${late.length === 1 ? 'the file and its rollback' : 'the files and their rollbacks'} above ` +
        `${currentText} (e.g. ${renumbered}_${first!.name}.sql) so ` +
        `${late.length === 1 ? 'it runs' : 'they run'} in order`,
    },
  );
}

/** Applied versions this release has no file for (the code was reverted, or files were deleted). */
export function notInRelease(migrations: Migration[], ledger: LedgerRow[]): LedgerRow[] {
  const files = new Set(migrations.map((m) => m.version));
  return ledger.filter((r) => !files.has(r.version));
}

/** The warning for a release that lacks files of applied versions: what the database is ahead by, and the way back. */
export function notInReleaseWarning(rows: LedgerRow[], migrations: Migration[]): string | null {
  if (rows.length === 0) return null;
  const newestFile = highestVersion(migrations.map((m) => m.version));
  const list = rows.map((r) => `${versionLabel(r.version, null, r)} (${r.name})`).join(', ');
  const subject = rows.length === 1 ? `version ${list} is` : `versions ${list} are`;
  if (rows.some((r) => r.version < newestFile)) {
    return (
      `${subject} applied but this release has no file for ${rows.length === 1 ? 'it' : 'them'}; restore the ` +
      `files from version control (see \`tidemark status\`)`
    );
  }
  return (
    `${subject} applied but not in this release: the database is ahead of the code (a reverted release?). ` +
    `To take the database back to this release, run \`npm run migrate:rollback -- --to ${newestFile}\`; it runs the ` +
    `rollback stored in the ledger where the file is gone`
  );
}

/** A run with nothing to apply or backfill writes nothing, not even the ledger's tables. */
export function writesLedger(plan: MigratePlan): boolean {
  return plan.pending.length > 0 || plan.backfill.length > 0;
}

export interface RollbackOptions {
  steps?: number;
  to?: Version;
  all?: boolean;
  /** Run the rollback stored in the ledger even where the rollback file exists and differs (`--use-stored`). */
  useStored?: boolean;
}

export interface RollbackStep {
  row: LedgerRow;
  version: Version;
  versionText: string;
  name: string;
  /** The rollback file to run, or null: run the copy stored in the ledger when the version was applied. */
  file: SqlFile | null;
  /** Why the stored copy runs, or why the file runs although it differs from it: said before the step. */
  note: { level: 'notice' | 'warning'; message: string } | null;
}

/** The version the database is at once the steps are undone. */
export function versionAfterRollback(ledger: LedgerRow[], steps: RollbackStep[]): Version {
  const undone = new Set(steps.map((s) => s.row.version));
  return currentVersion(ledger.filter((r) => !undone.has(r.version)));
}

/**
 * The applied versions to undo, newest first, each with what undoes it: its rollback file, or the
 * rollback stored in the ledger when the file is not in this release (the code was reverted).
 * `rollbackChecksums` holds the current rollback files' checksums.
 */
export function planRollback(
  migrations: Migration[],
  ledger: LedgerRow[],
  options: RollbackOptions,
  rollbackChecksums: Map<Version, string>,
): RollbackStep[] {
  assertSerialLedger(ledger);
  assertNotDirty(ledger);
  const chosen = rowsToRollBack(ledger, options);
  const files = new Map(migrations.map((m) => [m.version, m]));
  const problems: string[] = [];
  const steps: RollbackStep[] = [];
  for (const row of chosen) {
    const migration = files.get(row.version);
    const step = rollbackStep(row, migration, rollbackChecksums.get(row.version), Boolean(options.useStored));
    if (step) steps.push(step);
    else if (migration)
      problems.push(
        `${migration.forward.path}: no rollback file, and none stored in the ledger; write ` +
          `${migration.versionText}_${migration.name}_rollback.sql`,
      );
    else
      problems.push(
        `version ${versionLabel(row.version, null, row)} (${row.name}) is applied, but this release has no file for ` +
          `it and the ledger stored ` +
          `no rollback for it`,
      );
  }
  if (problems.length > 0) {
    throw new UsageError('cannot roll back: nothing was changed', {
      context: problems,
      hint:
        'add the missing rollback files (or restore the migration files from the release that applied them) and ' +
        'run the rollback again',
    });
  }
  return steps;
}

/**
 * migrate --sync: the versions applied but not in this release, undone newest first before anything
 * is applied, so deploying an older release takes the database back with it. Only a release that
 * lacks the newest versions qualifies: files missing from the middle are a broken checkout.
 */
export function planSync(migrations: Migration[], ledger: LedgerRow[]): RollbackStep[] {
  const ahead = notInRelease(migrations, ledger);
  if (ahead.length === 0) return [];
  const newestFile = highestVersion(migrations.map((m) => m.version));
  const missing = ahead.filter((r) => r.version < newestFile);
  if (missing.length > 0) {
    const list = missing.map((r) => `${versionLabel(r.version, null, r)} (${r.name})`).join(', ');
    throw new UsageError(
      `migrate --sync: this release has no file for the applied ${missing.length === 1 ? 'version' : 'versions'} ` +
        `${list}, below its newest file ${newestFile}; nothing was changed`,
      {
        hint:
          'restore the files from version control (see `tidemark status`); --sync only undoes versions newer ' +
          'than every file of the release',
      },
    );
  }
  return planRollback(migrations, ledger, { to: newestFile }, new Map());
}

/**
 * The applied rows a rollback undoes, newest applied first (the ledger's apply order, not the version
 * numbers): the last `steps` (default 1), every one above `to`, or `all`. `--to V` refuses when a
 * version at or below V was applied after one it would undo (out of order): undoing that one first
 * could take the later one's changes with it, and keeping it means not undoing in apply order.
 */
export function rowsToRollBack(ledger: LedgerRow[], options: RollbackOptions): LedgerRow[] {
  const newestFirst = inApplyOrder(ledger).reverse();
  if (options.all) return newestFirst;
  if (options.to === undefined) return newestFirst.slice(0, options.steps ?? 1);
  const to = options.to;
  const oldestUndone = newestFirst.findLastIndex((r) => r.version > to);
  if (oldestUndone < 0) return [];
  const kept = newestFirst.slice(0, oldestUndone).filter((r) => r.version <= to);
  if (kept.length > 0) throw laterAppliedError(kept, newestFirst[oldestUndone]!, oldestUndone + 1, to);
  return newestFirst.filter((r) => r.version > to);
}

function laterAppliedError(kept: LedgerRow[], oldestUndone: LedgerRow, steps: number, to: Version): UsageError {
  const versions = kept.map((r) => versionLabel(r.version, null, r)).join(', ');
  const subject = kept.length === 1 ? `version ${versions} was` : `versions ${versions} were`;
  const undone = versionLabel(oldestUndone.version, null, oldestUndone);
  const reason = `${subject} applied after ${undone} (out of order), which --to ${to} would undo`;
  return new UsageError(`cannot roll back to ${to}: ${reason}; nothing was changed`, {
    hint:
      `rollback undoes migrations newest applied first: run \`tidemark rollback ${steps}\` to undo the last ${steps} ` +
      `in that order (down to ${undone}, ${kept.length === 1 ? 'including' : 'with'} ${versions}), ` +
      'or choose a lower --to',
  });
}

/**
 * Refuses before anything runs when one of the steps cannot undo its migration: the whole plan, not
 * the steps above it. `irreversible` maps versions to why (starting with the rollback file's path).
 */
export function assertReversible(steps: RollbackStep[], irreversible: Map<Version, string>): void {
  const newestFirst = steps.map((s) => s.row);
  const blocked = newestFirst.filter((r) => irreversible.has(r.version));
  if (blocked.length === 0) return;
  const first = newestFirst.indexOf(blocked[0]!);
  const one = blocked.length === 1;
  const later = first === 1 ? 'migration' : `${first} migrations`;
  const before = first ? `roll back only the ${later} applied after it (\`tidemark rollback ${first}\`), or ` : '';
  const subject = one ? 'a migration to undo is' : `${blocked.length} migrations to undo are`;
  throw new UsageError(`cannot roll back: ${subject} irreversible; nothing was changed`, {
    context: blocked.map((r) => irreversible.get(r.version)!),
    hint:
      `${before}undo ${one ? 'its' : 'their'} changes by hand (or restore a backup) and then ` +
      'make the ledger say so with `tidemark force <version> --yes`, ' +
      'which deletes the ledger rows above <version> and runs no SQL',
  });
}

/** File or stored copy: the file wins unless --use-stored; the stored copy serves when the file is gone. */
function rollbackStep(
  row: LedgerRow,
  migration: Migration | undefined,
  fileChecksum: string | undefined,
  useStored: boolean,
): RollbackStep | null {
  const base = {
    row,
    version: row.version,
    versionText: versionLabel(row.version, migration, row),
    name: migration?.name ?? row.name,
  };
  const file = migration?.rollback ?? null;
  const stored = row.rollbackChecksum !== null;
  const label = `${base.versionText} ${base.name}`;
  if (!file) {
    if (!stored) return null;
    const message =
      `${label}: its rollback file is not in this release; running the rollback stored in the ledger ` +
      `when it was applied`;
    return { ...base, file: null, note: { level: 'notice', message } };
  }
  if (!stored || row.rollbackChecksum === fileChecksum) return { ...base, file, note: null };
  if (useStored) {
    return {
      ...base,
      file: null,
      note: {
        level: 'notice',
        message:
          `${label}: running the rollback stored in the ledger when it was applied (--use-stored), not ` +
          `${file.path}, which differs from it`,
      },
    };
  }
  const message =
    `${file.path} differs from the rollback stored in the ledger when ${base.versionText} was applied; ` +
    `running the file (pass --use-stored to run the stored copy)`;
  return { ...base, file, note: { level: 'warning', message } };
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
export function planForce(migrations: Migration[], ledger: LedgerRow[], target: Version): ForcePlan {
  assertSerialLedger(ledger);
  if (target !== 0n) assertVersionExists(migrations, target, ', or 0 to empty the ledger');
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
export function planBaseline(migrations: Migration[], ledger: LedgerRow[], target: Version): Migration[] {
  assertVersionExists(migrations, target, '');
  const force = `tidemark force ${target} --yes`;
  assertEmptyLedger(ledger, 'baseline', `to make it say version ${target} anyway, run \`${force}\``);
  return migrations.filter((m) => m.version <= target);
}

/**
 * The migrations another tool applied, to record as baseline does (`tidemark import --url`): the
 * versions were checked against the files already; only on an empty ledger.
 */
export function planAdopt(migrations: Migration[], ledger: LedgerRow[], versions: Version[]): Migration[] {
  const orElse = 'to convert the files only, run the import with --files-only';
  assertEmptyLedger(ledger, 'import with a database URL', orElse);
  const wanted = new Set(versions);
  return migrations.filter((m) => wanted.has(m.version));
}

function assertEmptyLedger(ledger: LedgerRow[], command: string, orElse: string): void {
  if (ledger.length === 0) return;
  const versions = ledger.length === 1 ? '1 version' : `${ledger.length} versions`;
  const what = `the ledger already records ${versions} (up to ${currentVersion(ledger)})`;
  throw new UsageError(`${what}; ${command} is for a database whose ledger is empty`, {
    hint: `see what it holds with \`tidemark status\`; ${orElse}`,
  });
}

/** force and baseline take a version that has a file for this dialect. */
function assertVersionExists(migrations: Migration[], version: Version, orElse: string): void {
  if (migrations.some((m) => m.version === version)) return;
  throw new UsageError(`there is no migration with version ${version} for this database`, {
    hint: `use one of the versions \`tidemark status\` lists${orElse}`,
  });
}

/**
 * Refuses unless the database is exactly at `expected` with nothing dirty: what an application
 * checks at start-up so that it never runs against a schema it was not written for.
 */
export function assertAtVersion(
  database: string,
  current: Version,
  entries: StatusEntry[],
  expected: Version,
  allowAhead: boolean,
): void {
  const dirty = entries.find((e) => e.state === 'dirty');
  if (dirty) {
    throw new SchemaVersionError(
      `${database}: version ${dirty.versionText} (${dirty.name}) is dirty: a no-transaction migration did not finish`,
      {
        hint: 'run `tidemark status`: it names the `tidemark resolve` command that settles it',
      },
    );
  }
  // Behind is a version this release needs and the database lacks, below the newest applied one too.
  const unapplied = (e: StatusEntry) => e.state === 'pending' || e.state === 'out-of-order';
  const missing = entries.filter((e) => unapplied(e) && e.version <= expected).map((e) => e.versionText);
  if (current < expected || missing.length > 0) {
    const lacking = current < expected ? `is at version ${current}` : `lacks version ${missing.join(', ')}`;
    throw new SchemaVersionError(`${database} ${lacking}, but this release expects version ${expected}`, {
      hint: 'run `npm run migrate` before starting the application',
    });
  }
  if (current > expected && !allowAhead) {
    throw new SchemaVersionError(
      `${database} is at version ${current}, ahead of this release, which expects version ${expected}`,
      {
        hint:
          `deploy the release that matches the database, or roll the database back with \`npm run ` +
          `migrate:rollback -- --to ${expected}\``,
      },
    );
  }
}

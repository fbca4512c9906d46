// One migration or rollback run against the database with its ledger change and history row: the
// machinery migrate and rollback share. No dialect knowledge here.
import { performance } from 'node:perf_hooks';
import { stepRecords, type Driver, type HistoryEntry, type Step } from '../drivers/driver.js';
import { InterruptedError, MigrationError, TidemarkError } from '../errors.js';
import type { MigratorEvent } from '../events.js';
import type { Script } from '../script.js';
import { dirtyResolution, type DirtyAction } from '../plan.js';
import type { Run, Session } from './session.js';

/** How a no-transaction step marks its ledger row dirty before its SQL runs, and clears it after. */
export interface DirtyRow {
  before: () => Promise<void>;
  after: (ms: number) => Promise<void>;
}

/** A step that shares a transaction with others: --single-transaction's one, or a commit group. */
export interface SharedTransaction {
  /** The failure's history row: a rollback of the transaction would take it away, so it is written after. */
  failure: HistoryEntry | null;
  /** The step's applied/reverted/failed events, held until its group commits; null to emit them at once. */
  held: MigratorEvent[] | null;
}

/** How a step runs: alone, or in a shared transaction; `again` when its start was already announced. */
export interface StepRun {
  shared?: SharedTransaction | null;
  /** A step run again (cut short, or its group could not commit) prints its notices and line only once. */
  again?: boolean;
}

/**
 * One migration or rollback; false when another runner already did it. Transactional: the SQL and
 * the ledger change commit together or not at all. no-transaction: the ledger row is marked dirty
 * first and cleared after, so a crash stays visible.
 */
export async function runStep(
  session: Session,
  run: Run,
  step: Step,
  dirtyRow: DirtyRow,
  { shared = null, again = false }: StepRun = {},
): Promise<boolean> {
  const { driver } = run;
  const { action, script } = step;
  const { file } = script;
  // A run that lost its lock (table mode: another runner took it over) must not start another step.
  driver.assertLocked();
  if (session.interruption) throw session.interruption;
  if (!again) {
    for (const line of script.skipped) session.emit({ type: 'notice', message: line });
    session.emit({ type: 'running', action, version: file.version, versionText: file.versionText, name: file.name });
  }
  const started = performance.now();
  try {
    if (!(await stepChanges(run, step, dirtyRow, started))) return false;
  } catch (caught) {
    throw await failedStep(session, run, step, caught, { started, shared });
  }
  report(session, shared, {
    type: action === 'up' ? 'applied' : 'reverted',
    version: file.version,
    versionText: file.versionText,
    name: file.name,
    ms: elapsed(started),
    dryRun: false,
  });
  return true;
}

/** Runs the step's SQL with its ledger change; false when another runner already did it. */
async function stepChanges(run: Run, step: Step, dirtyRow: DirtyRow, started: number): Promise<boolean> {
  const { driver } = run;
  const { script, action } = step;
  if (!script.noTransaction) return (await driver.runStep(step)) !== null;
  // Without a run-wide lock, the ledger is re-read first (the dirty row then claims the version).
  if (!run.exclusive && (await driver.hasVersion(script.file.version)) === (action === 'up')) return false;
  await dirtyRow.before();
  await driver.runScript(script);
  await dirtyRow.after(elapsed(started));
  const { history } = stepRecords(step, null);
  await driver.appendHistory({ ...history, outcome: 'ok', executionMs: elapsed(started), error: null });
  return true;
}

/** Rolls a failed step back, reports it and records it in the history; returns the error to throw. */
async function failedStep(
  session: Session,
  run: Run,
  step: Step,
  caught: unknown,
  { started, shared }: { started: number; shared: SharedTransaction | null },
): Promise<TidemarkError> {
  const { driver } = run;
  const { action, script, ownTransaction } = step;
  const { file } = script;
  if (!script.noTransaction && ownTransaction) await driver.rollback().catch(() => {});
  const error = stepError(session.interruption ?? caught, script, driver, action);
  const { versionText, name } = file;
  report(session, shared, { type: 'failed', action, version: file.version, versionText, name, error: error.message });
  // Only the migration's own failure is `failed`: a signal, a lost connection or lock interrupted a fine one.
  const outcome = error instanceof MigrationError ? 'failed' : 'interrupted';
  const { history } = stepRecords(step, null);
  const entry = { ...history, outcome, executionMs: elapsed(started), error: error.message } as const;
  if (ownTransaction) await driver.recordFailure(entry);
  else if (shared) shared.failure = entry;
  return error;
}

/** Emits a step's outcome, or holds it while the step's group is not yet committed. */
function report(session: Session, shared: SharedTransaction | null, event: MigratorEvent): void {
  if (shared?.held) shared.held.push(event);
  else session.emit(event);
}

/** What a failed step reports: the migration's own error (file:line), or what stopped it (exit 4, 5, 130, 143). */
function stepError(error: unknown, script: Script, driver: Driver, action: DirtyAction): TidemarkError {
  const reported = asTidemarkError(error, script, driver);
  if (!script.noTransaction) return reported;
  const details = {
    ...reported.details,
    hint:
      `${script.file.path} runs outside a transaction, so it may have partly run; ` +
      `version ${script.file.versionText} is now marked dirty. ` +
      dirtyResolution(script.file.versionText, action),
  };
  if (reported instanceof MigrationError) return new MigrationError(reported.message, details);
  return new InterruptedError(reported.message, reported.exitCode, details);
}

function asTidemarkError(error: unknown, script: Script, driver: Driver): TidemarkError {
  if (error instanceof TidemarkError) return error;
  // The database, not the file, failed (it is read-only, or the server went away): the driver says so.
  const explained = driver.explain(error);
  if (explained instanceof TidemarkError) return explained;
  const message = error instanceof Error ? error.message : String(error);
  return new MigrationError(`${script.file.path}: ${message}`, { file: script.file.path });
}

/** Milliseconds since `since`, whole. */
export function elapsed(since: number): number {
  return Math.round(performance.now() - since);
}
